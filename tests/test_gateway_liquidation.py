"""Liquidations, ADL notices and the insurance fund as a client sees them, end to end: the
engine and a gateway on the session broker, the mark and the liquidation trigger sent to the
command log as the oracle and the liquidation service would.

BTCUSDT: a long of 0.1 BTC at 60,000 with 1,000 USDT (20x) pays 3 USDT taker fee, so 997 is
left and its bankruptcy price is ``60,000 − 997 / 0.1 = 50,030``. At a mark of 50,100 its margin
balance is ``997 − 990 = 7`` against 0.4 % × 5,010 = 20.04 maintenance: due.
"""

import asyncio
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from gateway_system import WAIT_S, Client, System
from price_services import send_commands

from exchange.default_markets import DEFAULT_MARKETS
from exchange.engine_commands import Liquidate, MarkPrice
from services.client import ExchangeClient
from services.liquidator import Liquidator

MARK = 501_000  # 50,100.0 in ticks of 0.1


async def long_at_20x(system: System, short: Client) -> tuple[Client, int]:
    """A new account long 0.1 BTC at 60,000 against ``short``; returns it and its id."""
    client = await system.connect()
    created = await client.ok("create_account")
    await client.login(created["api_key"], created["api_secret"])
    await client.ok("deposit", amount="1000")
    await client.ok("set_leverage", symbol="BTCUSDT", leverage=20)
    await short.ok("place_order", symbol="BTCUSDT", side="sell", qty="0.100", price="60000")
    bought = await client.ok(
        "place_order", symbol="BTCUSDT", side="buy", qty="0.100", price="60000", tif="IOC"
    )
    assert bought["status"] == "filled"
    return client, int(created["account"])


async def subscribed(client: Client, *channels: str) -> Client:
    for channel in channels:
        await client.ok("subscribe", channel=channel)
    return client


