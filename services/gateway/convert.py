"""Requests to engine commands: decimal strings to ticks, lots, minor units and rates. Pure.

Only the grid is checked here (``exchange.units``: not a number, not positive, off the grid,
too large), with the field's name in the message. Whether the order makes sense (a price on a
market order, a callback rate out of range, the band, margin) is the engine's to say, in its
own words, so that the rules live in one place (docs/matching.md).

Order ids: a placement always carries ``order_id=0``, so the engine assigns the id. Users never
choose raw ids, so one account cannot aim at another's by guessing its numbering.
"""

from decimal import Decimal

from exchange import commands as core
from exchange import engine_commands as engine
from exchange.market import MarketSpec
from exchange.units import UnitError, rate_from_str, to_units
from services.gateway import protocol
from services.gateway.protocol import ErrorCode, Failure


class Markets:
    """The markets this gateway serves, and the settlement asset they share."""

    def __init__(self, specs: tuple[MarketSpec, ...]) -> None:
        if not specs:
            raise ValueError("the gateway needs at least one market")
        settle = {(spec.settle_asset, spec.settle_decimals) for spec in specs}
        if len(settle) != 1:
            raise ValueError(f"the markets settle in different assets: {sorted(settle)}")
        self.specs = {spec.symbol: spec for spec in specs}
        (self.settle_asset, decimals) = settle.pop()
        self.money_step = Decimal(1).scaleb(-decimals)
        """One minor unit of the settlement asset, as a decimal."""

    def spec(self, symbol: str) -> MarketSpec:
        spec = self.specs.get(symbol)
        if spec is None:
            known = ", ".join(sorted(self.specs))
            raise Failure(ErrorCode.UNKNOWN_MARKET, f"no market {symbol!r} (markets: {known})")
        return spec

    def amount(self, text: str) -> int:
        """An amount of the settlement asset, in its minor units."""
        return _units(text, self.money_step, "amount")


def _units(text: str, step: Decimal, what: str) -> int:
    try:
        return to_units(text, step, what)
    except UnitError as error:
        raise Failure(ErrorCode.INVALID_VALUE, str(error)) from None


def _optional(text: str | None, step: Decimal, what: str) -> int | None:
    return None if text is None else _units(text, step, what)


def _rate(text: str, what: str) -> int:
    try:
        return rate_from_str(text)
    except UnitError as error:
        raise Failure(ErrorCode.INVALID_VALUE, str(error).replace("rate", what, 1)) from None


def place(request: protocol.PlaceOrder, account: int, markets: Markets) -> engine.OrderCommand:
    spec = markets.spec(request.symbol)
    order = core.PlaceOrder(
        order_id=0,
        account=account,
        side=request.side,
        qty=_units(request.qty, spec.lot, "qty"),
        type=request.type,
        price=_optional(request.price, spec.tick, "price"),
        tif=request.tif,
        stop_price=_optional(request.stop_price, spec.tick, "stop_price"),
        activation_price=_optional(request.activation_price, spec.tick, "activation_price"),
        callback_rate=(
            None if request.callback_rate is None else _rate(request.callback_rate, "callback_rate")
        ),
        trigger=request.trigger,
        reduce_only=request.reduce_only,
        stp=request.stp,
        client_order_id=request.client_order_id,
        expire_time=request.expire_time,
        price_match=request.price_match,
    )
    return engine.OrderCommand(symbol=spec.symbol, order=order)


def amend(request: protocol.AmendOrder, account: int, markets: Markets) -> engine.OrderCommand:
    """Amend the order the request names, by its id or by its label, which the engine looks
    up among the account's live orders (so no answer to the placement is needed first)."""
    spec = markets.spec(request.symbol)
    if request.price is None and request.qty is None:
        raise Failure(ErrorCode.INVALID_REQUEST, "an amend needs a new price, qty or both")
    order = core.AmendOrder(
        order_id=request.order_id or 0,
        account=account,
        price=_optional(request.price, spec.tick, "price"),
        qty=_optional(request.qty, spec.lot, "qty"),
        client_order_id=request.client_order_id,
    )
    return engine.OrderCommand(symbol=spec.symbol, order=order)


def cancel(request: protocol.CancelOrder, account: int, markets: Markets) -> engine.OrderCommand:
    """Cancel the order the request names, by its id or its label, as for ``amend``."""
    spec = markets.spec(request.symbol)
    order = core.CancelOrder(
        order_id=request.order_id or 0, account=account, client_order_id=request.client_order_id
    )
    return engine.OrderCommand(symbol=spec.symbol, order=order)


def cancel_all(request: protocol.CancelAll, account: int, markets: Markets) -> engine.OrderCommand:
    spec = markets.spec(request.symbol)
    return engine.OrderCommand(symbol=spec.symbol, order=core.CancelAll(account=account))


def leverage(request: protocol.SetLeverage, account: int, markets: Markets) -> engine.SetLeverage:
    spec = markets.spec(request.symbol)
    return engine.SetLeverage(account=account, symbol=spec.symbol, leverage=request.leverage)


def margin_mode(
    request: protocol.SetMarginMode, account: int, markets: Markets
) -> engine.SetMarginMode:
    spec = markets.spec(request.symbol)
    return engine.SetMarginMode(account=account, symbol=spec.symbol, mode=request.mode)


def adjust_margin(
    request: protocol.AdjustMargin, account: int, markets: Markets
) -> engine.AdjustMargin:
    spec = markets.spec(request.symbol)
    amount = markets.amount(request.amount)
    signed = amount if request.action is protocol.MarginAction.ADD else -amount
    return engine.AdjustMargin(account=account, symbol=spec.symbol, amount=signed)


def deposit(request: protocol.Deposit, account: int, markets: Markets) -> engine.Deposit:
    return engine.Deposit(account=account, amount=markets.amount(request.amount))
