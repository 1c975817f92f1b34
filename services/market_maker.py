"""``exchange market-maker``: a bot that quotes both sides around the index, so that a user of
the paper exchange has someone to trade with.

It funds its own account (``Settings.maker_account``, reserved for it) from the faucet, sets
its leverage, and quotes post-only (GTX) ladders (``services.quotes``) around the latest index
tick of each market, sized by its inventory. A requote is one command record: ``CancelAll``,
then the new ladder, so the engine applies it as one step and the book never holds two
ladders. It requotes when the index moves ``maker_requote_bps`` from the one it quoted around or
its position changes, at most once per ``maker_min_requote_ms``.

Ids. Command ids are ``mm-<uuid4 of this process>-<n>-<kind>``: unique across restarts, so the
engine's deduplication never mistakes a new command for an old one, and the maker recognises
the results of its own commands. Order ids are ``account << 32 | n``: the high bits are the
maker's account, a range no other account's ids need (the gateway is to reserve each account
its own range), and ``n`` counts from 1 in each process. That never repeats a live id because
the first record of a process cancels every order of the account, and every later placement
comes after it in the command log; every requote cancels the previous ladder too, so even
``n`` wrapping after 2**32 orders meets no live id. A placement that meets someone else's live
id anyway is rejected (``duplicate_order_id``), reported, and not retried under that id.
"""

import asyncio
import time
import uuid
from collections.abc import Sequence

import msgspec
import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from exchange.commands import CancelAll, PlaceOrder
from exchange.engine_commands import Deposit, EngineCommand, OrderCommand, SetLeverage
from exchange.engine_events import CommandRejected, MarketEvent
from exchange.events import Trade
from exchange.market import MarketSpec
from exchange.orders import TimeInForce
from services.broker import create_topics
from services.engine_main import load_markets
from services.maker_book import MakerBook, MakerOrder
from services.prices import PRICE_DECODER, IndexTick
from services.quotes import LadderParams, ladder, moved
from services.settings import Settings
from services.wire import ENCODER, CommandBatch, CommandEnvelope, EventBatch, EventJoiner

log = structlog.get_logger("market_maker")

_POLL_MS = 50
"""Longest the loop waits for a price before it looks at events and requotes again."""
_PRICE_LOOKBACK = 1_000
"""Records read back from the end of each price partition at start, to find each market's
latest index without reading the whole topic (a symbol's ticks share one partition)."""
_STATUS_EVERY_S = 10.0
"""How often the maker logs where it stands."""
_SEQUENCE_BITS = 32


async def run_market_maker(settings: Settings, stop: asyncio.Event) -> None:
    """Quote in the engine's markets (``Settings.markets_file``) until ``stop`` is set; then
    cancel every order of the maker and close."""
    specs = load_markets(settings.markets_file)
    await create_topics(settings.bootstrap_servers, settings)
    await MarketMaker(settings, specs).run(stop)


