"""The arithmetic of a liquidation: how far a step goes, its limit price, and the ADL queue.

Section numbers (§) refer to ``/work/shared/reference/perp-mechanics.md``. The engine runs the
steps (``Engine`` handles ``Liquidate``); this module holds the rules, as pure functions, so the
liquidation service can show the same ADL queue the engine would use.

Units as in ``exchange.margin``: prices in ticks, sizes in lots, money in minor units, rates in
``RATE_ONE`` units.
"""

from collections.abc import Iterable, Sequence
from fractions import Fraction

from exchange.market import LeverageBracket, MarketSpec
from exchange.units import RATE_ONE, ceil_div

ADL_QUANTILES = 5
"""The queue indicator's lights, 0 … 4 (4: first in line), as Binance and BitMEX show it."""


def partial_keep(
    brackets: Sequence[LeverageBracket], size: int, price: int, multiplier: int
) -> int:
    """Lots a partial step leaves: the most that fits the next lower bracket, or 0 when the
    position is in the first bracket already and the step must close it all.

    BitMEX, Bybit and OKX (§4.2–4.4) first reduce a large position to a lower risk tier; the
    kept lots round down, so the rest is inside that tier at ``price``.
    """
    value = price * abs(size) * multiplier
    tier = next((i for i, b in enumerate(brackets) if value <= b.notional_cap), len(brackets) - 1)
    if tier == 0 or price <= 0:
        return 0
    return brackets[tier - 1].notional_cap // (price * multiplier)


def limit_price(
    spec: MarketSpec, closing_buy: bool, bankruptcy: int, mark: int | None, budget_ticks: int
) -> int:
    """The worst price a liquidation order may fill at.

    The bankruptcy price, moved ``budget_ticks`` worse when the insurance fund can pay that
    much of a shortfall (BitMEX §4.2: the engine spends the fund to trade more aggressively),
    and then held inside the market's price band around the mark: beyond it the book is not a
    market any more, and what is left goes to auto-deleveraging. Within ``[1, max_price]``.
    """
    if closing_buy:
        price = bankruptcy + budget_ticks
        if mark is not None and spec.price_band_up:
            price = min(price, mark * (RATE_ONE + spec.price_band_up) // RATE_ONE)
    else:
        price = bankruptcy - budget_ticks
        if mark is not None and spec.price_band_down:
            price = max(price, ceil_div(mark * (RATE_ONE - spec.price_band_down), RATE_ONE))
    return min(max(price, 1), spec.max_price)


def clearance_fee(price: int, qty: int, multiplier: int, rate: int) -> int:
    """Binance's liquidation clearance fee, ``qty × price × rate`` (§4.1), rounded up."""
    return ceil_div(price * qty * multiplier * rate, RATE_ONE)


def adl_score(unrealized: int, wallet: int, maintenance: int, margin_balance: int) -> Fraction:
    """Binance's ADL ranking (§6.2): ``max(0, uPnL) / max(1, wallet) × margin ratio``.

    Exact, as a fraction: ``PnlPercent × MarginRatio`` where the margin ratio is
    ``MM / (wallet + uPnL)`` and 0 when that balance is not positive. A higher score is
    deleveraged first: the most profitable, most leveraged positions.
    """
    return Fraction(*adl_ratio(unrealized, wallet, maintenance, margin_balance))


def adl_ratio(
    unrealized: int, wallet: int, maintenance: int, margin_balance: int
) -> tuple[int, int]:
    """``adl_score`` as an unreduced fraction ``(numerator, denominator)``, ``(0, 1)`` for 0."""
    if unrealized <= 0 or margin_balance <= 0:
        return 0, 1
    return unrealized * maintenance, max(1, wallet) * margin_balance


def adl_order(scores: Sequence[tuple[int, Fraction]]) -> list[int]:
    """Accounts in the order ADL takes them: highest score first, ties by account id."""
    return [account for account, _ in sorted(scores, key=lambda item: (-item[1], item[0]))]


def adl_queue(ratios: Iterable[tuple[int, int, int]]) -> list[int]:
    """``adl_order`` for scores given as unreduced fractions ``(account, numerator,
    denominator)`` (numerator 0 for a score of 0), without a ``Fraction`` per position.

    A market's ADL queue can hold 100,000 positions, and sorting that many ``Fraction``s takes
    seconds. So they are sorted by the scores' floats (an int division in Python is correctly
    rounded, so a smaller float never means a larger score), and only runs of equal floats that
    are not all the same score (cross-multiplied) are sorted again exactly. Ties by account id,
    zero scores last.
    """
    ranked: list[tuple[float, int, int, int]] = []
    zero: list[int] = []
    for account, numerator, denominator in ratios:
        if numerator:
            ranked.append((-(numerator / denominator), account, numerator, denominator))
        else:
            zero.append(account)
    ranked.sort()
    start = 0
    while start < len(ranked):
        end = start + 1
        while end < len(ranked) and ranked[end][0] == ranked[start][0]:
            end += 1
        _, _, first, first_of = ranked[start]
        if any(n * first_of != first * d for _, _, n, d in ranked[start + 1 : end]):
            ranked[start:end] = sorted(
                ranked[start:end], key=lambda entry: (-Fraction(entry[2], entry[3]), entry[1])
            )
        start = end
    zero.sort()
    return [entry[1] for entry in ranked] + zero


def adl_quantiles(scores: Sequence[tuple[int, Fraction]]) -> dict[int, int]:
    """Each account's queue indicator, 0 … 4 (Binance ``adlQuantile``: rank / user count).

    By place in ``adl_order``: the first fifth of the queue shows 4, the last fifth 0.
    """
    return queue_quantiles(adl_order(scores))


def queue_quantiles(queue: Sequence[int]) -> dict[int, int]:
    """The indicator of each account of an ADL queue (first in line first), by its place."""
    count = len(queue)
    return {
        account: ADL_QUANTILES - 1 - place * ADL_QUANTILES // count
        for place, account in enumerate(queue)
    }
