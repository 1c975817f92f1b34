"""Client order ids through the Binance front, engine and broker real: the engine carries them,
so a front started afterwards (another instance, or this one restarted) shows them and finds
orders by them, and a label that one of the account's live orders in the market holds is
refused with ``-4116`` whichever instance sends it, until that order ends.
"""

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from binance_system import BinanceSystem, base_url
from gateway_system import WAIT_S, until
from test_binance_batch import BATCH, _bid, _json
from test_binance_ws import receive

ORDER = "/fapi/v1/order"
DUPLICATED = {"code": -4116, "msg": "ClientOrderId is duplicated."}


@pytest.fixture
async def system(kafka_bootstrap: str, tmp_path: Path) -> Any:
    async with BinanceSystem(kafka_bootstrap, tmp_path) as running:
        yield running


async def test_a_fresh_front_finds_orders_by_client_id_and_refuses_a_live_one(
    system: BinanceSystem,
) -> None:
    key, secret = await system.account("10000")
    first = await system.signed("POST", ORDER, key, secret, **_bid("59000", newClientOrderId="a"))
    assert first["clientOrderId"] == "a"
    plain = await system.signed("POST", ORDER, key, secret, **_bid("58000"))
    assert plain["clientOrderId"] == f"paper-{plain['orderId']}"
    stop = await system.signed(
        "POST",
        "/fapi/v1/algoOrder",
        key,
        secret,
        algoType="CONDITIONAL",
        symbol="BTCUSDT",
        side="BUY",
        type="STOP_MARKET",
        quantity="0.010",
        triggerPrice="65000",
        clientAlgoId="a-stop",
    )
    assert stop["clientAlgoId"] == "a-stop"
    status, body = await system.request(
        "POST", ORDER, key, secret, **_bid("59500", "0.020", newClientOrderId="a")
    )
    assert (status, body) == (400, DUPLICATED)

    fresh = await system.another_front()  # started after all of it: as after a restart
    found = await system.signed(
        "GET", ORDER, key, secret, front=fresh, symbol="BTCUSDT", origClientOrderId="a"
    )
    # the first order, untouched by the refused one
    assert (found["orderId"], found["clientOrderId"]) == (first["orderId"], "a")
    assert (found["price"], found["origQty"], found["status"]) == ("59000.0", "0.010", "NEW")
    by_made_up = await system.signed(
        "GET",
        ORDER,
        key,
        secret,
        front=fresh,
        symbol="BTCUSDT",
        origClientOrderId=f"paper-{plain['orderId']}",
    )
    assert by_made_up["orderId"] == plain["orderId"]
    algo = await system.signed(
        "GET", "/fapi/v1/algoOrder", key, secret, front=fresh, clientAlgoId="a-stop"
    )
    assert (algo["algoId"], algo["clientAlgoId"]) == (stop["algoId"], "a-stop")
    # live, though placed through another front
    status, body = await system.request(
        "POST", ORDER, key, secret, front=fresh, **_bid("59500", newClientOrderId="a")
    )
    assert (status, body) == (400, DUPLICATED)
    status, body = await system.request(
        "POST",
        "/fapi/v1/algoOrder",
        key,
        secret,
        front=fresh,
        **_bid("59500", type="STOP", triggerPrice="65000", clientAlgoId="a-stop"),
    )
    assert (status, body) == (400, DUPLICATED)
    assert len(await system.signed("GET", "/fapi/v1/openOrders", key, secret)) == 2  # + the algo

    status, listen = await system.request("POST", "/fapi/v1/listenKey", key, front=fresh)
    assert status == 200, listen
    ws_url = base_url(fresh).replace("http", "ws", 1)
    async with system.http.ws_connect(f"{ws_url}/ws/{listen['listenKey']}") as stream:
        await asyncio.wait_for(until(lambda: fresh.user_streams.connected() == 1), WAIT_S)
        cancelled = await system.signed(
            "DELETE", ORDER, key, secret, front=fresh, symbol="BTCUSDT", origClientOrderId="a"
        )
        assert (cancelled["orderId"], cancelled["clientOrderId"], cancelled["status"]) == (
            first["orderId"],
            "a",
            "CANCELED",
        )
        event = json.loads(await receive(stream))
        while event["e"] != "ORDER_TRADE_UPDATE":
            event = json.loads(await receive(stream))
        assert (event["o"]["i"], event["o"]["c"], event["o"]["x"]) == (
            first["orderId"],
            "a",
            "CANCELED",
        )

    again = await system.signed("POST", ORDER, key, secret, **_bid("57000", newClientOrderId="a"))
    assert again["orderId"] != first["orderId"]  # free once its order ended
    # each front reads the log at its own pace: the fresh one shows it once it has read it
    await asyncio.wait_for(until(lambda: fresh.model.offset >= system.front.model.offset), WAIT_S)
    found = await system.signed(
        "GET", ORDER, key, secret, front=fresh, symbol="BTCUSDT", origClientOrderId="a"
    )
    assert (found["orderId"], found["price"]) == (again["orderId"], "57000.0")


async def test_a_filled_orders_label_is_free_again_and_a_batch_repeat_is_refused(
    system: BinanceSystem,
) -> None:
    maker_key, maker_secret = await system.account("10000")
    key, secret = await system.account("10000")
    ask = {"symbol": "BTCUSDT", "side": "SELL", "type": "LIMIT", "timeInForce": "GTC"}
    await system.signed(
        "POST", ORDER, maker_key, maker_secret, **ask, quantity="0.030", price="60000"
    )
    take = {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.010"}
    taken = [
        await system.signed(
            "POST", ORDER, key, secret, **take, newClientOrderId="t", newOrderRespType="RESULT"
        )
        for _ in range(2)
    ]
    assert [(t["clientOrderId"], t["status"]) for t in taken] == [("t", "FILLED")] * 2
    found = await system.signed("GET", ORDER, key, secret, symbol="BTCUSDT", origClientOrderId="t")
    assert found["orderId"] == taken[1]["orderId"]  # the latest order of the label

    twins = [_bid("59000", newClientOrderId="twin"), _bid("59100", newClientOrderId="twin")]
    placed = await system.signed("POST", BATCH, key, secret, batchOrders=_json(twins))
    assert placed[0]["clientOrderId"] == "twin" and placed[1] == DUPLICATED
    cancelled = await system.signed(
        "DELETE",
        BATCH,
        key,
        secret,
        symbol="BTCUSDT",
        origClientOrderIdList=_json(["twin", "twin"]),
    )
    assert [c.get("status", c.get("code")) for c in cancelled] == ["CANCELED", -2011]
