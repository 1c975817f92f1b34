"""The gateway's messages: JSON over websocket, each one a ``msgspec`` struct.

Three kinds of frame (docs/gateway-protocol.md has an example of every message):

* a **request** from the client, ``{"id": <client id>, "op": "...", ...}``: a struct per op,
  tagged by ``op``, that refuses unknown fields (a misspelt optional field would otherwise be
  ignored silently, and an order placed without the flag its author meant);
* exactly one **response** per request, with its ``id``: ``{"id", "result"}`` or
  ``{"id", "error": {"code", "message", "retry_after_ms"?}}``;
* a **push** on a subscribed channel, ``{"channel", "seq", "data"}``, ``seq`` counting from 1
  per connection and channel, so a client can see it missed nothing.

Prices, quantities, amounts and rates are decimal strings here, the edge of the system: JSON
numbers are binary floats in most clients, and a price must never be off by a float's rounding.
``convert`` turns them into the engine's integers against the market's grid.
"""

from enum import StrEnum
from typing import Annotated, Any, cast, get_args

import msgspec

from exchange.commands import ClientOrderId
from exchange.engine_commands import MarginMode
from exchange.index_price import SourceState
from exchange.orders import OrderType, PriceMatch, Side, StpMode, TimeInForce, TriggerBy

RequestId = (
    Annotated[int, msgspec.Meta(ge=-(2**53), le=2**53)]
    | Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
)
"""A client's request id: a number a JavaScript client can hold exactly, or a short string."""

Decimal = Annotated[str, msgspec.Meta(min_length=1, max_length=40)]
"""A decimal string such as ``"65000.1"``; its grid is checked by ``convert``."""

Symbol = Annotated[str, msgspec.Meta(min_length=1, max_length=32)]
OrderId = Annotated[int, msgspec.Meta(ge=1, le=2**63 - 1)]
Nonce = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_-]{8,64}$")]
Channel = Annotated[str, msgspec.Meta(min_length=1, max_length=48)]


class ErrorCode(StrEnum):
    """The gateway's own error codes. An engine refusal passes its own reason through as the
    code (``insufficient_margin``, ``post_only_would_take``, ``faucet_cap``…: the
    ``RejectReason`` and ``CommandError`` values), so a client branches on one field."""

    INVALID_JSON = "invalid_json"
    INVALID_REQUEST = "invalid_request"
    """Wrong shape: a missing or unknown field, a wrong type, a value out of its range."""
    INVALID_VALUE = "invalid_value"
    """A decimal string that is not a number, not positive, off the grid or too large."""
    UNKNOWN_OP = "unknown_op"
    FRAME_TOO_LARGE = "frame_too_large"
    BINARY_FRAME = "binary_frame"
    UNAUTHENTICATED = "unauthenticated"
    ALREADY_LOGGED_IN = "already_logged_in"
    INVALID_SIGNATURE = "invalid_signature"
    """A bad signature, or an API key no account has: the two are not told apart."""
    STALE_TIMESTAMP = "stale_timestamp"
    REPLAYED_NONCE = "replayed_nonce"
    RATE_LIMITED = "rate_limited"
    UNKNOWN_MARKET = "unknown_market"
    UNKNOWN_ORDER = "unknown_order"
    """No such order of this account: another account's order id (or client order id) gets
    exactly this too."""
    UNKNOWN_CHANNEL = "unknown_channel"
    TIMEOUT = "timeout"
    """The engine did not answer in time: the command may still be applied, so look."""
    UNAVAILABLE = "unavailable"
    """The command could not be written to the command log: it was not applied."""
    INTERNAL = "internal"
    """The gateway could not build the answer (a bug, or an engine answer it does not
    expect): a command may have been applied, so look."""


# ----------------------------------------------------------------------------- requests


class _Request(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, tag_field="op"):
    id: RequestId


class Ping(_Request, tag="ping"):
    """Liveness and the gateway's clock (ms), for a client to measure its offset."""


class Markets(_Request, tag="markets"):
    """The markets and their grids: what a client needs to write valid decimal strings."""


class CreateAccount(_Request, tag="create_account"):
    """A new paper account; the answer holds its API key and secret, shown this once."""


