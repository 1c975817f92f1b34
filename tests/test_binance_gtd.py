"""Good-till-date orders, realized PnL and open interest through the Binance front, engine and
broker real.

GTD is the engine's GTC with an expiry time (docs/ledger.md, "Expiry times"): the order shows
``timeInForce`` ``GTD`` and its ``goodTillDate``, and ends, ``EXPIRED``, with the first mark
price of its market at or after that time. A user trade's ``realizedPnl`` is what that fill
realized of the position, as the engine reckoned it; open interest is Σ of the long positions.
"""

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from binance_system import BinanceSystem
from gateway_system import WAIT_S, until
from price_services import send_commands
from test_binance_batch import _bid

from exchange.engine_commands import MarkPrice

ORDER = "/fapi/v1/order"


@pytest.fixture
async def system(kafka_bootstrap: str, tmp_path: Path) -> Any:
    async with BinanceSystem(kafka_bootstrap, tmp_path) as running:
        yield running


async def test_a_gtd_order_shows_its_date_and_expires_at_the_mark_on_or_after_it(
    system: BinanceSystem,
) -> None:
    key, secret = await system.account("10000")
    good_till = int(time.time() * 1000) // 1000 * 1000 + 700_000  # whole seconds
    placed = await system.signed(
        "POST",
        ORDER,
        key,
        secret,
        **_bid("59000", timeInForce="GTD", goodTillDate=str(good_till + 123)),
    )
    assert (placed["timeInForce"], placed["goodTillDate"]) == ("GTD", good_till)  # ms dropped
    status, body = await system.request(
        "POST", ORDER, key, secret, **_bid("59000", timeInForce="GTD", goodTillDate="1")
    )
    assert (status, body["code"]) == (400, -5040)

    expiry = placed["goodTillDate"]
    marks = system.front.model.marks
    await send_commands(
        system.settings, [("early", MarkPrice(symbol="BTCUSDT", price=600_000))], time=expiry - 1
    )
    await asyncio.wait_for(until(lambda: marks.get("BTCUSDT") == 600_000), WAIT_S)
    query = {"symbol": "BTCUSDT", "orderId": str(placed["orderId"])}
    assert (await system.signed("GET", ORDER, key, secret, **query))["status"] == "NEW"
    await send_commands(
        system.settings, [("due", MarkPrice(symbol="BTCUSDT", price=600_010))], time=expiry
    )
    await asyncio.wait_for(until(lambda: marks.get("BTCUSDT") == 600_010), WAIT_S)
    assert (await system.signed("GET", ORDER, key, secret, **query))["status"] == "EXPIRED"


async def test_user_trades_carry_realized_pnl_and_open_interest_follows_positions(
    system: BinanceSystem,
) -> None:
    maker = await system.account("10000")
    taker = await system.account("10000")

    async def trade(price: str, maker_side: str) -> None:
        taker_side = "BUY" if maker_side == "SELL" else "SELL"
        book = {"symbol": "BTCUSDT", "quantity": "0.010"}
        await system.signed(
            "POST",
            ORDER,
            *maker,
            **book,
            side=maker_side,
            type="LIMIT",
            timeInForce="GTC",
            price=price,
        )
        await system.signed("POST", ORDER, *taker, **book, side=taker_side, type="MARKET")

    async def open_interest() -> str:
        _, body = await system.request("GET", "/fapi/v1/openInterest", symbol="BTCUSDT")
        assert body["symbol"] == "BTCUSDT"
        return str(body["openInterest"])

    assert await open_interest() == "0.000"
    await trade("60000", "SELL")  # the maker opens short, the taker long
    assert await open_interest() == "0.010"
    await trade("60100", "BUY")  # the maker buys back 100 higher: both close
    assert await open_interest() == "0.000"
    trades = {}
    for name, (key, secret) in (("maker", maker), ("taker", taker)):
        mine = await system.signed("GET", "/fapi/v1/userTrades", key, secret, symbol="BTCUSDT")
        trades[name] = [t["realizedPnl"] for t in sorted(mine, key=lambda t: t["id"])]
    assert trades == {
        "maker": ["0.00000000", "-1.00000000"],
        "taker": ["0.00000000", "1.00000000"],
    }
