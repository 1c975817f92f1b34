"""The Binance front's signatures, keys, clocks, limits and error codes, as Binance defines
them, over raw HTTP against the running front (engine and broker real).
"""

import time
from pathlib import Path
from typing import Any

import pytest
from binance_system import BinanceSystem

from services.binance import signing

# Binance's documented example (Spot API docs, "SIGNED endpoint examples for POST
# /api/v3/order"): the key, the secret, and the signatures of the example's parameters.
DOC_SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
DOC_QUERY = "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC"
DOC_BODY = "quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559"


def test_binance_documented_signatures_verify() -> None:
    """Example 1 (all in the body), and example 3 (query and body mixed: concatenated as
    received, no separator)."""
    whole = f"{DOC_QUERY}&{DOC_BODY}"
    assert signing.sign(DOC_SECRET, whole) == (
        "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"
    )
    signed_body = (
        f"{DOC_BODY}&signature=0fd168b8ddb4876a0358a8d14d0c9f3da0e9b20c5d52b2a00fcf7d1c602f9a77"
    )
    payload, signature = signing.rest_payload(DOC_QUERY, signed_body)
    assert payload == DOC_QUERY + DOC_BODY
    signing.verify(DOC_SECRET, payload, signature)


@pytest.fixture
async def system(kafka_bootstrap: str, tmp_path: Path) -> Any:
    async with BinanceSystem(kafka_bootstrap, tmp_path, connection_request_limit=100) as running:
        yield running


async def test_keys_signatures_clock_and_limits(system: BinanceSystem) -> None:
    api_key, secret = await system.account("1000")
    account = "/fapi/v2/account"
    assert (await system.signed("GET", account, api_key, secret))["totalWalletBalance"] == (
        "1000.00000000"
    )
    # unknown parameters are ignored, as Binance does
    await system.signed("GET", account, api_key, secret, ccxtExtra="1", symbol="BTCUSDT")

    status, body = await system.request("GET", account, "", "", timestamp=1)
    assert (status, body["code"]) == (401, -2014)
    status, body = await system.request("GET", account, "f" * 48, secret)
    assert (status, body["code"]) == (401, -2015)
    status, body = await system.request("GET", account, api_key, "not-the-secret")
    assert (status, body["code"]) == (400, -1022)

    stale = int(time.time() * 1000) - 10_000
    query = f"timestamp={stale}"
    status, body = await _raw(system, account, api_key, query, signing.sign(secret, query))
    assert (status, body["code"]) == (400, -1021)
    query = f"timestamp={stale}&recvWindow=60000"  # within a wider window it is fine
    status, body = await _raw(system, account, api_key, query, signing.sign(secret, query))
    assert status == 200, body

    status, body = await system.request(
        "GET", "/fapi/v1/order", api_key, secret, symbol="BTCUSDT", orderId=999
    )
    assert (status, body["code"]) == (400, -2013)
    status, body = await system.request(
        "DELETE", "/fapi/v1/order", api_key, secret, symbol="BTCUSDT", orderId=999
    )
    assert (status, body["code"]) == (400, -2011)
    status, body = await system.request(
        "POST",
        "/fapi/v1/order",
        api_key,
        secret,
        symbol="BTCUSDT",
        side="BUY",
        type="LIMIT",
        quantity="1",
        price="60000",
    )
    assert (status, body["code"]) == (400, -2019)
    status, body = await system.request("GET", "/fapi/v1/depth", symbol="NOPE")
    assert (status, body["code"]) == (400, -1121)

    while True:  # the IP's request weight runs out: -1003, HTTP 429 and Retry-After
        async with system.http.get(f"{system.url}/fapi/v1/time") as response:
            if response.status == 429:
                assert (await response.json())["code"] == -1003
                assert int(response.headers["Retry-After"]) >= 1
                break
            assert response.status == 200


