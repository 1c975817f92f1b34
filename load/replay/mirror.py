"""Our engine's copy of a recorded book, and the taker orders that replay its trades. Pure.

The mirror keeps one resting order per level of our grid for the best ``depth`` levels of each
side of the ``RecordedBook``, and turns every change of those levels into commands: a new level
is a post-only (GTX) limit order, a smaller one an amend down (time priority kept, as on
Binance), a larger one an amend up, a level gone a cancel. A recorded trade becomes a market
order of its quantity from a taker account, after the book has been made what the trade implies
(``RecordedBook.expect_trade``), so that it fills at the recorded price against our copy.

**Predicted fills.** At full speed many commands are on their way before the engine has
answered any, so the mirror cannot wait for fills to know what its orders hold: it predicts
each taker order's fills by walking its own orders from the best, as the engine will (nobody
else trades in a replay's market, and book orders never take: they are post-only and amends do
not move their price). The driver reports every result back (``on_result``): a rejected order
is forgotten and its level placed again on its next change; a fill of our order by someone else
reduces it; a taker order that filled otherwise than predicted (someone else's orders in the
book, an order refused for margin) makes the mirror start over (``reset``: cancel-all for every
book account, then the window placed afresh), as does anything else it cannot account for.

**Accounts.** Binance's book is deeper than one paper account can hold: the faucet gives at most
``EXCHANGE_FAUCET_CAP`` (100,000 USDT) a wallet, and the bundled capture rests about 25 million
USDT a side. So the book is spread over a pool of book accounts and the trades over a pool of
taker accounts, all below 2^20 (the range the engine leaves to tools; the market maker is
1,000,000). Each account is allowed ``budget`` of exposure a side (resting orders plus the
position on that side, at order prices; the driver sets 60 % of wallet × leverage); a level
goes to the next book account in turn with room for it, or is spread over several, and holds at
most an eighth of the pool's room (``LEVEL_SHARE``); a trade goes to the taker account it moves
furthest toward flat. A level or trade for which no account has room is left out and counted.

**Minimum notional.** Binance's book holds levels below its own minimum order notional (what
partial fills leave), which our engine refuses for a new order, like Binance. An amend is not
held to it (on Binance either), so such a level is placed at the minimum and amended down to its
size in the same record. Market orders have no minimum, so every trade can be replayed.
"""

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from sortedcontainers import SortedDict

from exchange.commands import AmendOrder, CancelAll, CancelOrder, PlaceOrder
from exchange.engine_commands import EngineCommand, OrderCommand
from exchange.engine_events import EngineEvent, MarketEvent
from exchange.events import Rejected, RejectReason, Trade
from exchange.market import MarketSpec
from exchange.orders import OrderType, Side, TimeInForce
from exchange.units import ceil_div
from load.replay.book import RecordedBook, Touched

BOOK_ACCOUNT_BASE = 1_010_000
"""Book accounts are ``BOOK_ACCOUNT_BASE + i``: below 2^20, where the engine numbers the
accounts it creates, and clear of the market maker's 1,000,000."""
TAKER_ACCOUNT_BASE = 1_020_000
"""Taker accounts are ``TAKER_ACCOUNT_BASE + i``."""
MAX_ACCOUNTS = 10_000
"""Accounts per pool at most, so that the pools stay apart and below 2^20."""
LEVERAGE = 20
"""Leverage of every replay account: Binance's default, and at the 5,000,000 USDT bracket the
one that lets a 100,000 USDT wallet carry the most (2,000,000 USDT) of a side."""
LEVEL_SHARE = 8
"""A level holds at most this fraction (1/8) of the book accounts' room on its side: one wall
(the bundled capture has 500 BTC, 31 million USDT, at one price) cannot take the room the rest
of the book needs; it rests at its cap instead, counted."""
_SEQUENCE_BITS = 32


class Sent(NamedTuple):
    """A command the mirror asks the driver to send, and what it expects of it."""

    command: EngineCommand
    kind: str
    """``place``, ``amend``, ``cancel``, ``cancel_all`` or ``taker``."""
    order_id: int = 0
    fills: tuple[tuple[int, int], ...] = ()
    """For a taker order: the predicted fills, ``(our resting order id, lots)``."""
    generation: int = 0
    """The mirror's ``generation`` when it was made: results of an older one are stale."""


