"""The Binance front's pure parts: parameters, order translation, signatures of the WebSocket
API, error codes, candles. No broker: these are the rules the end-to-end tests rely on."""

import json

import pytest
from test_gateway_read_model import A, B, funded, order

from exchange.default_markets import BTCUSDT
from exchange.orders import OrderType, PriceMatch, Side, StpMode, TimeInForce, TriggerBy
from exchange.units import RATE_ONE
from services.binance import batch_params, client_orders, errors, formats, order_params, signing
from services.binance.errors import BinanceError
from services.binance.market_history import MINUTE_MS, Candles
from services.binance.params import Params, parse
from services.gateway.protocol import Failure


def test_query_and_body_merge_and_unknown_parameters_stay_unread() -> None:
    params = Params(parse("symbol=BTCUSDT&quantity=1", "quantity=2&newThing=x"))
    assert params.required("symbol") == "BTCUSDT" and params.required("quantity") == "2"
    with pytest.raises(BinanceError) as missing:
        params.required("price")
    assert missing.value.code == -1102


NOW = 1_795_000_000_000


def test_a_binance_order_becomes_the_engines() -> None:
    params = Params(
        {
            "side": "SELL",
            "type": "TRAILING_STOP_MARKET",
            "quantity": "0.010",
            "callbackRate": "1.5",
            "activationPrice": "62000",
            "workingType": "MARK_PRICE",
            "reduceOnly": "true",
            "selfTradePreventionMode": "EXPIRE_BOTH",
            "newOrderRespType": "RESULT",
            "newClientOrderId": "trail-1",
        }
    )
    command, response = order_params.place(params, BTCUSDT, 7, algo=False, now=NOW)
    order = command.order
    assert response is order_params.RespType.RESULT
    assert (order.side, order.type, order.qty) == (Side.SELL, OrderType.TRAILING_STOP_MARKET, 10)
    assert order.callback_rate == RATE_ONE * 15 // 1000  # 1.5 % is 0.015
    assert order.activation_price == 620_000 and order.trigger is TriggerBy.MARK
    assert order.reduce_only and order.stp is StpMode.EXPIRE_BOTH and order.account == 7
    assert order.client_order_id == "trail-1"  # the engine carries the client's label


def test_algo_orders_name_the_trigger_price_trigger_price() -> None:
    params = Params(
        {
            "side": "BUY",
            "type": "STOP",
            "quantity": "1",
            "price": "61000",
            "triggerPrice": "60500",
            "clientAlgoId": "stop-1",
        }
    )
    command, response = order_params.place(params, BTCUSDT, 1, algo=True, now=NOW)
    assert command.order.type is OrderType.STOP_LIMIT and command.order.stop_price == 605_000
    assert command.order.client_order_id == "stop-1"
    assert command.order.tif is TimeInForce.GTC and response is order_params.RespType.ACK


def test_a_gtd_order_is_the_engines_gtc_with_an_expiry_in_whole_seconds() -> None:
    params = {"side": "BUY", "type": "LIMIT", "quantity": "1", "price": "60000"}
    gtd = {"timeInForce": "GTD", "goodTillDate": str(NOW + 601_999)}
    command, _ = order_params.place(Params(params | gtd), BTCUSDT, 1, algo=False, now=NOW)
    assert command.order.tif is TimeInForce.GTC
    assert command.order.expire_time == NOW + 601_000  # the milliseconds dropped
    ignored = {"goodTillDate": "1"}  # only GTD reads it, as on Binance
    command, _ = order_params.place(Params(params | ignored), BTCUSDT, 1, algo=False, now=NOW)
    assert command.order.expire_time is None


