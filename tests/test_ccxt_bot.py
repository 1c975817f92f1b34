"""The example bot (``load/ccxt_bot.py``) trading through ccxt against a replayed market: the
real engine, oracle and Binance front on the embedded broker, the capture fixture replayed into
them in windows, and a bot step between windows.

Why in windows rather than side by side: a replay at full speed and a bot on the wall clock
would meet at different points of the recording on each run. Here the recording's book is
rebuilt up to a point, the front is waited for until it shows the engine's book there, and the
bot steps on that market; its resting quotes then meet the next window's recorded trades. The
same data and the same steps give the same orders and fills on every run.
"""

import asyncio
from pathlib import Path
from typing import Any

import ccxt.async_support as ccxt_async
import pytest
from binance_system import BinanceSystem, ccxt_config
from gateway_system import WAIT_S
from price_services import start_oracle
from replay_data import CAPTURE, records

from load.ccxt_bot import BotConfig, CcxtBot
from load.replay.driver import ReplayOptions, run_replay

SYMBOL = "BTC/USDT:USDT"
WINDOWS = 6


def windows() -> list[tuple[int | None, int | None]]:
    """The capture's event time cut into ``WINDOWS`` consecutive inclusive windows."""
    _, items = records(CAPTURE)
    times = sorted(r.time for r in items)  # type: ignore[union-attr]
    first, last = times[0], times[-1]
    cuts = [first + (last - first) * i // WINDOWS for i in range(1, WINDOWS)]
    starts: list[int | None] = [None, *(cut + 1 for cut in cuts)]
    ends: list[int | None] = [*cuts, None]
    return list(zip(starts, ends, strict=True))


async def replay_window(system: BinanceSystem, start: int | None, end: int | None) -> None:
    """One window of the capture into the engine, then a wait until the front's book shows the
    engine's best bid and ask as the replay last read them from the event log."""
    options = ReplayOptions(path=str(CAPTURE), progress=False, start=start, end=end)
    summary = await asyncio.wait_for(run_replay(system.settings, options), WAIT_S)
    # The bot's quote inside the spread takes recorded trades the replay predicted to fill its
    # own book orders: a misprediction it counts and recovers from (docs/replay.md), no other.
    assert set(summary["errors"]["by_kind"]) <= {"taker_mispredicted"}, summary["errors"]
    book = summary["book"]
    expected = (float(book["engine_best_bid"]), float(book["engine_best_ask"]))
    reader = ccxt_async.binanceusdm(ccxt_config(system.url))
    try:
        for _ in range(int(WAIT_S / 0.05)):
            seen = await reader.fetch_order_book(SYMBOL, 5)
            if (
                seen["bids"]
                and seen["asks"]
                and (seen["bids"][0][0], seen["asks"][0][0]) == expected
            ):
                return
            await asyncio.sleep(0.05)
    finally:
        await reader.close()
    raise AssertionError(f"the front never showed the engine's best {expected}")


@pytest.fixture
async def system(kafka_bootstrap: str, tmp_path: Path) -> Any:
    async with BinanceSystem(kafka_bootstrap, tmp_path) as running:
        oracle = start_oracle(running.settings)
        try:
            yield running
        finally:
            await oracle.finish()


async def test_the_example_bot_trades_through_ccxt_against_a_replayed_capture(
    system: BinanceSystem,
) -> None:
    bot = CcxtBot(BotConfig(url=system.url, deposit="10000", stale_steps=2, hold_steps=2))
    try:
        (start, end), *rest = windows()
        await replay_window(system, start, end)  # the recorded book, before the bot starts
        await bot.start()
        for start, end in rest:
            await bot.step()
            await replay_window(system, start, end)
        await bot.step()
        summary = await bot.finish()

        assert bot.orders_placed >= len(rest)
        assert bot.ledger.fills >= 1
        # Consistent through ccxt: flat, nothing resting, and the wallet is the bot's own count.
        exchange = bot.exchange
        positions = await exchange.fetch_positions([SYMBOL])
        assert all(not float(p["contracts"] or 0) for p in positions)
        assert await exchange.fetch_open_orders(SYMBOL) == []
        assert summary["position"] == 0
        expected = 10000 + summary["realized_pnl"] - summary["fees"]
        assert summary["usdt"] == pytest.approx(expected, abs=1e-6)
        trades = await exchange.fetch_my_trades(SYMBOL)
        assert len(trades) == summary["fills"]
        assert {t["takerOrMaker"] for t in trades} >= {"maker"}  # a post-only quote was hit
    finally:
        await bot.close()
