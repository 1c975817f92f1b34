"""``exchange oracle``: index and mark prices from the index ticks and the engine's book, on
event time, published on the price topic and sent to the engine as ``MarkPrice`` commands.

Inputs, both read from their beginning (``LogReader``): the price topic (the feeds' index ticks;
its own ``MarkTick`` messages, which say what it has already published; the funding service's
estimates, shown with the mark) and the engine's event log (``BookDelta`` and ``Trade`` for the
book and last price, ``FundingSettled`` for Price1's rate). ``OracleMarket`` does the arithmetic.

Outputs, for every point closed (``OracleMarket``), once caught up: an ``IndexPrice`` and a
``MarkTick`` keyed by symbol, and, when the mark differs from the last one published, a
``MarkPrice`` command. Commands go first, then the price messages, so a crash between them
leaves the point unpublished: the restarted oracle publishes it and sends its command again,
under the same id (``oracle-mark-<symbol>-<time>``), which the engine then answers as a
duplicate. A point it had published it never publishes again: on start it reads its own
``MarkTick`` messages and publishes only later points. Source state changes and the index
freezing or coming back are logged for the points published.
"""

import asyncio
from collections.abc import Sequence
from typing import Any

import msgspec
import structlog
from aiokafka import AIOKafkaProducer

from exchange.engine_commands import MarkPrice
from exchange.engine_events import FundingSettled, MarketEvent
from exchange.events import BookDelta, Trade
from exchange.mark_price import MarkConfig
from exchange.market import MarketSpec
from services.broker import create_topics
from services.engine_main import load_markets
from services.log_reader import follow
from services.oracle_market import OracleMarket, OraclePoint
from services.prices import PRICE_DECODER, PRICE_ENCODER, FundingRate, IndexTick, MarkTick
from services.settings import Settings
from services.wire import ENCODER, CommandBatch, CommandEnvelope, EventBatch

log = structlog.get_logger("oracle")

"""Longest a poll waits for records before the oracle publishes what it has."""
_COMMANDS_PER_RECORD = 1_000
"""``MarkPrice`` commands per command record: a backlog stays well under a record's 1 MB."""


async def run_oracle(settings: Settings, stop: asyncio.Event) -> None:
    """Run the oracle for the engine's markets (``Settings.markets_file``) until ``stop``."""
    specs = load_markets(settings.markets_file)
    settings.check_markets(spec.symbol for spec in specs)
    await create_topics(settings.bootstrap_servers, settings)
    await Oracle(settings, specs).run(stop)


def mark_command_id(symbol: str, time: int) -> str:
    """The id of the ``MarkPrice`` of ``symbol``'s point at ``time``: the same in every run,
    so the engine applies a point's mark once however often it is sent."""
    return f"oracle-mark-{symbol}-{time}"


