"""The gateway end to end: real websocket clients, a gateway and the engine on the real broker.

Why end to end: the gateway's promises are about what a client sees (one answer per request,
from the engine's result; pushes in order with gap-free sequence numbers; another account's
orders invisible; a slow client cut off while others go on), which only real sockets, the
real command and event logs and the real engine can show.
"""

import asyncio
import contextlib
import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from gateway_system import WAIT_S, Client, System, until
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from price_services import publish_ticks, send_commands, start_funding, start_oracle

from exchange.default_markets import DEFAULT_MARKETS
from exchange.engine_commands import MarkPrice
from services.gateway.auth import key_hash, sign_login
from services.gateway.config import gateway_config
from services.gateway.server import Gateway
from services.prices import IndexTick


@pytest.fixture
async def system(kafka_bootstrap: str, tmp_path: Path) -> Any:
    async with System(kafka_bootstrap, tmp_path) as running:
        yield running


def login_fields(api_key: str, secret: str, **changes: Any) -> dict[str, Any]:
    """A login request's fields, signed; ``changes`` replace any of them after signing."""
    timestamp = changes.get("timestamp", int(time.time() * 1000))
    nonce = uuid.uuid4().hex
    fields = {"api_key": api_key, "timestamp": timestamp, "nonce": nonce}
    return fields | {"signature": sign_login(secret, timestamp, nonce)} | changes


async def test_accounts_and_logins(system: System) -> None:
    client = await system.connect()
    assert (await client.fail("deposit", amount="100"))["code"] == "unauthenticated"
    created = await client.ok("create_account")
    api_key, secret = created["api_key"], created["api_secret"]
    assert created["account"] >= 1 << 20
    second = await client.ok("create_account")
    assert second["account"] == created["account"] + 1 and second["api_key"] != api_key

    good = login_fields(api_key, secret)
    assert (await client.ok("login", **good)) == {"account": created["account"]}
    assert (await client.fail("login", **login_fields(api_key, secret)))["code"] == (
        "already_logged_in"
    )

    other = await system.connect()
    bad = await other.fail("login", **login_fields(api_key, secret, signature="ab" * 32))
    unknown = await other.fail("login", **login_fields("f" * 48, secret))
    assert (
        bad
        == unknown
        == {
            "code": "invalid_signature",
            "message": "unknown API key or wrong signature",
        }
    )
    stale = login_fields(api_key, secret, timestamp=int(time.time() * 1000) - 60_000)
    assert (await other.fail("login", **stale))["code"] == "stale_timestamp"
    assert (await other.fail("login", **good))["code"] == "replayed_nonce"
    assert (await other.fail("open_orders"))["code"] == "unauthenticated"
    await other.login(api_key, secret)  # a fresh nonce works: two connections, one account
    assert other.account == created["account"]
    await client.close()
    await other.close()


async def test_a_login_used_on_one_gateway_instance_is_refused_on_another(system: System) -> None:
    """Two instances on the same logs: the engine orders every instance's logins, so a captured
    login frame that passed on one cannot pass again on the other."""
    second = Gateway(gateway_config(system.settings), system.settings, DEFAULT_MARKETS)
    stop = asyncio.Event()
    running = asyncio.create_task(second.run(stop))
    try:
        await asyncio.wait_for(until(lambda: second.ready), WAIT_S)
        here = await system.connect()
        created = await here.ok("create_account")
        api_key, secret = created["api_key"], created["api_secret"]
        frame = login_fields(api_key, secret)
        assert await here.ok("login", **frame) == {"account": created["account"]}
        hashed = key_hash(api_key)
        await asyncio.wait_for(until(lambda: hashed in second.model.accounts), WAIT_S)
        there = Client(await system.http.ws_connect(f"http://127.0.0.1:{second.port}/ws"))
        assert (await there.fail("login", **frame))["code"] == "replayed_nonce"
        await there.login(api_key, secret)  # a fresh nonce passes on either instance
        assert there.account == created["account"]
        await here.close()
        await there.close()
    finally:
        stop.set()
        await asyncio.wait_for(running, WAIT_S)


