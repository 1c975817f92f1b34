"""``exchange liquidator``: watches every account's margin from the engine's event log, sends the
engine a ``Liquidate`` command for each margin scope that reaches maintenance margin, and
publishes margin calls and ADL queue indicators on the risk topic.

**The split of the work** (docs/liquidation.md). The engine owns the liquidation: it re-checks
a ``Liquidate`` against its own state (a stale trigger is refused with ``not_liquidatable``
and changes nothing), cancels the orders, steps the position down, charges the clearance fee,
settles with the insurance fund and runs ADL. This service only pulls the trigger: it keeps an
``AccountView`` (``exchange/account_view.py``) of the event log, which values every scope
exactly as the engine does and, through its trigger index, re-values on a mark only the scopes
the move can change.

**Triggers, once each.** When a scope reaches LIQUIDATION the service sends one ``Liquidate``,
id ``liq-<offset>-<account>-<symbol>`` (``offset``: the command offset of the event record
after which the view saw it reach that level, the same in every run that reads the same log),
and sends nothing more for that scope until the event log holds the answer to that id. An id
not answered within ``EXCHANGE_LIQUIDATOR_RESEND_MS`` is sent again, under the same id, so the
engine applies it at most once. If the scope is still at LIQUIDATION after the answer (the
engine refused, or left it due), the service does not try again until the scope has left
that level: a view that disagreed with the engine would otherwise loop.

**Restarts.** The service reads the event log from its beginning (``services/log_reader``),
rebuilding the view, the scopes at LIQUIDATION and the answers already given, and acts only
once caught up. Then it values every scope afresh (a trigger that happened while it was down
is found there, not missed) and sends what is due and unanswered: an id its previous run had
sent and the engine had applied comes back as a duplicate. Before following the logs it reads
its own risk topic to the end, so it knows the last level and indicator it published for
every scope and position and publishes only differences.

**Timing.** For each ``Liquidate`` it logs the event time and offset of the record that
crossed (the mark, for a mark move), what the record was (``mark``, ``trade``, ``other``) and
the wall-clock latency from reading that record to sending the command; ``/health/ready``
(``EXCHANGE_LIQUIDATOR_HEALTH_PORT``) shows the counters and the latency percentiles.
"""

import asyncio
import time
from collections.abc import Sequence
from typing import Any

import msgspec
import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from exchange.account_view import AccountView, LevelChange, Scope
from exchange.engine import MarginLevel
from exchange.engine_commands import Liquidate
from exchange.engine_events import (
    CommandRejected,
    EngineEvent,
    Liquidation,
    MarkChanged,
    MarketEvent,
)
from exchange.events import Trade
from exchange.market import MarketSpec
from exchange.units import RATE_ONE
from services.broker import create_topics
from services.engine_main import load_markets
from services.health import HealthServer
from services.log_reader import at_ends, follow
from services.risk_messages import (
    ADL_ENTRIES_PER_MESSAGE,
    RISK_DECODER,
    RISK_ENCODER,
    AdlEntry,
    AdlQuantiles,
    MarginCall,
    PositionSide,
    RiskMessage,
)
from services.settings import Settings
from services.wire import ENCODER, CommandBatch, CommandEnvelope, CommandResult, EventBatch

log = structlog.get_logger("liquidator")

ID_PREFIX = "liq-"
_COMMANDS_PER_RECORD = 1_000
_LATENCIES_KEPT = 10_000
"""Latencies kept for the percentiles of the status (the most recent)."""


async def run_liquidator(settings: Settings, stop: asyncio.Event) -> None:
    """Run the liquidation service for the engine's markets until ``stop``."""
    await start_liquidator(settings).run(stop)


def start_liquidator(settings: Settings) -> "Liquidator":
    """The service for the markets of ``settings`` (not yet running: ``run`` it)."""
    return Liquidator(settings, load_markets(settings.markets_file))


