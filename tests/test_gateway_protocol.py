"""The gateway's messages and the conversion of requests into engine commands, without I/O.

Why here and not only end to end: every way a frame can be wrong must get its own clear error,
and every decimal string must land on its market's grid or be refused, never rounded; a table
of cases says that faster and more exactly than a socket can.
"""

import contextlib
import json

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from exchange import commands as core
from exchange import engine_commands as engine
from exchange.default_markets import DEFAULT_MARKETS, USDT
from exchange.orders import OrderType, Side, StpMode, TimeInForce, TriggerBy
from services.gateway import convert, protocol
from services.gateway.convert import Markets
from services.gateway.protocol import ErrorCode, Failure, RequestFailure, decode_request
from services.gateway.views import Views, rate

MARKETS = Markets(DEFAULT_MARKETS)
ACCOUNT = 1_048_576


def frame(**fields: object) -> bytes:
    return json.dumps(fields).encode()


def refused(data: bytes | str) -> RequestFailure:
    with pytest.raises(RequestFailure) as error:
        decode_request(data)
    return error.value


def test_every_op_decodes_to_its_struct() -> None:
    place = decode_request(
        frame(id=7, op="place_order", symbol="BTCUSDT", side="buy", qty="0.01", price="6e4")
    )
    assert isinstance(place, protocol.PlaceOrder)
    assert (place.id, place.type, place.tif, place.trigger) == (
        7,
        OrderType.LIMIT,
        TimeInForce.GTC,
        TriggerBy.LAST,
    )
    assert isinstance(decode_request(frame(id="a-1", op="ping")), protocol.Ping)
    assert set(protocol.OPS) >= {"login", "cancel_all", "adjust_margin", "subscribe", "fills"}


@pytest.mark.parametrize(
    ("data", "request_id", "code", "words"),
    [
        (b"{not json", None, ErrorCode.INVALID_JSON, "malformed"),
        (b"[1, 2]", None, ErrorCode.INVALID_REQUEST, "Expected `object`"),
        (frame(op="ping"), None, ErrorCode.INVALID_REQUEST, "missing required field `id`"),
        (frame(id=1.5, op="ping"), None, ErrorCode.INVALID_REQUEST, "`$.id`"),
        (frame(id=2**60, op="ping"), None, ErrorCode.INVALID_REQUEST, "`$.id`"),
        (frame(id=3), 3, ErrorCode.INVALID_REQUEST, "missing field `op`"),
        (frame(id=4, op="withdraw_all"), 4, ErrorCode.UNKNOWN_OP, "withdraw_all"),
        (frame(id=5, op="ping", extra=1), 5, ErrorCode.INVALID_REQUEST, "unknown field `extra`"),
        (
            frame(id=6, op="place_order", symbol="BTCUSDT", side="buy", qty=0.01),
            6,
            ErrorCode.INVALID_REQUEST,
            "Expected `str`, got `float` - at `$.qty`",
        ),
        (
            frame(id=7, op="place_order", symbol="BTCUSDT", side="up", qty="1"),
            7,
            ErrorCode.INVALID_REQUEST,
            "`$.side`",
        ),
        (
            frame(id=8, op="place_order", symbol="BTCUSDT", side="buy", qty="1", post_only=True),
            8,
            ErrorCode.INVALID_REQUEST,
            "unknown field `post_only`",
        ),
        (
            frame(id=9, op="login", api_key="k", timestamp=1, nonce="short", signature="s"),
            9,
            ErrorCode.INVALID_REQUEST,
            "`$.nonce`",
        ),
        (b'{"id": 10, "op": "ping", "id": NaN}', None, ErrorCode.INVALID_JSON, "malformed"),
    ],
)
def test_a_bad_frame_is_refused_with_its_id_when_readable(
    data: bytes, request_id: object, code: str, words: str
) -> None:
    failure = refused(data)
    assert failure.request_id == request_id
    assert failure.body.code == code
    assert words in failure.body.message


def test_responses_and_errors_encode_as_documented() -> None:
    assert json.loads(protocol.encode_result(1, protocol.Pong(5))) == {
        "id": 1,
        "result": {"time": 5},
    }
    body = protocol.ErrorBody(ErrorCode.RATE_LIMITED, "slow down", 250)
    assert json.loads(protocol.encode_error("x", body)) == {
        "id": "x",
        "error": {"code": "rate_limited", "message": "slow down", "retry_after_ms": 250},
    }
    plain = protocol.ErrorBody(ErrorCode.UNKNOWN_OP, "no op")
    assert "retry_after_ms" not in json.loads(protocol.encode_error(None, plain))["error"]


