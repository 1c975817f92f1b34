"""A command's response, built from the engine's result for it. Pure.

Never guessed: an order is acknowledged with the state the engine's events gave it (accepted,
filled, expired…) or refused with the engine's own reason; a refused command changes nothing.
Each function runs right after the read model applied the result, so the state it reads is
exactly the state after that command.
"""

from exchange.engine_events import (
    AccountCreated,
    CommandError,
    CommandRejected,
    LeverageChanged,
    LoggedIn,
    MarginModeChanged,
    MarketEvent,
)
from exchange.events import Accepted, Amended, Cancelled, Rejected, RejectReason
from services.gateway import protocol
from services.gateway.protocol import ErrorCode, Failure
from services.gateway.read_model import ReadModel
from services.gateway.views import Views
from services.wire import CommandResult


def unknown_order(symbol: str, order_id: int) -> Failure:
    """The one answer for an order id that is not the account's own: unknown, finished long
    ago, or another account's. The same code and the same words, so nothing tells them apart."""
    return Failure(ErrorCode.UNKNOWN_ORDER, f"no order {order_id} of this account in {symbol}")


def unknown_label(symbol: str, label: str) -> Failure:
    """``unknown_order`` for a client order id the account has no order with: the same code,
    and the same answer whether or not another account uses the label."""
    message = f"no order with client_order_id {label!r} of this account in {symbol}"
    return Failure(ErrorCode.UNKNOWN_ORDER, message)


def _refusal(result: CommandResult) -> Failure | None:
    """The engine's refusal of the command, if it refused it."""
    for event in result.events:
        if isinstance(event, CommandRejected):
            return Failure(event.reason.value, event.message)
        if isinstance(event, MarketEvent) and isinstance(event.event, Rejected):
            rejected = event.event
            if rejected.reason is RejectReason.UNKNOWN_ORDER and rejected.order_id:
                return unknown_order(event.symbol, rejected.order_id)
            return Failure(rejected.reason.value, rejected.message)
    return None


def _refuse_if_refused(result: CommandResult) -> None:
    failure = _refusal(result)
    if failure is not None:
        raise failure


def _order_view(
    model: ReadModel, views: Views, account: int, symbol: str, order_id: int
) -> protocol.OrderView:
    order = model.order(account, symbol, order_id)
    if order is None:
        raise unknown_order(symbol, order_id)
    return views.order(order)


def placed(
    result: CommandResult, model: ReadModel, views: Views, account: int, symbol: str
) -> protocol.OrderView:
    """The order as the placement left it, under the id the engine gave it."""
    _refuse_if_refused(result)
    for event in result.events:
        if isinstance(event, MarketEvent) and isinstance(event.event, Accepted):
            return _order_view(model, views, account, symbol, event.event.order_id)
    raise Failure(ErrorCode.INTERNAL, "the engine neither accepted nor rejected the order")


def order_changed(
    result: CommandResult,
    model: ReadModel,
    views: Views,
    account: int,
    symbol: str,
    label: str | None = None,
) -> protocol.OrderView:
    """An amended or cancelled order, as the command left it: the order its ``Amended`` or
    ``Cancelled`` names. ``label``: the client order id the request named it by, if it did
    (an unknown one is answered in the words of ``unknown_label``)."""
    failure = _refusal(result)
    if failure is not None:
        if label is not None and failure.body.code == ErrorCode.UNKNOWN_ORDER:
            raise unknown_label(symbol, label)
        raise failure
    return _order_view(model, views, account, symbol, changed_order(result))


def changed_order(result: CommandResult) -> int:
    """The id of the order an amend or cancel the engine accepted changed."""
    for event in result.events:
        if isinstance(event, MarketEvent) and isinstance(event.event, Amended | Cancelled):
            return event.event.order_id
    raise Failure(ErrorCode.INTERNAL, "the engine neither changed nor refused the order")


def cancelled_all(result: CommandResult, symbol: str) -> protocol.CancelledAll:
    _refuse_if_refused(result)
    ids = [
        event.event.order_id
        for event in result.events
        if isinstance(event, MarketEvent) and isinstance(event.event, Cancelled)
    ]
    return protocol.CancelledAll(symbol, ids)


def leverage_set(result: CommandResult) -> protocol.LeverageSet:
    _refuse_if_refused(result)
    for event in result.events:
        if isinstance(event, LeverageChanged):
            return protocol.LeverageSet(event.symbol, event.leverage)
    raise Failure(ErrorCode.INTERNAL, "the engine did not report the leverage")


def margin_mode_set(result: CommandResult) -> protocol.MarginModeSet:
    _refuse_if_refused(result)
    for event in result.events:
        if isinstance(event, MarginModeChanged):
            return protocol.MarginModeSet(event.symbol, event.mode)
    raise Failure(ErrorCode.INTERNAL, "the engine did not report the margin mode")


def margin_adjusted(
    result: CommandResult, model: ReadModel, views: Views, account: int, symbol: str
) -> protocol.PositionView:
    _refuse_if_refused(result)
    return views.position(model, account, symbol)


def deposited(
    result: CommandResult, model: ReadModel, views: Views, account: int
) -> protocol.BalanceView:
    _refuse_if_refused(result)
    return views.balance(model, account)


def account_created(
    result: CommandResult, api_key: str, api_secret: str
) -> protocol.AccountCreated:
    _refuse_if_refused(result)
    for event in result.events:
        if isinstance(event, AccountCreated):
            return protocol.AccountCreated(event.account, api_key, api_secret)
    raise Failure(ErrorCode.INTERNAL, "the engine did not report the account")


def logged_in(result: CommandResult) -> protocol.LoggedIn:
    """The engine's answer to a ``Login`` this gateway checked: the account, or ``replayed_nonce``
    if any instance saw the nonce first. A key the engine does not know (it cannot be, as the
    gateway knows its keys from the same log) gets the gateway's own answer for a bad key."""
    for event in result.events:
        if isinstance(event, CommandRejected) and event.reason is CommandError.UNKNOWN_KEY:
            raise Failure(ErrorCode.INVALID_SIGNATURE, "unknown API key or wrong signature")
    _refuse_if_refused(result)
    for event in result.events:
        if isinstance(event, LoggedIn):
            return protocol.LoggedIn(event.account)
    raise Failure(ErrorCode.INTERNAL, "the engine did not report the login")
