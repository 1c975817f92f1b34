"""ccxt's websocket client (``ccxt.pro.binanceusdm``) against the Binance front: the book kept by
``U``/``u``/``pu`` over many changes (no ``ChecksumError``, equal to the REST book at the end),
trades, and the user-data stream's orders, balance and positions; and the raw stream protocol
(``SUBSCRIBE``, ``LIST_SUBSCRIPTIONS``, combined framing) over plain aiohttp.

Never timed: each wait is for a state (a subscription the front holds, a book that matches),
bounded by ``WAIT_S`` only against a hang.
"""

import asyncio
import json
from pathlib import Path
from typing import Any

import ccxt.async_support as ccxt_async
import ccxt.pro
import pytest
from binance_system import BinanceSystem, ccxt_config
from gateway_system import WAIT_S, until

SYMBOL = "BTC/USDT:USDT"


@pytest.fixture
async def system(kafka_bootstrap: str, tmp_path: Path) -> Any:
    async with BinanceSystem(kafka_bootstrap, tmp_path) as running:
        yield running


async def test_ccxt_pro_watches_book_trades_orders_balance_positions(
    system: BinanceSystem,
) -> None:
    maker_key, maker_secret = await system.account("50000")
    taker_key, taker_secret = await system.account("50000")
    rest = ccxt_async.binanceusdm(ccxt_config(system.url, maker_key, maker_secret))
    watcher = ccxt.pro.binanceusdm(ccxt_config(system.url, taker_key, taker_secret))
    taker = ccxt_async.binanceusdm(ccxt_config(system.url, taker_key, taker_secret))
    front = system.front
    try:
        await rest.load_markets()
        await taker.load_markets()
        await watcher.load_markets()
        book_watch = asyncio.create_task(watcher.watch_order_book(SYMBOL))
        trades_watch = asyncio.create_task(watcher.watch_trades(SYMBOL))
        orders_watch = asyncio.create_task(watcher.watch_orders(SYMBOL))
        await asyncio.wait_for(
            until(
                lambda: (
                    front.market_streams.subscribers("btcusdt@depth@100ms") == 1
                    and front.market_streams.subscribers("btcusdt@trade") == 1
                    and front.user_streams.connected() == 1
                )
            ),
            WAIT_S,
        )
        # many changes: levels made, grown, shrunk and removed
        ids = []
        for step in range(12):
            placed = await rest.create_order(SYMBOL, "limit", "sell", 0.01, 60000 + 10 * (step % 4))
            ids.append(placed["id"])
            placed = await rest.create_order(SYMBOL, "limit", "buy", 0.01, 59000 - 10 * (step % 3))
            ids.append(placed["id"])
        for order_id in ids[::3]:
            await rest.cancel_order(order_id, SYMBOL)
        bought = await taker.create_order(SYMBOL, "market", "buy", 0.02)

        expected = await rest.fetch_order_book(SYMBOL)
        book = await asyncio.wait_for(book_watch, WAIT_S)
        while book["nonce"] < expected["nonce"]:
            book = await asyncio.wait_for(watcher.watch_order_book(SYMBOL), WAIT_S)
        assert book["bids"] == expected["bids"] and book["asks"] == expected["asks"]

        trades = await asyncio.wait_for(trades_watch, WAIT_S)
        assert trades[-1]["price"] == 60000 and trades[-1]["side"] == "buy"
        orders = await asyncio.wait_for(orders_watch, WAIT_S)
        assert orders[-1]["id"] == bought["id"]
        while orders[-1]["status"] != "closed":
            orders = await asyncio.wait_for(watcher.watch_orders(SYMBOL), WAIT_S)
        assert orders[-1]["filled"] == 0.02

        balance_watch = asyncio.create_task(watcher.watch_balance())
        positions_watch = asyncio.create_task(watcher.watch_positions([SYMBOL]))
        await asyncio.wait_for(until(lambda: watching(watcher, ":balance", ":positions")), WAIT_S)
        sold = await taker.create_order(SYMBOL, "market", "sell", 0.01)
        assert sold["status"] == "closed"
        balance = await asyncio.wait_for(balance_watch, WAIT_S)
        assert balance["USDT"]["total"] is not None
        positions = await asyncio.wait_for(positions_watch, WAIT_S)
        assert [(p["symbol"], p["contracts"]) for p in positions][-1] == (SYMBOL, 0.01)
    finally:
        await watcher.close()
        await rest.close()
        await taker.close()


