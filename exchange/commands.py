"""Commands to one market's matching core: small typed records, one per request."""

from typing import Annotated

import msgspec

from exchange.orders import OrderType, PriceMatch, Side, StpMode, TimeInForce, TriggerBy

CLIENT_ORDER_ID_PATTERN = r"^[.A-Z:/a-z0-9_-]{1,36}\Z"
r"""Binance's rule for ``newClientOrderId``, ``^[.A-Z:/a-z0-9_-]{1,36}$``, with ``\Z`` for ``$``:
Python's ``$`` also matches before a final newline, and a label must not end in one."""
ClientOrderId = Annotated[str, msgspec.Meta(pattern=CLIENT_ORDER_ID_PATTERN)]
"""A client's label for its order: Binance's rule for ``newClientOrderId`` (1-36 characters of
letters, digits and ``.:/_-``), checked wherever a command is decoded."""


class PlaceOrder(msgspec.Struct, tag="place", tag_field="cmd", frozen=True, kw_only=True):
    """A new order. Prices in ticks, quantities in lots, rates in 1e-8 units.

    ``price`` is the limit price (LIMIT, STOP_LIMIT, TAKE_PROFIT_LIMIT only); ``stop_price`` the
    trigger price of STOP_* and TAKE_PROFIT_*; ``activation_price`` (optional) and
    ``callback_rate`` belong to TRAILING_STOP_MARKET. ``tif`` is ignored by market types.
    ``client_order_id`` is the client's label, unique among the account's live orders in the
    market (``exchange.client_ids``). ``expire_time`` (event time, ms) ends an order that can
    rest, if it still lives then (Binance's GTD): see ``Engine`` (expiries). ``price_match``
    (a limit order without ``price``) has the engine take the price from the book.
    """

    order_id: int
    account: int
    side: Side
    qty: int
    type: OrderType = OrderType.LIMIT
    price: int | None = None
    tif: TimeInForce = TimeInForce.GTC
    stop_price: int | None = None
    activation_price: int | None = None
    callback_rate: int | None = None
    trigger: TriggerBy = TriggerBy.LAST
    reduce_only: bool = False
    stp: StpMode = StpMode.EXPIRE_TAKER
    client_order_id: ClientOrderId | None = None
    expire_time: int | None = None
    price_match: PriceMatch | None = None


class CancelOrder(msgspec.Struct, tag="cancel", tag_field="cmd", frozen=True, kw_only=True):
    """Cancel a live order: ``order_id``, or (with ``order_id`` 0) the account's live order
    with this ``client_order_id``, which the engine looks up (``Engine``)."""

    order_id: int
    account: int
    client_order_id: ClientOrderId | None = None


class AmendOrder(msgspec.Struct, tag="amend", tag_field="cmd", frozen=True, kw_only=True):
    """Change a resting limit order. ``qty`` is the new *open* quantity (0 cancels);
    ``None`` keeps the current price or quantity. ``client_order_id`` names the order in place
    of ``order_id`` (then 0), as for ``CancelOrder``."""

    order_id: int
    account: int
    price: int | None = None
    qty: int | None = None
    client_order_id: ClientOrderId | None = None


class CancelAll(msgspec.Struct, tag="cancel_all", tag_field="cmd", frozen=True, kw_only=True):
    """Cancel every resting and conditional order of one account in this market."""

    account: int


class SetMarkPrice(msgspec.Struct, tag="mark", tag_field="cmd", frozen=True, kw_only=True):
    """A new mark price from the oracle: moves the price band and mark-triggered orders."""

    price: int


MatchingCommand = PlaceOrder | CancelOrder | AmendOrder | CancelAll | SetMarkPrice