@pytest.mark.parametrize("op", ["order", "cancel_order", "amend_order"])
@pytest.mark.parametrize(
    ("names", "words"),
    [
        ({"order_id": 1, "client_order_id": "a"}, "give order_id or client_order_id, not both"),
        ({}, "give order_id or client_order_id"),
        ({"client_order_id": "has space"}, "- at `$.client_order_id`"),
        ({"client_order_id": "x" * 37}, "- at `$.client_order_id`"),
        ({"client_order_id": ""}, "- at `$.client_order_id`"),
    ],
)
def test_a_request_about_one_order_names_it_exactly_once_by_id_or_by_label(
    op: str, names: dict[str, object], words: str
) -> None:
    amend = {"price": "1"} if op == "amend_order" else {}
    failure = refused(frame(id=11, op=op, symbol="BTCUSDT", **amend, **names))
    assert (failure.request_id, failure.body.code) == (11, ErrorCode.INVALID_REQUEST)
    message = failure.body.message
    assert message.endswith(words) if words.startswith("- at") else message == words


def test_either_name_of_an_order_decodes_alone() -> None:
    by_label = decode_request(
        frame(id=1, op="order", symbol="BTCUSDT", client_order_id="a.b:c/d_e-F9")
    )
    assert isinstance(by_label, protocol.GetOrder)
    assert (by_label.order_id, by_label.client_order_id) == (None, "a.b:c/d_e-F9")
    by_id = decode_request(frame(id=2, op="cancel_order", symbol="BTCUSDT", order_id=5))
    assert isinstance(by_id, protocol.CancelOrder)
    assert (by_id.order_id, by_id.client_order_id) == (5, None)


@given(st.one_of(st.binary(max_size=300), st.text(max_size=300)))
def test_any_frame_decodes_or_is_refused_and_nothing_else(data: bytes | str) -> None:
    with contextlib.suppress(RequestFailure):
        decode_request(data)


# ------------------------------------------------------------------------------- convert


def place(**fields: object) -> protocol.PlaceOrder:
    base: dict[str, object] = {"id": 1, "op": "place_order", "symbol": "BTCUSDT", "side": "sell"}
    request = decode_request(frame(**(base | fields)))
    assert isinstance(request, protocol.PlaceOrder)
    return request


def test_a_placement_is_converted_to_ticks_lots_and_rates_with_order_id_zero() -> None:
    command = convert.place(
        place(
            qty="0.015",
            type="trailing_stop_market",
            activation_price="61000.5",
            callback_rate="0.01",
            trigger="mark",
            reduce_only=True,
            stp="EXPIRE_BOTH",
        ),
        ACCOUNT,
        MARKETS,
    )
    assert command == engine.OrderCommand(
        symbol="BTCUSDT",
        order=core.PlaceOrder(
            order_id=0,
            account=ACCOUNT,
            side=Side.SELL,
            qty=15,
            type=OrderType.TRAILING_STOP_MARKET,
            activation_price=610_005,
            callback_rate=1_000_000,
            trigger=TriggerBy.MARK,
            reduce_only=True,
            stp=StpMode.EXPIRE_BOTH,
        ),
    )