def data(push: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = push["data"]
    return result


async def test_a_liquidation_reaches_its_account_the_fund_and_the_adl_counterparty(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    async with System(kafka_bootstrap, tmp_path) as system:
        watcher = await subscribed(await system.connect(), "insurance")
        assert await watcher.ok("insurance_fund") == {
            "asset": "USDT",
            "balance": "0.00000000",
            "movements": [],
        }
        short = await system.trader("100000")
        await subscribed(short, "adl")
        filled, filled_id = await long_at_20x(system, short)
        stranded, stranded_id = await long_at_20x(system, short)
        for client in (filled, stranded):
            await subscribed(client, "liquidations")
        unauthenticated = await (await system.connect()).fail("subscribe", channel="adl")
        assert unauthenticated["code"] == "unauthenticated"

        # a bid at 50,500 for the first; the second finds the book empty
        maker = await system.trader("100000")
        await maker.ok("place_order", symbol="BTCUSDT", side="buy", qty="0.100", price="50500")
        await send_commands(system.settings, [("mark-1", MarkPrice(symbol="BTCUSDT", price=MARK))])
        await send_commands(system.settings, [("liq-1", Liquidate(account=filled_id))])

        step = data(await filled.push("liquidations"))
        assert step == {
            "symbol": "BTCUSDT",
            "margin_mode": "cross",
            "step": "full",
            "position": "0.100",
            "filled_qty": "0.100",
            "deleveraged_qty": "0.000",
            "mark_price": "50100.0",
            "bankruptcy_price": "50030.0",
            "limit_price": "50030.0",
            # sold at 50,500: 950 lost of 997, so 47 left: all of it the clearance fee
            "fee": "47.00000000",
            "time": step["time"],
        }
        movement = data(await watcher.push("insurance"))
        assert (movement["balance"], movement["change"], movement["reason"]) == (
            "47.00000000",
            "47.00000000",
            "liquidation_fee",
        )
        history = await filled.ok("liquidations")
        assert history == {"liquidations": [step], "adl": []}
        assert (await filled.ok("balances"))["wallet"] == "0.00000000"

        await send_commands(system.settings, [("liq-2", Liquidate(account=stranded_id))])
        step = data(await stranded.push("liquidations"))
        assert (step["filled_qty"], step["deleveraged_qty"]) == ("0.000", "0.100")
        notice = data(await short.push("adl"))
        assert notice == {
            "symbol": "BTCUSDT",
            "side": "buy",
            "qty": "0.100",
            "price": "50030.0",
            "rank": 1,
            "time": notice["time"],
        }
        # closed at its bankruptcy price, 0.00 of 997 is left: rounding up to a whole tick
        # left exactly nothing, so the fund did not move
        assert (await short.ok("liquidations"))["adl"] == [notice]
        fund = await watcher.ok("insurance_fund", limit=5)
        assert fund["balance"] == "47.00000000"
        assert [m["reason"] for m in fund["movements"]] == ["liquidation_fee"]
        positions = await short.ok("positions", symbol="BTCUSDT")
        assert positions[0]["size"] == "-0.100"  # 0.2 short, 0.1 of it deleveraged

        # a repeated trigger changes nothing and pushes nothing
        await send_commands(system.settings, [("liq-3", Liquidate(account=filled_id))])
        assert (await filled.ok("liquidations"))["liquidations"] == [history["liquidations"][0]]

        # the typed client reads the same, in Decimals
        async with ExchangeClient(f"ws://127.0.0.1:{system.gateway.port}/ws") as typed:
            fund = await typed.insurance_fund()
            assert (fund.balance, fund.movements[0].reason) == (Decimal(47), "liquidation_fee")


async def test_margin_calls_adl_indicators_and_the_margin_query_with_the_liquidation_service(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """The liquidation service beside the engine and the gateway. The long of 0.1 BTC at
    60,000 with 997 USDT left: at a mark of 50,250 its margin balance is 22.00 against
    0.4 % × 5,025 = 20.10 maintenance (91 %: a margin call); at 51,000 it is safe again; at
    50,100 it is liquidated against the one short by ADL."""
    settings = {"liquidator_health_port": 0}
    async with System(kafka_bootstrap, tmp_path, settings=settings) as system:
        stop = asyncio.Event()
        service = asyncio.create_task(Liquidator(system.settings, DEFAULT_MARKETS).run(stop))
        try:
            short = await subscribed(await system.trader("100000"), "adl_quantile")
            trader, _ = await long_at_20x(system, short)
            await subscribed(trader, "margin_calls", "adl_quantile", "liquidations")
            clock = int(time.time() * 1000)

            async def mark(price: int, at: int) -> None:
                command = MarkPrice(symbol="BTCUSDT", price=price)
                await send_commands(system.settings, [(f"mark-{at}", command)], time=clock + at)

            await mark(502_500, 1_000)
            call = data(await trader.push("margin_calls"))
            assert call == {
                "symbol": "",
                "level": "warning",
                "ratio": "0.91363637",  # 20.10 / 22.00, rounded up
                "margin_balance": "22.00000000",
                "maintenance": "20.10000000",
                "time": clock + 1_000,
            }
            margin = await trader.ok("margin")
            assert margin["scopes"] == [
                {
                    "symbol": "",
                    "margin_balance": "22.00000000",
                    "maintenance": "20.10000000",
                    "ratio": "0.91363637",
                    "level": "warning",
                }
            ]
            indicator = data(await short.push("adl_quantile"))
            assert (indicator["symbol"], indicator["side"], indicator["quantile"]) == (
                "BTCUSDT",
                "short",
                4,
            )

            await mark(510_000, 3_000)
            assert data(await trader.push("margin_calls"))["level"] == "safe"

            await mark(501_000, 5_000)
            assert data(await trader.push("margin_calls"))["level"] == "liquidation"
            step = data(await trader.push("liquidations"))
            assert (step["deleveraged_qty"], step["bankruptcy_price"]) == ("0.100", "50030.0")
            gone = data(await trader.push("margin_calls"))
            assert (gone["level"], gone["ratio"]) == ("safe", None)
            assert (await trader.ok("margin"))["scopes"] == []
        finally:
            stop.set()
            await asyncio.wait_for(service, WAIT_S)
