"""Commands to the whole exchange (every market and the ledger): one ordered log of these.

Amounts are integers in minor units of the settlement asset, prices in ticks, quantities in
lots, rates in ``RATE_ONE`` units, times in milliseconds of event time. Order commands carry
their market's symbol around the matching core's own command, which stays market-local.
"""

from enum import StrEnum

import msgspec

from exchange.commands import AmendOrder, CancelAll, CancelOrder, PlaceOrder


class MarginMode(StrEnum):
    CROSS = "cross"
    ISOLATED = "isolated"


class CreateAccount(
    msgspec.Struct, tag="create_account", tag_field="cmd", frozen=True, kw_only=True
):
    """Register a trading account for an API key, known here only by its SHA-256 (hex): the
    engine numbers accounts, so every gateway learns the same key → account map from the log."""

    key_hash: str


class Login(msgspec.Struct, tag="login", tag_field="cmd", frozen=True, kw_only=True):
    """A login a gateway has checked (timestamp, signature), for the one check it cannot make
    alone: that no gateway instance has seen this key use this nonce. The log orders every
    instance's logins, so of two logins with the same nonce exactly one passes, wherever each
    arrived; a captured login frame cannot be replayed on another instance."""

    key_hash: str
    nonce: str
    timestamp: int
    """The login's own timestamp (ms): the nonce is remembered while it could still pass."""


class Deposit(msgspec.Struct, tag="deposit", tag_field="cmd", frozen=True, kw_only=True):
    """Paper money from the faucet, refused above the engine's per-account cap."""

    account: int
    amount: int


class Withdraw(msgspec.Struct, tag="withdraw", tag_field="cmd", frozen=True, kw_only=True):
    account: int
    amount: int


class SetLeverage(msgspec.Struct, tag="set_leverage", tag_field="cmd", frozen=True, kw_only=True):
    account: int
    symbol: str
    leverage: int


class SetMarginMode(
    msgspec.Struct, tag="set_margin_mode", tag_field="cmd", frozen=True, kw_only=True
):
    account: int
    symbol: str
    mode: MarginMode


class AdjustMargin(msgspec.Struct, tag="adjust_margin", tag_field="cmd", frozen=True, kw_only=True):
    """Move ``amount`` into (positive) or out of (negative) an isolated position's wallet."""

    account: int
    symbol: str
    amount: int


class OrderCommand(msgspec.Struct, tag="order", tag_field="cmd", frozen=True, kw_only=True):
    """Place, amend or cancel orders in one market."""

    symbol: str
    order: PlaceOrder | AmendOrder | CancelOrder | CancelAll


class MarkPrice(msgspec.Struct, tag="mark_price", tag_field="cmd", frozen=True, kw_only=True):
    """A new mark price from the oracle: re-prices margin and fires mark-triggered orders."""

    symbol: str
    price: int


class SettleFunding(msgspec.Struct, tag="funding", tag_field="cmd", frozen=True, kw_only=True):
    """Pay one funding settlement at the current mark price.

    ``funding_time`` names the settlement boundary; a market settles each boundary once, so a
    repeated or older command is rejected as a duplicate and pays nothing.
    """

    symbol: str
    rate: int
    funding_time: int


class Liquidate(msgspec.Struct, tag="liquidate", tag_field="cmd", frozen=True, kw_only=True):
    """Liquidate ``account``'s cross margin (``symbol`` empty) or its isolated position in
    ``symbol``, if the engine's own state says it is due.

    The liquidation service sends this when its view of the account reaches maintenance
    margin; the engine re-checks against its authoritative state, so a stale or repeated
    trigger is rejected and changes nothing. What a liquidation does: docs/liquidation.md.
    """

    account: int
    symbol: str = ""


class FundInsurance(
    msgspec.Struct, tag="fund_insurance", tag_field="cmd", frozen=True, kw_only=True
):
    """Paper money into the insurance fund: its starting balance in a drill."""

    amount: int


EngineCommand = (
    CreateAccount
    | Login
    | Deposit
    | Withdraw
    | SetLeverage
    | SetMarginMode
    | AdjustMargin
    | OrderCommand
    | MarkPrice
    | SettleFunding
    | Liquidate
    | FundInsurance
)
