"""Order flags the engine resolves when the order acts, through the Binance front, engine and
broker real: ``closePosition=true``, a stop that closes whatever the position is when it
triggers, shown as Binance shows it (``closePosition`` true, ``origQty`` 0) and ``FILLED`` once
it has closed the position; and ``priceMatch``, a limit order priced from the book as it is
placed.
"""

import asyncio
from pathlib import Path
from typing import Any

import pytest
from binance_system import BinanceSystem
from gateway_system import WAIT_S, until
from price_services import send_commands

from exchange.engine_commands import MarkPrice

ORDER = "/fapi/v1/order"


@pytest.fixture
async def system(kafka_bootstrap: str, tmp_path: Path) -> Any:
    async with BinanceSystem(kafka_bootstrap, tmp_path) as running:
        yield running


async def test_a_close_position_stop_closes_the_position_it_finds_at_its_trigger(
    system: BinanceSystem,
) -> None:
    trader, other = await system.account("10000"), await system.account("10000")
    book = {"symbol": "BTCUSDT", "type": "LIMIT", "timeInForce": "GTC"}
    await system.signed("POST", ORDER, *other, **book, side="SELL", quantity="0.030", price="60000")
    await system.signed(
        "POST", ORDER, *trader, symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.010"
    )
    stop = await system.signed(
        "POST",
        ORDER,
        *trader,
        symbol="BTCUSDT",
        side="SELL",
        type="STOP_MARKET",
        stopPrice="59000",
        workingType="MARK_PRICE",
        closePosition="true",
    )
    assert (stop["closePosition"], stop["origQty"], stop["reduceOnly"]) == (True, "0.000", True)
    # the position grows after the stop was placed: it closes all of it
    await system.signed(
        "POST", ORDER, *trader, symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.015"
    )
    await system.signed("POST", ORDER, *other, **book, side="BUY", quantity="0.050", price="58900")

    await send_commands(system.settings, [("crash", MarkPrice(symbol="BTCUSDT", price=589_000))])
    marks = system.front.model.marks
    await asyncio.wait_for(until(lambda: marks.get("BTCUSDT") == 589_000), WAIT_S)
    query = {"symbol": "BTCUSDT", "orderId": str(stop["orderId"])}
    closed = await system.signed("GET", ORDER, *trader, **query)
    assert (closed["status"], closed["executedQty"], closed["closePosition"]) == (
        "FILLED",
        "0.025",
        True,
    )
    positions = await system.signed("GET", "/fapi/v2/positionRisk", *trader, symbol="BTCUSDT")
    assert positions[0]["positionAmt"] == "0.000"


async def test_a_price_match_order_takes_its_price_from_the_book(system: BinanceSystem) -> None:
    trader, other = await system.account("10000"), await system.account("10000")
    book = {"symbol": "BTCUSDT", "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.010"}
    for price in ("59000", "59100"):
        await system.signed("POST", ORDER, *other, **book, side="BUY", price=price)
    await system.signed("POST", ORDER, *other, **book, side="SELL", price="61000")
    queued = await system.signed("POST", ORDER, *trader, **book, side="BUY", priceMatch="QUEUE")
    assert (queued["price"], queued["priceMatch"], queued["status"]) == ("59100.0", "QUEUE", "NEW")
    status, body = await system.request(
        "POST", ORDER, *trader, **book, side="BUY", priceMatch="QUEUE_5"
    )  # two bid levels only
    assert (status, body["code"]) == (400, -2010) and "no level 5" in body["msg"]