class Login(_Request, tag="login"):
    """Sign this connection in: ``signature`` is hex HMAC-SHA256 of ``f"{timestamp}:{nonce}"``
    keyed with the secret (``auth.sign_login``)."""

    api_key: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
    timestamp: Annotated[int, msgspec.Meta(ge=0, le=2**53)]
    nonce: Nonce
    signature: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]


class PlaceOrder(_Request, tag="place_order"):
    """Every order type and flag of the matching core (docs/matching.md): ``price`` for limit
    types, ``stop_price`` for stop and take-profit types, ``callback_rate`` (a fraction,
    ``"0.01"`` is 1 %) and optionally ``activation_price`` for a trailing stop.
    ``client_order_id`` is the client's own label for the order, which the engine keeps
    unique among the account's live orders in the market (``duplicate_client_order_id``).
    ``expire_time`` (ms since the epoch, event time) ends the order if it is still open then
    (good till date; docs/ledger.md, "Expiry times"). ``price_match`` prices a limit order
    without ``price`` from the book as the engine places it (docs/ledger.md, "Price match")."""

    symbol: Symbol
    side: Side
    qty: Decimal
    type: OrderType = OrderType.LIMIT
    price: Decimal | None = None
    tif: TimeInForce = TimeInForce.GTC
    stop_price: Decimal | None = None
    activation_price: Decimal | None = None
    callback_rate: Decimal | None = None
    trigger: TriggerBy = TriggerBy.LAST
    reduce_only: bool = False
    stp: StpMode = StpMode.EXPIRE_TAKER
    client_order_id: ClientOrderId | None = None
    expire_time: Annotated[int, msgspec.Meta(ge=1, le=2**53)] | None = None
    price_match: PriceMatch | None = None


class _OneOrder(_Request):
    """A request about one order of the account, named by the engine's ``order_id`` or by the
    client's ``client_order_id``: exactly one of them, checked as the frame is decoded, so a
    request that names two orders (or none) is refused before anything looks for either."""

    symbol: Symbol
    order_id: OrderId | None = None
    client_order_id: ClientOrderId | None = None

    def __post_init__(self) -> None:
        if self.order_id is not None and self.client_order_id is not None:
            raise ValueError("give order_id or client_order_id, not both")
        if self.order_id is None and self.client_order_id is None:
            raise ValueError("give order_id or client_order_id")


class AmendOrder(_OneOrder, tag="amend_order"):
    """A new price and/or open quantity for a resting limit order."""

    price: Decimal | None = None
    qty: Decimal | None = None


class CancelOrder(_OneOrder, tag="cancel_order"):
    """Cancel one resting or conditional order."""


class CancelAll(_Request, tag="cancel_all"):
    symbol: Symbol


class SetLeverage(_Request, tag="set_leverage"):
    symbol: Symbol
    leverage: Annotated[int, msgspec.Meta(ge=1, le=1_000)]


class SetMarginMode(_Request, tag="set_margin_mode"):
    symbol: Symbol
    mode: MarginMode


class MarginAction(StrEnum):
    ADD = "add"
    REMOVE = "remove"


class AdjustMargin(_Request, tag="adjust_margin"):
    """Move ``amount`` into (``add``) or out of (``remove``) an isolated position's wallet."""

    symbol: Symbol
    amount: Decimal
    action: MarginAction


class Deposit(_Request, tag="deposit"):
    """Paper money from the faucet, up to the exchange's per-account cap."""

    amount: Decimal


class OpenOrders(_Request, tag="open_orders"):
    symbol: Symbol | None = None


class GetOrder(_OneOrder, tag="order"):
    """One order of this account, open or recently finished."""


class Positions(_Request, tag="positions"):
    symbol: Symbol | None = None


class Balances(_Request, tag="balances"):
    pass


class Fills(_Request, tag="fills"):
    """This account's most recent fills, newest first."""

    symbol: Symbol | None = None
    limit: Annotated[int, msgspec.Meta(ge=1, le=1_000)] = 100


class FundingHistory(_Request, tag="funding_history"):
    """Every funding settlement of a market the engine has applied, newest first. Public: the
    rates and totals are the market's, not an account's."""

    symbol: Symbol
    limit: Annotated[int, msgspec.Meta(ge=1, le=1_000)] = 100


class InsuranceFund(_Request, tag="insurance_fund"):
    """The insurance fund's balance and its latest movements, newest first. Public."""

    limit: Annotated[int, msgspec.Meta(ge=1, le=1_000)] = 100