class Oracle:
    """The service: logs in, points out (module docstring)."""

    def __init__(self, settings: Settings, specs: Sequence[MarketSpec]) -> None:
        self.settings = settings
        self.markets: dict[str, OracleMarket] = {}
        for spec in specs:
            config = settings.index_config(spec.symbol)
            if config is not None:
                self.markets[spec.symbol] = OracleMarket(
                    spec,
                    config,
                    settings.funding_schedule_of(spec.symbol),
                    MarkConfig(window=settings.oracle_basis_window),
                    settings.oracle_publish_ms,
                )
        self._pending: dict[str, list[OraclePoint]] = {symbol: [] for symbol in self.markets}
        """Points closed and not yet published, per market. A point is closed when a tick is
        read and published (its ``MarkTick`` written) after it, in the same partition: so on
        reading its own ``MarkTick`` the oracle drops that point and the ones before it, and
        what is left once it has caught up is exactly what its previous run never published."""
        self._published: dict[str, int] = {}
        """The time of the last point on the topic, per market (this run's or a previous one's)."""
        self._mark: dict[str, int | None] = {}
        """The mark of that point: a new point sends a command only if its mark differs."""
        self._ignored: set[tuple[str, str]] = set()

    async def run(self, stop: asyncio.Event) -> None:
        log.info(
            "oracle_started",
            markets={symbol: market.sources for symbol, market in self.markets.items()},
            publish_ms=self.settings.oracle_publish_ms,
        )
        await follow(self.settings, stop, self, "oracle")

    def caught_up(self) -> None:
        """Nothing to switch: what is pending once caught up is what to publish."""

    def progress(self) -> dict[str, Any]:
        return {"published": self._published}

    # ----------------------------------------------------------------------------- inputs

    def on_event_batch(self, batch: EventBatch) -> None:
        for result in batch.results:
            if result.duplicate:  # the first result's events again: nothing happened twice
                continue
            for event in result.events:
                if isinstance(event, MarketEvent):
                    market = self.markets.get(event.symbol)
                    if market is None:
                        continue
                    inner = event.event
                    if isinstance(inner, BookDelta) and not market.book.apply(inner):
                        log.warning(
                            "book_delta_gap", symbol=event.symbol, update_id=inner.update_id
                        )
                    elif isinstance(inner, Trade):
                        market.trade(inner.price)
                elif isinstance(event, FundingSettled) and event.symbol in self.markets:
                    self.markets[event.symbol].funding_rate = event.rate

    def on_price_record(self, value: bytes) -> None:
        try:
            message = PRICE_DECODER.decode(value)
        except (msgspec.DecodeError, msgspec.ValidationError) as error:
            log.warning("bad_price_record", error=str(error))
            return
        market = self.markets.get(message.symbol)
        if market is None:
            return
        if isinstance(message, IndexTick):
            self._on_tick(market, message)
        elif isinstance(message, MarkTick):  # its own: that point is published
            published = self._published.get(message.symbol)
            if published is None or message.time > published:
                self._published[message.symbol] = message.time
                self._mark[message.symbol] = message.mark
            pending = self._pending[message.symbol]
            pending[:] = [point for point in pending if point.mark.time > message.time]
        elif isinstance(message, FundingRate) and not message.final:
            market.predicted_rate = message.rate

    def _on_tick(self, market: OracleMarket, tick: IndexTick) -> None:
        try:
            points = market.tick(tick.source, tick.price, tick.time)
        except ValueError as error:
            if (tick.symbol, tick.source) not in self._ignored:
                self._ignored.add((tick.symbol, tick.source))
                log.warning("index_tick_ignored", symbol=tick.symbol, error=str(error))
            return
        self._pending[tick.symbol] += points

    # ---------------------------------------------------------------------------- outputs

    async def emit(self, producer: AIOKafkaProducer) -> None:
        """Send the commands of every point not yet published, then publish the points."""
        settings = self.settings
        commands: list[CommandEnvelope] = []
        messages: list[tuple[bytes, bytes]] = []
        latest = 0
        for symbol, pending in self._pending.items():
            if not pending:
                continue
            points = list(pending)
            pending.clear()
            mark = self._mark.get(symbol)
            for point in points:
                self._report(point)
                tick = point.mark
                if tick.mark is not None and tick.mark != mark:
                    mark = tick.mark
                    command = MarkPrice(symbol=symbol, price=mark)
                    commands.append(CommandEnvelope(mark_command_id(symbol, tick.time), command))
                key = symbol.encode()
                messages.append((key, PRICE_ENCODER.encode(point.index)))
                messages.append((key, PRICE_ENCODER.encode(tick)))
                latest = max(latest, tick.time)
            self._published[symbol], self._mark[symbol] = points[-1].mark.time, mark
        for start in range(0, len(commands), _COMMANDS_PER_RECORD):
            batch = CommandBatch(commands[start : start + _COMMANDS_PER_RECORD], time=latest)
            await producer.send_and_wait(
                settings.commands_topic, ENCODER.encode(batch), partition=0
            )
        sent = [
            await producer.send(settings.prices_topic, value, key=key) for key, value in messages
        ]
        await asyncio.gather(*sent)

    def _report(self, point: OraclePoint) -> None:
        index = point.index
        for change in point.changes:
            log.info(
                "index_source_changed",
                symbol=index.symbol,
                source=change.source,
                before=change.before,
                after=change.after,
                time=index.time,
            )
        if point.froze is not None:
            event = "index_frozen" if point.froze else "index_live_again"
            log.warning(event, symbol=index.symbol, index=index.price, time=index.time)
