"""What happened in a drill, read from the logs as it happens: the event log, the command log
and the price topic, each from its beginning (the drill's exchange is fresh).

The recorder keeps figures, not the logs: the ledger rebuilt from every ``Transfer`` (so the
conservation check does not trust the engine's own sums), the insurance fund after every event
record that moved it, each ``Liquidation`` step, each ``Deleveraged`` notice, each
``FundingSettled`` with what it paid and received, the oracle's points (index, mark, last), and
the broker timestamps the latency needs: of every event record, by the command offset it answers,
and of the first command record that carried each ``Liquidate`` id. ``result()`` turns them into
the drill's JSON (``DrillResult``); ``checks.py`` judges it.

**Crossing → command.** The liquidation service names each trigger ``liq-<offset>-<account>-
<symbol>``, ``offset`` being the event record after which it saw the scope due
(services/liquidator.py). When that record carries a ``MarkChanged``, the mark crossed the
scope's liquidation price in it: the time from the broker's timestamp of that event record to
the timestamp of the command record carrying the ``Liquidate`` is the crossing → command time.
Both timestamps are the producers' (the engine's, the liquidation service's) wall clocks on
this machine, to the millisecond.
"""

import asyncio
from collections import Counter
from typing import Any

import msgspec
import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition

from exchange.engine_commands import Liquidate
from exchange.engine_events import (
    CommandRejected,
    Deleveraged,
    FundingSettled,
    Liquidation,
    MarkChanged,
    MarketEvent,
    PositionUpdate,
    Transfer,
    TransferReason,
)
from exchange.events import Rejected, Trade
from exchange.ledger import EXTERNAL, FEES, INSURANCE
from exchange.market import MarketSpec
from load.replay.summary import iso, percentiles
from services.liquidator import ID_PREFIX
from services.prices import PRICE_DECODER, MarkTick
from services.settings import Settings
from services.wire import COMMAND_DECODER, EventJoiner

log = structlog.get_logger("drill")

POLL_MS = 20


def category(address: str) -> str:
    """The ledger's kinds of address (exchange/ledger.py), for the conservation table."""
    if address.startswith("u:"):
        return "wallets"
    if address.startswith("pnl:"):
        return "clearing"
    if address.startswith("funding:"):
        return "funding_pools"
    if address in (INSURANCE, FEES, EXTERNAL):
        return address
    return "other"