async def test_stream_protocol(system: BinanceSystem) -> None:
    """Raw and combined framing, SUBSCRIBE/UNSUBSCRIBE/LIST_SUBSCRIPTIONS acks, a bad stream."""
    url = system.url.replace("http", "ws", 1)
    api_key, secret = await system.account("10000")
    other_key, other_secret = await system.account("10000")
    async with (
        system.http.ws_connect(
            f"{url}/stream?streams=btcusdt@trade/btcusdt@bookTicker"
        ) as combined,
        system.http.ws_connect(f"{url}/ws/btcusdt@aggTrade") as raw,
    ):
        await combined.send_str(
            json.dumps({"method": "SUBSCRIBE", "params": ["ethusdt@depth@0ms"], "id": 1})
        )
        assert json.loads(await receive(combined)) == {"result": None, "id": 1}
        await combined.send_str(
            json.dumps({"method": "UNSUBSCRIBE", "params": ["btcusdt@bookTicker"], "id": 2})
        )
        assert json.loads(await receive(combined)) == {"result": None, "id": 2}
        await combined.send_str(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 3}))
        assert json.loads(await receive(combined)) == {
            "result": ["btcusdt@trade", "ethusdt@depth@0ms"],
            "id": 3,
        }
        await combined.send_str(
            json.dumps({"method": "SUBSCRIBE", "params": ["btcusdt@nope"], "id": 4})
        )
        error = json.loads(await receive(combined))
        assert error["id"] == 4 and error["error"]["code"] == 2

        await system.signed(
            "POST",
            "/fapi/v1/order",
            api_key,
            secret,
            symbol="ETHUSDT",
            side="SELL",
            type="LIMIT",
            quantity="0.1",
            price="3000",
        )
        depth = json.loads(await receive(combined))
        assert depth["stream"] == "ethusdt@depth@0ms"
        update = depth["data"]
        assert update["e"] == "depthUpdate" and update["U"] == update["u"] == update["pu"] + 1
        assert update["a"] == [["3000.00", "0.100"]]
        await system.signed(
            "POST",
            "/fapi/v1/order",
            api_key,
            secret,
            symbol="BTCUSDT",
            side="SELL",
            type="LIMIT",
            quantity="0.01",
            price="60000",
        )
        buy = {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.01"}
        await system.signed("POST", "/fapi/v1/order", other_key, other_secret, **buy)
        agg = json.loads(await receive(raw))
        assert agg["e"] == "aggTrade" and (agg["p"], agg["q"]) == ("60000.0", "0.010")


def watching(exchange: Any, *parts: str) -> bool:
    """Whether ccxt waits for a message of each kind (a future under a hash containing each
    part: ``future:balance``, ``linear:positions::…``; the names differ between versions)."""
    hashes = [h for client in exchange.clients.values() for h in client.futures]
    return all(any(part in h for h in hashes) for part in parts)


async def receive(ws: Any) -> Any:
    """The next frame's text, waited for at most ``WAIT_S``."""
    return (await asyncio.wait_for(ws.receive(), WAIT_S)).data


async def test_websocket_api(system: BinanceSystem) -> None:
    """``/ws-fapi/v1``: ccxt's ``create_order_ws``, ``fetch_order_ws`` and ``cancel_order_ws``
    (signed over the sorted parameters), and a stale request refused with ``-1021``."""
    api_key, secret = await system.account("10000")
    client = ccxt.pro.binanceusdm(ccxt_config(system.url, api_key, secret))
    try:
        await client.load_markets()
        placed = await client.create_order_ws(SYMBOL, "limit", "buy", 0.01, 59000)
        assert placed["status"] == "open" and placed["price"] == 59000
        fetched = await client.fetch_order_ws(placed["id"], SYMBOL)
        assert fetched["id"] == placed["id"] and fetched["amount"] == 0.01
        cancelled = await client.cancel_order_ws(placed["id"], SYMBOL)
        assert cancelled["status"] == "canceled"
        positions = await client.fetch_positions_ws([SYMBOL])
        assert positions == []
    finally:
        await client.close()
    url = system.url.replace("http", "ws", 1)
    async with system.http.ws_connect(f"{url}/ws-fapi/v1") as ws:
        params = {"apiKey": api_key, "timestamp": 1, "signature": "00" * 32}
        await ws.send_str(json.dumps({"id": "x", "method": "account.status", "params": params}))
        answer = json.loads(await receive(ws))
        assert answer["id"] == "x" and answer["status"] == 400
        assert answer["error"]["code"] == -1021  # the clock is checked before the signature
