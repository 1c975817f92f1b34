"""``GET /fapi/v1/forceOrders`` through the Binance front, engine and broker real: a liquidation
step shown as the IOC order it was, and an ADL counterparty's part, as ccxt's
``fetch_my_liquidations`` reads them.

The long: 0.1 BTC at 60,000 with 1,000 USDT at 20x, so its bankruptcy price is 50,030 (see
``test_gateway_liquidation``). At a mark of 50,100 it is due; a bid of 0.05 at 50,500 takes half
of it through the book, and the short on the other side takes the rest by ADL at 50,030.
"""

import asyncio
from pathlib import Path
from typing import Any

import pytest
from binance_system import BinanceSystem
from gateway_system import WAIT_S, until
from price_services import send_commands

from exchange.engine_commands import Liquidate, MarkPrice
from services.gateway.auth import key_hash

ORDER = "/fapi/v1/order"
FORCE = "/fapi/v1/forceOrders"


@pytest.fixture
async def system(kafka_bootstrap: str, tmp_path: Path) -> Any:
    async with BinanceSystem(kafka_bootstrap, tmp_path) as running:
        yield running


async def test_a_liquidation_and_its_adl_are_force_orders_of_their_accounts(
    system: BinanceSystem,
) -> None:
    long, short, maker = (
        await system.account("1000"),
        await system.account("100000"),
        await system.account("100000"),
    )
    book = {"symbol": "BTCUSDT", "type": "LIMIT", "timeInForce": "GTC"}
    await system.signed("POST", "/fapi/v1/leverage", *long, symbol="BTCUSDT", leverage="20")
    await system.signed("POST", ORDER, *short, **book, side="SELL", quantity="0.100", price="60000")
    await system.signed("POST", ORDER, *long, **book, side="BUY", quantity="0.100", price="60000")
    await system.signed("POST", ORDER, *maker, **book, side="BUY", quantity="0.050", price="50500")
    assert await system.signed("GET", FORCE, *long) == []

    account = system.front.model.accounts[key_hash(long[0])]
    await send_commands(system.settings, [("mark", MarkPrice(symbol="BTCUSDT", price=501_000))])
    await send_commands(system.settings, [("liq", Liquidate(account=account))])
    liquidations = system.front.model.account(account).liquidations
    await asyncio.wait_for(until(lambda: bool(liquidations)), WAIT_S)

    (step,) = await system.signed("GET", FORCE, *long, symbol="BTCUSDT")
    assert step["clientOrderId"] == f"autoclose-{step['orderId']}"
    assert (step["side"], step["type"], step["timeInForce"], step["status"]) == (
        "SELL",
        "LIMIT",
        "IOC",
        "FILLED",
    )
    # half through the book at 50,500, half by ADL at the bankruptcy price 50,030
    assert (step["origQty"], step["executedQty"], step["avgPrice"]) == (
        "0.100",
        "0.100",
        "50265.00000",
    )
    assert step["cumQuote"] == "5026.50000000"
    assert await system.signed("GET", FORCE, *long, autoCloseType="ADL") == []

    (adl,) = await system.signed("GET", FORCE, *short, autoCloseType="ADL")
    assert (adl["clientOrderId"].startswith("adl_autoclose"), adl["side"]) == (True, "BUY")
    assert (adl["executedQty"], adl["avgPrice"], adl["price"]) == (
        "0.050",
        "50030.00000",
        "50030.0",
    )
    assert await system.signed("GET", FORCE, *short, autoCloseType="LIQUIDATION") == []
