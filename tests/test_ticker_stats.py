"""The ticker's 24-hour figures: the rolling window alone (against a brute-force recount), as the
read model and the views show them, and end to end through the ``ticker`` stream."""

import time
from pathlib import Path
from typing import Any

import pytest
from gateway_system import System
from hypothesis import given
from hypothesis import strategies as st
from price_services import send_commands
from test_gateway_read_model import A, B, funded, order

from exchange.engine_commands import Deposit
from exchange.orders import Side, TimeInForce
from services.gateway.ticker_stats import BUCKET_MS, WINDOW_MS, RollingStats, WindowStats

HOUR = 3_600_000
DAY = 24 * HOUR


def test_trades_leave_the_window_with_their_minute_and_never_older_than_a_day() -> None:
    stats = RollingStats()
    assert stats.stats() is None
    stats.add(10 * HOUR + 59_999, price=700, qty=1)  # the day's high, in minute 10:00
    stats.add(11 * HOUR, price=500, qty=2)  # the day's low
    stats.add(12 * HOUR + 30_000, price=600, qty=3)
    assert stats.stats() == WindowStats(
        open=700, high=700, low=500, close=600, volume=6, notional=700 + 1_000 + 1_800, count=3
    )
    # the first trade is 23 h 59 min 0.001 s old at 10:00 the next day, and leaves with its minute
    assert not stats.expire(10 * HOUR + DAY - 1)
    assert stats.stats() is not None and stats.stats().high == 700  # type: ignore[union-attr]
    assert stats.expire(10 * HOUR + DAY)
    assert stats.stats() == WindowStats(
        open=500, high=600, low=500, close=600, volume=5, notional=2_800, count=2
    )
    assert not stats.expire(10 * HOUR + DAY + 1)  # nothing more left: no change
    stats.add(11 * HOUR + DAY - 1, price=800, qty=1)  # the low's last millisecond in the window
    assert stats.stats() == WindowStats(
        open=500, high=800, low=500, close=800, volume=6, notional=3_600, count=3
    )
    assert stats.expire(11 * HOUR + DAY)
    assert stats.stats() == WindowStats(
        open=600, high=800, low=600, close=800, volume=4, notional=2_600, count=2
    )
    assert stats.expire(13 * HOUR + 2 * DAY)  # a quiet day: everything gone
    assert stats.stats() is None
    stats.add(13 * HOUR + 2 * DAY, price=900, qty=4)
    assert stats.stats() == WindowStats(
        open=900, high=900, low=900, close=900, volume=4, notional=3_600, count=1
    )


def test_the_window_refuses_a_size_that_is_not_whole_buckets() -> None:
    with pytest.raises(ValueError):
        RollingStats(window_ms=90_000, bucket_ms=60_000)


STEPS = st.lists(
    st.tuples(
        st.integers(0, 1_500),  # time since the previous step, in thousandths of the window
        st.integers(1, 1_000),  # price
        st.integers(1, 50),  # quantity
        st.booleans(),  # a trade, or only time passing
    ),
    max_size=60,
)