async def test_deposit_place_query_amend_and_cancel(system: System) -> None:
    trader = await system.trader(deposit="5000")
    assert await trader.ok("balances") == {
        "asset": "USDT",
        "wallet": "5000.00000000",
        "isolated": "0.00000000",
        "order_margin": "0.00000000",
        "available": "5000.00000000",
    }
    assert (await trader.fail("deposit", amount="100000"))["code"] == "faucet_cap"

    order = await trader.ok("place_order", symbol="BTCUSDT", side="buy", qty="0.010", price="60000")
    assert (order["status"], order["price"], order["qty"], order["open_qty"]) == (
        "new",
        "60000.0",
        "0.010",
        "0.010",
    )
    order_id = order["order_id"]
    assert await trader.ok("open_orders", symbol="BTCUSDT") == [order]
    assert await trader.ok("order", symbol="BTCUSDT", order_id=order_id) == order
    # the order holds 600 / 20x = 30 of initial margin and its 5 bp taker fee, 0.30 (no mark:
    # no open loss), in the engine's reckoning, carried by its events
    balances = await trader.ok("balances")
    assert (balances["order_margin"], balances["available"]) == ("30.30000000", "4969.70000000")

    amended = await trader.ok(
        "amend_order", symbol="BTCUSDT", order_id=order_id, price="59000", qty="0.02"
    )
    assert (amended["price"], amended["qty"]) == ("59000.0", "0.020")
    balances = await trader.ok("balances")  # 1,180 / 20 + 0.59
    assert (balances["order_margin"], balances["available"]) == ("59.59000000", "4940.41000000")

    cancelled = await trader.ok("cancel_order", symbol="BTCUSDT", order_id=order_id)
    assert (cancelled["status"], cancelled["end_reason"]) == ("cancelled", "user")
    assert await trader.ok("open_orders") == []
    balances = await trader.ok("balances")
    assert (balances["order_margin"], balances["available"]) == ("0.00000000", "5000.00000000")
    again = await trader.fail("cancel_order", symbol="BTCUSDT", order_id=order_id)
    assert again["code"] == "unknown_order"

    # the gateway's own checks, then the engine's refusals with the engine's reasons
    off_grid = await trader.fail(
        "place_order", symbol="BTCUSDT", side="buy", qty="0.01", price="60000.05"
    )
    assert off_grid == {
        "code": "invalid_value",
        "message": "price '60000.05' is not a multiple of 0.1",
    }
    typo = await trader.fail(
        "place_order", symbol="BTCUSDT", side="buy", qty="0.01", price="1", postonly=True
    )
    assert typo == {
        "code": "invalid_request",
        "message": "Object contains unknown field `postonly`",
    }
    too_big = await trader.fail("place_order", symbol="BTCUSDT", side="buy", qty="5", price="60000")
    assert too_big["code"] == "insufficient_margin"
    shape = await trader.fail("place_order", symbol="BTCUSDT", side="buy", qty="0.01")
    assert shape["code"] == "invalid_order"  # a limit order needs a price: the engine says so
    assert (await trader.fail("cancel_all", symbol="XYZ"))["code"] == "unknown_market"
    assert (await trader.fail("set_leverage", symbol="BTCUSDT", leverage=500))["code"] == (
        "invalid_leverage"
    )
    assert await trader.ok("set_leverage", symbol="BTCUSDT", leverage=10) == {
        "symbol": "BTCUSDT",
        "leverage": 10,
    }
    assert await trader.ok("set_margin_mode", symbol="ETHUSDT", mode="isolated") == {
        "symbol": "ETHUSDT",
        "mode": "isolated",
    }
    no_position = await trader.fail("adjust_margin", symbol="ETHUSDT", amount="10", action="add")
    assert no_position["code"] == "no_position"
    positions = {p["symbol"]: p for p in await trader.ok("positions")}
    assert (positions["BTCUSDT"]["leverage"], positions["ETHUSDT"]["margin_mode"]) == (
        10,
        "isolated",
    )
    await trader.close()


