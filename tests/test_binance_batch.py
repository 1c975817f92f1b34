"""Binance's batch endpoints (``/fapi/v1/batchOrders``: place, cancel, modify) over raw REST
against the running front (engine and broker real): each item answered in order, as its own
request would be, and a bad list refused whole.
"""

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from binance_system import BinanceSystem

BATCH = "/fapi/v1/batchOrders"


@pytest.fixture
async def system(kafka_bootstrap: str, tmp_path: Path) -> Any:
    async with BinanceSystem(kafka_bootstrap, tmp_path) as running:
        yield running


def _json(value: object) -> str:
    """A list parameter as Binance's docs send it: JSON, percent-encoded."""
    return quote(json.dumps(value, separators=(",", ":")), safe="")


def _bid(price: str, quantity: str = "0.010", **more: str) -> dict[str, str]:
    order = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC"}
    return order | {"quantity": quantity, "price": price} | more


async def test_a_batch_answers_each_order_in_order(
    system: BinanceSystem, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One order off the tick grid (refused before the engine), one beyond the margin
    (refused by the engine): the others are placed, in one record, and rest in the book."""
    api_key, secret = await system.account("10000")
    sender = system.front.sender
    records: list[int] = []
    send = sender._send

    async def counted(envelopes: list[Any]) -> None:
        records.append(len(envelopes))
        await send(envelopes)

    monkeypatch.setattr(sender, "_send", counted)
    placed = await system.signed(
        "POST",
        BATCH,
        api_key,
        secret,
        batchOrders=_json(
            [
                _bid("59000", newClientOrderId="bid-a"),
                _bid("59000.05"),
                _bid("59100", newClientOrderId="bid-b", newOrderRespType="RESULT"),
            ]
        ),
    )
    assert [p.get("clientOrderId", p.get("code")) for p in placed] == ["bid-a", -1111, "bid-b"]
    assert [placed[0]["status"], placed[2]["price"]] == ["NEW", "59100.0"]
    assert records == [2]
    beyond = await system.signed(
        "POST",
        BATCH,
        api_key,
        secret,
        batchOrders=_json([_bid("59000", "10"), _bid("58900", newClientOrderId="bid-c")]),
    )
    assert [beyond[0]["code"], beyond[1]["clientOrderId"]] == [-2019, "bid-c"]

    listed = await system.signed("GET", "/fapi/v1/openOrders", api_key, secret)
    assert sorted(o["clientOrderId"] for o in listed) == ["bid-a", "bid-b", "bid-c"]
    status, book = await system.request("GET", "/fapi/v1/depth", symbol="BTCUSDT")
    assert status == 200
    assert book["bids"] == [["59100.0", "0.010"], ["59000.0", "0.010"], ["58900.0", "0.010"]]

    status, body = await system.request(
        "POST", BATCH, api_key, secret, batchOrders=_json([_bid("59000")] * 6)
    )
    assert (status, body["code"]) == (400, -4082)
    status, body = await system.request(
        "POST", BATCH, api_key, secret, batchOrders=_json(_bid("59000"))
    )
    assert (status, body["code"]) == (400, -1130)
    assert len(await system.signed("GET", "/fapi/v1/openOrders", api_key, secret)) == 3


async def test_batch_cancel_and_modify(system: BinanceSystem) -> None:
    """Cancels by order id and by client id, an unknown one answered ``-2011`` among them;
    modifies, an unknown order answered ``-2013``."""
    api_key, secret = await system.account("10000")
    bids = [_bid(price, newClientOrderId=f"bid-{n}") for n, price in enumerate(["59000", "59100"])]
    bids += [_bid("59200"), _bid("59300")]
    placed = await system.signed("POST", BATCH, api_key, secret, batchOrders=_json(bids))
    ids = [p["orderId"] for p in placed]

    modified = await system.signed(
        "PUT",
        BATCH,
        api_key,
        secret,
        batchOrders=_json(
            [
                {
                    "symbol": "BTCUSDT",
                    "side": "BUY",
                    "orderId": ids[2],
                    "quantity": "0.020",
                    "price": "58000",
                },
                {
                    "symbol": "BTCUSDT",
                    "side": "BUY",
                    "orderId": 999_999,
                    "quantity": "0.020",
                    "price": "58000",
                },
                {
                    "symbol": "BTCUSDT",
                    "side": "BUY",
                    "origClientOrderId": "bid-0",
                    "quantity": "0.030",
                    "price": "58500",
                },
            ]
        ),
    )
    assert [(m.get("orderId"), m.get("origQty"), m.get("price")) for m in modified] == [
        (ids[2], "0.020", "58000.0"),
        (None, None, None),
        (ids[0], "0.030", "58500.0"),
    ]
    assert modified[1]["code"] == -2013

    by_id = await system.signed(
        "DELETE",
        BATCH,
        api_key,
        secret,
        symbol="BTCUSDT",
        orderIdList=_json([ids[2], 999_999, ids[3]]),
    )
    assert [c.get("status", c.get("code")) for c in by_id] == ["CANCELED", -2011, "CANCELED"]
    assert [by_id[0]["orderId"], by_id[2]["orderId"]] == [ids[2], ids[3]]
    by_client = await system.signed(
        "DELETE",
        BATCH,
        api_key,
        secret,
        symbol="BTCUSDT",
        origClientOrderIdList=_json(["nope", "bid-1", "bid-0"]),
    )
    assert [c.get("clientOrderId", c.get("code")) for c in by_client] == [-2011, "bid-1", "bid-0"]
    assert await system.signed("GET", "/fapi/v1/openOrders", api_key, secret) == []

    status, body = await system.request(
        "DELETE", BATCH, api_key, secret, symbol="BTCUSDT", orderIdList=_json(list(range(11)))
    )
    assert (status, body["code"]) == (400, -1130)


async def test_a_batch_counts_five_against_the_order_rate(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """Binance's count on its 10-second order limit: 5 for a batch, whatever its length."""
    async with BinanceSystem(kafka_bootstrap, tmp_path, account_order_limit=7) as system:
        api_key, secret = await system.account("10000")
        batch = _json([_bid("59000")])
        await system.signed("POST", BATCH, api_key, secret, batchOrders=batch)
        status, body = await system.request("POST", BATCH, api_key, secret, batchOrders=batch)
        assert (status, body["code"]) == (429, -1015)
        # the refused batch spent nothing: 2 of the 7 are left for single orders
        await system.signed("POST", "/fapi/v1/order", api_key, secret, **_bid("59000"))
