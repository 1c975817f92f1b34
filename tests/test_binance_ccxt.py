"""ccxt's ``binanceusdm``, sync and async, unchanged and configured only through its
configuration dict, trading against the running exchange through the Binance front.

Why ccxt: the front's promise is that bots written for Binance work here unchanged, and ccxt
is what most of them are written with; its parsers and error mapping are the judge of every
shape and code. Each test uses accounts of its own on a system of its own.
"""

import asyncio
from pathlib import Path
from typing import Any

import ccxt
import ccxt.async_support as ccxt_async
import pytest
from binance_system import BinanceSystem, ccxt_config


@pytest.fixture
async def system(kafka_bootstrap: str, tmp_path: Path) -> Any:
    async with BinanceSystem(kafka_bootstrap, tmp_path) as running:
        yield running


async def test_sync_client_loads_markets_and_reads_the_account(system: BinanceSystem) -> None:
    api_key, secret = await system.account("5000")
    exchange = ccxt.binanceusdm(ccxt_config(system.url, api_key, secret))

    def run() -> dict[str, Any]:
        markets = exchange.load_markets()
        return {
            "markets": markets,
            "ticker": exchange.fetch_ticker("BTC/USDT:USDT"),
            "book": exchange.fetch_order_book("BTC/USDT:USDT"),
            "balance": exchange.fetch_balance(),
            "positions": exchange.fetch_positions(),
            "time": exchange.fetch_time(),
        }

    seen = await asyncio.to_thread(run)
    market = seen["markets"]["BTC/USDT:USDT"]
    assert market["id"] == "BTCUSDT" and market["linear"] and market["swap"]
    assert market["precision"]["price"] == 0.1 and market["precision"]["amount"] == 0.001
    assert seen["balance"]["USDT"]["total"] == 5000
    assert seen["book"]["bids"] == [] and seen["book"]["asks"] == []


async def test_async_client_trades(system: BinanceSystem) -> None:
    """Leverage and margin mode, limit, post-only, market, reduce-only and stop orders, then the
    orders, trades, positions, funding and income as ccxt reads them."""
    maker_key, maker_secret = await system.account("20000")
    taker_key, taker_secret = await system.account("20000")
    maker = ccxt_async.binanceusdm(ccxt_config(system.url, maker_key, maker_secret))
    taker = ccxt_async.binanceusdm(ccxt_config(system.url, taker_key, taker_secret))
    symbol = "BTC/USDT:USDT"
    try:
        await maker.load_markets()
        await taker.load_markets()
        assert (await taker.set_leverage(10, symbol))["leverage"] == 10
        await taker.set_margin_mode("isolated", symbol)
        await taker.set_margin_mode("cross", symbol)

        ask = await maker.create_order(symbol, "limit", "sell", 0.05, 60000)
        assert ask["status"] == "open" and ask["clientOrderId"]
        post_only = await maker.create_order(
            symbol, "limit", "buy", 0.01, 59000, {"postOnly": True}
        )
        assert post_only["postOnly"] and post_only["timeInForce"] == "PO"
        # ccxt picks its USDⓈ-M error classes by Binance's host name, so off binance.com it
        # raises its generic class for these codes (docs/binance-api.md): the code is the proof
        with pytest.raises(ccxt.ExchangeError, match="-5022"):  # it would take the ask
            await maker.create_order(symbol, "limit", "buy", 0.01, 60000, {"postOnly": True})

        bought = await taker.create_order(symbol, "market", "buy", 0.02)
        assert bought["status"] == "closed" and bought["filled"] == 0.02
        assert bought["average"] == 60000

        positions = await taker.fetch_positions([symbol])
        assert [(p["contracts"], p["side"], p["leverage"]) for p in positions] == [
            (0.02, "long", 10)
        ]
        with pytest.raises(ccxt.ExchangeError, match="-2022"):  # a reduce-only buy of a long
            await taker.create_order(symbol, "limit", "buy", 0.01, 59000, {"reduceOnly": True})
        reduce = await taker.create_order(
            symbol, "limit", "sell", 0.01, 61000, {"reduceOnly": True}
        )
        assert reduce["reduceOnly"]
        stop = await taker.create_order(
            symbol, "market", "sell", 0.01, None, {"stopLossPrice": 55000, "reduceOnly": True}
        )
        assert stop["triggerPrice"] == 55000

        # ccxt 4.5 sends a stop to algoOrder, which lists it apart; 4.4 to order with stopPrice
        algo = "algoId" in stop["info"]
        open_orders = await taker.fetch_open_orders(symbol)
        listed = [reduce["id"]] if algo else sorted([reduce["id"], stop["id"]], key=int)
        assert [o["id"] for o in open_orders] == listed
        triggers = await taker.fetch_open_orders(symbol, params={"trigger": True})
        assert stop["id"] in [o["id"] for o in triggers]
        await taker.cancel_order(stop["id"], symbol, {"trigger": True})
        cancelled = await taker.cancel_order(reduce["id"], symbol)
        assert cancelled["status"] == "canceled"
        with pytest.raises(ccxt.OrderNotFound):
            await taker.cancel_order(reduce["id"], symbol)
        fetched = await taker.fetch_order(bought["id"], symbol)
        assert fetched["status"] == "closed" and fetched["filled"] == 0.02

        trades = await taker.fetch_my_trades(symbol)
        assert [(t["side"], t["amount"], t["price"], t["takerOrMaker"]) for t in trades] == [
            ("buy", 0.02, 60000, "taker")
        ]
        assert trades[0]["fee"]["cost"] == 0.6  # 0.05 % of 1,200 USDT
        public = await taker.fetch_trades(symbol)
        assert [(t["amount"], t["price"]) for t in public] == [(0.02, 60000)]
        ohlcv = await taker.fetch_ohlcv(symbol, "1m")
        assert [row[1:] for row in ohlcv] == [[60000, 60000, 60000, 60000, 0.02]]

        book = await taker.fetch_order_book(symbol)
        assert book["asks"] == [[60000, 0.03]] and book["bids"] == [[59000, 0.01]]
        ticker = await taker.fetch_ticker(symbol)
        assert (ticker["last"], ticker["baseVolume"], ticker["quoteVolume"]) == (60000, 0.02, 1200)
        best = (await taker.fetch_bids_asks([symbol]))[symbol]
        assert (best["bid"], best["ask"]) == (59000, 60000)
        funding = await taker.fetch_funding_rate(symbol)
        assert funding["symbol"] == symbol
        balance = await taker.fetch_balance()
        assert balance["USDT"]["total"] == pytest.approx(20000 - 0.6)

        await maker.cancel_all_orders(symbol)
        assert await maker.fetch_open_orders(symbol) == []
    finally:
        await maker.close()
        await taker.close()