class Liquidations(_Request, tag="liquidations"):
    """This account's latest liquidation steps and ADL notices, newest first."""

    limit: Annotated[int, msgspec.Meta(ge=1, le=1_000)] = 100


class Margin(_Request, tag="margin"):
    """This account's margin now: each scope's balance, maintenance and ratio at the engine's
    prices, the liquidation service's latest margin-call level, and the ADL indicators."""


class Subscribe(_Request, tag="subscribe"):
    """Channels: ``book.<SYMBOL>``, ``trades.<SYMBOL>``, ``ticker.<SYMBOL>``,
    ``index.<SYMBOL>``, ``mark.<SYMBOL>``, ``funding.<SYMBOL>``, ``insurance`` (public);
    ``orders``, ``fills``, ``positions``, ``balances``, ``liquidations``, ``adl``,
    ``margin_calls``, ``adl_quantile`` (this account's, after login)."""

    channel: Channel


class Unsubscribe(_Request, tag="unsubscribe"):
    channel: Channel


Request = (
    Ping
    | Markets
    | CreateAccount
    | Login
    | PlaceOrder
    | AmendOrder
    | CancelOrder
    | CancelAll
    | SetLeverage
    | SetMarginMode
    | AdjustMargin
    | Deposit
    | OpenOrders
    | GetOrder
    | Positions
    | Balances
    | Fills
    | FundingHistory
    | InsuranceFund
    | Liquidations
    | Margin
    | Subscribe
    | Unsubscribe
)

OPS: dict[str, type[_Request]] = {
    str(kind.__struct_config__.tag): kind for kind in get_args(Request)
}
"""Every op and its request struct."""

PUBLIC_OPS = frozenset(
    {
        "ping",
        "markets",
        "create_account",
        "login",
        "funding_history",
        "insurance_fund",
        "subscribe",
        "unsubscribe",
    }
)
"""Ops that need no login (a private channel still does: ``streams``)."""

ORDER_OPS = frozenset({"place_order", "amend_order", "cancel_order", "cancel_all"})
"""Ops that count against the account's order limit (weight 1 each), as Binance's order
count does; every request counts against its connection's request limit too."""

REQUEST_WEIGHT: dict[str, int] = {"create_account": 20, "login": 5, "markets": 5}
"""A request's weight against its connection's limit where not 1: what costs the exchange
more (an account, an HMAC check, a large answer) costs the client more."""


# ---------------------------------------------------------------------------- responses


class ErrorBody(msgspec.Struct, frozen=True, omit_defaults=True):
    code: str
    message: str
    retry_after_ms: int | None = None
    """Set for ``rate_limited``: when the request would be allowed."""


class Failure(Exception):
    """A request refused by the gateway; ``body`` is the error the client gets."""

    def __init__(self, code: str, message: str, retry_after_ms: int | None = None) -> None:
        super().__init__(message)
        self.body = ErrorBody(code, message, retry_after_ms)


class Result(msgspec.Struct, frozen=True):
    id: RequestId | None
    result: Any


class Error(msgspec.Struct, frozen=True):
    id: RequestId | None
    """None when the frame had no readable id (not JSON, too large, no ``id``)."""
    error: ErrorBody


class Push(msgspec.Struct, frozen=True):
    channel: str
    seq: int
    data: msgspec.Raw
    """The payload, encoded once for every connection it goes to."""


# --------------------------------------------------------------------------- results, data


class Pong(msgspec.Struct, frozen=True):
    time: int


class MarketView(msgspec.Struct, frozen=True):
    symbol: str
    base_asset: str
    quote_asset: str
    settle_asset: str
    tick_size: str
    lot_size: str
    min_qty: str
    max_qty: str
    max_price: str
    min_notional: str
    maker_fee: str
    taker_fee: str
    max_leverage: int


class AccountCreated(msgspec.Struct, frozen=True):
    account: int
    api_key: str
    api_secret: str
    """Derived, never stored: shown in this answer only."""


class LoggedIn(msgspec.Struct, frozen=True):
    account: int


class OrderStatus(StrEnum):
    NEW = "new"
    """Accepted and working: resting on the book, or waiting for its trigger."""
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    """Ended by the engine's rules: IOC or FOK rest, no liquidity, STP, reduce-only…"""


