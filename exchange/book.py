"""The order book of one market: two sides of price levels holding FIFO queues of orders.

The structure is chosen for the common case of a busy book: most orders join or leave a level
that already exists, which is a dict operation; only a new or emptied level touches the sorted
price index. Each side remembers the quantity a level had before the current command first
changed it (``touched``), so the engine can publish exactly the levels that changed.
"""

from collections.abc import Iterable
from fractions import Fraction

import msgspec
from sortedcontainers import SortedList

from exchange.commands import PlaceOrder
from exchange.orders import Side


class Order(msgspec.Struct, gc=False):
    """A live order. ``cmd`` keeps the request as placed; the rest is the mutable working state.

    A msgspec struct because it is built once per command in the hot path, and its C
    constructor is several times faster than a Python ``__init__``.
    """

    order_id: int
    account: int
    side: Side
    is_buy: bool
    price: int
    """Limit price in ticks (0 for market execution and untriggered market-type orders)."""
    open: int
    """Open (unfilled) quantity in lots."""
    reduce_only: bool
    seq: int
    cmd: PlaceOrder
    is_market: bool = False
    active: bool = False
    """Trailing stops: whether the activation condition has been met."""
    extreme: int | None = None
    """Trailing stops: the best price seen since activation."""


class Level(msgspec.Struct, gc=False):
    """One price level: FIFO by insertion order of ``orders`` (a dict keeps insertion order)."""

    price: int
    total: int
    orders: dict[int, Order]


class BookSide:
    """Bids or asks. ``best`` is cached because the match loop reads it on every fill."""

    __slots__ = ("best", "is_bid", "levels", "prices", "touched")

    def __init__(self, is_bid: bool) -> None:
        self.is_bid = is_bid
        self.levels: dict[int, Level] = {}
        self.prices = SortedList()
        self.best: int | None = None
        self.touched: dict[int, int] = {}

    def add(self, order: Order) -> None:
        """Append ``order`` at the back of its price level."""
        price = order.price
        level = self.levels.get(price)
        if level is None:
            self.touched.setdefault(price, 0)
            level = self.levels[price] = Level(price, 0, {})
            self.prices.add(price)
            best = self.best
            if best is None or (price > best if self.is_bid else price < best):
                self.best = price
        elif price not in self.touched:
            self.touched[price] = level.total
        level.orders[order.order_id] = order
        level.total += order.open

    def remove(self, order: Order) -> None:
        """Take ``order`` out of its level (its ``open`` must still be what the level counts)."""
        price = order.price
        level = self.levels[price]
        if price not in self.touched:
            self.touched[price] = level.total
        del level.orders[order.order_id]
        level.total -= order.open
        if not level.orders:
            self.drop(price)

    def reduce(self, order: Order, qty: int) -> None:
        """Lower a resting order's open quantity in place, keeping its time priority."""
        level = self.levels[order.price]
        if order.price not in self.touched:
            self.touched[order.price] = level.total
        order.open -= qty
        level.total -= qty

    def drop(self, price: int) -> None:
        """Forget an emptied level."""
        del self.levels[price]
        prices = self.prices
        prices.remove(price)
        if price == self.best:
            self.best = (prices[-1] if self.is_bid else prices[0]) if prices else None

    def crosses(self, price: int) -> bool:
        """Whether an opposite order at ``price`` would take from this side."""
        best = self.best
        if best is None:
            return False
        return price <= best if self.is_bid else price >= best

    def prices_from_best(self) -> list[int]:
        """All level prices, best first (a copy: callers may change the book while iterating)."""
        return list(reversed(self.prices)) if self.is_bid else list(self.prices)

    def depth(self, n: int) -> list[tuple[int, int]]:
        """Top ``n`` levels as (price, quantity), best first."""
        if n <= 0:  # prices[-0:] would be the whole side
            return []
        prices = self.prices
        chosen = prices[-n:][::-1] if self.is_bid else prices[:n]
        return [(p, self.levels[p].total) for p in chosen]

    def take_delta(self) -> tuple[tuple[int, int], ...]:
        """The levels whose quantity changed since the last call, ascending by price; resets."""
        touched = self.touched
        levels = self.levels
        if len(touched) == 1:  # the common case: one order joined or left one level
            price, before = touched.popitem()
            level = levels.get(price)
            now = level.total if level is not None else 0
            return ((price, now),) if now != before else ()
        changed = []
        for price, before in touched.items():
            level = levels.get(price)
            now = level.total if level is not None else 0
            if now != before:
                changed.append((price, now))
        touched.clear()
        changed.sort()
        return tuple(changed)

    def impact_price(self, notional: int, multiplier: int) -> Fraction | None:
        """Average price (ticks) of taking ``notional`` minor units from this side, best first
        (``impact_price`` of the module)."""
        levels = self.levels
        return impact_price(
            ((price, levels[price].total) for price in self.prices_from_best()),
            notional,
            multiplier,
        )


def impact_price(
    levels: Iterable[tuple[int, int]], notional: int, multiplier: int
) -> Fraction | None:
    """Average price (ticks) of taking ``notional`` minor units from ``levels`` of one side,
    given best first as (price, quantity), with ``multiplier`` minor units per tick·lot.

    The last level is taken fractionally, as Binance defines the impact price for the
    premium index; ``None`` when the whole side is worth less than ``notional``. A function
    of plain levels so that a service following the book from its L2 deltas measures it
    exactly as the engine's own book does.
    """
    if notional <= 0:
        raise ValueError("impact notional must be positive")
    remaining = Fraction(notional, multiplier)  # in tick·lots
    lots = Fraction(0)
    for price, qty in levels:
        level_value = price * qty
        if level_value >= remaining:
            lots += remaining / price
            return Fraction(notional, multiplier) / lots
        remaining -= level_value
        lots += qty
    return None