def test_a_placement_carries_its_client_order_id_and_a_bad_one_is_refused_by_name() -> None:
    label = "bot-7:grid/42_a.b"
    command = convert.place(place(qty="0.010", price="60000", client_order_id=label), 3, MARKETS)
    assert isinstance(command.order, core.PlaceOrder)
    assert (command.order.client_order_id, command.order.order_id) == (label, 0)
    assert convert.place(place(qty="1", price="6e4"), 3, MARKETS).order == core.PlaceOrder(
        order_id=0, account=3, side=Side.SELL, qty=1000, price=600_000
    )  # no label: None
    for bad in ("", "x" * 37, "naïve", "a b", "a#b"):
        failure = refused(
            frame(
                id=3, op="place_order", symbol="BTCUSDT", side="buy", qty="1", client_order_id=bad
            )
        )
        assert failure.body.code == ErrorCode.INVALID_REQUEST
        assert "`$.client_order_id`" in failure.body.message


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"qty": "0.0015", "price": "60000"}, "qty '0.0015' is not a multiple of 0.001"),
        ({"qty": "0.001", "price": "60000.05"}, "price '60000.05' is not a multiple of 0.1"),
        ({"qty": "-1", "price": "60000"}, "qty '-1' must be positive"),
        ({"qty": "0", "price": "60000"}, "qty '0' must be positive"),
        ({"qty": "NaN", "price": "60000"}, "qty 'NaN' is not a finite number"),
        ({"qty": "1", "price": "Infinity"}, "price 'Infinity' is not a finite number"),
        ({"qty": "1", "price": "1e40"}, "price '1e40' is too large"),
        ({"qty": "1", "price": "9" * 30}, "is too large"),
        ({"qty": "1", "price": "0x10"}, "price '0x10' is not a decimal number"),
        ({"qty": "1", "stop_price": "1.23", "type": "stop_market"}, "stop_price '1.23'"),
        ({"qty": "1", "type": "trailing_stop_market", "callback_rate": "abc"}, "callback_rate"),
        ({"qty": "1", "type": "trailing_stop_market", "callback_rate": "1e-9"}, "callback_rate"),
    ],
)
def test_a_value_off_its_grid_or_not_a_positive_number_is_refused_by_name(
    fields: dict[str, object], words: str
) -> None:
    with pytest.raises(Failure) as error:
        convert.place(place(**fields), ACCOUNT, MARKETS)
    assert error.value.body.code == ErrorCode.INVALID_VALUE
    assert words in error.value.body.message


def test_an_unknown_market_is_named_with_the_markets_there_are() -> None:
    with pytest.raises(Failure) as error:
        convert.place(place(symbol="DOGEUSDT", qty="1"), ACCOUNT, MARKETS)
    assert error.value.body.code == ErrorCode.UNKNOWN_MARKET
    assert "BTCUSDT, ETHUSDT" in error.value.body.message


def test_the_other_commands_convert_amounts_in_minor_units() -> None:
    deposit = protocol.Deposit(id=1, amount="250.5")
    assert convert.deposit(deposit, ACCOUNT, MARKETS) == engine.Deposit(
        account=ACCOUNT, amount=25_050_000_000
    )
    remove = protocol.AdjustMargin(
        id=2, symbol="ETHUSDT", amount="10", action=protocol.MarginAction.REMOVE
    )
    assert convert.adjust_margin(remove, ACCOUNT, MARKETS).amount == -10 * USDT
    with pytest.raises(Failure) as error:
        convert.deposit(protocol.Deposit(id=3, amount="0.000000001"), ACCOUNT, MARKETS)
    assert error.value.body.code == ErrorCode.INVALID_VALUE
    amend = protocol.AmendOrder(id=4, symbol="BTCUSDT", order_id=9)
    with pytest.raises(Failure) as error:
        convert.amend(amend, ACCOUNT, MARKETS)
    assert error.value.body.code == ErrorCode.INVALID_REQUEST
    cancel = protocol.CancelOrder(id=5, symbol="BTCUSDT", order_id=9)
    assert convert.cancel(cancel, 3, MARKETS).order == core.CancelOrder(order_id=9, account=3)
    by_label = protocol.CancelOrder(id=6, symbol="BTCUSDT", client_order_id="grid-1")
    assert convert.cancel(by_label, 3, MARKETS).order == core.CancelOrder(
        order_id=0, account=3, client_order_id="grid-1"
    )  # the engine looks the label up


def test_markets_settling_in_different_assets_are_refused() -> None:
    odd = msgspec.structs.replace(DEFAULT_MARKETS[1], settle_decimals=6)
    with pytest.raises(ValueError, match="different assets"):
        Markets((DEFAULT_MARKETS[0], odd))


def test_market_views_write_the_grid_as_decimal_strings() -> None:
    view = Views(MARKETS).market(DEFAULT_MARKETS[0])
    assert (view.tick_size, view.lot_size, view.min_qty, view.min_notional) == (
        "0.1",
        "0.001",
        "0.001",
        "100.00000000",
    )
    assert (view.maker_fee, view.taker_fee, view.max_leverage) == ("0.0002", "0.0005", 125)
    assert rate(0) == "0" and rate(1) == "0.00000001"