async def test_batch_orders_through_ccxt(system: BinanceSystem) -> None:
    """``create_orders``, ``edit_orders`` and ``cancel_orders`` (by ids and by client ids): ccxt's
    batch calls, its own encoding of the lists (raw JSON in the body, ``orderidlist``)."""
    api_key, secret = await system.account("20000")
    exchange = ccxt_async.binanceusdm(ccxt_config(system.url, api_key, secret))
    symbol = "BTC/USDT:USDT"
    try:
        await exchange.load_markets()
        placed = await exchange.create_orders(
            [
                {"symbol": symbol, "type": "limit", "side": "buy", "amount": 0.01, "price": p}
                for p in (59000, 59100, 59200)
            ]
            + [{"symbol": symbol, "type": "limit", "side": "sell", "amount": 0.02, "price": 61000}]
        )
        assert [(o["side"], o["price"], o["status"]) for o in placed] == [
            ("buy", 59000, "open"),
            ("buy", 59100, "open"),
            ("buy", 59200, "open"),
            ("sell", 61000, "open"),
        ]
        assert all(o["clientOrderId"] for o in placed)  # ccxt made them up, the front kept them
        ids = [o["id"] for o in placed]

        edited = await exchange.edit_orders(
            [
                {
                    "id": ids[0],
                    "symbol": symbol,
                    "type": "limit",
                    "side": "buy",
                    "amount": 0.02,
                    "price": 58000,
                },
                {
                    "id": ids[3],
                    "symbol": symbol,
                    "type": "limit",
                    "side": "sell",
                    "amount": 0.01,
                    "price": 62000,
                },
            ]
        )
        assert [(o["id"], o["amount"], o["price"]) for o in edited] == [
            (ids[0], 0.02, 58000),
            (ids[3], 0.01, 62000),
        ]

        cancelled = await exchange.cancel_orders(ids[:2], symbol)
        assert [(o["id"], o["status"]) for o in cancelled] == [
            (ids[0], "canceled"),
            (ids[1], "canceled"),
        ]
        client_id = placed[2]["clientOrderId"]
        # ccxt 4.5 takes client ids as clientOrderIds and quotes them; 4.4 sends its
        # origclientorderidlist as given, so its caller quotes them
        newer = tuple(int(n) for n in ccxt.__version__.split(".")[:2]) >= (4, 5)
        by_client = await exchange.cancel_orders(
            [],
            symbol,
            {"clientOrderIds": [client_id]}
            if newer
            else {"origclientorderidlist": [f'"{client_id}"']},
        )
        assert [(o["id"], o["status"]) for o in by_client] == [(ids[2], "canceled")]
        assert [o["id"] for o in await exchange.fetch_open_orders(symbol)] == [ids[3]]
    finally:
        await exchange.close()