def test_price_match_goes_to_the_engine_without_a_price() -> None:
    params = {"side": "BUY", "type": "LIMIT", "quantity": "0.010", "timeInForce": "GTX"}
    command, _ = order_params.place(
        Params(params | {"priceMatch": "queue_5"}), BTCUSDT, 1, algo=False, now=NOW
    )
    assert (command.order.price, command.order.price_match) == (None, PriceMatch.QUEUE_5)
    command, _ = order_params.place(
        Params(params | {"priceMatch": "NONE", "price": "60000"}), BTCUSDT, 1, algo=False, now=NOW
    )
    assert (command.order.price, command.order.price_match) == (600_000, None)
    for extra, code in (({"price": "60000"}, -1106), ({}, -1130)):
        bad = params | extra | {"priceMatch": "OPPONENT" if extra else "OPPONENT_3"}
        with pytest.raises(BinanceError) as refused:
            order_params.place(Params(bad), BTCUSDT, 1, algo=False, now=NOW)
        assert refused.value.code == code


def test_close_position_is_a_reduce_only_stop_for_the_largest_quantity() -> None:
    params = {"side": "SELL", "type": "TAKE_PROFIT_MARKET", "stopPrice": "65000"}
    for quantity in ({}, {"quantity": "0"}):
        close = Params(params | quantity | {"closePosition": "true"})
        command, _ = order_params.place(close, BTCUSDT, 1, algo=False, now=NOW)
        assert command.order.reduce_only and command.order.qty == BTCUSDT.max_qty
        assert formats.closes_position(command.order, BTCUSDT)
    plain = Params(params | {"quantity": "0.010", "reduceOnly": "true"})
    command, _ = order_params.place(plain, BTCUSDT, 1, algo=False, now=NOW)
    assert not formats.closes_position(command.order, BTCUSDT)


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"price": "60000.05"}, -1111),  # off the tick: refused, never rounded
        ({"side": "LONG"}, -1117),
        ({"type": "ICEBERG"}, -1116),
        ({"timeInForce": "GTE_GTC"}, -1115),
        ({"timeInForce": "GTD"}, -1102),  # without goodTillDate
        ({"timeInForce": "GTD", "goodTillDate": str(NOW + 600_000)}, -5040),  # not > 600 s
        ({"timeInForce": "GTD", "goodTillDate": "253402300799000"}, -5040),
        ({"positionSide": "LONG"}, -4061),
        ({"closePosition": "true"}, -4136),  # a LIMIT order
        ({"closePosition": "true", "type": "STOP_MARKET", "stopPrice": "59000"}, -4137),
        (
            {"closePosition": "true", "type": "STOP_MARKET", "stopPrice": "1", "quantity": "0"}
            | {"reduceOnly": "true"},
            -1106,
        ),
        ({"newClientOrderId": "bad id!"}, -1100),
        ({"newClientOrderId": "x" * 37}, -1100),
        ({"newClientOrderId": "ends-in-newline\n"}, -1100),
    ],
)
def test_refusals_name_binance_codes(changes: dict[str, str], code: int) -> None:
    params = {"side": "BUY", "type": "LIMIT", "quantity": "1", "price": "60000"} | changes
    with pytest.raises(BinanceError) as refused:
        order_params.place(Params(params), BTCUSDT, 1, algo=False, now=NOW)
    assert refused.value.code == code


def test_client_ids_are_the_orders_labels_else_made_from_their_ids() -> None:
    replay = funded()
    replay(order(account=A, side=Side.SELL, client_order_id="ask-1"))
    replay(order(account=A, side=Side.SELL))
    labelled, plain = replay.model.open_orders(A)
    assert [client_orders.shown(labelled), client_orders.shown(plain)] == ["ask-1", "paper-2"]
    model = replay.model
    assert client_orders.find(model, A, "BTCUSDT", "ask-1") == labelled.order_id
    assert client_orders.find(model, A, "BTCUSDT", "paper-2") == plain.order_id
    assert client_orders.find(model, B, "BTCUSDT", "ask-1") is None  # another account's
    assert client_orders.find(model, A, "ETHUSDT", "ask-1") is None  # another market's
    for unknown in ["ask-2", "paper-", "paper-²", "paper-1x", "paper-" + "9" * 19]:
        assert client_orders.find(model, A, "BTCUSDT", unknown) is None


