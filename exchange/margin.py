"""Margin, liquidation and funding arithmetic of Binance USDⓈ-M, in exact integers.

Section numbers (§) refer to ``/work/shared/reference/perp-mechanics.md``.

Units: prices in ticks, sizes in lots (signed: + long, − short, one-way mode), money in minor
units of the settlement asset, rates in ``RATE_ONE`` units. One lot at one tick is worth
``multiplier`` minor units (``MarketSpec.multiplier``). A position's entry is given as its
*entry notional* ``|size| × entry price × multiplier`` in minor units (Binance's ``Q·EP``): the
exact cost of its fills, so an average entry price off the tick grid needs no rounding here.

Rounding rule: every division rounds so that the exchange is never the side short-changed.
Requirements (initial and maintenance margin, margin ratio) round up. What an account pays
rounds up and what it receives rounds down; the difference goes to a named account. A
liquidation or bankruptcy price rounds to the tick that the position reaches first as the price
moves against it (a long's up, a short's down), so it is never later than the exact price.
Brackets are assumed valid (``validate_brackets``): the tier search relies on maintenance
margin being continuous.
"""

from collections.abc import Hashable, Mapping, Sequence
from typing import TypeVar

from exchange.market import LeverageBracket
from exchange.units import RATE_ONE, ceil_div

Account = TypeVar("Account", bound=Hashable)


def validate_brackets(brackets: Sequence[LeverageBracket]) -> Sequence[LeverageBracket]:
    """Raise ``ValueError`` unless ``brackets`` form a Binance tier table; return them.

    Required (§3.1): caps strictly rising; maintenance rates in ``[0, RATE_ONE)`` and not
    falling; max leverage at least 1 and not rising; ``cum`` following the recursion
    ``cum_n = floor_n × (MMR_n − MMR_{n−1}) + cum_{n−1}, cum_1 = 0`` exactly, which is what
    makes maintenance margin continuous at the tier edges; and an initial-margin rate at max
    leverage above the maintenance rate, so a position opened at the limit is not already
    liquidatable.
    """
    if not brackets:
        raise ValueError("a market needs at least one leverage bracket")
    floor, rate, cum, leverage = 0, 0, 0, brackets[0].max_leverage
    for tier, b in enumerate(brackets, start=1):
        step = floor * (b.maint_rate - rate)
        if b.notional_cap <= floor:
            raise ValueError(f"tier {tier}: notional cap must rise")
        if not rate <= b.maint_rate < RATE_ONE:
            raise ValueError(f"tier {tier}: maintenance rate must rise and stay below 100 %")
        if not 1 <= b.max_leverage <= leverage:
            raise ValueError(f"tier {tier}: max leverage must be at least 1 and not rise")
        if b.maint_rate * b.max_leverage >= RATE_ONE:
            raise ValueError(f"tier {tier}: 1 / max leverage must exceed the maintenance rate")
        if step % RATE_ONE or b.maint_amount != cum + step // RATE_ONE:
            raise ValueError(f"tier {tier}: cum must be {cum} + {floor} × Δrate exactly")
        floor, rate, cum, leverage = b.notional_cap, b.maint_rate, b.maint_amount, b.max_leverage
    return brackets


def notional(price_ticks: int, qty_lots: int, multiplier: int) -> int:
    """Value of ``|qty_lots|`` at ``price_ticks`` in minor units: exact, no division.

    The sign of the quantity is dropped so a signed position can be passed as it is.
    """
    return price_ticks * abs(qty_lots) * multiplier


def unrealized_pnl(size: int, entry_notional: int, mark_ticks: int, multiplier: int) -> int:
    """``side × Q × (MP − EP)`` (§3.1) in minor units: exact, no division."""
    value = notional(mark_ticks, size, multiplier)
    return value - entry_notional if size >= 0 else entry_notional - value


def bracket_for(brackets: Sequence[LeverageBracket], position_notional: int) -> LeverageBracket:
    """The tier whose notional range holds ``position_notional`` (§3.1, TV-B7).

    A tier covers ``(previous cap, cap]``: Binance's "maximum position at current leverage" is
    the cap itself, so a position exactly at a cap still belongs to the lower tier. The choice
    does not move maintenance margin, which is continuous at the caps. Above the last cap the
    last tier applies: no order may take a position there (``max_leverage`` is 0), but a mark
    move can, and its maintenance margin must still be defined.
    """
    for bracket in brackets:
        if position_notional <= bracket.notional_cap:
            return bracket
    return brackets[-1]


