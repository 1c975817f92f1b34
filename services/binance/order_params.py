"""A Binance order's parameters as the engine's ``PlaceOrder``: Binance's names, enums and units
to ours, each refusal a Binance error naming the parameter. Pure.

Both ways conditional orders arrive are read: ``/fapi/v1/order`` with ``stopPrice`` and
``activationPrice`` (ccxt 4.4 and most bots) and ``/fapi/v1/algoOrder`` with ``triggerPrice``,
``activatePrice`` and ``quantity``/``clientAlgoId`` (newer ccxt). The client's label
(``newClientOrderId``, ``clientAlgoId``) goes to the engine with the order. A trailing stop's
``callbackRate`` is in percent on Binance ("1" is 1 %) and a fraction here.

``closePosition=true`` (close-all) is a reduce-only stop- or take-profit-market order for the
market's largest quantity: a reduce-only order fills no more than the position it reduces
(docs/matching.md), so at its trigger it closes whatever the position is then.
``formats.closes_position`` tells such an order apart when it is shown.
"""

from decimal import Decimal, InvalidOperation
from enum import StrEnum

from exchange import commands as core
from exchange import engine_commands as engine
from exchange.market import MarketSpec
from exchange.orders import PriceMatch, StpMode, TimeInForce, TriggerBy
from exchange.orders import Side as CoreSide
from exchange.units import UnitError, rate_from_str, to_units
from services.binance import client_orders, errors
from services.binance.errors import BinanceError
from services.binance.formats import FROM_BINANCE_TYPE
from services.binance.params import Params


class Side(StrEnum):
    BUY = "BUY"
    SELL = "SELL"


class BinanceType(StrEnum):
    LIMIT = "LIMIT"
    MARKET = "MARKET"
    STOP = "STOP"
    STOP_MARKET = "STOP_MARKET"
    TAKE_PROFIT = "TAKE_PROFIT"
    TAKE_PROFIT_MARKET = "TAKE_PROFIT_MARKET"
    TRAILING_STOP_MARKET = "TRAILING_STOP_MARKET"


class Tif(StrEnum):
    GTC = "GTC"
    IOC = "IOC"
    FOK = "FOK"
    GTX = "GTX"
    GTD = "GTD"
    """Good till ``goodTillDate``: the engine's GTC with an ``expire_time``."""


GTD_MIN_AHEAD_MS = 600_000
GTD_MAX_MS = 253_402_300_799_000
"""Binance's bounds on ``goodTillDate``: more than 600 s ahead, before the year 10000."""


class WorkingType(StrEnum):
    MARK_PRICE = "MARK_PRICE"
    CONTRACT_PRICE = "CONTRACT_PRICE"


class Stp(StrEnum):
    NONE = "NONE"
    EXPIRE_TAKER = "EXPIRE_TAKER"
    EXPIRE_MAKER = "EXPIRE_MAKER"
    EXPIRE_BOTH = "EXPIRE_BOTH"


class RespType(StrEnum):
    ACK = "ACK"
    RESULT = "RESULT"


def units(text: str, step: Decimal, name: str) -> int:
    """A decimal on its grid; Binance's ``-1111`` (precision) when it is off it."""
    try:
        return to_units(text, step, name)
    except UnitError as error:
        raise BinanceError(errors.BAD_PRECISION, f"{name}: {error}") from None


def callback_rate(text: str) -> int:
    """Binance's percent as our fraction: "1" → 0.01."""
    try:
        fraction = Decimal(text) / 100
        return rate_from_str(format(fraction, "f"))
    except (InvalidOperation, UnitError) as error:
        raise errors.bad_value("callbackRate", str(error)) from None


def _client_id(params: Params, *, algo: bool) -> str | None:
    """The order's label: ``newClientOrderId``, or an algo order's ``clientAlgoId``."""
    names = ("clientAlgoId", "newClientOrderId") if algo else ("newClientOrderId",)
    for name in names:
        text = params.text(name)
        if text is not None:
            return client_orders.check(text, name)
    return None


def good_till(params: Params, now: int) -> int:
    """A GTD order's ``goodTillDate`` as the engine's ``expire_time``: whole seconds (Binance
    drops the milliseconds), more than 600 s after ``now`` (the front's clock, which stamps its
    commands with the event time the engine expires orders by), else ``-5040``."""
    value = params.required_integer("goodTillDate", high=GTD_MAX_MS)
    if not now + GTD_MIN_AHEAD_MS < value < GTD_MAX_MS:
        raise BinanceError(
            errors.INVALID_GOOD_TILL_DATE,
            "The goodTillDate timestamp must be greater than the current time plus 600 "
            "seconds and smaller than 253402300799000",
        )
    return value - value % 1000