class OrderView(msgspec.Struct, frozen=True):
    symbol: str
    order_id: int
    client_order_id: str | None
    """The client's label, as placed; None if it gave none."""
    side: Side
    type: OrderType
    status: OrderStatus
    qty: str
    """Filled plus open: the original quantity, or the amended one."""
    open_qty: str
    filled_qty: str
    avg_price: str | None
    """Average fill price, rounded half-even to four places below the tick; None unfilled."""
    price: str | None
    stop_price: str | None
    activation_price: str | None
    callback_rate: str | None
    tif: TimeInForce
    trigger: TriggerBy
    reduce_only: bool
    stp: StpMode
    expire_time: int | None
    """When it ends if still open (ms, event time), as placed; None for good till cancelled."""
    price_match: PriceMatch | None
    """How the engine priced it from the book, if it did (``price`` is the price it got)."""
    triggered: bool
    """A conditional order whose condition has been met (always False for others)."""
    end_reason: str | None
    """Why a cancelled or expired order ended (``user``, ``ioc``, ``stp``…)."""
    created: int
    updated: int


class CancelledAll(msgspec.Struct, frozen=True):
    symbol: str
    order_ids: list[int]


class LeverageSet(msgspec.Struct, frozen=True):
    symbol: str
    leverage: int


class MarginModeSet(msgspec.Struct, frozen=True):
    symbol: str
    mode: MarginMode


class FillView(msgspec.Struct, frozen=True):
    symbol: str
    trade_id: int
    order_id: int
    side: Side
    role: str
    """``maker`` or ``taker``."""
    price: str
    qty: str
    fee: str
    """In the settlement asset; negative is a rebate."""
    realized_pnl: str
    """What this fill realized of the position (fee not included): 0 for a fill that opens."""
    time: int


class PositionView(msgspec.Struct, frozen=True):
    symbol: str
    size: str
    """Signed: positive long, negative short."""
    entry_price: str | None
    entry_notional: str
    realized_pnl: str
    """Realized since the account first traded the market (fees and funding not included)."""
    isolated_wallet: str
    margin_mode: MarginMode
    leverage: int


class BalanceView(msgspec.Struct, frozen=True):
    asset: str
    wallet: str
    """The cross wallet: deposits, realized PnL, fees and funding of cross positions."""
    isolated: str
    """The sum of the isolated positions' wallets."""
    order_margin: str
    """What the open orders hold (initial margin, fees and open loss; ``exchange.risk``)."""
    available: str
    """What a new order may cost (Binance ``availableBalance``): the cross wallet plus cross
    unrealized PnL, less cross position margin and order margin; negative when the mark has
    moved against the account. At the prices of the moment it is read."""


class BookLevels(msgspec.Struct, frozen=True):
    """``book.<SYMBOL>`` data: ``snapshot`` first, then ``delta``s, each with every level that
    changed since the one before (at its new quantity; ``"0"`` removes it). A delta covers the
    engine's updates ``first_update_id`` … ``update_id``; it follows on when its
    ``first_update_id`` is the previous ``update_id`` + 1, and a gap means resubscribe. A
    snapshot's ``first_update_id`` is its ``update_id``."""

    type: str
    symbol: str
    first_update_id: int
    update_id: int
    bids: list[tuple[str, str]]
    """Highest price first."""
    asks: list[tuple[str, str]]
    """Lowest price first."""


class TradeView(msgspec.Struct, frozen=True):
    """One trade; ``trades.<SYMBOL>`` data is a list of them, oldest first: the trades of one
    step of the gateway (``streams``)."""

    symbol: str
    trade_id: int
    price: str
    qty: str
    taker_side: Side
    time: int


class TickerView(msgspec.Struct, frozen=True):
    """``ticker.<SYMBOL>`` data: the top of the book, the last price, and Binance-like 24-hour
    figures over a rolling window of event time (``ticker_stats``: the trades of the current
    minute and the 1,439 before it)."""

    symbol: str
    best_bid: str | None
    best_bid_qty: str | None
    best_ask: str | None
    best_ask_qty: str | None
    last: str | None
    """The last trade's price, however long ago."""
    open: str | None
    """The first trade's price in the 24 h window; None (as ``high``, ``low``, the changes)
    when no trade is in it."""
    high: str | None
    low: str | None
    volume: str
    """Base quantity traded in the window."""
    quote_volume: str
    """Σ price × quantity of the window's trades, in the settlement asset."""
    price_change: str | None
    """``last − open``."""
    price_change_percent: str | None
    """``(last − open) / open × 100``, rounded half-even to three places."""
    count: int
    open_interest: str
    """Σ of the open long positions (= Σ of the short ones), base quantity, now."""
    """Trades in the window."""
    time: int
    """The event time the figures are as of."""