def max_leverage(brackets: Sequence[LeverageBracket], position_notional: int) -> int:
    """Highest leverage allowed for a position of this notional; 0 above the last cap."""
    if position_notional > brackets[-1].notional_cap:
        return 0
    return bracket_for(brackets, position_notional).max_leverage


def leverage_allowed(
    brackets: Sequence[LeverageBracket], position_notional: int, leverage: int
) -> bool:
    """Whether a position of this notional may be held at ``leverage`` (Binance's tier check)."""
    return 1 <= leverage <= max_leverage(brackets, position_notional)


def initial_margin(order_notional: int, leverage: int) -> int:
    """``IM = notional / leverage`` (§3.1), rounded up: never less than the exact share."""
    if leverage < 1:
        raise ValueError(f"leverage {leverage} must be at least 1")
    return ceil_div(order_notional, leverage)


def maintenance_margin(brackets: Sequence[LeverageBracket], position_notional: int) -> int:
    """``MM = notional × MMR − cum`` of the notional's tier (§3.1), the product rounded up.

    Rounding the product up (``cum`` is a whole number of minor units) keeps the requirement
    at least the exact one, and keeps it continuous at the caps: there the two tiers' products
    differ by exactly ``cap × ΔMMR``, an integer that ``cum`` absorbs.
    """
    bracket = bracket_for(brackets, position_notional)
    return ceil_div(position_notional * bracket.maint_rate, RATE_ONE) - bracket.maint_amount


def margin_ratio(maintenance: int, margin_balance: int) -> int | None:
    """``MarginRatio = MM / MarginBalance`` (§3.1) in rate units, rounded up.

    ``margin_balance`` is wallet balance plus unrealized PnL (the isolated wallet and its one
    position, or the cross wallet and all cross positions). Liquidation is due when the ratio
    reaches ``RATE_ONE``; rounding up makes that, and any margin-call warning, come no later
    than the exact ratio. None when the balance is zero or negative: the ratio is unbounded
    and an account with a position is past liquidation.
    """
    if margin_balance <= 0:
        return None
    return ceil_div(maintenance * RATE_ONE, margin_balance)


def _root(
    size: int, entry_notional: int, available: int, rate: int, cum: int, multiplier: int
) -> tuple[int, int]:
    """Exact price ``num / den`` (den > 0) where ``available + uPnL(P) = notional(P)·rate − cum``.

    This is §4.1's one-way formula ``LP = (WB − TMM1 + UPNL1 + cum − side·Q·EP) /
    (Q·MMR − side·Q)`` with ``available = WB − TMM1 + UPNL1``, multiplied through by
    ``RATE_ONE`` and the multiplier so that it stays in integers; the sign is folded into the
    numerator so that the denominator is positive.
    """
    lots_value = abs(size) * multiplier
    if size > 0:
        return (entry_notional - available - cum) * RATE_ONE, lots_value * (RATE_ONE - rate)
    return (entry_notional + available + cum) * RATE_ONE, lots_value * (RATE_ONE + rate)


def _liquidation_root(
    size: int,
    entry_notional: int,
    available: int,
    brackets: Sequence[LeverageBracket],
    multiplier: int,
) -> tuple[int, int] | None:
    """The exact liquidation price with §4.1's tier iteration; None if it is below zero.

    Each tier's linear solution is kept only if the notional at that price falls in the tier.
    Margin balance minus maintenance margin is continuous and strictly monotone in the price
    (its slope is ``Q·(1 ∓ MMR)`` with MMR < 100 %), so at most one root exists on ``[0, ∞)``
    and the first tier that holds it returns it; at a cap both neighbours give the same price.
    """
    floor = 0
    for index, bracket in enumerate(brackets):
        num, den = _root(
            size, entry_notional, available, bracket.maint_rate, bracket.maint_amount, multiplier
        )
        value = abs(size) * multiplier * num
        in_tier = floor * den <= value and (
            index == len(brackets) - 1 or value <= bracket.notional_cap * den
        )
        if in_tier:
            return num, den
        floor = bracket.notional_cap
    return None