async def _raw(
    system: BinanceSystem, path: str, api_key: str, query: str, signature: str
) -> tuple[int, Any]:
    url = f"{system.url}{path}?{query}&signature={signature}"
    async with system.http.get(url, headers={"X-MBX-APIKEY": api_key}) as response:
        return response.status, await response.json()


async def test_orders_income_and_listen_keys_over_raw_rest(system: BinanceSystem) -> None:
    """``ACK`` against ``RESULT``, an algo order by its client id, the income history, and a
    listen key's life."""
    maker_key, maker_secret = await system.account("10000")
    taker_key, taker_secret = await system.account("10000")
    order = "/fapi/v1/order"
    resting = await system.signed(
        "POST",
        order,
        maker_key,
        maker_secret,
        symbol="BTCUSDT",
        side="SELL",
        type="LIMIT",
        quantity="0.020",
        price="60000",
        timeInForce="GTC",
        newClientOrderId="my-ask-1",
    )
    assert (resting["clientOrderId"], resting["status"], resting["price"]) == (
        "my-ask-1",
        "NEW",
        "60000.0",
    )
    ack = await system.signed(
        "POST",
        order,
        taker_key,
        taker_secret,
        symbol="BTCUSDT",
        side="BUY",
        type="MARKET",
        quantity="0.010",
        newOrderRespType="ACK",
    )
    assert (ack["status"], ack["executedQty"]) == ("NEW", "0")  # as accepted
    result = await system.signed(
        "GET", order, taker_key, taker_secret, symbol="BTCUSDT", orderId=ack["orderId"]
    )
    assert (result["status"], result["executedQty"], result["avgPrice"]) == (
        "FILLED",
        "0.010",
        "60000.00000",
    )
    found = await system.signed(
        "GET", order, maker_key, maker_secret, symbol="BTCUSDT", origClientOrderId="my-ask-1"
    )
    assert (found["orderId"], found["status"]) == (resting["orderId"], "PARTIALLY_FILLED")

    algo = await system.signed(
        "POST",
        "/fapi/v1/algoOrder",
        taker_key,
        taker_secret,
        algoType="CONDITIONAL",
        symbol="BTCUSDT",
        side="SELL",
        type="STOP_MARKET",
        quantity="0.010",
        triggerPrice="55000",
        reduceOnly="true",
        clientAlgoId="my-stop",
    )
    assert (algo["algoStatus"], algo["triggerPrice"], algo["clientAlgoId"]) == (
        "NEW",
        "55000.0",
        "my-stop",
    )
    listed = await system.signed("GET", "/fapi/v1/openAlgoOrders", taker_key, taker_secret)
    assert [a["algoId"] for a in listed] == [algo["algoId"]]
    assert await system.signed("GET", "/fapi/v1/openOrders", taker_key, taker_secret) == []
    cancelled = await system.signed(
        "DELETE", "/fapi/v1/algoOrder", taker_key, taker_secret, algoId=algo["algoId"]
    )
    assert cancelled["code"] == "200"

    income = await system.signed("GET", "/fapi/v1/income", taker_key, taker_secret)
    assert [(i["incomeType"], i["income"]) for i in income] == [
        ("TRANSFER", "10000.00000000"),
        ("COMMISSION", "-0.30000000"),  # 0.05 % of 600 USDT
    ]

    status, body = await system.request("POST", "/fapi/v1/listenKey", taker_key)
    key = body["listenKey"]
    assert status == 200 and len(key) >= 32
    status, again = await system.request("POST", "/fapi/v1/listenKey", taker_key)
    assert again["listenKey"] == key  # one key per account, as on Binance
    assert (await system.request("PUT", "/fapi/v1/listenKey", taker_key))[0] == 200
    assert (await system.request("DELETE", "/fapi/v1/listenKey", taker_key))[0] == 200
    status, body = await system.request("PUT", "/fapi/v1/listenKey", taker_key)
    assert (status, body["code"]) == (400, -1125)