class IndexSourceView(msgspec.Struct, frozen=True):
    source: str
    state: SourceState
    """``included`` in the index, or out of it: ``stale``, ``deviant``, ``no_data``."""
    weight: int
    price: str | None
    """The source's latest price, None if it never sent one."""
    time: int | None


class IndexView(msgspec.Struct, frozen=True):
    """``index.<SYMBOL>`` data: the oracle's index at its point ``time``."""

    symbol: str
    time: int
    price: str | None
    """None only before any source was ever live."""
    frozen: bool
    """No source is live: ``price`` is the last index that had one."""
    sources: list[IndexSourceView]


class MarkView(msgspec.Struct, frozen=True):
    """``mark.<SYMBOL>`` data: the oracle's mark at its point ``time`` (Binance's
    ``markPriceUpdate``)."""

    symbol: str
    time: int
    mark: str | None
    index: str | None
    frozen: bool
    """The index is frozen, and the mark repeats the last one made from a live index."""
    last_rate: str
    """The last settled funding rate, the one the mark's funding basis uses."""
    predicted_rate: str | None
    """The funding service's estimate the oracle had at this point, if any."""
    next_funding_time: int


class FundingView(msgspec.Struct, frozen=True):
    """``funding.<SYMBOL>`` data."""

    symbol: str
    predicted_rate: str | None
    """The funding service's latest estimate of the next settlement's rate; None before its
    first estimate, and between a settlement and the estimate for the one after."""
    next_funding_time: int | None
    """The settlement ``predicted_rate`` is for."""
    last_rate: str | None
    """The rate of the last settlement the engine applied; None before the first."""
    last_funding_time: int | None


class FundingSettlementView(msgspec.Struct, frozen=True):
    """One settlement, as the engine applied it (``funding_history``)."""

    symbol: str
    funding_time: int
    rate: str
    mark: str
    """The mark price every position paid or received at."""
    positions: int
    """Positions that paid or received."""
    paid: str
    """The total paid by the positions that paid (longs for a positive rate)."""
    received: str
    """The total received by the others."""
    remainder: str
    """``paid − received``: the rounding, to the insurance fund."""


class LiquidationView(msgspec.Struct, frozen=True, kw_only=True):
    """``liquidations`` data: one step of a liquidation of this account (docs/ledger.md,
    Liquidation). ``position`` is the position before the step (signed: − short); the book took
    ``filled_qty`` at no worse than ``limit_price``, ADL closed ``deleveraged_qty`` at
    ``bankruptcy_price``; ``fee`` is the clearance fee."""

    symbol: str
    margin_mode: MarginMode
    step: str
    """``partial`` (down to the next lower bracket) or ``full``."""
    position: str
    filled_qty: str
    deleveraged_qty: str
    mark_price: str | None
    bankruptcy_price: str
    limit_price: str
    fee: str
    time: int


class AdlNoticeView(msgspec.Struct, frozen=True, kw_only=True):
    """``adl`` data: this account's position was auto-deleveraged: reduced by ``qty`` at
    ``price`` (the liquidated position's bankruptcy price), without fees; ``rank`` is its place
    in the queue (1: first)."""

    symbol: str
    side: Side
    """The side of the reducing fill (sell for a long)."""
    qty: str
    price: str
    rank: int
    time: int


class InsuranceMovementView(msgspec.Struct, frozen=True, kw_only=True):
    """``insurance`` data: the fund's balance after one movement of ``change`` (signed)."""

    balance: str
    change: str
    reason: str
    """``liquidation_fee``, ``liquidation_surplus``, ``liquidation_shortfall``,
    ``funding_remainder`` or ``insurance_funding``."""
    time: int


class InsuranceFundView(msgspec.Struct, frozen=True):
    """The ``insurance_fund`` answer."""

    asset: str
    balance: str
    movements: list[InsuranceMovementView]


