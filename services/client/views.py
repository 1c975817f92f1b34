"""The gateway's answers and pushes as the client returns them: prices, quantities, amounts and
rates as ``Decimal``, never float.

Why these mirror the gateway's structs (``services.gateway.protocol``) instead of being them:
the gateway writes decimal strings (``"0.050"``), which is right on the wire, but a bot wants
numbers it can compare and add exactly. msgspec decodes a JSON string straight into a
``Decimal``, keeping its places (``Decimal("0.050")`` encodes back to ``"0.050"``), so each
struct here is the gateway's with ``str`` → ``Decimal`` on its decimal fields, same names, same
order, same enums. ``tests/test_client_units.py`` checks every pair field by field, so the two
cannot drift apart silently. Structs with no decimal field are the gateway's own, re-exported
(``AccountCreated``, ``CancelledAll``, ``LeverageSet``, ``MarginModeSet``, ``ChannelAck``,
``Pong``, ``AdlQuantileView``).

Unknown fields are ignored when decoding, so a gateway that adds a field does not break an older
client.
"""

from decimal import Decimal
from typing import Any

import msgspec

from exchange.engine_commands import MarginMode
from exchange.index_price import SourceState
from exchange.orders import OrderType, PriceMatch, Side, StpMode, TimeInForce, TriggerBy
from services.gateway.protocol import (
    AccountCreated,
    AdlQuantileView,
    CancelledAll,
    ChannelAck,
    LeverageSet,
    MarginModeSet,
    OrderStatus,
    Pong,
)

__all__ = [
    "AccountCreated",
    "AdlNotice",
    "AdlQuantileView",
    "Balance",
    "BookUpdate",
    "CancelledAll",
    "ChannelAck",
    "Fill",
    "Funding",
    "FundingSettlement",
    "Index",
    "IndexSource",
    "InsuranceFund",
    "InsuranceMovement",
    "LeverageSet",
    "Liquidation",
    "LiquidationHistory",
    "MarginCall",
    "MarginInfo",
    "MarginModeSet",
    "MarginScope",
    "Mark",
    "Market",
    "Order",
    "Pong",
    "Position",
    "Ticker",
    "Trade",
    "to_builtins",
]


class Market(msgspec.Struct, frozen=True):
    """A market's grid and fees (``markets``): prices must be multiples of ``tick_size``,
    quantities of ``lot_size``."""

    symbol: str
    base_asset: str
    quote_asset: str
    settle_asset: str
    tick_size: Decimal
    lot_size: Decimal
    min_qty: Decimal
    max_qty: Decimal
    max_price: Decimal
    min_notional: Decimal
    maker_fee: Decimal
    taker_fee: Decimal
    max_leverage: int


class Order(msgspec.Struct, frozen=True):
    """An order as the engine left it (``place_order``, ``amend_order``, ``cancel_order``,
    ``order``, ``open_orders``, the ``orders`` channel)."""

    symbol: str
    order_id: int
    client_order_id: str | None
    """The label given at placement (``place_order(client_order_id=…)``); None if none."""
    side: Side
    type: OrderType
    status: OrderStatus
    qty: Decimal
    """Filled plus open: the original quantity, or the amended one."""
    open_qty: Decimal
    filled_qty: Decimal
    avg_price: Decimal | None
    """Average fill price, rounded half-even to four places below the tick; None unfilled."""
    price: Decimal | None
    stop_price: Decimal | None
    activation_price: Decimal | None
    callback_rate: Decimal | None
    tif: TimeInForce
    trigger: TriggerBy
    reduce_only: bool
    stp: StpMode
    expire_time: int | None
    """When it ends if still open (ms, event time); None for good till cancelled."""
    price_match: PriceMatch | None
    """How the engine priced it from the book, if it did."""
    triggered: bool
    end_reason: str | None
    """Why a cancelled or expired order ended (``user``, ``ioc``, ``stp``…)."""
    created: int
    updated: int

    @property
    def is_open(self) -> bool:
        """Still working: resting on the book or waiting for its trigger."""
        return self.status in (OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED)


class Fill(msgspec.Struct, frozen=True):
    """One fill of the account's (``fills``, the ``fills`` channel)."""

    symbol: str
    trade_id: int
    order_id: int
    side: Side
    role: str
    """``maker`` or ``taker``."""
    price: Decimal
    qty: Decimal
    fee: Decimal
    """In the settlement asset; negative is a rebate."""
    realized_pnl: Decimal
    """What this fill realized of the position (fee not included): 0 for a fill that opens."""
    time: int


class Position(msgspec.Struct, frozen=True):
    """The account's position in one market (``positions``, ``adjust_margin``, the
    ``positions`` channel)."""

    symbol: str
    size: Decimal
    """Signed: positive long, negative short."""
    entry_price: Decimal | None
    entry_notional: Decimal
    realized_pnl: Decimal
    isolated_wallet: Decimal
    margin_mode: MarginMode
    leverage: int


class Balance(msgspec.Struct, frozen=True):
    """The account's balance (``balances``, ``deposit``, the ``balances`` channel)."""

    asset: str
    wallet: Decimal
    """The cross wallet: deposits, realized PnL, fees and funding of cross positions."""
    isolated: Decimal
    """The sum of the isolated positions' wallets."""
    order_margin: Decimal
    """What the open orders hold (initial margin, fees and open loss)."""
    available: Decimal
    """What a new order may cost (Binance ``availableBalance``); negative when the mark has
    moved against the account."""


