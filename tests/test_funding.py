"""The funding service against the real broker, with the oracle and the engine in process: one
settlement per boundary with the premium's sign, exactly once across restarts and double sends,
and a real day of BTCUSDT minute closes replayed on event time.

Why with the engine: "exactly once" is what the engine's ledger shows, and the premium comes
from a book the engine built from real orders.
"""

import csv
import gzip
from datetime import datetime
from decimal import Decimal
from pathlib import Path

from price_services import (
    DAY0,
    Logs,
    Running,
    publish_ticks,
    read_commands,
    send_commands,
    start_engine,
    start_funding,
    start_oracle,
)
from topics import fresh_settings

from exchange.commands import PlaceOrder
from exchange.default_markets import USDT
from exchange.engine_commands import Deposit, OrderCommand, SettleFunding
from exchange.engine_events import (
    CommandError,
    CommandRejected,
    FundingSettled,
    Transfer,
    TransferReason,
)
from exchange.events import Trade
from exchange.orders import Side, TimeInForce
from services.funding import funding_command_id
from services.prices import IndexTick
from services.settings import Settings

DATA = Path(__file__).parent / "data" / "btcusdt-1m-2025-06-01.csv.gz"
LONG, SHORT = 1, 2
MINUTE = 60_000
DRILL = "60000"
"""Funding every minute of event time."""
INDEX = 600_000
"""60,000.0 in BTCUSDT's ticks."""
RATE = 937
"""Bids at 60,300.0 over an index of 60,000.0: P = +0.5 %, so F = P − 0.05 % = 0.45 % per 8 h,
× 1 min / 8 h = 0.0009375 %, 937 in 1e-8 toward zero (the cap, 0.3 %, is far)."""


async def open_positions(settings: Settings, price: int, *, book: bool) -> None:
    """LONG buys 10 lots from SHORT at ``price``. With ``book``, 1 BTC rests at 60,300.0 (bid)
    and what is left of 1 BTC at 60,400.0 (ask): P = +0.5 % over an index of 60,000.0."""
    bid = price if not book else 603_000
    ask = price if not book else 604_000
    orders = [
        PlaceOrder(order_id=1, account=LONG, side=Side.BUY, qty=1_000 if book else 10, price=bid),
        PlaceOrder(order_id=2, account=SHORT, side=Side.SELL, qty=1_000 if book else 10, price=ask),
    ]
    if book:
        take = PlaceOrder(
            order_id=3, account=LONG, side=Side.BUY, qty=10, price=ask, tif=TimeInForce.IOC
        )
        orders.append(take)
    await send_commands(
        settings,
        [
            ("deposit-long", Deposit(account=LONG, amount=20_000 * USDT)),
            ("deposit-short", Deposit(account=SHORT, amount=20_000 * USDT)),
            *[(f"order-{o.order_id}", OrderCommand(symbol="BTCUSDT", order=o)) for o in orders],
        ],
    )


def ticks(start: int, end: int, step: int = 1_000, price: int = INDEX) -> list[IndexTick]:
    """The index every ``step`` ms of event time in ``[start, end]``."""
    return [
        IndexTick(symbol="BTCUSDT", source="binance-capture", price=price, time=t)
        for t in range(start, end + 1, step)
    ]


def settled(logs: Logs) -> list[FundingSettled]:
    return [e for e in logs.events() if isinstance(e, FundingSettled)]


def funding_payments(logs: Logs) -> list[tuple[str, str]]:
    return [
        (e.source, e.target)
        for e in logs.events()
        if isinstance(e, Transfer) and e.reason is TransferReason.FUNDING
    ]