class LiquidationHistoryView(msgspec.Struct, frozen=True):
    """The ``liquidations`` answer."""

    liquidations: list[LiquidationView]
    adl: list[AdlNoticeView]


class MarginCallView(msgspec.Struct, frozen=True, kw_only=True):
    """``margin_calls`` data: a margin scope's level changed (the liquidation service's
    ``MarginCall``, docs/liquidation.md). ``symbol`` "" is the cross account. ``level``:
    ``warning`` (margin ratio at the margin-call ratio, 80 %), ``liquidation`` (100 %: a
    liquidation follows), ``safe`` (below the warning again, or no position any more)."""

    symbol: str
    level: str
    ratio: str | None
    """Maintenance margin / margin balance as a fraction (``"0.85"`` is 85 %); None when the
    margin balance is not positive."""
    margin_balance: str
    maintenance: str
    time: int


class AdlQuantileView(msgspec.Struct, frozen=True, kw_only=True):
    """``adl_quantile`` data: one position's place in the ADL queue, 0 … 4 (4: first to be
    auto-deleveraged, Binance's ``adlQuantile``); None once the position is closed."""

    symbol: str
    side: str
    """``long`` or ``short``."""
    quantile: int | None
    time: int


class MarginScopeView(msgspec.Struct, frozen=True, kw_only=True):
    """One margin scope of the ``margin`` answer, valued at the engine's price now (its mark,
    else the last trade): the same figures the engine liquidates on."""

    symbol: str
    """"" for the cross account (its wallet and every cross position), else the isolated
    position's market."""
    margin_balance: str
    maintenance: str
    ratio: str | None
    level: str
    """The liquidation service's latest margin-call level for the scope (``safe`` if none)."""


class MarginView(msgspec.Struct, frozen=True):
    """The ``margin`` answer."""

    scopes: list[MarginScopeView]
    adl: list[AdlQuantileView]


class ChannelAck(msgspec.Struct, frozen=True):
    """The answer to ``subscribe`` and ``unsubscribe``."""

    channel: str


# ------------------------------------------------------------------------------ encoding

ENCODER = msgspec.json.Encoder()


class _Head(msgspec.Struct, frozen=True):
    """What is read of a frame before its op is known: enough to answer it by id."""

    id: RequestId | None = None
    op: str | None = None


_HEAD_DECODER = msgspec.json.Decoder(_Head)
_DECODERS = {op: msgspec.json.Decoder(kind) for op, kind in OPS.items()}


class RequestFailure(Failure):
    """A frame that is no valid request; ``request_id`` is its id if that could be read."""

    def __init__(self, request_id: RequestId | None, code: str, message: str) -> None:
        super().__init__(code, message)
        self.request_id = request_id


def decode_request(frame: bytes | str) -> Request:
    """The request in ``frame``, or ``RequestFailure`` naming what is wrong with it.

    Two passes: the head first (``id``, ``op``), so that a frame with a bad field is still
    answered with its own id, and an unknown op is told apart from a bad field.
    """
    try:
        head = _HEAD_DECODER.decode(frame)
    except msgspec.ValidationError as error:  # a subclass of DecodeError: first
        raise RequestFailure(None, ErrorCode.INVALID_REQUEST, str(error)) from None
    except msgspec.DecodeError as error:
        raise RequestFailure(None, ErrorCode.INVALID_JSON, str(error)) from None
    if head.op is None:
        raise RequestFailure(head.id, ErrorCode.INVALID_REQUEST, "missing field `op`")
    decoder = _DECODERS.get(head.op)
    if decoder is None:
        raise RequestFailure(head.id, ErrorCode.UNKNOWN_OP, f"no op {head.op!r}")
    try:
        return cast(Request, decoder.decode(frame))
    except msgspec.ValidationError as error:
        raise RequestFailure(head.id, ErrorCode.INVALID_REQUEST, str(error)) from None
    except msgspec.DecodeError as error:  # what the head's pass skipped can still be bad
        raise RequestFailure(head.id, ErrorCode.INVALID_JSON, str(error)) from None


def encode_result(request_id: RequestId | None, result: object) -> bytes:
    return ENCODER.encode(Result(request_id, result))


def encode_error(request_id: RequestId | None, body: ErrorBody) -> bytes:
    return ENCODER.encode(Error(request_id, body))