class BookUpdate(msgspec.Struct, frozen=True):
    """``book.<SYMBOL>`` data: a ``snapshot``, then ``delta``s (a level's quantity 0 removes
    it). A delta covers the gateway's updates ``first_update_id`` … ``update_id`` and follows
    on when ``first_update_id`` is the last ``update_id`` + 1."""

    type: str
    symbol: str
    first_update_id: int
    update_id: int
    bids: list[tuple[Decimal, Decimal]]
    """``(price, qty)``, highest price first."""
    asks: list[tuple[Decimal, Decimal]]
    """``(price, qty)``, lowest price first."""


class Trade(msgspec.Struct, frozen=True):
    """One trade of the market; ``trades.<SYMBOL>`` data is a list of them, oldest first."""

    symbol: str
    trade_id: int
    price: Decimal
    qty: Decimal
    taker_side: Side
    time: int


class Ticker(msgspec.Struct, frozen=True):
    """``ticker.<SYMBOL>`` data: the top of the book, the last price and the 24-hour figures
    over a rolling window of event time (docs/gateway-protocol.md, *Streams*)."""

    symbol: str
    best_bid: Decimal | None
    best_bid_qty: Decimal | None
    best_ask: Decimal | None
    best_ask_qty: Decimal | None
    last: Decimal | None
    open: Decimal | None
    high: Decimal | None
    low: Decimal | None
    volume: Decimal
    quote_volume: Decimal
    price_change: Decimal | None
    price_change_percent: Decimal | None
    count: int
    open_interest: Decimal
    """Σ of the open long positions (= Σ of the short ones), base quantity."""
    time: int


class IndexSource(msgspec.Struct, frozen=True):
    source: str
    state: SourceState
    weight: int
    price: Decimal | None
    time: int | None


class Index(msgspec.Struct, frozen=True):
    """``index.<SYMBOL>`` data: the oracle's index at its point ``time``."""

    symbol: str
    time: int
    price: Decimal | None
    frozen: bool
    sources: list[IndexSource]


class Mark(msgspec.Struct, frozen=True):
    """``mark.<SYMBOL>`` data: the oracle's mark at its point ``time``."""

    symbol: str
    time: int
    mark: Decimal | None
    index: Decimal | None
    frozen: bool
    last_rate: Decimal
    predicted_rate: Decimal | None
    next_funding_time: int


class Funding(msgspec.Struct, frozen=True):
    """``funding.<SYMBOL>`` data: the predicted rate and the last settlement."""

    symbol: str
    predicted_rate: Decimal | None
    next_funding_time: int | None
    last_rate: Decimal | None
    last_funding_time: int | None


class FundingSettlement(msgspec.Struct, frozen=True):
    """One funding settlement of a market (``funding_history``)."""

    symbol: str
    funding_time: int
    rate: Decimal
    mark: Decimal
    positions: int
    paid: Decimal
    received: Decimal
    remainder: Decimal


class Liquidation(msgspec.Struct, frozen=True, kw_only=True):
    """One step of a liquidation of this account (``liquidations``)."""

    symbol: str
    margin_mode: MarginMode
    step: str
    position: Decimal
    filled_qty: Decimal
    deleveraged_qty: Decimal
    mark_price: Decimal | None
    bankruptcy_price: Decimal
    limit_price: Decimal
    fee: Decimal
    time: int


class AdlNotice(msgspec.Struct, frozen=True, kw_only=True):
    """This account's position auto-deleveraged against someone's liquidation (``adl``)."""

    symbol: str
    side: Side
    qty: Decimal
    price: Decimal
    rank: int
    time: int


class InsuranceMovement(msgspec.Struct, frozen=True, kw_only=True):
    """One movement of the insurance fund and its balance after it (``insurance``)."""

    balance: Decimal
    change: Decimal
    reason: str
    time: int


class InsuranceFund(msgspec.Struct, frozen=True):
    """The ``insurance_fund`` answer."""

    asset: str
    balance: Decimal
    movements: list[InsuranceMovement]


class LiquidationHistory(msgspec.Struct, frozen=True):
    """The ``liquidations`` answer."""

    liquidations: list[Liquidation]
    adl: list[AdlNotice]


class MarginCall(msgspec.Struct, frozen=True, kw_only=True):
    """A margin scope's level changed (``margin_calls``); ``symbol`` "" is the cross account."""

    symbol: str
    level: str
    ratio: Decimal | None
    margin_balance: Decimal
    maintenance: Decimal
    time: int


class MarginScope(msgspec.Struct, frozen=True, kw_only=True):
    """One margin scope of the ``margin`` answer."""

    symbol: str
    margin_balance: Decimal
    maintenance: Decimal
    ratio: Decimal | None
    level: str


class MarginInfo(msgspec.Struct, frozen=True):
    """The ``margin`` answer: every margin scope and the ADL indicators."""

    scopes: list[MarginScope]
    adl: list[AdlQuantileView]


CHANNEL_DATA: dict[str, type] = {
    "book": BookUpdate,
    "trades": list[Trade],
    "ticker": Ticker,
    "index": Index,
    "mark": Mark,
    "funding": Funding,
    "orders": Order,
    "fills": Fill,
    "positions": Position,
    "balances": Balance,
    "liquidations": Liquidation,
    "adl": AdlNotice,
    "insurance": InsuranceMovement,
    "margin_calls": MarginCall,
    "adl_quantile": AdlQuantileView,
}
"""What each channel's pushes carry, by the channel's kind (``book`` of ``book.BTCUSDT``)."""


def to_builtins(view: object) -> Any:
    """``view`` (a struct, a list of them…) as JSON-ready builtins, each ``Decimal`` written
    as the gateway writes it, in fixed point with its places (``"0.00000000"``, not
    ``str(Decimal)``'s ``"0E-8"``)."""
    return _fixed_point(msgspec.to_builtins(view, builtin_types=(Decimal,)))


def _fixed_point(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dict):
        return {key: _fixed_point(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_fixed_point(item) for item in value]
    return value