@dataclass(slots=True)
class Resting:
    """One of our orders on the book."""

    order_id: int
    account: int
    is_bid: bool
    tick: int
    lots: int


@dataclass(slots=True)
class PoolAccount:
    """A replay account: what it rests on each side (minor units) and its position (lots)."""

    account: int
    resting_bids: int = 0
    resting_asks: int = 0
    position: int = 0

    def exposure(self, is_bid: bool, tick: int, multiplier: int) -> int:
        if is_bid:
            return self.resting_bids + max(0, self.position) * tick * multiplier
        return self.resting_asks + max(0, -self.position) * tick * multiplier

    def rest(self, is_bid: bool, notional: int) -> None:
        if is_bid:
            self.resting_bids += notional
        else:
            self.resting_asks += notional


class BookMirror:
    """Orders that make the engine's book follow a ``RecordedBook`` (module docstring)."""

    def __init__(
        self,
        spec: MarketSpec,
        book: RecordedBook,
        *,
        depth: int,
        book_accounts: Sequence[int],
        taker_accounts: Sequence[int],
        budget: int,
        first_sequence: int = 1,
    ) -> None:
        if depth < 0:
            raise ValueError("depth must be 0 (every level) or positive")
        self.spec = spec
        self.symbol = spec.symbol
        self.book = book
        self.depth = depth
        self.budget = budget
        self.multiplier = spec.multiplier
        self.books = {a: PoolAccount(a) for a in book_accounts}
        self._book_pools = list(self.books.values())
        self._level_cap = budget * max(1, len(self._book_pools) // LEVEL_SHARE)
        self._turn = 0
        self.takers = {a: PoolAccount(a) for a in taker_accounts}
        self.generation = 0
        self.needs_reset = False
        """Set when a result shows the engine's book is not what the mirror thinks."""
        self.counts: Counter[str] = Counter()
        self._bids: SortedDict = SortedDict()
        """Our tick → our ``Resting`` orders there, oldest first."""
        self._asks: SortedDict = SortedDict()
        self._by_id: dict[int, Resting] = {}
        self._bounds: dict[bool, int | None] = {True: None, False: None}
        self._dirty: dict[bool, set[int]] = {True: set(), False: set()}
        self._cancels: list[int] = []
        """Orders forgotten that may still rest (an amend refused): cancelled at the next sync."""
        self._sequence = first_sequence - 1

    # -------------------------------------------------------------------------- state

    def levels(self, is_bid: bool) -> SortedDict:
        """Our tick → our orders there, in time priority (the engine fills the first first)."""
        return self._bids if is_bid else self._asks

    def best(self, is_bid: bool) -> int | None:
        levels = self.levels(is_bid)
        if not levels:
            return None
        return levels.peekitem(-1 if is_bid else 0)[0]  # type: ignore[no-any-return]

    def level(self, is_bid: bool, tick: int) -> int:
        """Lots of our orders at ``tick``."""
        return sum(order.lots for order in self.levels(is_bid).get(tick, ()))

    def set_position(self, account: int, position: int) -> None:
        """The position an account starts with (from the event log, before the replay)."""
        pool = self.books.get(account) or self.takers.get(account)
        if pool is not None:
            pool.position = position

    # ------------------------------------------------------------------------ syncing

    def sync(self, changed: Touched) -> list[Sent]:
        """Commands that make our levels equal the recorded book's where it may have changed
        (``changed``), where the window of ``depth`` levels moved, and where a result said our
        copy was wrong. Decreases and cancels come first, so that an account's room is freed
        before it is used and no placement meets a level that is about to go."""
        decrease: list[Sent] = [self._cancel_id(order_id) for order_id in self._cancels]
        self._cancels.clear()
        increase: list[Sent] = []
        for is_bid, ticks in ((True, changed.bids), (False, changed.asks)):
            check = set(ticks)
            dirty = self._dirty[is_bid]
            if dirty:
                check |= dirty
                dirty.clear()
            bound = self._bound(is_bid)
            old = self._bounds[is_bid]
            if bound != old:
                self._bounds[is_bid] = bound
                check.update(self._moved(is_bid, old, bound))
            for tick in sorted(check):
                self._reconcile(is_bid, tick, bound, decrease, increase)
        return decrease + increase

    def rebuild(self) -> list[Sent]:
        """Commands that place every level of the window our copy lacks (all of them after a
        reset or before the first sync)."""
        decrease: list[Sent] = []
        increase: list[Sent] = []
        for is_bid in (True, False):
            bound = self._bounds[is_bid] = self._bound(is_bid)
            book = self.book.side(is_bid)
            window = book.irange(minimum=bound) if is_bid else book.irange(maximum=bound)
            ticks = set(window) | set(self.levels(is_bid))
            for tick in sorted(ticks):
                self._reconcile(is_bid, tick, bound, decrease, increase)
        return decrease + increase

    def reset(self) -> list[Sent]:
        """Start over: cancel every order of every book account, forget them, place the window
        afresh. Results of commands made before are ignored from now on (``generation``)."""
        self.generation += 1
        self.needs_reset = False
        self.counts["resets"] += 1
        out = [
            Sent(OrderCommand(symbol=self.symbol, order=CancelAll(account=a)), "cancel_all")
            for a in self.books
        ]
        self._bids.clear()
        self._asks.clear()
        self._by_id.clear()
        self._cancels.clear()
        for pool in self.books.values():
            pool.resting_bids = pool.resting_asks = 0
        for dirty in self._dirty.values():
            dirty.clear()
        return out + self.rebuild()

    def _bound(self, is_bid: bool) -> int | None:
        """The worst of our ticks inside the window of ``depth`` levels, None if the whole
        side is inside it."""
        levels = self.book.side(is_bid)
        if not self.depth or len(levels) <= self.depth:
            return None
        keys = levels.keys()
        return keys[-self.depth] if is_bid else keys[self.depth - 1]  # type: ignore[no-any-return]

    def _moved(self, is_bid: bool, old: int | None, new: int | None) -> Iterable[int]:
        """Ticks that entered or left the window when its bound moved from ``old`` to ``new``
        (None: the whole side): between the two, on either the book's or our side."""
        bounds = [b for b in (old, new) if b is not None]
        low: int | None
        high: int | None
        if is_bid:  # the window is ``tick >= bound``
            low = None if len(bounds) < 2 else min(bounds)
            high = max(bounds)
            inclusive = (True, False)
        else:  # the window is ``tick <= bound``
            low = min(bounds)
            high = None if len(bounds) < 2 else max(bounds)
            inclusive = (False, True)
        yield from self.book.side(is_bid).irange(low, high, inclusive)
        yield from list(self.levels(is_bid).irange(low, high, inclusive))

    def _reconcile(
        self,
        is_bid: bool,
        tick: int,
        bound: int | None,
        decrease: list[Sent],
        increase: list[Sent],
    ) -> None:
        """Make our orders at ``tick`` hold what the recording does: fewer lots are taken from
        the newest orders first (cancelled, then the last one amended down), so the oldest
        keep their priority; more lots go to the newest order if its account has room (an
        amend up, which puts it last, where it already is), else to new orders."""
        inside = bound is None or (tick >= bound if is_bid else tick <= bound)
        orders = self.levels(is_bid).get(tick)
        if not inside and not orders:  # the common case: a change deeper than the window
            return
        desired = self.book.lots(is_bid, tick) if inside else 0
        cap = self._level_cap // (tick * self.multiplier) if tick > 0 else 0
        if desired > cap:
            self.counts["levels_capped"] += 1
            desired = cap
        have = sum(order.lots for order in orders) if orders else 0
        if desired == have:
            return
        if desired < have:
            assert orders is not None
            while have - orders[-1].lots >= desired:
                last = orders[-1]
                have -= last.lots
                decrease.append(self._cancel(last))
                if not have:
                    return
            last = orders[-1]
            decrease.append(self._amend(last, last.lots - (have - desired)))
            return
        more = desired - have
        if orders:
            last = orders[-1]
            room = self._room(self.books[last.account], is_bid, tick)
            if room > 0:
                extra = min(more, room)
                increase.append(self._amend(last, last.lots + extra))
                more -= extra
        if more:
            self._place(is_bid, tick, more, increase)

    def _room(self, pool: PoolAccount, is_bid: bool, tick: int) -> int:
        """Lots at ``tick`` the account may still rest on that side within its budget."""
        left = self.budget - pool.exposure(is_bid, tick, self.multiplier)
        return left // (tick * self.multiplier) if left > 0 else 0

    # ------------------------------------------------------------------------ orders

    def _next_id(self, account: int) -> int:
        self._sequence = self._sequence % (1 << _SEQUENCE_BITS) + 1
        return account << _SEQUENCE_BITS | self._sequence

    def _min_lots(self, tick: int) -> int:
        """The fewest lots a new order at ``tick`` may have (minimum quantity and notional)."""
        spec = self.spec
        if not spec.min_notional:
            return spec.min_qty
        return max(spec.min_qty, ceil_div(spec.min_notional, tick * self.multiplier))

    def _place(self, is_bid: bool, tick: int, lots: int, out: list[Sent]) -> None:
        """New orders for ``lots`` at ``tick``: from the book account with the most room, as
        much as it has, and so on (a level can be larger than one account's budget)."""
        if tick <= 0 or tick > self.spec.max_price:
            self.counts["levels_off_limits"] += 1
            return
        least = self._min_lots(tick)
        while lots > 0:
            chosen, room = self._book_account(is_bid, tick, lots)
            if chosen is None or room < min(lots, least):
                self.counts["levels_without_room"] += 1
                return
            size = min(lots, room)
            if lots - size and lots - size < least <= room:
                size = lots - least  # leave the rest at least the minimum: one order less
            self._new_order(chosen, is_bid, tick, size, least, out)
            lots -= size

    def _book_account(self, is_bid: bool, tick: int, lots: int) -> tuple[PoolAccount | None, int]:
        """The next book account in turn with room for ``lots`` at ``tick`` (so the book spreads
        over the pool), else the one with the most room; and that room in lots."""
        pools = self._book_pools
        count = len(pools)
        best: PoolAccount | None = None
        most = 0
        for step in range(count):
            pool = pools[(self._turn + step) % count]
            room = self._room(pool, is_bid, tick)
            if room >= lots:
                self._turn = (self._turn + step + 1) % count
                return pool, room
            if room > most:
                best, most = pool, room
        return best, most

    def _new_order(
        self, pool: PoolAccount, is_bid: bool, tick: int, lots: int, least: int, out: list[Sent]
    ) -> None:
        order_id = self._next_id(pool.account)
        order = Resting(order_id, pool.account, is_bid, tick, lots)
        self.levels(is_bid).setdefault(tick, []).append(order)
        self._by_id[order_id] = order
        pool.rest(is_bid, tick * lots * self.multiplier)
        place = PlaceOrder(
            order_id=order_id,
            account=pool.account,
            side=Side.BUY if is_bid else Side.SELL,
            qty=max(lots, least),
            price=tick,
            tif=TimeInForce.GTX,
        )
        out.append(self._sent(place, "place", order_id))
        if lots < least:  # below the minimum notional: placed at it, amended down at once
            self.counts["placed_at_minimum"] += 1
            amend = AmendOrder(order_id=order_id, account=pool.account, qty=lots)
            out.append(self._sent(amend, "amend", order_id))

    def _cancel(self, order: Resting) -> Sent:
        self._forget(order)
        return self._cancel_id(order.order_id, order.account)

    def _cancel_id(self, order_id: int, account: int | None = None) -> Sent:
        owner = account if account is not None else order_id >> _SEQUENCE_BITS
        cancel = CancelOrder(order_id=order_id, account=owner)
        return self._sent(cancel, "cancel", order_id)

    def _amend(self, order: Resting, lots: int) -> Sent:
        owner = self.books[order.account]
        owner.rest(order.is_bid, order.tick * (lots - order.lots) * self.multiplier)
        order.lots = lots
        amend = AmendOrder(order_id=order.order_id, account=order.account, qty=lots)
        return self._sent(amend, "amend", order.order_id)

    def _forget(self, order: Resting) -> None:
        """Take an order out of our copy (it is gone, or going, from the engine's book)."""
        if self._by_id.pop(order.order_id, None) is None:
            return
        self._unlist(order)
        self.books[order.account].rest(order.is_bid, -order.tick * order.lots * self.multiplier)

    def _unlist(self, order: Resting) -> None:
        levels = self.levels(order.is_bid)
        orders = levels.get(order.tick)
        if orders is None:
            return
        for index, listed in enumerate(orders):
            if listed is order:
                del orders[index]
                break
        if not orders:
            del levels[order.tick]

    def _sent(self, order: PlaceOrder | AmendOrder | CancelOrder, kind: str, order_id: int) -> Sent:
        command = OrderCommand(symbol=self.symbol, order=order)
        return Sent(command, kind, order_id, (), self.generation)

    # ------------------------------------------------------------------------ trades

    def taker(self, taker_buys: bool, lots: int) -> list[Sent]:
        """A market order of ``lots`` from a taker account, with its predicted fills; nothing
        if no taker has room or our book has nothing on the side it would take from."""
        is_bid = not taker_buys  # the side it takes from
        levels = self.levels(is_bid)
        best = self.best(is_bid)
        if best is None or lots <= 0:
            self.counts["trades_without_liquidity"] += 1
            return []
        taker = self._choose_taker(taker_buys, lots, best)
        if taker is None:
            self.counts["trades_without_room"] += 1
            return []
        fills: list[tuple[Resting, int]] = []
        remaining = lots
        for tick in reversed(levels) if is_bid else iter(levels):
            for order in levels[tick]:
                take = min(remaining, order.lots)
                fills.append((order, take))
                remaining -= take
                if not remaining:
                    break
            if not remaining:
                break
        filled = lots - remaining
        for order, take in fills:
            self._filled(order, take)
        taker.position += filled if taker_buys else -filled
        order_id = self._next_id(taker.account)
        place = PlaceOrder(
            order_id=order_id,
            account=taker.account,
            side=Side.BUY if taker_buys else Side.SELL,
            qty=lots,
            type=OrderType.MARKET,
        )
        predicted = tuple((order.order_id, take) for order, take in fills)
        command = OrderCommand(symbol=self.symbol, order=place)
        return [Sent(command, "taker", order_id, predicted, self.generation)]

    def _choose_taker(self, taker_buys: bool, lots: int, tick: int) -> PoolAccount | None:
        sign = 1 if taker_buys else -1
        for pool in sorted(self.takers.values(), key=lambda p: (sign * p.position, p.account)):
            after = abs(pool.position + sign * lots)
            if after < abs(pool.position) or after * tick * self.multiplier <= self.budget:
                return pool
        return None

    def _filled(self, order: Resting, lots: int) -> None:
        """``lots`` of our resting order traded (ours predicted, or someone else's seen)."""
        owner = self.books[order.account]
        owner.position += lots if order.is_bid else -lots
        owner.rest(order.is_bid, -order.tick * lots * self.multiplier)
        order.lots -= lots
        if order.lots <= 0:
            self._by_id.pop(order.order_id, None)
            self._unlist(order)

    # ----------------------------------------------------------------------- results

    def on_result(self, sent: Sent, events: Sequence[EngineEvent]) -> None:
        """What the engine did with a command the mirror made (module docstring)."""
        if sent.generation != self.generation:
            return
        if sent.kind == "taker":
            actual: Counter[int] = Counter()
            for event in events:
                inner = event.event if isinstance(event, MarketEvent) else None
                if isinstance(inner, Trade) and inner.taker_order_id == sent.order_id:
                    actual[inner.maker_order_id] += inner.qty
            predicted: Counter[int] = Counter()
            for order_id, lots in sent.fills:
                predicted[order_id] += lots
            if actual != predicted:
                self.counts["taker_mispredicted"] += 1
                self.needs_reset = True
            return
        for event in events:
            inner = event.event if isinstance(event, MarketEvent) else None
            if isinstance(inner, Rejected) and inner.order_id == sent.order_id:
                order = self._by_id.get(sent.order_id)
                if order is None:
                    return
                self._forget(order)
                self._dirty[order.is_bid].add(order.tick)
                if sent.kind == "amend" and inner.reason is not RejectReason.UNKNOWN_ORDER:
                    self._cancels.append(order.order_id)  # it rests still, at its old size
                return

    def on_foreign_fill(self, trade: Trade) -> None:
        """Someone else's order traded with one of ours: our copy follows, and the level is
        put back to the recording's size at the next sync."""
        if trade.taker_account in self.takers:
            return
        order = self._by_id.get(trade.maker_order_id)
        if order is None or trade.maker_account != order.account:
            return
        self.counts["foreign_fills"] += 1
        self._filled(order, trade.qty)
        self._dirty[order.is_bid].add(order.tick)