async def test_orders_by_client_order_id(system: System) -> None:
    """A label given at placement is in every view of the order, names it for ``order``,
    ``amend_order`` and ``cancel_order``, is refused while the account's order with it is
    open (in that market), and is free again once that order has ended."""
    trader, other = await system.trader(), await system.trader()
    await trader.ok("subscribe", channel="orders")
    bid = {"symbol": "BTCUSDT", "side": "buy", "qty": "0.010", "price": "59000"}
    first = await trader.ok("place_order", **bid, client_order_id="grid-1")
    assert (first["client_order_id"], first["status"]) == ("grid-1", "new")
    assert (await trader.push("orders"))["data"] == first
    plain = await trader.ok("place_order", **bid)
    assert plain["client_order_id"] is None
    assert await trader.ok("order", symbol="BTCUSDT", client_order_id="grid-1") == first
    assert await trader.ok("open_orders", symbol="BTCUSDT") == [first, plain]

    # the same label again while its order is open: the engine's refusal, the first untouched
    ask = {"symbol": "BTCUSDT", "side": "sell", "qty": "0.005", "price": "61000"}
    duplicate = await trader.fail("place_order", **ask, client_order_id="grid-1")
    assert duplicate == {
        "code": "duplicate_client_order_id",
        "message": "client order id 'grid-1' is live",
    }
    assert await trader.ok("order", symbol="BTCUSDT", client_order_id="grid-1") == first
    assert await trader.ok("open_orders", symbol="BTCUSDT") == [first, plain]
    # labels are per account and market
    eth = await trader.ok(
        "place_order",
        symbol="ETHUSDT",
        side="buy",
        qty="0.1",
        price="3000",
        client_order_id="grid-1",
    )
    assert eth["client_order_id"] == "grid-1"
    theirs = await other.ok("place_order", **bid, client_order_id="grid-1")
    assert theirs["order_id"] != first["order_id"]

    # another account's label is as unknown as one nobody uses: the same answer
    unknown = {
        "code": "unknown_order",
        "message": "no order with client_order_id 'grid-9' of this account in BTCUSDT",
    }
    assert await trader.fail("order", symbol="BTCUSDT", client_order_id="grid-9") == unknown
    await trader.ok("cancel_order", symbol="BTCUSDT", order_id=plain["order_id"])
    nine = {"symbol": "BTCUSDT", "client_order_id": "grid-9"}
    await other.ok("place_order", **bid, client_order_id="grid-9")
    assert await trader.fail("cancel_order", **nine) == unknown
    assert await trader.fail("amend_order", **nine, price="59000") == unknown

    amended = await trader.ok(
        "amend_order", symbol="BTCUSDT", client_order_id="grid-1", price="59100"
    )
    assert (amended["order_id"], amended["price"], amended["client_order_id"]) == (
        first["order_id"],
        "59100.0",
        "grid-1",
    )
    cancelled = await trader.ok("cancel_order", symbol="BTCUSDT", client_order_id="grid-1")
    assert (cancelled["order_id"], cancelled["status"]) == (first["order_id"], "cancelled")
    pushed = await trader.push_where("orders", order_id=first["order_id"], status="cancelled")
    assert pushed["data"]["client_order_id"] == "grid-1"
    # a finished order is still found by its label; cancelling it again is the engine's no
    assert await trader.ok("order", symbol="BTCUSDT", client_order_id="grid-1") == cancelled
    again = await trader.fail("cancel_order", symbol="BTCUSDT", client_order_id="grid-1")
    assert again["code"] == "unknown_order"

    # free again: a new order takes the label, and the label finds the new one
    second = await trader.ok("place_order", **ask, client_order_id="grid-1")
    assert second["order_id"] != first["order_id"] and second["client_order_id"] == "grid-1"
    assert await trader.ok("order", symbol="BTCUSDT", client_order_id="grid-1") == second
    old = await trader.ok("order", symbol="BTCUSDT", order_id=first["order_id"])
    assert (old["status"], old["client_order_id"]) == ("cancelled", "grid-1")

    # exactly one of the two names; a label off the character rule is refused by name
    both = await trader.fail("order", symbol="BTCUSDT", order_id=1, client_order_id="grid-1")
    neither = await trader.fail("cancel_order", symbol="BTCUSDT")
    assert both == {
        "code": "invalid_request",
        "message": "give order_id or client_order_id, not both",
    }
    assert neither == {"code": "invalid_request", "message": "give order_id or client_order_id"}
    bad = await trader.fail("place_order", **ask, client_order_id="no spaces")
    assert bad["code"] == "invalid_request" and bad["message"].endswith("`$.client_order_id`")
    await asyncio.gather(trader.close(), other.close())


