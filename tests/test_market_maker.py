"""The market maker: following its account from events, then against the real broker with a real
engine in process (quotes, requotes, a trade with another account, a restart).

Why against a real engine: the maker's contract is what ends up in the engine's book (post-only
ladders around the index, never an order the engine refuses) and that it keeps working across
its own restart, which only the command and event topics between them can show.
"""

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from topics import fresh_settings

from exchange.commands import PlaceOrder
from exchange.default_markets import BTCUSDT, DEFAULT_MARKETS, USDT
from exchange.engine_commands import Deposit, EngineCommand, OrderCommand
from exchange.engine_events import MarketEvent, PositionUpdate, Transfer, TransferReason
from exchange.events import (
    Cancelled,
    CancelReason,
    Expired,
    ExpireReason,
    Rejected,
    RejectReason,
    Trade,
)
from exchange.orders import Side, TimeInForce
from services.engine_service import EngineService
from services.maker_book import MakerBook, MakerOrder
from services.market_maker import MarketMaker, run_market_maker
from services.prices import PRICE_ENCODER, IndexTick
from services.quotes import LadderParams, Quote, ladder
from services.settings import Settings
from services.wire import (
    COMMAND_DECODER,
    ENCODER,
    EVENT_DECODER,
    CommandBatch,
    CommandEnvelope,
    CommandResult,
    EventBatch,
)

MAKER = 1_000_000
TAKER = 7
BUY, SELL = Side.BUY, Side.SELL

# ------------------------------------------------------------------------ without a broker


def trade(order_id: int, qty: int, maker: int = MAKER) -> MarketEvent:
    fill = Trade(1, 600_300, qty, BUY, 99, TAKER, order_id, maker, 0, 0)
    return MarketEvent("BTCUSDT", fill)


def test_the_book_follows_its_orders_through_fills_rejections_and_cancels() -> None:
    book = MakerBook(MAKER)
    for order_id in (1, 2, 3, 4):
        book.sent(order_id, MakerOrder("BTCUSDT", SELL, 600_300, 20))
    assert book.follow(trade(1, 5)) == trade(1, 5).event
    assert book.orders[1].open == 15
    book.follow(trade(1, 15))
    assert 1 not in book.orders
    rejected = Rejected(2, MAKER, RejectReason.POST_ONLY_WOULD_TAKE, "would take")
    assert book.follow(MarketEvent("BTCUSDT", rejected)) == rejected
    assert (
        book.follow(MarketEvent("BTCUSDT", Cancelled(3, MAKER, 20, CancelReason.CANCEL_ALL)))
        is None
    )
    book.follow(MarketEvent("BTCUSDT", Expired(4, MAKER, 20, ExpireReason.STP)))
    assert book.orders == {}


def test_other_accounts_events_change_nothing() -> None:
    book = MakerBook(MAKER)
    book.sent(1, MakerOrder("BTCUSDT", SELL, 600_300, 20))
    assert book.follow(trade(1, 5, maker=TAKER)) is None
    other = Rejected(1, TAKER, RejectReason.DUPLICATE_ORDER_ID, "order id is live")
    assert book.follow(MarketEvent("BTCUSDT", other)) is None
    book.follow(MarketEvent("BTCUSDT", Cancelled(1, TAKER, 20, CancelReason.USER)))
    book.follow(PositionUpdate(TAKER, "BTCUSDT", 5, 0, 0, 0))
    assert book.orders[1].open == 20 and book.positions == {}


def test_the_book_follows_wallet_and_positions() -> None:
    book = MakerBook(MAKER)
    book.follow(Transfer("external", f"u:{MAKER}", 1_000 * USDT, TransferReason.DEPOSIT))
    book.follow(Transfer(f"u:{MAKER}", "fees", 3 * USDT, TransferReason.FEE))
    book.follow(Transfer(f"u:{TAKER}", "fees", 3 * USDT, TransferReason.FEE))
    book.follow(PositionUpdate(MAKER, "BTCUSDT", -10, 0, 0, 0))
    book.follow(PositionUpdate(MAKER, "BTCUSDT", -25, 0, 0, 0))
    assert book.wallet == 997 * USDT
    assert book.position("BTCUSDT") == -25 and book.position("ETHUSDT") == 0


def test_a_duplicate_result_is_not_followed_twice() -> None:
    """A command sent twice is answered the second time with its first events, marked
    ``duplicate``: a funding settlement sent twice (the funding service after a restart) must
    not pay the maker's wallet twice."""
    maker = MarketMaker(Settings(), DEFAULT_MARKETS)
    paid = Transfer("funding:BTCUSDT", f"u:{MAKER}", 5 * USDT, TransferReason.FUNDING)
    for offset, duplicate in enumerate((False, True)):
        result = CommandResult("funding-BTCUSDT-1", [paid], duplicate=duplicate)
        maker._on_events(ENCODER.encode(EventBatch(offset, [result])), report=False)
    assert maker.book.wallet == 5 * USDT


