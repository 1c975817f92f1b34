"""The market maker's quotes: a ladder of limit orders each side of an index. Pure arithmetic.

Prices are ticks, quantities lots, distances basis points of the index (1 bp = 0.01 %). Why
integers throughout: the quotes go to an engine that refuses anything off its grid, so the
rounding is chosen here, on purpose, and always away from the index (a bid rounds down, an ask
up), so that a quote is never nearer the index than asked.
"""

from typing import NamedTuple

from exchange.market import MarketSpec
from exchange.orders import Side
from exchange.units import ceil_div

_BPS = 10_000
"""Basis points in 1."""


class LadderParams(NamedTuple):
    """How the maker quotes one market (``Settings.maker_*``)."""

    levels: int
    """Orders per side at most."""
    spread_bps: int
    """Distance between the best bid and the best ask: half of it each side of the index."""
    step_bps: int
    """Distance between neighbouring levels of one side."""
    level_qty: int
    """Lots per level."""
    max_position: int
    """Lots the position may reach, long or short, if every order of one side fills."""


class Quote(NamedTuple):
    side: Side
    price: int
    qty: int


def ladder(index: int, position: int, params: LadderParams, spec: MarketSpec) -> list[Quote]:
    """The quotes around ``index`` (ticks, positive) for a maker holding ``position`` (signed
    lots): bids best first, then asks best first.

    Level ``i`` of a side is ``spread / 2 + i × step`` basis points from the index, rounded
    away from it, and at least one tick beyond the level before (on a coarse grid several
    levels would otherwise share a price). Levels off the grid (below one tick, above the
    market's largest price) are left out: a low index gives fewer bids, never a bid at 0.

    Inventory: each side quotes at most the room its direction has left, ``max_position −
    position`` for bids and ``max_position + position`` for asks, inner levels first; so even if
    every order of one side fills, the position stays within ``max_position``, and a maker at
    its limit quotes only the side that reduces it. A level below the market's minimum notional
    or quantity is left out, as the engine would refuse it.
    """
    bids = _side(index, max(0, params.max_position - position), params, spec, is_bid=True)
    asks = _side(index, max(0, params.max_position + position), params, spec, is_bid=False)
    return bids + asks


def _side(
    index: int, room: int, params: LadderParams, spec: MarketSpec, *, is_bid: bool
) -> list[Quote]:
    side = Side.BUY if is_bid else Side.SELL
    quotes: list[Quote] = []
    previous: int | None = None
    for level in range(params.levels):
        # In half basis points, so that an odd spread is split exactly.
        distance = params.spread_bps + 2 * level * params.step_bps
        if is_bid:
            price = index * (2 * _BPS - distance) // (2 * _BPS)
            price = price if previous is None else min(price, previous - 1)
        else:
            price = ceil_div(index * (2 * _BPS + distance), 2 * _BPS)
            price = price if previous is None else max(price, previous + 1)
        previous = price
        qty = min(params.level_qty, room, spec.max_qty)
        if qty < spec.min_qty:
            break
        if not 1 <= price <= spec.max_price:
            continue
        if price * qty * spec.multiplier < spec.min_notional:
            continue
        quotes.append(Quote(side, price, qty))
        room -= qty
    return quotes


def moved(quoted: int, index: int, threshold_bps: int) -> bool:
    """Whether ``index`` is at least ``threshold_bps`` away from ``quoted`` (both in ticks)."""
    return abs(index - quoted) * _BPS >= threshold_bps * quoted