async def test_an_order_is_cancelled_by_its_label_before_its_placement_is_answered(
    system: System,
) -> None:
    """The engine looks a cancel's label up among the account's live orders: a bot can send
    the cancel right behind the placement, without waiting for the placement's answer."""
    trader = await system.trader()
    bid = {"symbol": "BTCUSDT", "side": "buy", "qty": "0.010", "price": "59000"}
    placed, cancelled = await asyncio.gather(
        trader.ok("place_order", **bid, client_order_id="quick"),
        trader.ok("cancel_order", symbol="BTCUSDT", client_order_id="quick"),
    )
    assert placed["order_id"] == cancelled["order_id"]
    assert (cancelled["status"], cancelled["client_order_id"]) == ("cancelled", "quick")
    assert await trader.ok("open_orders", symbol="BTCUSDT") == []
    await trader.close()


async def test_a_price_match_order_is_priced_from_the_book(system: System) -> None:
    trader, other = await system.trader(), await system.trader()
    await other.ok("place_order", symbol="BTCUSDT", side="buy", qty="0.010", price="59000")
    bid = {"symbol": "BTCUSDT", "side": "buy", "qty": "0.010"}
    queued = await trader.ok("place_order", **bid, price_match="QUEUE")
    assert (queued["price"], queued["price_match"], queued["status"]) == ("59000.0", "QUEUE", "new")
    too_deep = await trader.fail("place_order", **bid, price_match="QUEUE_5")
    assert too_deep["code"] == "invalid_order" and "no level 5" in too_deep["message"]
    plain = await trader.ok("place_order", **bid, price="58000")
    assert plain["price_match"] is None
    await asyncio.gather(trader.close(), other.close())


async def test_a_trade_between_two_accounts_reaches_both(system: System) -> None:
    maker, taker = await system.trader(), await system.trader()
    watcher = await system.connect()
    for client in (maker, taker):
        for channel in ("orders", "fills", "positions", "balances"):
            await client.ok("subscribe", channel=channel)
    await watcher.ok("subscribe", channel="trades.BTCUSDT")
    await watcher.ok("subscribe", channel="ticker.BTCUSDT")
    first_ticker = await watcher.push("ticker.BTCUSDT")
    assert first_ticker["seq"] == 1 and first_ticker["data"]["last"] is None

    ask = await maker.ok("place_order", symbol="BTCUSDT", side="sell", qty="0.05", price="60000")
    bought = await taker.ok("place_order", symbol="BTCUSDT", side="buy", qty="0.02", type="market")
    assert (bought["status"], bought["filled_qty"], bought["avg_price"]) == (
        "filled",
        "0.020",
        "60000.00000",
    )

    taker_fill = (await taker.push("fills"))["data"]
    maker_fill = (await maker.push("fills"))["data"]
    assert (taker_fill["role"], taker_fill["side"], taker_fill["qty"]) == ("taker", "buy", "0.020")
    assert (maker_fill["role"], maker_fill["side"], maker_fill["order_id"]) == (
        "maker",
        "sell",
        ask["order_id"],
    )
    assert taker_fill["trade_id"] == maker_fill["trade_id"]
    assert (taker_fill["fee"], maker_fill["fee"]) == ("0.60000000", "0.24000000")
    maker_order = await maker.push_where("orders", status="partially_filled")
    assert maker_order["data"]["open_qty"] == "0.030"
    assert (await taker.push_where("positions", symbol="BTCUSDT"))["data"]["size"] == "0.020"
    assert (await maker.push_where("positions", symbol="BTCUSDT"))["data"]["size"] == "-0.020"
    balance = await taker.push("balances")
    assert balance["data"]["wallet"] == "9999.40000000"

    [trade] = (await watcher.push("trades.BTCUSDT"))["data"]
    assert (trade["price"], trade["qty"], trade["taker_side"]) == ("60000.0", "0.020", "buy")
    ticker = await watcher.push_where("ticker.BTCUSDT", last="60000.0")
    assert (ticker["data"]["best_ask"], ticker["data"]["best_ask_qty"]) == ("60000.0", "0.030")

    assert [f["role"] for f in await taker.ok("fills")] == ["taker"]
    assert (await maker.ok("fills", symbol="BTCUSDT"))[0]["trade_id"] == trade["trade_id"]
    opened = (taker_fill["realized_pnl"], maker_fill["realized_pnl"])
    assert opened == ("0.00000000", "0.00000000")  # both open a position

    # the taker sells half back 100 higher: the maker buys it back at a loss
    await maker.ok("cancel_order", symbol="BTCUSDT", order_id=ask["order_id"])
    await taker.ok("place_order", symbol="BTCUSDT", side="sell", qty="0.01", price="60100")
    await maker.ok("place_order", symbol="BTCUSDT", side="buy", qty="0.01", type="market")
    closing = [(await c.push("fills"))["data"] for c in (taker, maker)]
    assert [f["realized_pnl"] for f in closing] == ["1.00000000", "-1.00000000"]
    await asyncio.gather(maker.close(), taker.close(), watcher.close())