@given(steps=STEPS, window_minutes=st.integers(1, 60 * 24))
def test_the_window_equals_a_recount_of_its_trades(
    steps: list[tuple[int, int, int, bool]], window_minutes: int
) -> None:
    """At every step the figures are exactly those of the trades whose minute is one of the
    window's, counted afresh; the window's length varies so that trades leave it often."""
    window = window_minutes * BUCKET_MS
    stats = RollingStats(window_ms=window)
    trades: list[tuple[int, int, int]] = []
    now = 5 * DAY
    for gap, price, qty, trade in steps:
        now += window * gap // 1_000
        if trade:
            stats.add(now, price, qty)
            trades.append((now, price, qty))
        else:
            stats.expire(now)
        kept = [t for t in trades if t[0] // BUCKET_MS > now // BUCKET_MS - window_minutes]
        assert all(now - t[0] < window for t in kept)
        expected = None
        if kept:
            prices = [p for _, p, _ in kept]
            expected = WindowStats(
                open=prices[0],
                high=max(prices),
                low=min(prices),
                close=prices[-1],
                volume=sum(q for _, _, q in kept),
                notional=sum(p * q for _, p, q in kept),
                count=len(kept),
            )
        assert stats.stats() == expected


def test_the_ticker_shows_the_window_in_decimal_strings() -> None:
    replay = funded()
    ticker = replay.views.ticker(replay.model, "BTCUSDT")
    assert (ticker.open, ticker.high, ticker.low, ticker.price_change) == (None,) * 4
    assert (ticker.volume, ticker.quote_volume, ticker.count) == ("0.000", "0.00000000", 0)
    assert ticker.price_change_percent is None

    for price, qty in ((600_000, 10), (603_000, 2), (599_000, 5)):
        replay(order(account=A, side=Side.SELL, qty=qty, price=price))
        replay(order(account=B, side=Side.BUY, qty=qty, price=price, tif=TimeInForce.IOC))
    ticker = replay.views.ticker(replay.model, "BTCUSDT")
    assert (ticker.open, ticker.high, ticker.low, ticker.last) == (
        "60000.0",
        "60300.0",
        "59900.0",
        "59900.0",
    )
    # 0.010 × 60,000 + 0.002 × 60,300 + 0.005 × 59,900
    assert (ticker.volume, ticker.quote_volume, ticker.count) == ("0.017", "1020.10000000", 3)
    assert (ticker.price_change, ticker.price_change_percent) == ("-100.0", "-0.167")

    replay.time += WINDOW_MS  # any command a day later: the trades leave, the last price stays
    changes = replay(Deposit(account=A, amount=1))
    assert "BTCUSDT" in changes.tickers and "ETHUSDT" not in changes.tickers
    ticker = replay.views.ticker(replay.model, "BTCUSDT")
    assert (ticker.open, ticker.count, ticker.volume, ticker.last) == (None, 0, "0.000", "59900.0")


@pytest.fixture
async def system(kafka_bootstrap: str, tmp_path: Path) -> Any:
    async with System(kafka_bootstrap, tmp_path) as running:
        yield running


async def test_the_ticker_stream_carries_the_24h_figures_and_forgets_a_day_later(
    system: System,
) -> None:
    maker, taker = await system.trader(), await system.trader()
    watcher = await system.connect()
    await watcher.ok("subscribe", channel="ticker.BTCUSDT")
    first = (await watcher.push("ticker.BTCUSDT"))["data"]
    assert (first["open"], first["volume"], first["count"]) == (None, "0.000", 0)

    for price in ("60000", "60300"):
        await maker.ok("place_order", symbol="BTCUSDT", side="sell", qty="0.010", price=price)
        filled = await taker.ok(
            "place_order", symbol="BTCUSDT", side="buy", qty="0.010", price=price, tif="IOC"
        )
        assert filled["status"] == "filled"
    ticker = (await watcher.push_where("ticker.BTCUSDT", count=2))["data"]
    assert {key: ticker[key] for key in ticker if key not in ("time", "symbol")} == {
        "best_bid": None,
        "best_bid_qty": None,
        "best_ask": None,
        "best_ask_qty": None,
        "last": "60300.0",
        "open": "60000.0",
        "high": "60300.0",
        "low": "60000.0",
        "volume": "0.020",
        "quote_volume": "1203.00000000",
        "price_change": "300.0",
        "price_change_percent": "0.500",
        "count": 2,
        "open_interest": "0.020",  # the taker long 0.020, the maker short as much
    }

    # a command record stamped a day later (event time, as a replay's would be): the trades
    # leave the window, and the ticker is pushed without any trade or book change
    later = int(time.time() * 1000) + WINDOW_MS + BUCKET_MS
    late = Deposit(account=maker.account, amount=1)
    await send_commands(system.settings, [("late", late)], later)
    forgotten = (await watcher.push_where("ticker.BTCUSDT", count=0))["data"]
    assert (forgotten["open"], forgotten["volume"], forgotten["last"]) == (None, "0.000", "60300.0")
    assert forgotten["open_interest"] == "0.020"  # positions are no window figure
    assert forgotten["time"] == later
    await maker.close()
    await taker.close()
    await watcher.close()
