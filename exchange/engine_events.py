"""Events of the whole exchange: what the engine state machine did, as small typed records.

Every movement of money is one ``Transfer`` between two ledger addresses (see
``exchange.ledger``), so a reader of the event log can rebuild every balance exactly.
"""

from enum import StrEnum

import msgspec

from exchange.commands import PlaceOrder
from exchange.engine_commands import MarginMode
from exchange.events import MatchingEvent
from exchange.orders import Side


class CommandError(StrEnum):
    """Why a non-order command was refused; a refused command changes nothing."""

    UNKNOWN_MARKET = "unknown_market"
    INVALID_AMOUNT = "invalid_amount"
    FAUCET_CAP = "faucet_cap"
    """A deposit would take the wallet above the faucet's per-account cap."""
    INSUFFICIENT_BALANCE = "insufficient_balance"
    """A withdrawal or margin transfer above what is available."""
    INVALID_LEVERAGE = "invalid_leverage"
    """Below 1, or above what the market's brackets allow for the position and orders."""
    INSUFFICIENT_MARGIN = "insufficient_margin"
    """The change would leave the account unable to margin what it holds."""
    POSITION_OR_ORDERS_OPEN = "position_or_orders_open"
    """Margin mode cannot change while the market has a position or open orders."""
    NOT_ISOLATED = "not_isolated"
    NO_POSITION = "no_position"
    UNSAFE_MARGIN = "unsafe_margin"
    """Removing isolated margin would leave the position below its initial margin."""
    DUPLICATE_FUNDING = "duplicate_funding"
    NO_MARK_PRICE = "no_mark_price"
    NOT_LIQUIDATABLE = "not_liquidatable"
    """A liquidation trigger the engine's own state does not confirm (stale or repeated)."""
    INVALID_KEY = "invalid_key"
    """A key hash that is not 64 lowercase hex digits (a SHA-256)."""
    DUPLICATE_KEY = "duplicate_key"
    UNKNOWN_KEY = "unknown_key"
    """A login for a key no account has."""
    REPLAYED_NONCE = "replayed_nonce"
    """A login whose nonce this key has used already (on any gateway instance)."""
    INVALID_NONCE = "invalid_nonce"


class CommandRejected(msgspec.Struct, tag="command_rejected", tag_field="type", frozen=True):
    reason: CommandError
    message: str


class MarketEvent(msgspec.Struct, tag="market", tag_field="type", frozen=True):
    """An event of one market's matching core."""

    symbol: str
    event: MatchingEvent


class OrderPlaced(msgspec.Struct, tag="placed", tag_field="type", frozen=True):
    """The terms of an order the engine accepted, with the id it has (the engine's own when
    the command asked for one): just before the order's ``Accepted``. The event log carries
    them so that a reader of it alone (a gateway) knows every order's side, price, type and
    flags, without reading the command log as well."""

    symbol: str
    order: PlaceOrder


class TransferReason(StrEnum):
    DEPOSIT = "deposit"
    WITHDRAWAL = "withdrawal"
    FEE = "fee"
    REALIZED_PNL = "realized_pnl"
    ISOLATED_MARGIN = "isolated_margin"
    FUNDING = "funding"
    FUNDING_REMAINDER = "funding_remainder"
    LIQUIDATION_FEE = "liquidation_fee"
    """The clearance fee of a liquidation, to the insurance fund."""
    LIQUIDATION_SURPLUS = "liquidation_surplus"
    """What a bankrupt position had left after its close, to the insurance fund."""
    LIQUIDATION_SHORTFALL = "liquidation_shortfall"
    """The insurance fund paying for a close worse than the bankruptcy price."""
    INSURANCE_FUNDING = "insurance_funding"


class Transfer(msgspec.Struct, tag="transfer", tag_field="type", frozen=True):
    """``amount`` (> 0) moved from ``source`` to ``target``: two ledger addresses."""

    source: str
    target: str
    amount: int
    reason: TransferReason


class PositionUpdate(msgspec.Struct, tag="position", tag_field="type", frozen=True):
    """A position after a change. ``entry_notional`` is ``|size| × entry price`` in minor
    units (exact: the cost of the fills still open); ``realized_pnl`` is what this change
    realized; ``isolated_wallet`` is 0 for a cross position."""

    account: int
    symbol: str
    size: int
    entry_notional: int
    realized_pnl: int
    isolated_wallet: int