async def test_each_boundary_settles_once_with_the_sign_of_the_premium(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    settings = await fresh_settings(kafka_bootstrap, funding_schedule=DRILL)
    engine, engine_run = await start_engine(settings, tmp_path)
    services = [start_oracle(settings), start_funding(settings)]
    async with Logs(settings) as logs:
        await open_positions(settings, INDEX, book=True)
        await logs.until(lambda: any(isinstance(e, Trade) for e in logs.events()))
        await publish_ticks(settings, ticks(DAY0, DAY0 + 2 * MINUTE + 5_000))
        await logs.until(lambda: len(settled(logs)) == 2)
        await logs.until(lambda: any(r.time == DAY0 + 2 * MINUTE + 5_000 for r in logs.rates()))
        for service in services:
            await service.finish()
    assert [(s.funding_time, s.rate, s.positions) for s in settled(logs)] == [
        (DAY0 + MINUTE, RATE, 2),
        (DAY0 + 2 * MINUTE, RATE, 2),
    ]
    # the rate is positive: the long pays, the short receives, at each boundary
    assert funding_payments(logs) == [("u:1", "funding:BTCUSDT"), ("funding:BTCUSDT", "u:2")] * 2
    finals = [r for r in logs.rates() if r.final]
    assert [(r.funding_time, r.rate, r.samples) for r in finals] == [
        (DAY0 + MINUTE, RATE, 12),  # 0 s … 55 s of the minute: 12 samples of 5 s
        (DAY0 + 2 * MINUTE, RATE, 12),
    ]
    assert {r.average_premium for r in finals} == {500_000}
    predicted = [r for r in logs.rates() if not r.final]
    assert predicted and all(r.rate == RATE for r in predicted if r.samples)
    assert predicted[-1].funding_time == DAY0 + 3 * MINUTE
    assert engine.log.engine.markets["BTCUSDT"].funding_time == DAY0 + 2 * MINUTE
    await engine_run.finish()


async def test_a_restart_across_a_boundary_settles_it_exactly_once(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """The funding service is killed 10 s before a boundary and restarted 10 s after it: the
    restarted one rebuilds the interval's samples from the logs and settles the boundary with
    all twelve; killed again right after and restarted, it does not send it again."""
    settings = await fresh_settings(kafka_bootstrap, funding_schedule=DRILL)
    _, engine_run = await start_engine(settings, tmp_path)
    oracle, funding = start_oracle(settings), start_funding(settings)
    async with Logs(settings) as logs:
        await open_positions(settings, INDEX, book=True)
        await logs.until(lambda: any(isinstance(e, Trade) for e in logs.events()))
        await publish_ticks(settings, ticks(DAY0, DAY0 + 50_000))
        await logs.until(lambda: any(r.time == DAY0 + 50_000 for r in logs.rates()))
        await funding.crash()
        await publish_ticks(settings, ticks(DAY0 + 51_000, DAY0 + MINUTE + 10_000))
        await logs.until(lambda: any(m.time == DAY0 + MINUTE + 10_000 for m in logs.marks()))
        assert settled(logs) == []
        funding = start_funding(settings)
        await logs.until(lambda: len(settled(logs)) == 1)
        await funding.crash()
        funding = start_funding(settings)
        await publish_ticks(settings, ticks(DAY0 + MINUTE + 11_000, DAY0 + 2 * MINUTE))
        await logs.until(lambda: len(settled(logs)) == 2)
        for service in (funding, oracle):
            await service.finish()
    assert [(s.funding_time, s.rate) for s in settled(logs)] == [
        (DAY0 + MINUTE, RATE),
        (DAY0 + 2 * MINUTE, RATE),
    ]
    finals = [(r.funding_time, r.samples) for r in logs.rates() if r.final]
    assert finals == [(DAY0 + MINUTE, 12), (DAY0 + 2 * MINUTE, 12)]
    predicted = [r.time for r in logs.rates() if not r.final]
    assert predicted == sorted(set(predicted))  # no run published an estimate again
    await engine_run.finish()
    sent = [c.id for c in await read_commands(settings) if isinstance(c.command, SettleFunding)]
    assert sent == [
        funding_command_id("BTCUSDT", DAY0 + MINUTE),
        funding_command_id("BTCUSDT", DAY0 + 2 * MINUTE),
    ]


async def test_a_settlement_sent_twice_pays_once(kafka_bootstrap: str, tmp_path: Path) -> None:
    """Two funding services at once send every settlement twice under one id: the engine
    applies the first and answers the second as a duplicate. A third send under another id is
    refused, as the engine settles a boundary once whatever the id."""
    settings = await fresh_settings(kafka_bootstrap, funding_schedule=DRILL)
    _, engine_run = await start_engine(settings, tmp_path)
    services = [start_oracle(settings), start_funding(settings), start_funding(settings)]
    command_id = funding_command_id("BTCUSDT", DAY0 + MINUTE)
    async with Logs(settings) as logs:
        await open_positions(settings, INDEX, book=True)
        await logs.until(lambda: any(isinstance(e, Trade) for e in logs.events()))
        await publish_ticks(settings, ticks(DAY0, DAY0 + MINUTE))
        await logs.until(
            lambda: sum(r.id == command_id for b in logs.batches for r in b.results) == 2
        )
        again = SettleFunding(symbol="BTCUSDT", rate=RATE, funding_time=DAY0 + MINUTE)
        await send_commands(settings, [("by-hand", again)])
        await logs.until(lambda: bool(logs.events("by-hand")))
        for service in services:
            await service.finish()
    results = [r for b in logs.batches for r in b.results if r.id == command_id]
    assert [r.duplicate for r in results] == [False, True]
    assert len(settled(logs)) == 1 and len(funding_payments(logs)) == 2
    (refused,) = logs.events("by-hand")
    assert isinstance(refused, CommandRejected)
    assert refused.reason is CommandError.DUPLICATE_FUNDING
    await engine_run.finish()


def minute_closes() -> list[IndexTick]:
    """The fixture's 1,440 closes as index ticks stamped with their minute."""
    with gzip.open(DATA, "rt", newline="") as handle:
        return [
            IndexTick(
                symbol="BTCUSDT",
                source="binance-capture",
                price=int(Decimal(row["close"]) * 10),
                time=int(datetime.fromisoformat(row["date"]).timestamp() * 1000),
            )
            for row in csv.DictReader(handle)
        ]


async def test_a_real_day_of_minute_closes_settles_funding_three_times(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """BTCUSDT's 1,440 minute closes of 2025-06-01 (00:01 to 00:00 the next day) as index
    ticks through the oracle, the funding service and the engine, on the data's own time: a
    day in seconds, three settlements (08:00, 16:00, 00:00). There is no book, so no premium
    sample: each rate is the interest component alone, +0.01 %, and the long pays."""
    closes = minute_closes()
    assert len(closes) == 1_440 and closes[-1].time == DAY0 + 24 * 3_600_000
    # a minute between ticks: the source must stay live that long to keep the index live
    settings = await fresh_settings(kafka_bootstrap, oracle_stale_after_ms=2 * MINUTE)
    engine, engine_run = await start_engine(settings, tmp_path)
    services: list[Running] = [start_oracle(settings), start_funding(settings)]
    async with Logs(settings) as logs:
        await open_positions(settings, closes[0].price, book=False)
        await logs.until(lambda: any(isinstance(e, Trade) for e in logs.events()))
        await publish_ticks(settings, closes)
        await logs.until(lambda: len(settled(logs)) == 3)
        await logs.until(lambda: logs.marks()[-1].time == closes[-1].time)
        for service in services:
            await service.finish()
    hours = [(s.funding_time - DAY0) // 3_600_000 for s in settled(logs)]
    assert hours == [8, 16, 24]
    assert {(s.rate, s.positions) for s in settled(logs)} == {(10_000, 2)}
    assert funding_payments(logs) == [("u:1", "funding:BTCUSDT"), ("funding:BTCUSDT", "u:2")] * 3
    last = logs.marks()[-1]
    assert last.index == closes[-1].price
    assert engine.log.engine.markets["BTCUSDT"].book.mark == last.mark
    await engine_run.finish()