# --------------------------------------------------------------------- against the broker

PARAMS = LadderParams(levels=2, spread_bps=10, step_bps=5, level_qty=20, max_position=40)


@pytest.fixture
async def settings(kafka_bootstrap: str) -> Settings:
    """Topics of this test; the engine's two with one partition, the one it reads and writes."""
    return await fresh_settings(
        kafka_bootstrap,
        maker_deposit=50_000 * USDT,
        maker_levels=PARAMS.levels,
        maker_spread_bps=PARAMS.spread_bps,
        maker_step_bps=PARAMS.step_bps,
        maker_level_qty=PARAMS.level_qty,
        maker_max_position=PARAMS.max_position,
        maker_requote_bps=5,
        maker_min_requote_ms=100,
    )


class Running:
    """A service task and its stop event."""

    def __init__(self, task: "asyncio.Task[None]", stop: asyncio.Event) -> None:
        self.task, self.stop = task, stop

    async def finish(self) -> None:
        self.stop.set()
        await asyncio.wait_for(self.task, 20)


async def start_engine(settings: Settings, path: Path) -> tuple[EngineService, Running]:
    engine = EngineService(
        bootstrap=settings.bootstrap_servers,
        commands_topic=settings.commands_topic,
        events_topic=settings.events_topic,
        snapshot_path=path / "engine.snap",
        specs=DEFAULT_MARKETS,
        faucet_cap=settings.faucet_cap,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(engine.run(stop))
    await asyncio.wait_for(engine.ready.wait(), 20)
    return engine, Running(task, stop)


def start_maker(settings: Settings) -> Running:
    stop = asyncio.Event()
    return Running(asyncio.create_task(run_market_maker(settings, stop)), stop)


async def publish_index(settings: Settings, *prices: int) -> None:
    producer = AIOKafkaProducer(**settings.producer_config())
    await producer.start()
    try:
        for price in prices:
            tick = IndexTick(symbol="BTCUSDT", source="test", price=price, time=1)
            await producer.send_and_wait(
                settings.prices_topic, PRICE_ENCODER.encode(tick), key=b"BTCUSDT"
            )
    finally:
        await producer.stop()


async def send_commands(settings: Settings, commands: list[tuple[str, EngineCommand]]) -> None:
    producer = AIOKafkaProducer(**settings.producer_config())
    await producer.start()
    try:
        batch = CommandBatch([CommandEnvelope(i, c) for i, c in commands], time=1)
        await producer.send_and_wait(settings.commands_topic, ENCODER.encode(batch), partition=0)
    finally:
        await producer.stop()


async def read_events(
    settings: Settings, until: Callable[[list[EventBatch]], bool]
) -> list[EventBatch]:
    """The event log from its start, read until ``until`` holds for what was read (bounded)."""
    consumer = AIOKafkaConsumer(**settings.consumer_config())
    await consumer.start()
    partition = TopicPartition(settings.events_topic, 0)
    consumer.assign([partition])
    out: list[EventBatch] = []

    async def read() -> None:
        while not until(out):
            got = await consumer.getmany(partition, timeout_ms=100)
            out.extend(EVENT_DECODER.decode(r.value or b"") for r in got.get(partition, []))

    try:
        await asyncio.wait_for(read(), 20)
    finally:
        await consumer.stop()
    return out


async def maker_placements(settings: Settings) -> list[PlaceOrder]:
    """Every order the maker has placed so far, read from the command log to its end."""
    consumer = AIOKafkaConsumer(**settings.consumer_config())
    await consumer.start()
    partition = TopicPartition(settings.commands_topic, 0)
    consumer.assign([partition])
    out: list[PlaceOrder] = []

    async def read() -> None:
        while True:
            got = await consumer.getmany(partition, timeout_ms=100)
            for record in got.get(partition, []):
                for envelope in COMMAND_DECODER.decode(record.value or b"").commands:
                    command = envelope.command
                    if isinstance(command, OrderCommand) and isinstance(command.order, PlaceOrder):
                        out.append(command.order)
            end = consumer.highwater(partition)
            if not got and end is not None and await consumer.position(partition) >= end:
                return

    try:
        await asyncio.wait_for(read(), 20)
    finally:
        await consumer.stop()
    return [order for order in out if order.account == MAKER]


def maker_quotes(engine: EngineService) -> list[Quote]:
    """The maker's resting orders in the engine's BTCUSDT book, checked to be post-only."""
    book = engine.log.engine.markets["BTCUSDT"].book
    quotes = []
    for side in (book.bids, book.asks):
        for level in side.levels.values():
            for order in level.orders.values():
                if order.account == MAKER:
                    assert order.cmd.tif is TimeInForce.GTX
                    quotes.append(Quote(order.side, order.price, order.open))
    return sorted(quotes)


async def book_becomes(engine: EngineService, expected: list[Quote]) -> None:
    async def poll() -> None:
        while maker_quotes(engine) != sorted(expected):
            await asyncio.sleep(0.05)

    try:
        await asyncio.wait_for(poll(), 20)
    except TimeoutError:
        pytest.fail(f"the maker's book is {maker_quotes(engine)}, expected {sorted(expected)}")


async def test_the_maker_quotes_requotes_and_trades(settings: Settings, tmp_path: Path) -> None:
    engine, engine_run = await start_engine(settings, tmp_path)
    await publish_index(settings, 590_000, 600_000)  # before the maker starts: it finds the latest
    maker = start_maker(settings)
    try:
        # 60,000.0 ± 5 bp, then 5 bp further; 20 lots each, as the room of 40 lots allows
        await book_becomes(engine, ladder(600_000, 0, PARAMS, BTCUSDT))
        assert maker_quotes(engine) == [
            Quote(BUY, 599_400, 20),
            Quote(BUY, 599_700, 20),
            Quote(SELL, 600_300, 20),
            Quote(SELL, 600_600, 20),
        ]
        # one ladder so far, around the latest index the maker found at start, post-only
        placed = await maker_placements(settings)
        assert sorted(Quote(o.side, o.price, o.qty) for o in placed) == maker_quotes(engine)
        assert {o.tif for o in placed} == {TimeInForce.GTX}
        assert [o.order_id for o in placed] == [MAKER << 32 | n for n in (1, 2, 3, 4)]

        await publish_index(settings, 606_000)  # +1 %: a requote
        await book_becomes(engine, ladder(606_000, 0, PARAMS, BTCUSDT))

        # another account buys 10 lots from the best ask
        place = PlaceOrder(
            order_id=1, account=TAKER, side=BUY, qty=10, price=610_000, tif=TimeInForce.IOC
        )
        await send_commands(
            settings,
            [
                ("taker-deposit", Deposit(account=TAKER, amount=10_000 * USDT)),
                ("taker-buy", OrderCommand(symbol="BTCUSDT", order=place)),
            ],
        )
        events = await read_events(
            settings, lambda out: any(r.id == "taker-buy" for b in out for r in b.results)
        )
        result = next(r for b in events for r in b.results if r.id == "taker-buy")
        fills = [
            e.event
            for e in result.events
            if isinstance(e, MarketEvent) and isinstance(e.event, Trade)
        ]
        assert [(f.maker_account, f.price, f.qty) for f in fills] == [(MAKER, 606_303, 10)]

        # short 10 lots: the asks may add only 30 more, the bids 50; the ladder follows
        await book_becomes(engine, ladder(606_000, -10, PARAMS, BTCUSDT))
        assert [q.qty for q in maker_quotes(engine) if q.side is SELL] == [20, 10]
    finally:
        await maker.finish()
    await book_becomes(engine, [])  # a clean stop cancels the quotes
    await engine_run.finish()


async def test_a_restarted_maker_replaces_its_quotes_and_keeps_its_wallet(
    settings: Settings, tmp_path: Path
) -> None:
    engine, engine_run = await start_engine(settings, tmp_path)
    await publish_index(settings, 600_000)
    first = start_maker(settings)
    await book_becomes(engine, ladder(600_000, 0, PARAMS, BTCUSDT))
    first.task.cancel()  # a crash: its quotes stay in the book
    with pytest.raises(asyncio.CancelledError):
        await first.task
    assert maker_quotes(engine) == sorted(ladder(600_000, 0, PARAMS, BTCUSDT))

    # the second run numbers its orders from 1 again: the ids of the first run's live quotes
    second = start_maker(settings)
    await publish_index(settings, 603_000)
    try:
        await book_becomes(engine, ladder(603_000, 0, PARAMS, BTCUSDT))
    finally:
        await second.finish()
    await book_becomes(engine, [])
    await engine_run.finish()

    events = await read_events(
        settings, lambda out: bool(out) and out[-1].offset >= engine.log.offset
    )
    maker_events = [
        e.event for b in events for r in b.results for e in r.events if isinstance(e, MarketEvent)
    ]
    assert not [e for e in maker_events if isinstance(e, Rejected)]  # no duplicate order id
    deposits = [
        e
        for b in events
        for r in b.results
        for e in r.events
        if isinstance(e, Transfer) and e.reason is TransferReason.DEPOSIT
    ]
    assert [d.amount for d in deposits] == [50_000 * USDT]  # the second run saw the first's
    assert engine.log.engine.ledger.balance(f"u:{MAKER}") == 50_000 * USDT