class Recorder:
    """Follows the three topics in the background (``start``/``stop``) and keeps the figures."""

    def __init__(self, settings: Settings, spec: MarketSpec, command_prefix: str) -> None:
        self._joiner = EventJoiner()
        """Joins the parts of a split event record (its timestamp is its last part's)."""
        self.settings = settings
        self.spec = spec
        self.prefix = command_prefix
        self.balances: dict[str, int] = {}
        self.baseline: dict[str, int] | None = None
        self.baseline_time = 0
        self.deposits_after_baseline = 0
        self.withdrawals_after_baseline = 0
        self.insurance_after_baseline = Counter[str]()
        self.insurance_path: list[tuple[int, int]] = []
        self.insurance_low: int | None = None
        self.sizes: dict[int, int] = {}
        """Every account's position in the drill's market, in lots (``PositionUpdate``)."""
        self.open_interest = 0
        """Σ of the long positions in the drill's market, in lots."""
        self.open_interest_path: list[tuple[int, int]] = []
        """(event time, open interest) at each change, from the baseline on."""
        self.open_interest_baseline = 0
        """The open interest when the baseline was taken: the population's, before the path."""
        self.open_interest_low: int | None = None
        self.liquidations: list[dict[str, Any]] = []
        self.adl: list[tuple[int, int, int, int, int]] = []
        """(time, account, counterparty, lots, price)"""
        self.funding: list[dict[str, Any]] = []
        self.funding_remainders_after_baseline = 0
        """What the settlements after the setup paid the fund (a settlement can fall inside the
        warm-up and setup, before the conservation check's "before")."""
        self.points: list[tuple[int, int | None, int | None, int | None]] = []
        """The oracle's points: (time, index, mark, last)."""
        self.engine_marks = 0
        self.last_mark_time: int | None = None
        self.record_times: dict[int, tuple[int, int, bool]] = {}
        """Command offset → (broker timestamp, event time, carries a MarkChanged)."""
        self.liquidate_sent: dict[str, int] = {}
        """``Liquidate`` id → broker timestamp of the first command record carrying it."""
        self.liquidate_resent = 0
        self.answered: set[str] = set()
        """The first command id of every event record (how the driver knows a record is done)."""
        self.rejections: Counter[str] = Counter()
        """Refusals of the drill's own commands, by reason."""
        self.rejection_examples: list[str] = []
        self.record_errors: list[str] = []
        self.largest_event_record = 0
        self.event_records = 0
        self.events = 0
        self.trades = 0
        self.last_offset = -1
        """Command offset of the last event record."""
        self.last_command_offset = -1
        """Offset of the last command record read."""
        self.command_records: list[tuple[int, bytes]] = []
        """Every command record, for the replica check (``replica.py``)."""
        self.last_time = 0
        self._consumer = AIOKafkaConsumer(**settings.consumer_config())
        self._task: asyncio.Task[None] | None = None
        self._events = TopicPartition(settings.events_topic, 0)
        self._commands = TopicPartition(settings.commands_topic, 0)

    # ------------------------------------------------------------------------- running

    async def start(self) -> None:
        consumer = self._consumer
        await consumer.start()
        prices = [
            TopicPartition(self.settings.prices_topic, p)
            for p in range(self.settings.prices_partitions)
        ]
        consumer.assign([self._events, self._commands, *prices])
        await consumer.seek_to_beginning(self._events, self._commands, *prices)
        self._task = asyncio.create_task(self._follow())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self._consumer.stop()

    def check(self) -> None:
        """Raise what ended the following task, if anything did."""
        if self._task is not None and self._task.done() and not self._task.cancelled():
            error = self._task.exception()
            if error is not None:
                raise error

    async def _follow(self) -> None:
        while True:
            batches = await self._consumer.getmany(timeout_ms=POLL_MS, max_records=5_000)
            for partition, records in batches.items():
                if partition == self._events:
                    for record in records:
                        self.on_event_record(record.value or b"", record.timestamp)
                elif partition == self._commands:
                    for record in records:
                        self.last_command_offset = record.offset
                        self.command_records.append((record.offset, record.value or b""))
                        self.on_command_record(record.value or b"", record.timestamp)
                else:
                    for record in records:
                        self.on_price_record(record.value or b"")

    # ------------------------------------------------------------------------- records

    def on_command_record(self, value: bytes, timestamp: int) -> None:
        try:
            batch = COMMAND_DECODER.decode(value)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return  # the engine reports it on the event log (EventBatch.error)
        for envelope in batch.commands:
            if isinstance(envelope.command, Liquidate) and envelope.id.startswith(ID_PREFIX):
                if envelope.id in self.liquidate_sent:
                    self.liquidate_resent += 1
                else:
                    self.liquidate_sent[envelope.id] = timestamp

    def on_price_record(self, value: bytes) -> None:
        try:
            message = PRICE_DECODER.decode(value)
        except (msgspec.DecodeError, msgspec.ValidationError) as error:
            self.record_errors.append(f"bad price record: {error}")
            return
        if isinstance(message, MarkTick) and message.symbol == self.spec.symbol:
            last = self.last_mark_time
            if last is None or message.time > last:
                self.last_mark_time = message.time
                self.points.append((message.time, message.index, message.mark, message.last_price))

    def on_event_record(self, value: bytes, timestamp: int) -> None:
        self.largest_event_record = max(self.largest_event_record, len(value))
        self.event_records += 1
        try:
            batch = self._joiner.decode(value)
        except (msgspec.DecodeError, msgspec.ValidationError) as error:
            self.record_errors.append(f"bad event record: {error}")
            return
        if batch is None:  # a part of a split record: the whole is known at its last part
            return
        if batch.error:
            self.record_errors.append(f"command record {batch.offset}: {batch.error}")
        self.last_offset = batch.offset
        self.last_time = max(self.last_time, batch.time)
        time = batch.time
        has_mark = False
        fund_before = self.balances.get(INSURANCE, 0)
        for result in batch.results:
            ours = result.id.startswith(self.prefix)
            if result.duplicate:
                continue
            funding: dict[str, Any] | None = None
            for event in result.events:
                self.events += 1
                kind = type(event)
                if kind is Transfer:
                    assert isinstance(event, Transfer)
                    self._transfer(event)
                    if funding is not None or event.reason is TransferReason.FUNDING:
                        funding = self._funding_transfer(funding, event)
                elif kind is MarketEvent:
                    assert isinstance(event, MarketEvent)
                    inner = event.event
                    if type(inner) is Trade:
                        self.trades += 1
                    elif ours and type(inner) is Rejected:
                        assert isinstance(inner, Rejected)
                        self._rejected(f"order.{inner.reason}", result.id, inner.message)
                elif kind is PositionUpdate:
                    assert isinstance(event, PositionUpdate)
                    if event.symbol == self.spec.symbol:
                        self._position(event)
                elif kind is MarkChanged:
                    assert isinstance(event, MarkChanged)
                    if event.symbol == self.spec.symbol:
                        has_mark = True
                        self.engine_marks += 1
                elif kind is Liquidation:
                    assert isinstance(event, Liquidation)
                    self._liquidation(event, time)
                elif kind is Deleveraged:
                    assert isinstance(event, Deleveraged)
                    self.adl.append(
                        (time, event.account, event.counterparty, event.qty, event.price)
                    )
                elif kind is FundingSettled:
                    assert isinstance(event, FundingSettled)
                    self._funding_settled(event, funding or {"paid": 0, "received": 0})
                    funding = None
                elif ours and kind is CommandRejected:
                    assert isinstance(event, CommandRejected)
                    self._rejected(f"command.{event.reason}", result.id, event.message)
        if batch.results:
            self.answered.add(batch.results[0].id)
        self.record_times[batch.offset] = (timestamp, time, has_mark)
        fund = self.balances.get(INSURANCE, 0)
        if fund != fund_before or not self.insurance_path:
            self.insurance_path.append((time, fund))
        interest = self.open_interest
        if not self.open_interest_path or self.open_interest_path[-1][1] != interest:
            self.open_interest_path.append((time, interest))
        if self.baseline is not None:
            low = self.insurance_low
            self.insurance_low = fund if low is None else min(low, fund)
            lowest = self.open_interest_low
            self.open_interest_low = interest if lowest is None else min(lowest, interest)

    def _position(self, event: PositionUpdate) -> None:
        before = self.sizes.get(event.account, 0)
        self.sizes[event.account] = event.size
        self.open_interest += max(event.size, 0) - max(before, 0)

    def _transfer(self, event: Transfer) -> None:
        balances = self.balances
        balances[event.source] = balances.get(event.source, 0) - event.amount
        balances[event.target] = balances.get(event.target, 0) + event.amount
        if self.baseline is None:
            return
        if event.source == EXTERNAL:
            self.deposits_after_baseline += event.amount
        elif event.target == EXTERNAL:
            self.withdrawals_after_baseline += event.amount
        if event.target == INSURANCE:
            self.insurance_after_baseline[event.reason.value] += event.amount
        elif event.source == INSURANCE:
            self.insurance_after_baseline[event.reason.value] -= event.amount

    def _funding_transfer(self, funding: dict[str, Any] | None, event: Transfer) -> dict[str, Any]:
        """Funding payments come before their ``FundingSettled``: sum them until it comes."""
        out = funding if funding is not None else {"paid": 0, "received": 0}
        if event.reason is TransferReason.FUNDING:
            if event.target.startswith("funding:"):
                out["paid"] += event.amount
            elif event.source.startswith("funding:"):
                out["received"] += event.amount
        return out

    def _funding_settled(self, event: FundingSettled, paid: dict[str, Any]) -> None:
        spec = self.spec
        if self.baseline is not None:
            self.funding_remainders_after_baseline += event.remainder
        self.funding.append(
            {
                "symbol": event.symbol,
                "funding_time": iso(event.funding_time),
                "rate": event.rate,
                "rate_pct": f"{event.rate / 1_000_000:.6f}",
                "mark": spec.ticks_to_str(event.mark),
                "positions": event.positions,
                "paid": paid["paid"],
                "received": paid["received"],
                "remainder": event.remainder,
            }
        )

    def _liquidation(self, event: Liquidation, time: int) -> None:
        closed = event.filled + event.deleveraged
        self.liquidations.append(
            {
                "time": time,
                "account": event.account,
                "symbol": event.symbol,
                "mode": event.mode.value,
                "step": event.step.value,
                "size": event.size,
                "filled": event.filled,
                "deleveraged": event.deleveraged,
                "notional": closed * event.bankruptcy_price * self.spec.multiplier,
                "mark": event.mark,
                "bankruptcy_price": event.bankruptcy_price,
                "fee": event.fee,
                "insurance": event.insurance,
                "uncovered": event.uncovered,
            }
        )

    def _rejected(self, reason: str, command_id: str, message: str) -> None:
        self.rejections[reason] += 1
        if len(self.rejection_examples) < 10:
            self.rejection_examples.append(f"{command_id}: {reason}: {message}")

    # --------------------------------------------------------------------------- queries

    def take_baseline(self) -> None:
        """The balances now are the "before" of the conservation check (after the setup)."""
        self.baseline = dict(self.balances)
        self.baseline_time = self.last_time
        self.insurance_low = self.balances.get(INSURANCE, 0)
        self.open_interest_baseline = self.open_interest
        self.open_interest_low = self.open_interest
        self.open_interest_path = [(self.last_time, self.open_interest)]  # from the path's start

    def totals(self, balances: dict[str, int]) -> dict[str, int]:
        """Balances summed by kind of address, every kind present."""
        out = dict.fromkeys(
            ("wallets", "insurance", "fees", "clearing", "funding_pools", "other", "external"), 0
        )
        for address, amount in balances.items():
            out[category(address)] += amount
        return out

    def liquidation_latencies(self) -> dict[str, list[float]]:
        """Crossing → command times in ms (module docstring), for mark crossings and for every
        trigger; the triggers whose record or command the recorder did not see are left out."""
        by_mark: list[float] = []
        every: list[float] = []
        for command_id, sent in self.liquidate_sent.items():
            offset_text = command_id.removeprefix(ID_PREFIX).split("-", 1)[0]
            if not offset_text.isdigit():
                continue
            record = self.record_times.get(int(offset_text))
            if record is None:
                continue
            latency = float(sent - record[0])
            every.append(latency)
            if record[2]:
                by_mark.append(latency)
        return {"mark": by_mark, "all": every}

    def latency_summary(self) -> dict[str, Any]:
        latencies = self.liquidation_latencies()
        return {
            "mark_crossing_to_liquidate_ms": percentiles(latencies["mark"]),
            "any_trigger_to_liquidate_ms": percentiles(latencies["all"]),
            "liquidate_commands": len(self.liquidate_sent),
            "liquidate_resent": self.liquidate_resent,
        }