async def test_an_order_with_an_expire_time_ends_at_the_first_mark_after_it(
    system: System,
) -> None:
    """Good till date: the order rests until a mark price of its market at or after its
    ``expire_time`` (event time) comes through the engine; then it is pushed expired (``gtd``)
    and what it held is free again."""
    trader = await system.trader()
    await trader.ok("subscribe", channel="orders")
    expire_time = int(time.time() * 1000) + 60_000
    placed = await trader.ok(
        "place_order",
        symbol="BTCUSDT",
        side="buy",
        qty="0.01",
        price="59000",
        expire_time=expire_time,
        client_order_id="gtd-1",
    )
    assert (placed["status"], placed["expire_time"]) == ("new", expire_time)
    held = (await trader.ok("balances"))["available"]
    past = await trader.fail(
        "place_order", symbol="BTCUSDT", side="buy", qty="0.01", price="59000", expire_time=1
    )
    assert past["code"] == "invalid_order" and "expire_time" in past["message"]

    marks = system.gateway.model.marks
    early = MarkPrice(symbol="BTCUSDT", price=600_000)
    await send_commands(system.settings, [("mark-early", early)], time=expire_time - 1)
    await asyncio.wait_for(until(lambda: marks.get("BTCUSDT") == 600_000), WAIT_S)
    still = await trader.ok("order", symbol="BTCUSDT", order_id=placed["order_id"])
    assert still["status"] == "new"  # a mark one ms early leaves it
    due = MarkPrice(symbol="BTCUSDT", price=600_010)
    await send_commands(system.settings, [("mark-due", due)], time=expire_time)
    ended = await trader.push_where("orders", status="expired")
    assert (ended["data"]["order_id"], ended["data"]["end_reason"]) == (placed["order_id"], "gtd")
    assert (await trader.ok("order", symbol="BTCUSDT", client_order_id="gtd-1"))[
        "status"
    ] == "expired"
    assert (await trader.ok("balances"))["available"] != held  # its margin is free again
    await trader.close()


async def test_the_book_stream_is_a_snapshot_then_gap_free_deltas(system: System) -> None:
    trader = await system.trader()
    for price in ("59000", "59100"):
        await trader.ok("place_order", symbol="BTCUSDT", side="buy", qty="0.01", price=price)
    await trader.ok("place_order", symbol="BTCUSDT", side="sell", qty="0.02", price="61000")

    reader = await system.connect()
    assert await reader.ok("subscribe", channel="book.BTCUSDT") == {"channel": "book.BTCUSDT"}
    snapshot = await reader.push("book.BTCUSDT")
    assert snapshot["seq"] == 1
    assert snapshot["data"] == {
        "type": "snapshot",
        "symbol": "BTCUSDT",
        "first_update_id": 3,
        "update_id": 3,
        "bids": [["59100.0", "0.010"], ["59000.0", "0.010"]],
        "asks": [["61000.0", "0.020"]],
    }
    placed = await trader.ok(
        "place_order", symbol="BTCUSDT", side="buy", qty="0.005", price="59100"
    )
    await trader.ok("cancel_order", symbol="BTCUSDT", order_id=placed["order_id"])
    first, second = await reader.push("book.BTCUSDT"), await reader.push("book.BTCUSDT")
    assert [first["seq"], second["seq"]] == [2, 3]
    assert [first["data"]["update_id"], second["data"]["update_id"]] == [4, 5]
    assert first["data"]["first_update_id"] == 4 and second["data"]["first_update_id"] == 5
    assert first["data"]["bids"] == [["59100.0", "0.015"]] and first["data"]["type"] == "delta"
    assert second["data"]["bids"] == [["59100.0", "0.010"]]

    # a second subscription starts again: seq 1, a fresh snapshot at the current update id
    await reader.ok("subscribe", channel="book.BTCUSDT")
    again = await reader.push("book.BTCUSDT")
    assert (again["seq"], again["data"]["update_id"]) == (1, 5)
    await reader.ok("unsubscribe", channel="book.BTCUSDT")
    assert (await reader.fail("subscribe", channel="orders"))["code"] == "unauthenticated"
    assert (await reader.fail("subscribe", channel="candles.BTCUSDT"))["code"] == (
        "unknown_channel"
    )
    await asyncio.gather(trader.close(), reader.close())