class LeverageChanged(msgspec.Struct, tag="leverage", tag_field="type", frozen=True):
    account: int
    symbol: str
    leverage: int


class MarginModeChanged(msgspec.Struct, tag="margin_mode", tag_field="type", frozen=True):
    account: int
    symbol: str
    mode: MarginMode


class FundingSettled(msgspec.Struct, tag="funding_settled", tag_field="type", frozen=True):
    """One settlement, after its transfers; ``remainder`` went to the insurance fund."""

    symbol: str
    funding_time: int
    rate: int
    mark: int
    positions: int
    remainder: int


class MarkChanged(msgspec.Struct, tag="mark", tag_field="type", frozen=True):
    """The market's mark price is now ``price``: what margin, liquidation and stops use.
    In the event log so that a reader can value positions exactly as the engine does."""

    symbol: str
    price: int


class OrderMarginChanged(msgspec.Struct, tag="order_margin", tag_field="type", frozen=True):
    """The margin the account's open orders in ``symbol`` hold is now ``amount`` (minor units,
    ``exchange.risk.order_margin``): what a reader needs, beside positions and wallets, for the
    available balance (Binance ``availableBalance``). Emitted after a command that changed it,
    once per account and market."""

    account: int
    symbol: str
    amount: int


class LiquidationStep(StrEnum):
    PARTIAL = "partial"
    """Reduce a large position to the next lower leverage bracket, through the book."""
    FULL = "full"
    """Close the whole position: the book, then auto-deleveraging for what it cannot take."""


class Liquidation(msgspec.Struct, tag="liquidation", tag_field="type", frozen=True, kw_only=True):
    """One step of a liquidation, after its fills and its insurance-fund movements.

    ``size`` is the position before the step (signed lots); ``filled`` lots went through the
    book with a limit of ``limit_price``, ``deleveraged`` lots to ADL counterparties at
    ``bankruptcy_price``. ``fee`` is the clearance fee, ``insurance`` the fund's net change in
    the step (fee included; negative when it paid a shortfall), ``uncovered`` a loss that
    neither the fund nor ADL could take: always 0 unless a rule is broken, and reported so that
    a drill can prove it. ``order_id`` and ``qty`` are the step's IOC order's (its fills carry
    the id), ``filled_value`` is Σ price × qty of those fills (tick·lots): what a front needs
    to show the step as the liquidation order it was (Binance's ``forceOrders``).
    """

    account: int
    symbol: str
    mode: MarginMode
    step: LiquidationStep
    size: int
    filled: int
    deleveraged: int
    mark: int | None
    bankruptcy_price: int
    limit_price: int
    fee: int
    insurance: int
    uncovered: int
    order_id: int = 0
    qty: int = 0
    filled_value: int = 0


class Deleveraged(msgspec.Struct, tag="adl", tag_field="type", frozen=True):
    """ADL notice: ``counterparty``'s position in ``symbol`` was reduced by ``qty`` lots at
    ``price`` (the liquidated position's bankruptcy price), against ``account``'s liquidation;
    ``side`` is the counterparty's reducing fill (buy for a short); ``rank`` is its place in
    the queue (1: first)."""

    symbol: str
    account: int
    counterparty: int
    side: Side
    qty: int
    price: int
    rank: int


class AccountCreated(msgspec.Struct, tag="account_created", tag_field="type", frozen=True):
    """``account`` now belongs to the API key whose SHA-256 is ``key_hash``."""

    account: int
    key_hash: str


class LoggedIn(msgspec.Struct, tag="logged_in", tag_field="type", frozen=True):
    """The key whose SHA-256 is ``key_hash`` logged in to ``account`` (``Login``)."""

    account: int
    key_hash: str


EngineEvent = (
    AccountCreated
    | LoggedIn
    | CommandRejected
    | MarketEvent
    | OrderPlaced
    | Transfer
    | PositionUpdate
    | LeverageChanged
    | MarginModeChanged
    | FundingSettled
    | MarkChanged
    | OrderMarginChanged
    | Liquidation
    | Deleveraged
)
