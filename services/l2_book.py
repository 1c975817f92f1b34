"""One market's aggregated order book, rebuilt from the engine's ``BookDelta`` events. Pure.

Why rebuild rather than ask: the engine answers only commands, and every change of its books is
in the event log as the levels whose total changed (quantity 0 removes a level). Followed from
the start of the log, this is the engine's book level for level, which is all the oracle needs:
the best bid and ask for the mark's basis, and the impact bid and ask for the premium index,
measured by the same function the engine's own book uses (``exchange.book.impact_price``).
"""

from fractions import Fraction

from sortedcontainers import SortedDict

from exchange.book import impact_price
from exchange.events import BookDelta
from exchange.orders import Side


class L2Book:
    """Price → total quantity per side, as of the last ``BookDelta`` applied."""

    def __init__(self) -> None:
        self.bids = SortedDict()
        self.asks = SortedDict()
        self.update_id = 0
        """The ``update_id`` of the last delta applied (0: none yet)."""

    def apply(self, delta: BookDelta) -> bool:
        """Apply one delta; False if its ``update_id`` does not follow the last one (a gap: a
        delta missed, so the book may be wrong until the levels concerned change again)."""
        for side, levels in ((self.bids, delta.bids), (self.asks, delta.asks)):
            for price, qty in levels:
                if qty:
                    side[price] = qty
                else:
                    side.pop(price, None)
        follows = not self.update_id or delta.update_id == self.update_id + 1
        self.update_id = delta.update_id
        return follows

    @property
    def best_bid(self) -> int | None:
        return self.bids.peekitem(-1)[0] if self.bids else None

    @property
    def best_ask(self) -> int | None:
        return self.asks.peekitem(0)[0] if self.asks else None

    def impact_price(self, side: Side, notional: int, multiplier: int) -> Fraction | None:
        """The average price of a market order on ``side`` worth ``notional`` minor units: a
        buy walks the asks (the impact ask), a sell the bids (the impact bid)."""
        if side is Side.BUY:
            return impact_price(self.asks.items(), notional, multiplier)
        return impact_price(reversed(self.bids.items()), notional, multiplier)


class MergedDeltas:
    """A run of one market's consecutive ``BookDelta``s as one: each changed level at its last
    quantity, covering updates ``first`` … ``last``. What a stream that sends the book's changes
    in batches (per step of the gateway, per 100 ms on the Binance front) sends as one update."""

    def __init__(self, delta: BookDelta) -> None:
        self.first = delta.update_id
        self.last = delta.update_id
        self.bids: dict[int, int] = dict(delta.bids)
        self.asks: dict[int, int] = dict(delta.asks)

    def add(self, delta: BookDelta) -> None:
        self.last = delta.update_id
        self.bids.update(delta.bids)
        self.asks.update(delta.asks)