async def test_an_account_sees_and_touches_only_its_own_orders(system: System) -> None:
    alice, bob = await system.trader(), await system.trader()
    order = await alice.ok("place_order", symbol="BTCUSDT", side="buy", qty="0.01", price="59000")
    order_id = order["order_id"]

    on_alices = [
        await bob.fail("cancel_order", symbol="BTCUSDT", order_id=order_id),
        await bob.fail("amend_order", symbol="BTCUSDT", order_id=order_id, qty="0.002"),
        await bob.fail("order", symbol="BTCUSDT", order_id=order_id),
    ]
    assert await bob.ok("open_orders") == []
    assert await bob.ok("cancel_all", symbol="BTCUSDT") == {"symbol": "BTCUSDT", "order_ids": []}
    assert (await alice.ok("order", symbol="BTCUSDT", order_id=order_id))["status"] == "new"

    never = order_id + 1_000_000  # an id nobody has
    on_nobodys = [
        await bob.fail("cancel_order", symbol="BTCUSDT", order_id=never),
        await bob.fail("amend_order", symbol="BTCUSDT", order_id=never, qty="0.002"),
        await bob.fail("order", symbol="BTCUSDT", order_id=never),
    ]
    expected = {
        "code": "unknown_order",
        "message": f"no order {order_id} of this account in BTCUSDT",
    }
    assert on_alices == [expected] * 3
    assert [
        e | {"message": e["message"].replace(str(never), str(order_id))} for e in on_nobodys
    ] == (on_alices)
    await asyncio.gather(alice.close(), bob.close())


async def test_rate_limits_answer_with_when_to_retry(kafka_bootstrap: str, tmp_path: Path) -> None:
    async with System(
        kafka_bootstrap,
        tmp_path,
        account_order_limit=3,
        account_order_window_ms=60_000,
        connection_request_limit=40,
        connection_request_window_ms=60_000,
    ) as system:
        trader = await system.trader()
        place = {"symbol": "BTCUSDT", "side": "buy", "qty": "0.01", "price": "59000"}
        for _ in range(3):
            await trader.ok("place_order", **place)
        limited = await trader.fail("place_order", **place)
        assert limited["code"] == "rate_limited"
        assert 0 < limited["retry_after_ms"] <= 20_000  # one order refills in 60 s / 3
        assert "account order" in limited["message"]
        # the account's limit holds across its connections; queries are not orders
        assert len(await trader.ok("open_orders")) == 3

        flooder = await system.connect()
        answers = [await flooder.call("ping") for _ in range(41)]
        assert all("result" in answer for answer in answers[:40])
        assert answers[40]["error"]["code"] == "rate_limited"
        assert answers[40]["error"]["retry_after_ms"] > 0
        await asyncio.gather(trader.close(), flooder.close())


