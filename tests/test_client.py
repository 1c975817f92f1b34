"""The typed client against a real gateway and engine on the real broker: what a bot does with
it (accounts, orders, queries, errors, subscriptions), and its local order book staying equal
to the gateway's through random order flow and through a gap it must repair."""

import asyncio
import json
import random
import time
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import pytest
from gateway_system import WAIT_S, System, until

from services.client import (
    Balance,
    ExchangeClient,
    ExchangeError,
    Fill,
    LiveOrderBook,
    Order,
    OrderStatus,
    Push,
    SequenceGapError,
    Side,
    Subscription,
    Trade,
)
from services.client import client as client_module
from services.client.views import BookUpdate

T = TypeVar("T")


@pytest.fixture
async def system(kafka_bootstrap: str, tmp_path: Path) -> Any:
    async with System(kafka_bootstrap, tmp_path) as running:
        yield running


def ws_url(system: System) -> str:
    return f"ws://127.0.0.1:{system.gateway.port}/ws"


async def next_push(subscription: Subscription[T]) -> Push[T]:
    return await asyncio.wait_for(anext(subscription), WAIT_S)


async def trader(system: System, deposit: str = "10000") -> ExchangeClient:
    """A new account on a new connection, logged in, with ``deposit`` USDT."""
    client = await ExchangeClient(ws_url(system), timeout=WAIT_S).connect()
    created = await client.create_account()
    assert await client.login(created.api_key, created.api_secret) == created.account
    await client.deposit(deposit)
    return client


