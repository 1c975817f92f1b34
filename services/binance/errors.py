"""Binance's error answers: HTTP 4xx with ``{"code": -NNNN, "msg": "…"}``.

Why Binance's own codes: clients branch on them (ccxt maps each code to an exception class,
``-2019`` to ``InsufficientFunds``, ``-2011`` to ``OrderNotFound``…), so a paper exchange that
answered with its own words would make a bot's error handling untestable here. The engine's
reasons (docs/gateway-protocol.md, *Errors*) are translated once, in ``from_failure``; the
message keeps our own words, which say more than Binance's.
"""

from services.gateway.protocol import ErrorCode, Failure


class BinanceError(Exception):
    """An answer that is an error: ``status`` (HTTP), Binance's ``code`` and a message;
    ``retry_after_s`` for a rate limit (the ``Retry-After`` header)."""

    def __init__(
        self, code: int, msg: str, *, status: int = 400, retry_after_s: int | None = None
    ) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg
        self.status = status
        self.retry_after_s = retry_after_s

    def body(self) -> dict[str, object]:
        return {"code": self.code, "msg": self.msg}


UNKNOWN = -1000
DISCONNECTED = -1001
TOO_MANY_REQUESTS = -1003
TIMEOUT = -1007
TOO_MANY_ORDERS = -1015
INVALID_TIMESTAMP = -1021
INVALID_SIGNATURE = -1022
ILLEGAL_CHARS = -1100
MANDATORY_PARAM_EMPTY_OR_MALFORMED = -1102
PARAM_NOT_REQUIRED = -1106
BAD_PRECISION = -1111
INVALID_TIF = -1115
INVALID_ORDER_TYPE = -1116
INVALID_SIDE = -1117
BAD_SYMBOL = -1121
INVALID_LISTEN_KEY = -1125
INVALID_PARAMETER = -1130
BAD_RECV_WINDOW = -1131
NEW_ORDER_REJECTED = -2010
CANCEL_REJECTED = -2011
NO_SUCH_ORDER = -2013
BAD_API_KEY_FMT = -2014
REJECTED_MBX_KEY = -2015
ORDER_WOULD_IMMEDIATELY_TRIGGER = -2021
REDUCE_ONLY_REJECT = -2022
MAX_POSITION = -2027
MARGIN_NOT_SUFFICIENT = -2019
QTY_LESS_THAN_ZERO = -4003
QTY_LESS_THAN_MIN_QTY = -4004
QTY_GREATER_THAN_MAX_QTY = -4005
PRICE_LESS_THAN_ZERO = -4013
PRICE_HIGHER_THAN_MULTIPLIER_UP = -4016
INVALID_LEVERAGE = -4028
NO_NEED_TO_CHANGE_MARGIN_TYPE = -4046
CANNOT_CHANGE_MARGIN_TYPE = -4048
ISOLATED_BALANCE_INSUFFICIENT = -4050
CROSS_BALANCE_INSUFFICIENT = -4051
NO_NEED_TO_CHANGE_POSITION_SIDE = -4059
INVALID_POSITION_SIDE = -4061
INVALID_DUAL_SIDE = -4067
INVALID_BATCH_PLACE_ORDER_SIZE = -4082
TARGET_STRATEGY_INVALID = -4136
QUANTITY_MUST_BE_ZERO_WITH_CLOSE_POSITION = -4137
DUPLICATE_CLIENT_ORDER_ID = -4116
MIN_NOTIONAL = -4164
MULTI_ASSETS_NOT_SUPPORTED = -4171
POST_ONLY_REJECTED = -5022
INVALID_GOOD_TILL_DATE = -5040