def liquidate_command_id(offset: int, account: int, symbol: str) -> str:
    """The id of the trigger of ``(account, symbol)`` seen after the event record of command
    offset ``offset``: the same in every run that reads the same log."""
    return f"{ID_PREFIX}{offset}-{account}-{symbol}"


def scope_of(command_id: str) -> Scope | None:
    """The scope a liquidation id names, or None for another id."""
    if not command_id.startswith(ID_PREFIX):
        return None
    parts = command_id.split("-", 3)
    if len(parts) != 4 or not parts[2].isdigit():
        return None
    return int(parts[2]), parts[3]


async def read_risk_topic(settings: Settings) -> list[RiskMessage]:
    """Every message of the risk topic, each partition in order, read to its end (the end
    learned from a fetch's high watermark: kafka-broker-notes.md)."""
    consumer = AIOKafkaConsumer(**settings.consumer_config())
    partitions = [TopicPartition(settings.risk_topic, p) for p in range(settings.risk_partitions)]
    await consumer.start()
    out: list[RiskMessage] = []
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends: dict[TopicPartition, int | None] = dict.fromkeys(partitions)
        while True:
            batches = await consumer.getmany(timeout_ms=100)
            for partition in partitions:
                for record in batches.get(partition, ()):
                    try:
                        out.append(RISK_DECODER.decode(record.value or b""))
                    except (msgspec.DecodeError, msgspec.ValidationError) as error:
                        log.warning("bad_risk_record", error=str(error))
            if await at_ends(consumer, ends):
                return out
    finally:
        await consumer.stop()


class Trigger(msgspec.Struct, frozen=True):
    """When a scope reached LIQUIDATION: the event record after which the view saw it."""

    offset: int
    time: int
    """The record's event time: a mark's own time when a mark crossed."""
    cause: str
    """``mark`` (the record's command moved a mark), ``trade`` (a last price), ``other``."""
    read_at: float
    """``time.perf_counter()`` when the record was read."""
    live: bool
    """Read while live (False: during the catch-up after a start)."""


class InFlight(msgspec.Struct):
    command_id: str
    sent_at: float
    sends: int


class Latency(msgspec.Struct, frozen=True):
    """Read-to-send latencies of the ``Liquidate`` commands sent live, in ms."""

    count: int
    last: float | None
    p50: float | None
    p99: float | None
    max: float | None


class LiquidatorStatus(msgspec.Struct, frozen=True):
    """What ``/health/ready`` shows (200 once caught up)."""

    live: bool
    offset: int
    """Command offset of the last event record read."""
    time: int
    """Its event time."""
    scopes: int
    at_warning: int
    at_liquidation: int
    in_flight: int
    blocked: int
    sent: int
    """``Liquidate`` commands sent (first sends)."""
    resent: int
    liquidated: int
    """Answers with at least one ``Liquidation`` step."""
    rejected: int
    margin_calls: int
    adl_messages: int
    revalued: int
    """Scopes the view has valued exactly (what the trigger index lets it skip is the rest)."""
    latency_ms: Latency