async def test_a_bot_trades_queries_and_gets_typed_errors(
    system: System, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with ExchangeClient(ws_url(system)) as client:
        assert (await client.ping()).time > 0
        markets = {market.symbol: market for market in await client.markets()}
        assert markets["BTCUSDT"].tick_size == Decimal("0.1")
        assert markets["BTCUSDT"].lot_size == Decimal("0.001")
        with pytest.raises(ExchangeError) as refused:
            await client.deposit("100")
        assert refused.value.code == "unauthenticated"

        created = await client.create_account()
        assert created.account >= 1 << 20 and len(created.api_secret) == 64
        with pytest.raises(ExchangeError) as bad:
            await client.login(created.api_key, "0" * 64)
        assert bad.value.code == "invalid_signature"
        assert await client.login(created.api_key, created.api_secret) == created.account

        # a machine whose clock is a minute slow: refused as stale, then signed again with the
        # gateway's clock from ping
        slow = ExchangeClient(ws_url(system))
        monkeypatch.setattr(client_module, "_now_ms", lambda: int(time.time() * 1000) - 60_000)
        async with slow:
            assert await slow.login(created.api_key, created.api_secret) == created.account
        monkeypatch.undo()

        balance = await client.deposit(Decimal("5000"))
        assert balance == Balance(
            asset="USDT",
            wallet=Decimal("5000"),
            isolated=Decimal(0),
            order_margin=Decimal(0),
            available=Decimal("5000"),
        )
        assert str(balance.wallet) == "5000.00000000"  # the gateway's places, kept

        order = await client.place_order("BTCUSDT", Side.BUY, "0.010", Decimal("59000"))
        assert isinstance(order, Order) and order.is_open
        assert (order.status, order.price, order.open_qty) == (
            OrderStatus.NEW,
            Decimal("59000"),
            Decimal("0.010"),
        )
        assert await client.open_orders("BTCUSDT") == [order]
        assert await client.order("BTCUSDT", order.order_id) == order
        amended = await client.amend_order("BTCUSDT", order.order_id, price=59_100, qty="0.02")
        assert (amended.price, amended.qty) == (Decimal("59100.0"), Decimal("0.020"))
        cancelled = await client.cancel_order("BTCUSDT", order.order_id)
        assert (cancelled.status, cancelled.end_reason) == (OrderStatus.CANCELLED, "user")
        assert not cancelled.is_open

        with pytest.raises(ExchangeError) as unknown:
            await client.cancel_order("BTCUSDT", order.order_id)
        assert (unknown.value.code, unknown.value.retry_after_ms) == ("unknown_order", None)
        assert unknown.value.message == f"no order {order.order_id} of this account in BTCUSDT"
        with pytest.raises(ExchangeError) as too_big:
            await client.place_order("BTCUSDT", "buy", "5", "60000")
        assert too_big.value.code == "insufficient_margin"
        with pytest.raises(ExchangeError) as post_only:
            await client.place_order("BTCUSDT", "buy", "0.01", "60000.05", post_only=True)
        assert post_only.value.code == "invalid_value"  # off the grid, never rounded
        with pytest.raises(TypeError):
            await client.place_order("BTCUSDT", "buy", 0.01, "60000")  # type: ignore[arg-type]
        with pytest.raises(ValueError):
            await client.place_order("BTCUSDT", "BUY", "0.01", "60000")

        resting = [
            await client.place_order("BTCUSDT", "sell", "0.002", price, post_only=True)
            for price in ("61000", "62000")
        ]
        stop = await client.place_order(
            "BTCUSDT", "sell", "0.002", type="stop_market", stop_price="50000", trigger="mark"
        )
        assert stop.stop_price == Decimal("50000.0") and not stop.triggered
        all_cancelled = await client.cancel_all("BTCUSDT")
        assert sorted(all_cancelled.order_ids) == sorted(
            [o.order_id for o in resting] + [stop.order_id]
        )
        assert await client.open_orders() == []

        assert (await client.set_leverage("BTCUSDT", 10)).leverage == 10
        assert (await client.set_margin_mode("ETHUSDT", "isolated")).mode == "isolated"
        with pytest.raises(ExchangeError) as no_position:
            await client.adjust_margin("ETHUSDT", "10", "add")
        assert no_position.value.code == "no_position"
        positions = {p.symbol: p for p in await client.positions()}
        assert positions["BTCUSDT"].leverage == 10 and positions["BTCUSDT"].size == 0
        assert positions["ETHUSDT"].margin_mode == "isolated"
        assert await client.fills() == []
        assert await client.funding_history("BTCUSDT") == []


async def test_a_bot_names_its_orders_by_its_own_labels(system: System) -> None:
    client = await trader(system)
    order = await client.place_order("BTCUSDT", "buy", "0.010", "59000", client_order_id="b-1")
    assert order.client_order_id == "b-1" and order.is_open
    assert (await client.place_order("BTCUSDT", "buy", "0.010", "58000")).client_order_id is None
    assert await client.order("BTCUSDT", client_order_id="b-1") == order
    with pytest.raises(ExchangeError) as duplicate:
        await client.place_order("BTCUSDT", "sell", "0.010", "61000", client_order_id="b-1")
    assert duplicate.value.code == "duplicate_client_order_id"
    assert await client.order("BTCUSDT", order.order_id) == order

    amended = await client.amend_order("BTCUSDT", client_order_id="b-1", qty="0.004")
    assert (amended.order_id, amended.open_qty) == (order.order_id, Decimal("0.004"))
    cancelled = await client.cancel_order("BTCUSDT", client_order_id="b-1")
    assert (cancelled.order_id, cancelled.status) == (order.order_id, OrderStatus.CANCELLED)
    again = await client.place_order("BTCUSDT", "buy", "0.010", "59000", client_order_id="b-1")
    assert again.order_id != order.order_id
    with pytest.raises(ExchangeError) as unknown:
        await client.cancel_order("BTCUSDT", client_order_id="b-2")
    assert unknown.value.code == "unknown_order"
    # both names or none: refused before anything is sent, by the gateway's own struct
    with pytest.raises(ValueError, match="not both"):
        await client.order("BTCUSDT", order.order_id, client_order_id="b-1")
    with pytest.raises(ValueError, match="give order_id or client_order_id"):
        await client.cancel_order("BTCUSDT")
    with pytest.raises(ExchangeError) as bad:
        await client.place_order("BTCUSDT", "buy", "0.010", "59000", client_order_id="b 3")
    assert bad.value.code == "invalid_request" and "client_order_id" in bad.value.message
    await client.close()


async def test_a_trade_reaches_callbacks_and_iterators_with_decimals(system: System) -> None:
    maker, taker = await trader(system), await trader(system)
    watcher = await ExchangeClient(ws_url(system), timeout=WAIT_S).connect()
    fills: list[Push[Fill]] = []
    maker_fills = await maker.my_fills(fills.append)  # a plain function as the callback
    balances: list[Balance] = []

    async def on_balance(push: Push[Balance]) -> None:  # a coroutine function, awaited
        balances.append(push.data)

    await taker.my_balances(on_balance)

    def broken(push: Push[Order]) -> None:
        raise RuntimeError(f"a bug in the bot, at seq {push.seq}")

    maker_orders = await maker.my_orders(broken)
    trades = await watcher.trades("BTCUSDT")
    ticker = await watcher.ticker("BTCUSDT")
    first = await next_push(ticker)
    assert (first.seq, first.data.last, first.data.count) == (1, None, 0)

    async def first_of(channel: str) -> Push[Any]:
        async for push in watcher.subscribe(channel):  # subscribes as iteration starts
            return push
        raise AssertionError("no push")

    eth = await asyncio.wait_for(first_of("ticker.ETHUSDT"), WAIT_S)
    assert (eth.channel, eth.seq, eth.data.symbol) == ("ticker.ETHUSDT", 1, "ETHUSDT")
    with pytest.raises(ExchangeError) as unknown:
        await watcher.subscribe("candles.BTCUSDT")
    assert unknown.value.code == "unknown_channel"

    ask = await maker.place_order("BTCUSDT", "sell", "0.050", "60000")
    bought = await taker.place_order("BTCUSDT", "buy", "0.020", type="market")
    assert (bought.status, bought.avg_price) == (OrderStatus.FILLED, Decimal("60000"))

    got: list[Push[list[Trade]]] = []

    async def first_trade() -> None:
        async for push in trades:
            got.append(push)
            break

    await asyncio.wait_for(first_trade(), WAIT_S)
    [trade] = got[0].data
    assert (got[0].seq, trade.price, trade.qty, trade.taker_side) == (
        1,
        Decimal("60000.0"),
        Decimal("0.020"),
        Side.BUY,
    )
    await asyncio.wait_for(until(lambda: len(fills) == 1 and len(balances) == 1), WAIT_S)
    assert fills[0].seq == 1 and fills[0].data.order_id == ask.order_id
    assert (fills[0].data.role, fills[0].data.fee) == ("maker", Decimal("0.24"))
    assert balances[0].wallet == Decimal("9999.4")  # 10,000 less the 0.6 taker fee
    while (latest := await next_push(ticker)).data.count == 0:
        pass
    assert (latest.data.last, latest.data.volume) == (Decimal("60000.0"), Decimal("0.020"))
    assert latest.data.best_ask_qty == Decimal("0.030")

    with pytest.raises(RuntimeError, match="at seq 1"):  # the callback's error ends it
        await asyncio.wait_for(maker_orders.join(), WAIT_S)
    assert maker_orders.closed and "orders" not in maker._streams
    await trades.close()
    await maker_fills.close()
    await maker_fills.join()  # closed by its owner: ends quietly
    assert [f.data.trade_id for f in fills] == [trade.trade_id]
    await asyncio.gather(maker.close(), taker.close(), watcher.close())


async def test_a_lost_push_is_a_sequence_gap_or_a_fresh_start(system: System) -> None:
    """A push that never arrived, simulated by handing the reader one with a later ``seq``
    than the next: a plain subscription raises, one made to resubscribe starts again."""
    client = await ExchangeClient(ws_url(system), timeout=WAIT_S).connect()
    trades = await client.trades("BTCUSDT")
    ticker = await client.subscribe("ticker.BTCUSDT", resubscribe_on_gap=True)
    assert (await next_push(ticker)).seq == 1
    fake = {"symbol": "BTCUSDT", "trade_id": 9, "price": "1.0", "qty": "1.000"}
    fake |= {"taker_side": "buy", "time": 1}
    client._frame(json.dumps({"channel": "trades.BTCUSDT", "seq": 2, "data": fake}))
    with pytest.raises(SequenceGapError) as gap:
        await next_push(trades)
    assert (gap.value.expected, gap.value.got) == (1, 2)

    client._frame(json.dumps({"channel": "ticker.BTCUSDT", "seq": 5, "data": {}}))
    again = await next_push(ticker)
    assert again.seq == 1 and again.data.symbol == "BTCUSDT" and ticker.gaps == 1
    await client.close()


async def book_of_gateway(system: System) -> tuple[int, list[Any], list[Any]]:
    """The gateway's book as a new subscriber gets it: its snapshot."""
    async with ExchangeClient(ws_url(system), timeout=WAIT_S) as reader:
        updates = await reader.book_updates("BTCUSDT")
        snapshot: BookUpdate = (await next_push(updates)).data
    assert snapshot.type == "snapshot"
    return snapshot.update_id, snapshot.bids, snapshot.asks


async def equal_to_gateway(system: System, live: LiveOrderBook) -> None:
    """The local book reaches the gateway's update and then has exactly its levels."""
    update_id, bids, asks = await book_of_gateway(system)
    await asyncio.wait_for(until(lambda: live.update_id == update_id), WAIT_S)
    assert live.depth() == (bids, asks)
    model = system.gateway.model.books["BTCUSDT"]  # and the gateway's own read model
    assert len(live.book.bids) == len(model.bids) and len(live.book.asks) == len(model.asks)


async def test_the_local_book_follows_random_orders_and_repairs_a_gap(system: System) -> None:
    traders = [await trader(system, deposit="50000") for _ in range(3)]
    watcher = await ExchangeClient(ws_url(system), timeout=WAIT_S).connect()
    live = await watcher.order_book("BTCUSDT")
    assert live.update_id == 0 and live.best_bid is None and live.best_ask is None
    rng = random.Random(7)
    open_orders: list[tuple[ExchangeClient, int]] = []

    async def act(client: ExchangeClient) -> None:
        for _ in range(60):
            roll = rng.random()
            if roll < 0.15 and open_orders:
                owner, order_id = open_orders.pop(rng.randrange(len(open_orders)))
                if owner is client:
                    try:
                        await client.cancel_order("BTCUSDT", order_id)
                    except ExchangeError as error:  # filled meanwhile
                        assert error.code == "unknown_order"
                    continue
                open_orders.append((owner, order_id))
            side = rng.choice(["buy", "sell"])
            qty = Decimal(rng.randint(2, 20)) / 1000
            price = Decimal(60_000 + rng.randint(-30, 30) * 10)
            if roll > 0.9:
                order = await client.place_order("BTCUSDT", side, qty, type="market")
            else:
                order = await client.place_order("BTCUSDT", side, qty, price)
            if order.is_open:
                open_orders.append((client, order.order_id))

    await asyncio.gather(*(act(client) for client in traders))
    await equal_to_gateway(system, live)
    bid, ask = live.best_bid, live.best_ask
    assert bid is not None and ask is not None and bid[0] < ask[0]
    assert live.book.spread == ask[0] - bid[0]

    # a delta that skips an update_id, as if one had been lost: the book resubscribes and is
    # rebuilt from a fresh snapshot, and goes on following
    skipped_id = (live.update_id or 0) + 2
    skipped = {"type": "delta", "symbol": "BTCUSDT", "first_update_id": skipped_id}
    skipped |= {"update_id": skipped_id}
    skipped |= {"bids": [["1.0", "5.000"]], "asks": []}
    frame = {"channel": "book.BTCUSDT", "seq": 10_000, "data": skipped}
    watcher._frame(json.dumps(frame | {"seq": live._expected}))
    assert live.resyncs == 1 and not live.book.synced
    await asyncio.wait_for(live.wait_synced(), WAIT_S)
    assert Decimal("1.0") not in live.book.bids
    await traders[0].place_order("BTCUSDT", "buy", "0.002", "59000")
    await equal_to_gateway(system, live)
    assert live.resyncs == 1

    await live.close()
    await asyncio.gather(watcher.close(), *(client.close() for client in traders))
