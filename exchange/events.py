"""Events of one market's matching core: what happened, as small typed records."""

from enum import StrEnum

import msgspec

from exchange.orders import Side


class RejectReason(StrEnum):
    DUPLICATE_ORDER_ID = "duplicate_order_id"
    DUPLICATE_CLIENT_ORDER_ID = "duplicate_client_order_id"
    """The account has a live order in this market with the same client order id: Binance
    ``-4116``."""
    UNKNOWN_ORDER = "unknown_order"
    INVALID_ORDER = "invalid_order"
    INVALID_QTY = "invalid_qty"
    QTY_BELOW_MIN = "qty_below_min"
    QTY_ABOVE_MAX = "qty_above_max"
    INVALID_PRICE = "invalid_price"
    MIN_NOTIONAL = "min_notional"
    PRICE_OUT_OF_BAND = "price_out_of_band"
    REDUCE_ONLY_REJECTED = "reduce_only_rejected"
    POST_ONLY_WOULD_TAKE = "post_only_would_take"
    WOULD_IMMEDIATELY_TRIGGER = "would_immediately_trigger"
    NOT_AMENDABLE = "not_amendable"
    UNKNOWN_MARKET = "unknown_market"
    INSUFFICIENT_MARGIN = "insufficient_margin"
    """The account's available balance cannot cover the order's cost (initial margin, open
    loss and fee): Binance ``-2019``."""
    MAX_POSITION = "max_position"
    """The position with every order on this side filled would exceed what the current leverage
    allows by the market's brackets: Binance ``-2027``."""


class CancelReason(StrEnum):
    USER = "user"
    CANCEL_ALL = "cancel_all"
    AMEND_TO_ZERO = "amend_to_zero"


class ExpireReason(StrEnum):
    IOC = "ioc"
    """The unfilled rest of an IOC limit order."""
    FOK = "fok"
    """A fill-or-kill order that could not fill in full: nothing traded."""
    NO_LIQUIDITY = "no_liquidity"
    """A market order that emptied the opposite side (or found it empty)."""
    PRICE_PROTECTION = "price_protection"
    """A market order stopped at its protection bound."""
    STP = "stp"
    """Self-trade prevention expired this order."""
    REDUCE_ONLY = "reduce_only"
    """A reduce-only order that would no longer reduce the position."""
    POST_ONLY = "post_only"
    """A triggered post-only stop-limit order that would take."""
    GTD = "gtd"
    """Its ``expire_time`` came (Binance's GTD, good till date)."""


class Accepted(msgspec.Struct, tag="accepted", tag_field="event", frozen=True):
    order_id: int
    account: int


class Rejected(msgspec.Struct, tag="rejected", tag_field="event", frozen=True):
    order_id: int
    account: int
    reason: RejectReason
    message: str


class Trade(msgspec.Struct, tag="trade", tag_field="event", frozen=True):
    """One fill. ``taker_side`` tells which side was the maker; fees in settlement minor units
    (negative is a rebate)."""

    trade_id: int
    price: int
    qty: int
    taker_side: Side
    taker_order_id: int
    taker_account: int
    maker_order_id: int
    maker_account: int
    taker_fee: int
    maker_fee: int


class Cancelled(msgspec.Struct, tag="cancelled", tag_field="event", frozen=True):
    """Removed at the owner's request; ``open_qty`` is what was still open."""

    order_id: int
    account: int
    open_qty: int
    reason: CancelReason


class Expired(msgspec.Struct, tag="expired", tag_field="event", frozen=True):
    """Removed by the engine's rules; ``open_qty`` is what was still open."""

    order_id: int
    account: int
    open_qty: int
    reason: ExpireReason


class Triggered(msgspec.Struct, tag="triggered", tag_field="event", frozen=True):
    """A conditional order met its condition at ``price`` and is now working."""

    order_id: int
    account: int
    price: int


class Amended(msgspec.Struct, tag="amended", tag_field="event", frozen=True):
    order_id: int
    account: int
    price: int
    qty: int
    priority_kept: bool


class BookDelta(msgspec.Struct, tag="book", tag_field="event", frozen=True):
    """Levels whose total quantity differs after the command; quantity 0 removes the level.

    ``update_id`` grows by exactly one per delta, so a gap tells a client it missed one.
    Each side is sorted by ascending price.
    """

    update_id: int
    bids: tuple[tuple[int, int], ...]
    asks: tuple[tuple[int, int], ...]


MatchingEvent = Accepted | Rejected | Trade | Cancelled | Expired | Triggered | Amended | BookDelta