class Liquidator:
    """The service: the event log in, ``Liquidate`` commands and risk messages out."""

    def __init__(self, settings: Settings, specs: Sequence[MarketSpec]) -> None:
        self.settings = settings
        self.health_port: int | None = None
        """Where ``/health/ready`` is served, once running."""
        self.view = AccountView(
            specs,
            warning_ratio=settings.margin_call_bps * RATE_ONE // 10_000,
            default_leverage=settings.default_leverage,
        )
        self.live = False
        self._offset = -1
        self._time = 0
        self._triggers: dict[Scope, Trigger] = {}
        """Every scope at LIQUIDATION, with when it got there."""
        self._in_flight: dict[Scope, InFlight] = {}
        self._blocked: set[Scope] = set()
        """Scopes still at LIQUIDATION after the engine answered their trigger."""
        self._changed: dict[Scope, int] = {}
        """Scopes whose level changed since the last publication, with the event time."""
        self._levels: dict[Scope, MarginLevel] = {}
        """The last level published per scope (absent: safe)."""
        self._quantiles: dict[str, dict[int, tuple[PositionSide, int]]] = {
            spec.symbol: {} for spec in specs
        }
        """The last indicator published per market and account."""
        self._adl_time: dict[str, int] = {}
        """Per market, the event time of its last ``AdlQuantiles``."""
        self._latencies: list[float] = []
        self._counts = dict.fromkeys(
            ("sent", "resent", "liquidated", "rejected", "margin_calls", "adl_messages"), 0
        )

    def _restore(self, message: RiskMessage) -> None:
        """Take one of its own earlier messages as published."""
        if isinstance(message, MarginCall):
            scope = (message.account, message.symbol)
            if message.level is MarginLevel.SAFE:
                self._levels.pop(scope, None)
            else:
                self._levels[scope] = message.level
        else:
            published = self._quantiles.get(message.symbol)
            if published is None:
                return
            for entry in message.entries:
                if entry.quantile is None:
                    published.pop(entry.account, None)
                else:
                    published[entry.account] = (entry.side, entry.quantile)
            previous = self._adl_time.get(message.symbol, message.time)
            self._adl_time[message.symbol] = max(previous, message.time)

    async def run(self, stop: asyncio.Event) -> None:
        """Create the topics if needed, read back the risk topic, serve health, then follow
        the logs until ``stop``."""
        settings = self.settings
        await create_topics(settings.bootstrap_servers, settings)
        published = await read_risk_topic(settings)
        for message in published:
            self._restore(message)
        health = HealthServer(
            lambda: (self.live, self.status()),
            host=settings.health_host,
            port=settings.liquidator_health_port,
        )
        await health.start()
        self.health_port = health.port
        log.info(
            "liquidator_started",
            markets=list(self.view.markets),
            margin_call_bps=settings.margin_call_bps,
            restored_messages=len(published),
            health=f"http://{settings.health_host}:{health.port}/health/ready",
        )
        try:
            await follow(settings, stop, self, "liquidator")
        finally:
            await health.stop()

    def progress(self) -> dict[str, Any]:
        status = self.status()
        return {
            "offset": status.offset,
            "scopes": status.scopes,
            "at_liquidation": status.at_liquidation,
            "sent": status.sent,
            "liquidated": status.liquidated,
            "rejected": status.rejected,
        }

    def status(self) -> LiquidatorStatus:
        levels = self.view.levels().values()
        latencies = sorted(self._latencies)
        return LiquidatorStatus(
            live=self.live,
            offset=self._offset,
            time=self._time,
            scopes=len(levels),
            at_warning=sum(level is MarginLevel.WARNING for level in levels),
            at_liquidation=len(self._triggers),
            in_flight=len(self._in_flight),
            blocked=len(self._blocked),
            revalued=self.view.revalued,
            latency_ms=Latency(
                count=len(latencies),
                last=self._latencies[-1] if latencies else None,
                p50=_percentile(latencies, 50),
                p99=_percentile(latencies, 99),
                max=latencies[-1] if latencies else None,
            ),
            **self._counts,
        )

    # ----------------------------------------------------------------------------- inputs

    def on_price_record(self, value: bytes) -> None:
        """Margin is judged at the engine's mark (``MarkChanged``), not at the oracle's."""

    def on_event_batch(self, batch: EventBatch) -> None:
        read_at = time.perf_counter()
        self._offset = batch.offset
        self._time = max(self._time, batch.time)
        for result in batch.results:
            if not result.duplicate:
                changes = self.view.apply(result.events)
                if changes:
                    self._on_changes(changes, batch.offset, _cause(result.events), read_at)
            if result.id.startswith(ID_PREFIX):
                self._on_answer(result)

    def _on_changes(
        self, changes: list[LevelChange], offset: int, cause: str, read_at: float
    ) -> None:
        for change in changes:
            scope = (change.account, change.symbol)
            self._changed[scope] = self._time
            if change.after is MarginLevel.LIQUIDATION:
                self._triggers[scope] = Trigger(offset, self._time, cause, read_at, self.live)
            elif change.before is MarginLevel.LIQUIDATION:
                self._triggers.pop(scope, None)
                self._blocked.discard(scope)

    def _on_answer(self, result: CommandResult) -> None:
        """The engine's answer to a trigger, of this run or an earlier one."""
        scope = scope_of(result.id)
        if scope is None:
            return
        flight = self._in_flight.get(scope)
        if flight is not None and flight.command_id == result.id:
            del self._in_flight[scope]
        steps = [e for e in result.events if isinstance(e, Liquidation)]
        refused = next((e for e in result.events if isinstance(e, CommandRejected)), None)
        if not result.duplicate:
            self._counts["liquidated" if steps else "rejected"] += 1
        trigger = self._triggers.get(scope)
        if trigger is not None and liquidate_command_id(trigger.offset, *scope) == result.id:
            self._blocked.add(scope)  # answered, and still due: no second try this time
        if not self.live:
            return
        if result.duplicate:
            log.info("liquidation_duplicate", command_id=result.id)
        elif steps:
            log.info(
                "liquidated",
                command_id=result.id,
                account=scope[0],
                symbol=scope[1],
                steps=[(s.step, s.size, s.filled, s.deleveraged) for s in steps],
                insurance=sum(s.insurance for s in steps),
                uncovered=sum(s.uncovered for s in steps),
            )
        elif refused is not None:
            log.info(
                "liquidation_refused",
                command_id=result.id,
                reason=refused.reason,
                message=refused.message,
            )
        if scope in self._blocked:
            log.warning(
                "liquidation_answered_still_due",
                command_id=result.id,
                account=scope[0],
                symbol=scope[1],
            )

    def caught_up(self) -> None:
        """Value every scope afresh (the index's levels should all stand), then act."""
        missed = self.view.revalue_all()
        if missed:
            log.warning("index_missed", changes=len(missed))
            self._on_changes(missed, self._offset, "other", time.perf_counter())
        self.live = True
        for scope, level in self.view.levels().items():
            if level is not MarginLevel.SAFE:
                self._changed.setdefault(scope, self._time)
        for scope in self._levels:
            self._changed.setdefault(scope, self._time)
        self.view.adl_dirty.update(self.view.markets)

    # ---------------------------------------------------------------------------- outputs

    async def emit(self, producer: AIOKafkaProducer) -> None:
        """Send the triggers due, then publish margin calls, and ADL indicators when no
        trigger is waiting for its answer (a ranking of a large market takes a while, and
        delays the next poll by as much)."""
        commands = self._due_commands()
        for start in range(0, len(commands), _COMMANDS_PER_RECORD):
            batch = CommandBatch(commands[start : start + _COMMANDS_PER_RECORD], time=self._time)
            await producer.send_and_wait(
                self.settings.commands_topic, ENCODER.encode(batch), partition=0
            )
        if commands:
            self._sent(commands)
        messages = self._margin_calls()
        if not commands and not self._in_flight:  # liquidations first: a ranking takes time
            messages += self._adl_messages()
        topic = self.settings.risk_topic
        sent = [await producer.send(topic, RISK_ENCODER.encode(m), key=k) for k, m in messages]
        await asyncio.gather(*sent)

    def _due_commands(self) -> list[CommandEnvelope]:
        now = time.perf_counter()
        resend_s = self.settings.liquidator_resend_ms / 1000
        commands: list[CommandEnvelope] = []
        for scope, trigger in sorted(self._triggers.items()):
            if scope in self._blocked:
                continue
            flight = self._in_flight.get(scope)
            if flight is None:
                command_id = liquidate_command_id(trigger.offset, *scope)
                self._in_flight[scope] = InFlight(command_id, now, 0)
            elif now - flight.sent_at >= resend_s:
                command_id = flight.command_id
            else:
                continue
            command = Liquidate(account=scope[0], symbol=scope[1])
            commands.append(CommandEnvelope(command_id, command))
        return commands

    def _sent(self, commands: list[CommandEnvelope]) -> None:
        now = time.perf_counter()
        for envelope in commands:
            command = envelope.command
            assert isinstance(command, Liquidate)
            scope = (command.account, command.symbol)
            flight = self._in_flight[scope]
            trigger = self._triggers[scope]
            flight.sent_at = now
            flight.sends += 1
            resend = flight.sends > 1
            self._counts["resent" if resend else "sent"] += 1
            latency_ms = round((now - trigger.read_at) * 1000, 3)
            if not resend and trigger.live:
                self._latencies.append(latency_ms)
                del self._latencies[:-_LATENCIES_KEPT]
            log.info(
                "liquidation_sent",
                command_id=envelope.id,
                account=scope[0],
                symbol=scope[1],
                resend=resend,
                trigger_offset=trigger.offset,
                trigger_time=trigger.time,
                cause=trigger.cause,
                latency_ms=latency_ms,
                on_catch_up=not trigger.live,
            )

    def _margin_calls(self) -> list[tuple[bytes, RiskMessage]]:
        out: list[tuple[bytes, RiskMessage]] = []
        for scope, when in sorted(self._changed.items()):
            level = self.view.level(scope) or MarginLevel.SAFE
            if level is self._levels.get(scope, MarginLevel.SAFE):
                continue
            status = self.view.scope_status(scope)
            call = MarginCall(
                account=scope[0],
                symbol=scope[1],
                level=level,
                ratio=status.ratio if status is not None else None,
                margin_balance=status.margin_balance if status is not None else 0,
                maintenance=status.maintenance if status is not None else 0,
                time=when,
            )
            out.append((str(scope[0]).encode(), call))
            if level is MarginLevel.SAFE:
                del self._levels[scope]
            else:
                self._levels[scope] = level
            log.info(
                "margin_call",
                account=scope[0],
                symbol=scope[1],
                margin_level=level,
                ratio=call.ratio,
                time=when,
            )
        self._changed.clear()
        self._counts["margin_calls"] += len(out)
        return out

    def _adl_messages(self) -> list[tuple[bytes, RiskMessage]]:
        out: list[tuple[bytes, RiskMessage]] = []
        interval = self.settings.liquidator_adl_interval_ms
        view = self.view
        for symbol in sorted(view.adl_dirty):
            last = self._adl_time.get(symbol)
            if last is not None and self._time < last + interval:
                continue
            view.adl_dirty.discard(symbol)
            published = self._quantiles[symbol]
            now = {
                account: (PositionSide.LONG if long else PositionSide.SHORT, quantile)
                for account, (long, quantile) in view.adl_quantiles(symbol).items()
            }
            entries = [
                AdlEntry(account, side, quantile)
                for account, (side, quantile) in sorted(now.items())
                if published.get(account) != (side, quantile)
            ]
            entries += [
                AdlEntry(account, side, None)
                for account, (side, _) in sorted(published.items())
                if account not in now
            ]
            if not entries:
                continue
            self._quantiles[symbol] = now
            self._adl_time[symbol] = self._time
            for start in range(0, len(entries), ADL_ENTRIES_PER_MESSAGE):
                chunk = entries[start : start + ADL_ENTRIES_PER_MESSAGE]
                message = AdlQuantiles(symbol=symbol, time=self._time, entries=chunk)
                out.append((symbol.encode(), message))
        self._counts["adl_messages"] += len(out)
        return out


def _cause(events: list[EngineEvent]) -> str:
    """What moved a scope into a new level: a mark, a trade's last price, or anything else."""
    if any(type(event) is MarkChanged for event in events):
        return "mark"
    if any(type(event) is MarketEvent and type(event.event) is Trade for event in events):
        return "trade"
    return "other"


def _percentile(ordered: list[float], percent: int) -> float | None:
    """Nearest-rank percentile of a sorted list."""
    if not ordered:
        return None
    rank = max(1, -(-len(ordered) * percent // 100))
    return ordered[rank - 1]