async def test_a_slow_consumer_is_cut_off_and_the_others_go_on(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    async with System(
        kafka_bootstrap,
        tmp_path,
        send_buffer_bytes=64 * 1024,
        connection_request_limit=100_000,
    ) as system:
        trader = await system.trader()
        await trader.ok("subscribe", channel="book.BTCUSDT")
        await trader.push("book.BTCUSDT")

        # a client that asks and asks and never reads what it is sent
        slow = await system.http.ws_connect(f"{system.url}/ws")
        await slow.send_str(json.dumps({"id": 0, "op": "subscribe", "channel": "book.BTCUSDT"}))
        request = json.dumps({"id": 1, "op": "markets"})

        async def flood() -> None:
            with contextlib.suppress(ConnectionError):  # cut off while sending: the point
                while not system.gateway.slow_disconnects:
                    for _ in range(100):
                        await slow.send_str(request)
                    await asyncio.sleep(0.001)

        await asyncio.wait_for(flood(), WAIT_S)
        await asyncio.wait_for(until(lambda: system.gateway.slow_disconnects == 1), WAIT_S)

        # the other client trades and keeps receiving its answers and pushes, in order
        for n in range(5):
            price = str(58_000 + n)
            await trader.ok("place_order", symbol="BTCUSDT", side="buy", qty="0.01", price=price)
            delta = await trader.push("book.BTCUSDT")
            assert delta["seq"] == n + 2 and delta["data"]["bids"] == [[f"{price}.0", "0.010"]]
        assert system.gateway.status()[1].connections == 1

        async def drained() -> None:  # what the slow client was sent before the cut, then the end
            while not slow.closed:
                await slow.receive()

        await asyncio.wait_for(drained(), WAIT_S)
        await trader.close()


async def test_bad_frames_get_errors_and_a_huge_one_closes_only_its_connection(
    system: System,
) -> None:
    client, bystander = await system.connect(), await system.connect()
    await client.ws.send_str("{")
    await client.ws.send_bytes(b'{"id": 1, "op": "ping"}')
    await client.ws.send_str(json.dumps({"id": 2, "op": "ping", "pad": "x" * 20_000}))
    await client.ok("ping")
    assert [frame["error"]["code"] for frame in client.unmatched] == [
        "invalid_json",
        "binary_frame",
        "frame_too_large",
    ]
    assert all(frame["id"] is None for frame in client.unmatched)
    unknown = await client.call("transfer_all", to="me")
    assert unknown["error"] == {"code": "unknown_op", "message": "no op 'transfer_all'"}

    # above max_message_bytes the gateway reads no further: that connection alone is closed
    await client.ws.send_str("x" * (system.gateway.config.max_message_bytes + 1))
    await asyncio.wait_for(client._reader, WAIT_S)
    assert client.ws.close_code == 1009
    assert await bystander.ok("ping")
    await bystander.close()


FRAMES = st.one_of(
    st.binary(max_size=200),
    st.text(max_size=200),
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
        lambda children: (
            st.lists(children, max_size=4)
            | st.dictionaries(st.text(max_size=10), children, max_size=4)
        ),
        max_leaves=12,
    ).map(json.dumps),
    st.fixed_dictionaries(
        {
            "id": st.integers() | st.text(max_size=5),
            "op": st.sampled_from(
                ["place_order", "amend_order", "login", "subscribe", "deposit", "fills"]
            ),
        },
        optional={
            "symbol": st.sampled_from(["BTCUSDT", "ETHUSDT", "", "btcusdt"]),
            "side": st.sampled_from(["buy", "sell", "BUY"]),
            "qty": st.sampled_from(["0.01", "-1", "NaN", "1e99", "0.0001", ""]) | st.floats(),
            "price": st.sampled_from(["60000", "6e4", "0", "Infinity", "1" * 40]) | st.integers(),
            "type": st.sampled_from(["limit", "market", "stop_limit", "trailing_stop_market"]),
            "callback_rate": st.sampled_from(["0.01", "2", "-0.01", "abc"]),
            "order_id": st.integers(),
            "amount": st.sampled_from(["1", "0", "1e-9", "999999999"]),
            "channel": st.sampled_from(["book.BTCUSDT", "orders", "ticker.", "trades.ETHUSDT"]),
            "limit": st.integers(),
            "nonce": st.text(max_size=70),
            "timestamp": st.integers(),
        },
    ).map(json.dumps),
)


@pytest.fixture
async def fuzzed(system: System) -> Any:
    """A logged-in client of the fixture's gateway, shared by every example of the fuzz test."""
    client = await system.trader()
    yield system, client
    await client.close()


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(frames=st.lists(FRAMES, min_size=1, max_size=5))
async def test_malformed_frames_get_errors_and_never_break_the_gateway(
    fuzzed: tuple[System, Client], frames: list[str | bytes]
) -> None:
    system, client = fuzzed
    before = len(client.unmatched)
    for frame in frames:
        if isinstance(frame, bytes):
            await client.ws.send_bytes(frame)
        else:
            await client.ws.send_str(frame)
    # exactly one answer per frame (a command's comes when the engine has answered), and the
    # connection and the gateway still serve
    expected = before + len(frames)
    await asyncio.wait_for(until(lambda: len(client.unmatched) >= expected), WAIT_S)
    await client.ok("ping")
    assert len(client.unmatched) == expected
    for response in client.unmatched[before:]:
        assert ("result" in response) != ("error" in response)
        if "error" in response:
            assert set(response["error"]) >= {"code", "message"}
            assert response["error"]["code"] != "internal"
    assert not client.ws.closed and system.gateway.status()[0]