class MarketMaker:
    """The maker's loop: prices and events in, one command record per requote out."""

    def __init__(self, settings: Settings, specs: Sequence[MarketSpec]) -> None:
        self._events = EventJoiner()
        """Joins the parts of a split event record."""
        self.settings = settings
        self.specs = {spec.symbol: spec for spec in specs}
        self.account = settings.maker_account
        self.params = LadderParams(
            levels=settings.maker_levels,
            spread_bps=settings.maker_spread_bps,
            step_bps=settings.maker_step_bps,
            level_qty=settings.maker_level_qty,
            max_position=settings.maker_max_position,
        )
        self.book = MakerBook(self.account)
        self.index: dict[str, int] = {}
        """The latest index tick of each market, in ticks."""
        self._quoted: dict[str, tuple[int, int]] = {}
        """Per market, the index and position the live ladder was computed for."""
        self._last_quote = float("-inf")
        self._prefix = f"mm-{uuid.uuid4().hex}-"
        self._commands = 0
        self._sequence = 0
        self._orders_sent = 0
        self._fills = 0

    async def run(self, stop: asyncio.Event) -> None:
        settings = self.settings
        producer = AIOKafkaProducer(**settings.producer_config())
        events = AIOKafkaConsumer(**settings.consumer_config())
        prices = AIOKafkaConsumer(**settings.consumer_config())
        await producer.start()
        try:
            await events.start()
            await prices.start()
            await self._read_event_log(events)
            await self._read_latest_prices(prices)
            await self._send(producer, self._setup())
            log.info(
                "market_maker_started",
                account=self.account,
                command_id_prefix=self._prefix,
                wallet=self.book.wallet,
                positions=self.book.positions,
            )
            loop = asyncio.get_running_loop()
            next_status = loop.time() + _STATUS_EVERY_S
            while not stop.is_set():
                for records in (await prices.getmany(timeout_ms=_POLL_MS)).values():
                    self._on_prices([record.value for record in records])
                for records in (await events.getmany(timeout_ms=0)).values():
                    for record in records:
                        self._on_events(record.value, report=True)
                now = loop.time()
                requote = self._requote(now)
                if requote:
                    await self._send(producer, requote)
                if now >= next_status:
                    self._log_status("market_maker_status")
                    next_status = now + _STATUS_EVERY_S
            await self._send(producer, [self._cancel_all(symbol) for symbol in self.specs])
            self._log_status("market_maker_stopped")
        finally:
            await prices.stop()
            await events.stop()
            await producer.stop()

    def _log_status(self, event: str) -> None:
        book = self.book
        log.info(
            event,
            index=self.index,
            positions=book.positions,
            wallet=book.wallet,
            open_orders=len(book.orders),
            fills=self._fills,
            orders_sent=self._orders_sent,
        )

    # ------------------------------------------------------------------------------ start

    async def _read_event_log(self, consumer: AIOKafkaConsumer) -> None:
        """Follow the event log from its beginning to its end: the maker's wallet and positions
        before it sends anything. Reading to the end (bounded by ``highwater``) rather than
        asking for the end offset: the embedded broker's ``end_offsets`` is wrong."""
        partition = TopicPartition(self.settings.events_topic, 0)
        consumer.assign([partition])
        await consumer.seek_to_beginning(partition)
        while True:
            batches = await consumer.getmany(partition, timeout_ms=200, max_records=10_000)
            records = batches.get(partition, [])
            for record in records:
                self._on_events(record.value, report=False)
            highwater = consumer.highwater(partition)
            if (
                not records
                and highwater is not None
                and await consumer.position(partition) >= highwater
            ):
                return

    async def _read_latest_prices(self, consumer: AIOKafkaConsumer) -> None:
        """Assign every price partition and read the last ``_PRICE_LOOKBACK`` records of each,
        so that the first quotes are around the latest index, not an older one on the way.

        The end of a partition is its ``highwater`` after a first fetch (``end_offsets``,
        ``seek_to_end`` and a "latest" reset are wrong on the embedded broker, and a position
        past the end would fetch nothing forever)."""
        settings = self.settings
        topic = settings.prices_topic
        partitions = [TopicPartition(topic, p) for p in range(settings.prices_partitions)]
        consumer.assign(partitions)
        for partition in partitions:
            await consumer.seek_to_beginning(partition)
        deadline = time.monotonic() + settings.request_timeout_ms / 1000
        while any(consumer.highwater(partition) is None for partition in partitions):
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"no fetch of {topic!r} answered in {settings.request_timeout_ms} ms"
                )
            await consumer.getmany(*partitions, timeout_ms=_POLL_MS)
        ends = {partition: consumer.highwater(partition) for partition in partitions}
        for partition, end in ends.items():
            consumer.seek(partition, max(0, end - _PRICE_LOOKBACK))
        for partition, end in ends.items():
            while await consumer.position(partition) < end:
                batches = await consumer.getmany(partition, timeout_ms=_POLL_MS)
                self._on_prices([record.value for record in batches.get(partition, [])])

    def _setup(self) -> list[CommandEnvelope]:
        """The first record: cancel whatever a previous run left, set the leverage (after the
        cancel, so that old orders cannot make it fail), and top the wallet up."""
        commands = [self._cancel_all(symbol) for symbol in self.specs]
        for symbol in self.specs:
            leverage = SetLeverage(
                account=self.account, symbol=symbol, leverage=self.settings.maker_leverage
            )
            commands.append(self._envelope("leverage", leverage))
        top_up = min(self.settings.maker_deposit, self.settings.faucet_cap) - self.book.wallet
        if top_up > 0:
            commands.append(self._envelope("deposit", Deposit(account=self.account, amount=top_up)))
        return commands

    # ----------------------------------------------------------------------------- inputs

    def _on_prices(self, values: list[bytes | None]) -> None:
        for value in values:
            try:
                tick = PRICE_DECODER.decode(value or b"")
            except (msgspec.DecodeError, msgspec.ValidationError) as error:
                log.warning("bad_price_record", error=str(error))
                continue
            # The feeds' ticks, not the oracle's messages: the maker quotes around the index
            # as soon as a feed runs, with or without an oracle.
            if isinstance(tick, IndexTick) and tick.symbol in self.specs and tick.price > 0:
                self.index[tick.symbol] = tick.price

    def _on_events(self, value: bytes | None, *, report: bool) -> None:
        try:
            batch = self._events.decode(value or b"")
        except (msgspec.DecodeError, msgspec.ValidationError) as error:
            log.warning("bad_event_record", error=str(error))
            return
        if batch is None:  # a part of a split record: the rest is still to come
            return
        self._follow(batch, report=report)

    def _follow(self, batch: EventBatch, *, report: bool) -> None:
        """Apply every event to the maker's book; with ``report``, log its fills, rejected
        orders and the refusals of its own commands (not while reading the past at start)."""
        book = self.book
        for result in batch.results:
            if result.duplicate:  # the first result's events again: nothing happened twice
                continue
            own = result.id.startswith(self._prefix)
            for event in result.events:
                if own and isinstance(event, CommandRejected):
                    log.warning(
                        "command_rejected",
                        command_id=result.id,
                        reason=event.reason,
                        message=event.message,
                    )
                notable = book.follow(event)
                if notable is None or not report:
                    continue
                assert isinstance(event, MarketEvent)
                if isinstance(notable, Trade):
                    self._fills += 1
                    log.info(
                        "fill",
                        symbol=event.symbol,
                        order_id=notable.maker_order_id,
                        price=notable.price,
                        qty=notable.qty,
                        taker_side=notable.taker_side,
                    )
                else:
                    log.warning(
                        "order_rejected",
                        symbol=event.symbol,
                        order_id=notable.order_id,
                        reason=notable.reason,
                        message=notable.message,
                    )

    # ---------------------------------------------------------------------------- quoting

    def _requote(self, now: float) -> list[CommandEnvelope]:
        """The ladders of every market whose index moved or whose position changed since it was
        quoted, if the last requote is ``maker_min_requote_ms`` old; else nothing."""
        if (now - self._last_quote) * 1000 < self.settings.maker_min_requote_ms:
            return []
        threshold = self.settings.maker_requote_bps
        commands: list[CommandEnvelope] = []
        for symbol, index in self.index.items():
            position = self.book.position(symbol)
            quoted = self._quoted.get(symbol)
            if quoted is not None:
                quoted_index, quoted_position = quoted
                if quoted_position == position and not moved(quoted_index, index, threshold):
                    continue
            commands += self._ladder(symbol, index, position)
            self._quoted[symbol] = (index, position)
        if commands:
            self._last_quote = now
        return commands

    def _ladder(self, symbol: str, index: int, position: int) -> list[CommandEnvelope]:
        commands = [self._cancel_all(symbol)]
        quotes = ladder(index, position, self.params, self.specs[symbol])
        for quote in quotes:
            self._sequence = self._sequence % (1 << _SEQUENCE_BITS) + 1
            self._orders_sent += 1
            order_id = self.account << _SEQUENCE_BITS | self._sequence
            self.book.sent(order_id, MakerOrder(symbol, quote.side, quote.price, quote.qty))
            place = PlaceOrder(
                order_id=order_id,
                account=self.account,
                side=quote.side,
                qty=quote.qty,
                price=quote.price,
                tif=TimeInForce.GTX,
            )
            commands.append(self._envelope("quote", OrderCommand(symbol=symbol, order=place)))
        log.debug("requote", symbol=symbol, index=index, position=position, quotes=len(quotes))
        return commands

    # ---------------------------------------------------------------------------- sending

    def _cancel_all(self, symbol: str) -> CommandEnvelope:
        order = CancelAll(account=self.account)
        return self._envelope("cancel_all", OrderCommand(symbol=symbol, order=order))

    def _envelope(self, kind: str, command: EngineCommand) -> CommandEnvelope:
        self._commands += 1
        return CommandEnvelope(f"{self._prefix}{self._commands}-{kind}", command)

    async def _send(self, producer: AIOKafkaProducer, commands: list[CommandEnvelope]) -> None:
        """One record on partition 0, the one the engine reads, stamped with the wall clock."""
        batch = CommandBatch(commands, time=time.time_ns() // 1_000_000)
        await producer.send_and_wait(
            self.settings.commands_topic, ENCODER.encode(batch), partition=0
        )