def _to_tick(size: int, root: tuple[int, int] | None) -> int | None:
    """Round an exact price to the tick the position reaches first as the price moves against it.

    Long: up (the price falls onto it sooner); None when the price is at or below zero, since
    no price reaches it (Binance shows "--"). Short: down; 0 when the price is at or below
    zero, since every price is at or beyond it.
    """
    if size > 0:
        if root is None or root[0] <= 0:
            return None
        return ceil_div(*root)
    if root is None:
        return 0
    return max(0, root[0] // root[1])


def liquidation_price(
    size: int,
    entry_notional: int,
    wallet_balance: int,
    brackets: Sequence[LeverageBracket],
    multiplier: int,
    *,
    other_maintenance: int = 0,
    other_unrealized_pnl: int = 0,
) -> int | None:
    """Binance's one-way-mode liquidation price (§4.1) in ticks; None for no position or none.

    Isolated: ``wallet_balance`` is the position's isolated wallet (margin, added margin,
    funding) and the ``other_*`` terms stay 0, as Binance sets TMM1 = UPNL1 = 0. Cross:
    ``wallet_balance`` is the cross wallet and ``other_maintenance`` / ``other_unrealized_pnl``
    are TMM1 / UPNL1, the maintenance margin and unrealized PnL of every *other* cross position
    at their marks, held fixed.

    The tier is the one at the liquidation price, found by §4.1's iteration. The exact price
    is rounded to the tick the position reaches first (a long's up, a short's down): trading
    at the rounded price is never later than the formula, at the cost of at most one tick of
    the trader's room. None: flat, or a long that no positive price liquidates (fully
    collateralised). 0: a short that every price liquidates. The liquidation *decision* is
    ``margin_ratio`` reaching 100 %: at the rounded price the account can still be up to one
    tick away from that; one tick beyond it, it is always past it.
    """
    if size == 0:
        return None
    available = wallet_balance - other_maintenance + other_unrealized_pnl
    return _to_tick(size, _liquidation_root(size, entry_notional, available, brackets, multiplier))


def bankruptcy_price(
    size: int,
    entry_notional: int,
    wallet_balance: int,
    multiplier: int,
    *,
    other_unrealized_pnl: int = 0,
) -> int | None:
    """The price (ticks) at which the margin balance reaches zero; None for no position or none.

    §4.1 gives ``BP = EP − side·WB/Q`` for isolated margin [derived there; Binance publishes
    none]; it is §4.1's liquidation formula with MMR = cum = TMM1 = 0. Cross adds the other
    positions' unrealized PnL to the wallet (their maintenance margin does not matter: bankrupt
    means no equity left). Rounded like the liquidation price, a long's up and a short's down,
    so a close at the rounded price, or better, never leaves a negative balance for the
    insurance fund to absorb; what is left (under one tick's worth) goes to the fund (§4.1,
    step 5). None: flat, or a long whose balance covers the whole position. 0: a short
    already bankrupt at every price.
    """
    if size == 0:
        return None
    available = wallet_balance + other_unrealized_pnl
    return _to_tick(size, _root(size, entry_notional, available, 0, 0, multiplier))


def split_funding(
    positions: Mapping[Account, int], mark_ticks: int, rate: int, multiplier: int
) -> tuple[dict[Account, int], int]:
    """Funding of one settlement (§2.1): wallet changes per account, and the rounding remainder.

    Each position owes ``size × mark × rate`` (Binance: position notional at mark × funding
    rate), so longs pay shorts when the rate is positive and shorts pay longs when negative.
    ``payments[account]`` is the change to that account's wallet in minor units:
    ``floor(−size × mark × multiplier × rate / RATE_ONE)``, which rounds a payer's debit up and
    a receiver's credit down. Positions net to zero (every lot has a buyer and a seller), so the
    exact amounts sum to zero and ``remainder = −Σ payments`` is the rounding kept back: at
    least 0 and less than one minor unit per position. Rule: the caller credits ``remainder``
    to the insurance fund account, which makes the settlement exactly zero-sum. Flat accounts
    are left out; no positions give ``({}, 0)``.
    """
    if sum(positions.values()) != 0:
        raise ValueError("funding needs every position of the market; they must net to zero")
    payments = {
        account: -size * mark_ticks * multiplier * rate // RATE_ONE
        for account, size in positions.items()
        if size != 0
    }
    return payments, -sum(payments.values())