def test_batch_orders_are_one_request_each_and_a_bad_list_refuses_the_batch() -> None:
    order = {"symbol": "BTCUSDT", "side": "BUY", "quantity": "0.010", "reduceOnly": True}
    items = batch_params.orders(
        Params({"batchOrders": json.dumps([order, {"symbol": {"nested": 1}}])})
    )
    assert isinstance(items[0], Params) and items[0].text("reduceOnly") == "true"
    assert isinstance(items[1], BinanceError) and items[1].code == -1130  # that item's answer
    for batch, code in [([order] * 6, -4082), ([], -4082), ([order, 1], -1130), ({}, -1130)]:
        with pytest.raises(BinanceError) as refused:
            batch_params.orders(Params({"batchOrders": json.dumps(batch)}))
        assert refused.value.code == code
    with pytest.raises(BinanceError) as refused:
        batch_params.orders(Params({"batchOrders": "[{"}))
    assert refused.value.code == -1130


def test_batch_cancels_name_orders_by_one_id_list() -> None:
    by_id = batch_params.cancels(Params({"orderidlist": "[7,8]"}), "BTCUSDT")  # ccxt's spelling
    assert [p.values for p in by_id if isinstance(p, Params)] == [
        {"symbol": "BTCUSDT", "orderId": "7"},
        {"symbol": "BTCUSDT", "orderId": "8"},
    ]
    by_client = batch_params.cancels(Params({"origClientOrderIdList": '["a"]'}), "BTCUSDT")
    assert [p.values for p in by_client if isinstance(p, Params)] == [
        {"symbol": "BTCUSDT", "origClientOrderId": "a"}
    ]
    for params, code in [
        ({}, -1102),
        ({"orderIdList": "[1]", "origClientOrderIdList": '["a"]'}, -1130),
        ({"orderIdList": json.dumps(list(range(11)))}, -1130),
        ({"orderIdList": "7"}, -1130),
    ]:
        with pytest.raises(BinanceError) as refused:
            batch_params.cancels(Params(params), "BTCUSDT")
        assert refused.value.code == code


def test_websocket_api_signs_the_sorted_parameters() -> None:
    params = {"symbol": "BTCUSDT", "apiKey": "k", "timestamp": 5, "reduceOnly": True}
    assert signing.ws_payload(params | {"signature": "x"}) == (
        "apiKey=k&reduceOnly=true&symbol=BTCUSDT&timestamp=5"
    )


def test_engine_reasons_as_binance_codes() -> None:
    assert errors.from_failure(Failure("insufficient_margin", "m")).code == -2019
    assert errors.from_failure(Failure("unknown_order", "m"), cancelling=True).code == -2011
    assert errors.from_failure(Failure("unknown_order", "m")).code == -2013
    duplicated = errors.from_failure(Failure("duplicate_client_order_id", "m"))
    assert (duplicated.code, duplicated.msg) == (-4116, "ClientOrderId is duplicated.")
    limited = errors.from_failure(Failure("rate_limited", "m", 1_500))
    assert (limited.code, limited.status, limited.retry_after_s) == (-1003, 429, 2)


def test_candles_merge_minutes_into_wider_intervals() -> None:
    candles = Candles(minutes=10)
    for minute, price in enumerate([100, 105, 95, 102]):
        candles.add(minute * MINUTE_MS + 1, price, qty=2, taker_buy=minute % 2 == 0)
    (five,) = candles.query(5 * MINUTE_MS, None, None, 10)
    assert (five.open, five.high, five.low, five.close) == (100, 105, 95, 102)
    assert (five.volume, five.count, five.taker_buy_volume) == (8, 4, 4)
    assert [c.open for c in candles.query(MINUTE_MS, 2 * MINUTE_MS, None, 1)] == [95]
    assert [c.open for c in candles.query(MINUTE_MS, None, None, 2)] == [95, 102]
