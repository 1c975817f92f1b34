"""The recorded order book as the replay believes it stands, on our grid. Pure.

Binance's depth stream is applied to its snapshot the way Binance documents it ("How to manage
a local order book correctly"): updates that arrive before the snapshot are held; those that end
before the snapshot (``u < lastUpdateId``) are dropped; from then on each update must follow the
one before (``pu`` equals the previous ``u`` on USDⓈ-M, ``U`` is the previous ``u + 1`` on spot).
A break is counted as a gap and the book goes on with what it has (the levels concerned are
right again when they next change); a later snapshot in the file starts afresh.

**What a trade implies.** The trade stream runs ahead of the depth stream: in the bundled capture
about half the trades print at a price the depth stream still shows liquidity better than (the
levels an aggressive order swept a moment earlier, not yet reported gone). So a trade at ``p``
is taken as evidence of the book at that moment: a buy at ``p`` means there was no ask below
``p`` and no bid at or above ``p``, and at least the trade's quantity resting at ``p``
(``expect_trade``); the trade then takes its quantity from ``p`` (``take``). The next depth
update says what the levels really hold and overrules both. On the bundled capture this keeps
the best bid and ask equal to the pure depth stream's after 99.98 % of depth updates (applied in
transaction-time order), and lets every trade print at its recorded price.

Levels are kept per side in a ``SortedDict`` of our ticks (bids rounded down, asks up:
``grid.py``), each holding the recorded price → quantity of the levels that fall on it.
"""

from collections.abc import Iterable
from decimal import Decimal
from typing import NamedTuple

from sortedcontainers import SortedDict

from load.marketdata.records import DepthSnapshot, DepthUpdate, Level
from load.replay.grid import Grid

_TICKS_KEPT = 100_000
"""Prices whose tick is remembered per side."""
_MAX_HELD = 100_000
"""Updates held while waiting for a snapshot; older ones are dropped (a capture that starts
with a snapshot holds a few dozen)."""


class Touched(NamedTuple):
    """Our ticks whose quantity may have changed, per side."""

    bids: set[int]
    asks: set[int]


def touched() -> Touched:
    return Touched(set(), set())