CLOSE_POSITION_TYPES = (BinanceType.STOP_MARKET, BinanceType.TAKE_PROFIT_MARKET)


def _check_close_position(params: Params, kind: BinanceType) -> None:
    """Binance's rules for ``closePosition=true`` (close-all): a stop- or take-profit-market
    order, without a quantity (or with 0) and without ``reduceOnly``."""
    if kind not in CLOSE_POSITION_TYPES:
        raise BinanceError(
            errors.TARGET_STRATEGY_INVALID,
            f"Target strategy invalid for orderType {kind.value},closePosition true",
        )
    quantity = params.text("quantity")
    if quantity is not None and (not _is_zero(quantity)):
        raise BinanceError(
            errors.QUANTITY_MUST_BE_ZERO_WITH_CLOSE_POSITION,
            "Quantity must be zero with closePosition equals true",
        )
    if params.text("reduceOnly") is not None:
        raise BinanceError(
            errors.PARAM_NOT_REQUIRED, "Parameter 'reduceOnly' sent when not required."
        )


def _price_match(params: Params) -> PriceMatch | None:
    """``priceMatch`` (``NONE`` is none); with a ``price`` too, Binance's ``-1106``. Which types
    may match is the engine's rule (a limit order: ``invalid_order`` otherwise)."""
    text = params.text("priceMatch")
    if text is None or text.upper() == "NONE":
        return None
    match = params.choice("priceMatch", PriceMatch)
    if params.text("price") is not None:
        raise BinanceError(errors.PARAM_NOT_REQUIRED, "Parameter 'price' sent when not required.")
    return match


def _is_zero(text: str) -> bool:
    try:
        return Decimal(text) == 0
    except InvalidOperation:
        return False


def place(
    params: Params, spec: MarketSpec, account: int, *, algo: bool, now: int
) -> tuple[engine.OrderCommand, RespType]:
    """The command of a new order, and the answer it asked for; ``now``: the front's clock."""
    side = params.choice("side", Side, errors.INVALID_SIDE)
    if side is None:
        raise errors.mandatory("side")
    kind = params.choice("type", BinanceType, errors.INVALID_ORDER_TYPE)
    if kind is None:
        raise errors.mandatory("type")
    close = params.boolean("closePosition")
    if close:
        _check_close_position(params, kind)
    position_side = params.text("positionSide")
    if position_side is not None and position_side.upper() != "BOTH":
        raise BinanceError(
            errors.INVALID_POSITION_SIDE,
            "Order's position side does not match user's setting (one-way mode: BOTH).",
        )
    price_match = _price_match(params)
    tif = params.choice("timeInForce", Tif, errors.INVALID_TIF) or Tif.GTC
    expire_time = good_till(params, now) if tif is Tif.GTD else None
    working = params.choice("workingType", WorkingType) or WorkingType.CONTRACT_PRICE
    stp = params.choice("selfTradePreventionMode", Stp)
    quantity = None if close else params.required("quantity")
    price = params.text("price")
    trigger_names = ("triggerPrice", "stopPrice") if algo else ("stopPrice", "triggerPrice")
    stop_price = params.first(trigger_names)
    activation = params.first(("activatePrice", "activationPrice"))
    callback = params.text("callbackRate")
    response = params.choice("newOrderRespType", RespType) or RespType.ACK
    order = core.PlaceOrder(
        order_id=0,
        account=account,
        side=CoreSide.BUY if side is Side.BUY else CoreSide.SELL,
        qty=spec.max_qty if quantity is None else units(quantity, spec.lot, "quantity"),
        type=FROM_BINANCE_TYPE[kind.value],
        price=None
        if price is None or kind is BinanceType.MARKET
        else units(price, spec.tick, "price"),
        tif=TimeInForce.GTC if tif is Tif.GTD else TimeInForce(tif.value),
        stop_price=None if stop_price is None else units(stop_price, spec.tick, "stopPrice"),
        activation_price=(
            None if activation is None else units(activation, spec.tick, "activationPrice")
        ),
        callback_rate=None if callback is None else callback_rate(callback),
        trigger=TriggerBy.MARK if working is WorkingType.MARK_PRICE else TriggerBy.LAST,
        reduce_only=close or params.boolean("reduceOnly"),
        stp=StpMode.EXPIRE_TAKER if stp is None else StpMode(stp.value),
        client_order_id=_client_id(params, algo=algo),
        expire_time=expire_time,
        price_match=price_match,
    )
    return engine.OrderCommand(symbol=spec.symbol, order=order), response
