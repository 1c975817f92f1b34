"""A local copy of one market's order book, from the ``book.<SYMBOL>`` channel. Pure, no I/O.

Why a snapshot and ``update_id``s: the gateway sends every level on subscribing, then the
changes as deltas, each covering the engine's updates ``first_update_id`` … ``update_id``
(``services/gateway/streams.py``). A delta whose ``first_update_id`` is not the last
``update_id`` plus one means a delta was missed, and every level it touched may now be
wrong, so the book refuses it and says it needs a fresh snapshot (``apply`` returns False)
rather than go on quietly wrong.
``LiveOrderBook`` (``services.client.client``) resubscribes when that happens.
"""

from collections.abc import Iterable
from decimal import Decimal

from sortedcontainers import SortedDict

from services.client.views import BookUpdate

Level = tuple[Decimal, Decimal]
"""``(price, qty)``."""


class OrderBook:
    """Price → quantity per side, as of the last update applied (``update_id``)."""

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self.bids = SortedDict()
        """Price → quantity, ascending (the best bid is the last)."""
        self.asks = SortedDict()
        """Price → quantity, ascending (the best ask is the first)."""
        self.update_id: int | None = None
        """The ``update_id`` the book is at; None before the first snapshot, and after a gap
        until the next one."""

    @property
    def synced(self) -> bool:
        """True while the book follows the gateway's: a snapshot, then no gap since."""
        return self.update_id is not None

    def apply(self, update: BookUpdate) -> bool:
        """Apply a snapshot or a delta; False (the book unchanged, and no longer ``synced``)
        for a delta that does not follow the update the book is at: resubscribe for a
        snapshot."""
        if update.symbol != self.symbol:
            raise ValueError(f"an update of {update.symbol} for the book of {self.symbol}")
        if update.type == "snapshot":
            self.bids.clear()
            self.asks.clear()
            _set(self.bids, update.bids)
            _set(self.asks, update.asks)
            self.update_id = update.update_id
            return True
        if self.update_id is None or update.first_update_id != self.update_id + 1:
            self.update_id = None
            return False
        _set(self.bids, update.bids)
        _set(self.asks, update.asks)
        self.update_id = update.update_id
        return True

    def reset(self) -> None:
        """Forget everything: the book waits for a snapshot."""
        self.bids.clear()
        self.asks.clear()
        self.update_id = None

    @property
    def best_bid(self) -> Level | None:
        """The highest bid and its quantity; None if there is none."""
        return tuple(self.bids.peekitem(-1)) if self.bids else None

    @property
    def best_ask(self) -> Level | None:
        """The lowest ask and its quantity; None if there is none."""
        return tuple(self.asks.peekitem(0)) if self.asks else None

    @property
    def spread(self) -> Decimal | None:
        bid, ask = self.best_bid, self.best_ask
        return None if bid is None or ask is None else ask[0] - bid[0]

    @property
    def mid(self) -> Decimal | None:
        bid, ask = self.best_bid, self.best_ask
        return None if bid is None or ask is None else (ask[0] + bid[0]) / 2

    def depth(self, levels: int | None = None) -> tuple[list[Level], list[Level]]:
        """``(bids, asks)``, each best first, at most ``levels`` of each (all if None)."""
        bids: list[Level] = list(reversed(self.bids.items()))
        asks: list[Level] = list(self.asks.items())
        if levels is None:
            return bids, asks
        return bids[:levels], asks[:levels]


def _set(side: SortedDict, levels: Iterable[Level]) -> None:
    for price, qty in levels:
        if qty:
            side[price] = qty
        else:
            side.pop(price, None)