class RecordedBook:
    """Bids and asks of the recording on our grid, with the depth stream's sequence state."""

    def __init__(self, grid: Grid) -> None:
        self.grid = grid
        self.bids: SortedDict = SortedDict()
        """Our tick → {recorded price: quantity}, for every bid level of the recording."""
        self.asks: SortedDict = SortedDict()
        self.synced = False
        """A snapshot has been loaded: the book is the recording's (until a gap)."""
        self.gaps = 0
        """Updates that did not follow the one before (missed updates)."""
        self.stale = 0
        """Updates dropped as older than the book (ending before the snapshot, or repeated)."""
        self._last_id: int | None = None
        self._straddle = False
        """The next update is the first after the snapshot: it straddles the snapshot's id."""
        self._held: list[DepthUpdate] = []
        self._bid_ticks: dict[Decimal, int] = {}
        """Recorded price → our tick, per side: a depth stream repeats a few thousand prices."""
        self._ask_ticks: dict[Decimal, int] = {}

    # ------------------------------------------------------------------------- reading

    def side(self, is_bid: bool) -> SortedDict:
        return self.bids if is_bid else self.asks

    def total(self, is_bid: bool, tick: int) -> Decimal:
        level = self.side(is_bid).get(tick)
        return sum(level.values(), Decimal(0)) if level else Decimal(0)

    def lots(self, is_bid: bool, tick: int) -> int:
        """The level's quantity on our lot grid (half to even)."""
        level = self.side(is_bid).get(tick)
        if not level:
            return 0
        if len(level) == 1:
            return self.grid.lots(next(iter(level.values())))
        return self.grid.lots(sum(level.values(), Decimal(0)))

    def best(self, is_bid: bool) -> int | None:
        levels = self.side(is_bid)
        if not levels:
            return None
        return levels.peekitem(-1 if is_bid else 0)[0]  # type: ignore[no-any-return]

    # ------------------------------------------------------------------- depth stream

    def on_snapshot(self, snapshot: DepthSnapshot) -> Touched:
        """Start afresh from a snapshot, then apply the held updates that come after it."""
        changed = Touched(set(self.bids), set(self.asks))
        self.bids.clear()
        self.asks.clear()
        for price, qty in snapshot.bids:
            if qty:
                changed.bids.add(self._put(True, price, qty))
        for price, qty in snapshot.asks:
            if qty:
                changed.asks.add(self._put(False, price, qty))
        self.synced = True
        self._last_id = snapshot.last_update_id
        self._straddle = True
        held, self._held = self._held, []
        for update in held:
            self._follow(update, changed)
        return changed

    def on_update(self, update: DepthUpdate) -> Touched:
        """Apply one ``depthUpdate`` (or hold it until the snapshot comes)."""
        changed = touched()
        if not self.synced:
            self._held.append(update)
            if len(self._held) > _MAX_HELD:
                del self._held[0]
            return changed
        self._follow(update, changed)
        return changed

    def _follow(self, update: DepthUpdate, changed: Touched) -> None:
        last = self._last_id
        if last is not None:
            if update.last_id < last or (update.last_id == last and not self._straddle):
                self.stale += 1  # ends before the book: already in it
                return
            if self._straddle:  # the first after the snapshot: U <= lastUpdateId (+1 on spot)
                follows = update.first_id <= last + 1
            elif update.previous_id is not None:
                follows = update.previous_id == last
            else:
                follows = update.first_id == last + 1
            if not follows:
                self.gaps += 1  # updates were missed: the book is wrong where they were
        self._straddle = False
        self._apply(update, changed)
        self._last_id = update.last_id

    def _apply(self, update: DepthUpdate, changed: Touched) -> None:
        self._set_levels(True, update.bids, changed.bids)
        self._set_levels(False, update.asks, changed.asks)

    def _set_levels(self, is_bid: bool, levels: Iterable[Level], changed: set[int]) -> None:
        for price, qty in levels:
            changed.add(self._put(is_bid, price, qty))

    def _put(self, is_bid: bool, price: Decimal, qty: Decimal) -> int:
        """Set one recorded level (0 removes it); return our tick it falls on."""
        ticks = self._bid_ticks if is_bid else self._ask_ticks
        tick = ticks.get(price)
        if tick is None:
            grid = self.grid
            tick = grid.bid_tick(price) if is_bid else grid.ask_tick(price)
            if len(ticks) >= _TICKS_KEPT:
                ticks.clear()
            ticks[price] = tick
        levels = self.side(is_bid)
        level = levels.get(tick)
        if qty:
            if level is None:
                levels[tick] = {price: qty}
            else:
                level[price] = qty
        elif level is not None:
            level.pop(price, None)
            if not level:
                del levels[tick]
        return tick

    # -------------------------------------------------------------------------- trades

    def expect_trade(self, taker_buys: bool, price: Decimal, qty: Decimal) -> Touched:
        """What a trade at ``price`` implies about the book just before it (module docstring):
        nothing better than ``price`` on the side it took from, nothing crossing it on the
        other, and at least ``qty`` resting at ``price``."""
        changed = touched()
        grid = self.grid
        if taker_buys:
            self._clear_better(False, grid.ask_tick(price), price, changed.asks)
            self._clear_crossing(True, grid.bid_tick(price), price, changed.bids)
        else:
            self._clear_better(True, grid.bid_tick(price), price, changed.bids)
            self._clear_crossing(False, grid.ask_tick(price), price, changed.asks)
        is_bid = not taker_buys
        tick = grid.bid_tick(price) if is_bid else grid.ask_tick(price)
        level = self.side(is_bid).get(tick)
        resting = level.get(price, Decimal(0)) if level else Decimal(0)
        if resting < qty:
            changed[0 if is_bid else 1].add(self._put(is_bid, price, qty))
        return changed

    def take(self, taker_buys: bool, price: Decimal, qty: Decimal) -> Touched:
        """The trade takes ``qty`` from the level at ``price`` (never below zero)."""
        changed = touched()
        is_bid = not taker_buys
        grid = self.grid
        tick = grid.bid_tick(price) if is_bid else grid.ask_tick(price)
        level = self.side(is_bid).get(tick)
        resting = level.get(price, Decimal(0)) if level else Decimal(0)
        left = resting - qty if resting > qty else Decimal(0)
        changed[0 if is_bid else 1].add(self._put(is_bid, price, left))
        return changed

    def _clear_better(self, is_bid: bool, tick: int, price: Decimal, changed: set[int]) -> None:
        """Remove the levels of one side better than ``price`` (on our tick ``tick``, the
        recorded prices better than it)."""
        levels = self.side(is_bid)
        better = (
            list(levels.irange(minimum=tick, inclusive=(False, True)))
            if is_bid
            else list(levels.irange(maximum=tick, inclusive=(True, False)))
        )
        for key in better:
            del levels[key]
            changed.add(key)
        level = levels.get(tick)
        if level:
            for recorded in [p for p in level if (p > price if is_bid else p < price)]:
                self._put(is_bid, recorded, Decimal(0))
                changed.add(tick)

    def _clear_crossing(self, is_bid: bool, tick: int, price: Decimal, changed: set[int]) -> None:
        """Remove the levels of one side at or through ``price`` (the side the trade did not
        take from: a buy at ``price`` means no bid was at ``price`` or above)."""
        levels = self.side(is_bid)
        crossing = (
            list(levels.irange(minimum=tick, inclusive=(False, True)))
            if is_bid
            else list(levels.irange(maximum=tick, inclusive=(True, False)))
        )
        for key in crossing:
            del levels[key]
            changed.add(key)
        level = levels.get(tick)
        if level:
            for recorded in [p for p in level if (p >= price if is_bid else p <= price)]:
                self._put(is_bid, recorded, Decimal(0))
                changed.add(tick)