async def test_index_mark_and_funding_streams_and_the_funding_history(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """The oracle and the funding service beside the engine, funding every minute of event
    time, index ticks at 60,000.0: a client that never logs in sees the index, the mark and the
    predicted rate arrive, then the settlement on the funding channel and in the history.

    The ticks start at the first minute boundary after the orders, on the gateway's clock (which
    stamps its commands): so the engine records the positions at the boundary settled, as it
    would live, rather than settling a boundary older than its event time."""
    minute = 60_000
    async with System(kafka_bootstrap, tmp_path, settings={"funding_schedule": "60000"}) as system:
        services = [start_oracle(system.settings), start_funding(system.settings)]
        try:
            watcher = await system.connect()
            for channel in ("index.BTCUSDT", "mark.BTCUSDT", "funding.BTCUSDT"):
                await watcher.ok("subscribe", channel=channel)
            nothing_yet = await watcher.push("funding.BTCUSDT")
            assert nothing_yet == {
                "channel": "funding.BTCUSDT",
                "seq": 1,
                "data": {
                    "symbol": "BTCUSDT",
                    "predicted_rate": None,
                    "next_funding_time": None,
                    "last_rate": None,
                    "last_funding_time": None,
                },
            }
            assert await watcher.ok("funding_history", symbol="BTCUSDT") == []
            unknown = await watcher.fail("funding_history", symbol="BTCUSD")
            assert unknown["code"] == "unknown_market"

            long, short = await system.trader(), await system.trader()
            await short.ok("place_order", symbol="BTCUSDT", side="sell", qty="0.010", price="60000")
            bought = await long.ok(
                "place_order", symbol="BTCUSDT", side="buy", qty="0.010", price="60000", tif="IOC"
            )
            assert bought["status"] == "filled"
            start = (int(time.time() * 1000) // minute + 1) * minute
            boundary = start + minute
            # half a minute first: the funding service publishes only its latest estimate per
            # poll, so the estimate for the boundary shows before the boundary is passed
            await publish_ticks(system.settings, index_ticks(start, start + 30_000))

            index = await watcher.push("index.BTCUSDT")
            assert (index["seq"], index["data"]["price"], index["data"]["frozen"]) == (
                1,
                "60000.0",
                False,
            )
            assert [(s["source"], s["state"]) for s in index["data"]["sources"]] == [
                ("binance-capture", "included")
            ]
            mark = await watcher.push("mark.BTCUSDT")
            assert (mark["seq"], mark["data"]["index"], mark["data"]["next_funding_time"]) == (
                1,
                "60000.0",
                boundary,
            )
            assert mark["data"]["mark"] == "60000.0"
            estimate = await watcher.push_where("funding.BTCUSDT", next_funding_time=boundary)
            predicted = estimate["data"]["predicted_rate"]
            assert (estimate["seq"], predicted) == (2, "0.0000002")  # no premium: interest alone

            await publish_ticks(system.settings, index_ticks(start + 31_000, boundary))
            settled = await watcher.push_where("funding.BTCUSDT", last_funding_time=boundary)
            assert settled["data"]["last_rate"] == predicted
            history = await watcher.ok("funding_history", symbol="BTCUSDT", limit=10)
            assert history == [
                {
                    "symbol": "BTCUSDT",
                    "funding_time": boundary,
                    "rate": predicted,
                    "mark": "60000.0",
                    "positions": 2,
                    "paid": "0.00012000",  # 600 USDT × 0.0000002
                    "received": "0.00012000",
                    "remainder": "0.00000000",
                }
            ]
            await watcher.close()
        finally:
            for service in services:
                await service.finish()


def index_ticks(start: int, end: int) -> list[IndexTick]:
    """60,000.0 every second of event time in ``[start, end]``."""
    return [
        IndexTick(symbol="BTCUSDT", source="binance-capture", price=600_000, time=t)
        for t in range(start, end + 1, 1_000)
    ]