_FROM_REASON: dict[str, int] = {
    ErrorCode.INVALID_JSON: MANDATORY_PARAM_EMPTY_OR_MALFORMED,
    ErrorCode.INVALID_REQUEST: MANDATORY_PARAM_EMPTY_OR_MALFORMED,
    ErrorCode.INVALID_VALUE: BAD_PRECISION,
    ErrorCode.UNKNOWN_MARKET: BAD_SYMBOL,
    ErrorCode.UNKNOWN_ORDER: NO_SUCH_ORDER,
    ErrorCode.STALE_TIMESTAMP: INVALID_TIMESTAMP,
    ErrorCode.INVALID_SIGNATURE: INVALID_SIGNATURE,
    # the engine's order reasons (exchange/events.py RejectReason)
    "insufficient_margin": MARGIN_NOT_SUFFICIENT,
    "reduce_only_rejected": REDUCE_ONLY_REJECT,
    "min_notional": MIN_NOTIONAL,
    "post_only_would_take": POST_ONLY_REJECTED,
    "would_immediately_trigger": ORDER_WOULD_IMMEDIATELY_TRIGGER,
    "max_position": MAX_POSITION,
    "qty_below_min": QTY_LESS_THAN_MIN_QTY,
    "qty_above_max": QTY_GREATER_THAN_MAX_QTY,
    "invalid_qty": QTY_LESS_THAN_ZERO,
    "invalid_price": PRICE_LESS_THAN_ZERO,
    "price_out_of_band": PRICE_HIGHER_THAN_MULTIPLIER_UP,
    "invalid_order": NEW_ORDER_REJECTED,
    "not_amendable": NEW_ORDER_REJECTED,
    "duplicate_order_id": NEW_ORDER_REJECTED,
    # the engine's command reasons (exchange/engine_events.py CommandError)
    "invalid_leverage": INVALID_LEVERAGE,
    "position_or_orders_open": CANNOT_CHANGE_MARGIN_TYPE,
    "not_isolated": ISOLATED_BALANCE_INSUFFICIENT,
    "no_position": ISOLATED_BALANCE_INSUFFICIENT,
    "unsafe_margin": ISOLATED_BALANCE_INSUFFICIENT,
    "insufficient_balance": CROSS_BALANCE_INSUFFICIENT,
    "invalid_amount": BAD_PRECISION,
    "faucet_cap": INVALID_PARAMETER,
}


def from_failure(failure: Failure, *, cancelling: bool = False) -> BinanceError:
    """Our reason as Binance's code. ``cancelling``: an unknown order in a cancel is Binance's
    ``-2011`` (``-2013`` elsewhere)."""
    code, message = failure.body.code, failure.body.message
    if code == ErrorCode.RATE_LIMITED:
        wait_ms = failure.body.retry_after_ms or 1_000
        return rate_limited(message, wait_ms)
    if code == ErrorCode.TIMEOUT:
        return BinanceError(TIMEOUT, message, status=408)
    if code == ErrorCode.UNAVAILABLE:
        return BinanceError(DISCONNECTED, message, status=503)
    if code == ErrorCode.INTERNAL:
        return BinanceError(UNKNOWN, message, status=500)
    if code == ErrorCode.UNKNOWN_ORDER:
        if cancelling:
            return BinanceError(CANCEL_REJECTED, "Unknown order sent.")
        return BinanceError(NO_SUCH_ORDER, "Order does not exist.")
    if code == "duplicate_client_order_id":  # Binance's words: ours add only the client's id
        return BinanceError(DUPLICATE_CLIENT_ORDER_ID, "ClientOrderId is duplicated.")
    return BinanceError(_FROM_REASON.get(code, NEW_ORDER_REJECTED), message)


def rate_limited(message: str, wait_ms: int) -> BinanceError:
    """``-1003`` with HTTP 429 and ``Retry-After`` in whole seconds, rounded up (Binance's)."""
    return BinanceError(
        TOO_MANY_REQUESTS, message, status=429, retry_after_s=max(1, -(-wait_ms // 1000))
    )


def mandatory(name: str) -> BinanceError:
    return BinanceError(
        MANDATORY_PARAM_EMPTY_OR_MALFORMED,
        f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.",
    )


def bad_value(name: str, why: str) -> BinanceError:
    return BinanceError(INVALID_PARAMETER, f"Invalid data sent for a parameter: {name}: {why}")
