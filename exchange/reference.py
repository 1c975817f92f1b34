"""The naive reference implementation of the matching contract in ``docs/matching.md``.

Why it exists: the fast engine (``exchange.matching.MatchingEngine``) is built for speed and is
therefore hard to check by reading. This one is built to be checked by reading: every rule of
the contract appears once, in the contract's order, and the randomized differential tests
require both engines to emit identical events. Everything here favours the obvious over the
efficient: orders live in plain lists, the book is re-sorted on every look, ``BookDelta`` is a
diff of the whole aggregated depth before and after a command, and fill-or-kill runs the real
walk on a deep copy of the engine. Pure: no I/O, no clock, no randomness.

Two readings that the contract leaves open are fixed here (see the comments at ``_rest`` and
``_evaluate_triggers``).
"""

import copy
from dataclasses import dataclass
from fractions import Fraction
from typing import assert_never

from exchange.commands import (
    AmendOrder,
    CancelAll,
    CancelOrder,
    MatchingCommand,
    PlaceOrder,
    SetMarkPrice,
)
from exchange.events import (
    Accepted,
    Amended,
    BookDelta,
    Cancelled,
    CancelReason,
    Expired,
    ExpireReason,
    MatchingEvent,
    Rejected,
    RejectReason,
    Trade,
    Triggered,
)
from exchange.market import MarketSpec
from exchange.orders import (
    CONDITIONAL_TYPES,
    LIMIT_TYPES,
    OrderType,
    Side,
    StpMode,
    TimeInForce,
    TriggerBy,
)
from exchange.units import RATE_ONE, ceil_div

STOP_TYPES = frozenset({OrderType.STOP_MARKET, OrderType.STOP_LIMIT})
TAKE_PROFIT_TYPES = frozenset({OrderType.TAKE_PROFIT_MARKET, OrderType.TAKE_PROFIT_LIMIT})
IMMEDIATE_TYPES = frozenset({OrderType.LIMIT, OrderType.MARKET})

Levels = dict[int, int]
"""Aggregated quantity per price of one side of the book."""


def _opposite(side: Side) -> Side:
    return Side.SELL if side == Side.BUY else Side.BUY


@dataclass(eq=False)
class _Order:
    """A live order. ``eq=False``: two orders are the same only if they are the same object."""

    order_id: int
    account: int
    side: Side
    type: OrderType
    open: int
    """Quantity still open: the placed quantity until fills, expiries or amends change it."""
    price: int | None
    tif: TimeInForce
    stop_price: int | None
    activation_price: int | None
    callback_rate: int | None
    trigger: TriggerBy
    reduce_only: bool
    stp: StpMode
    seq: int
    """Placement order; never changes."""
    entry: int = 0
    """Time priority within a price level: set each time the order enters the book."""
    active: bool = False
    """Trailing stops: whether the activation condition has been met."""
    extreme: int | None = None
    """Trailing stops: the highest (sell) or lowest (buy) price seen since activation."""


class ReferenceEngine:
    """One market's matching core, written to be obviously equal to ``docs/matching.md``."""

    def __init__(self, spec: MarketSpec) -> None:
        self._spec = spec
        self._multiplier = spec.multiplier
        self._book: list[_Order] = []
        """Resting limit orders of both sides, in no particular order."""
        self._waiting: list[_Order] = []
        """Conditional orders waiting for their trigger, in no particular order."""
        self._positions: dict[int, int] = {}
        self._last: int | None = None
        self._mark: int | None = None
        self._seq = 0
        self._entries = 0
        self._trade_id = 0
        self._update_id = 0
        self._out: list[MatchingEvent] = []
        """Events of the command being processed."""

    # ------------------------------------------------------------------ commands

    def process(self, cmd: MatchingCommand) -> list[MatchingEvent]:
        """Apply one command; return its events in the order they happened."""
        self._out = []
        bids_before, asks_before = self._levels(Side.BUY), self._levels(Side.SELL)
        match cmd:
            case PlaceOrder():
                self._place(cmd)
            case CancelOrder():
                self._cancel(cmd)
            case CancelAll():
                self._cancel_all(cmd)
            case AmendOrder():
                self._amend(cmd)
            case SetMarkPrice():
                self._set_mark(cmd)
            case _:
                assert_never(cmd)
        self._evaluate_triggers()
        bids = _changed_levels(bids_before, self._levels(Side.BUY))
        asks = _changed_levels(asks_before, self._levels(Side.SELL))
        if bids or asks:
            self._update_id += 1
            self._out.append(BookDelta(self._update_id, bids, asks))
        events, self._out = self._out, []
        return events

    def _place(self, cmd: PlaceOrder) -> None:
        failure = self._placement_failure(cmd)
        if failure is not None:
            reason, message = failure
            self._out.append(Rejected(cmd.order_id, cmd.account, reason, message))
            return
        self._seq += 1
        order = _Order(
            order_id=cmd.order_id,
            account=cmd.account,
            side=cmd.side,
            type=cmd.type,
            open=cmd.qty,
            price=cmd.price,
            tif=cmd.tif,
            stop_price=cmd.stop_price,
            activation_price=cmd.activation_price,
            callback_rate=cmd.callback_rate,
            trigger=cmd.trigger,
            reduce_only=cmd.reduce_only,
            stp=cmd.stp,
            seq=self._seq,
        )
        self._out.append(Accepted(cmd.order_id, cmd.account))
        if cmd.type in CONDITIONAL_TYPES:
            self._waiting.append(order)
        else:
            self._execute(order)

    def _placement_failure(self, cmd: PlaceOrder) -> tuple[RejectReason, str] | None:
        """The PlaceOrder checks 1-9, in the contract's order; ``None`` if all pass."""
        spec = self._spec
        if self._find(cmd.order_id) is not None:
            return RejectReason.DUPLICATE_ORDER_ID, f"order id {cmd.order_id} is live"
        if cmd.qty <= 0:
            return RejectReason.INVALID_QTY, f"qty {cmd.qty} is not positive"
        if cmd.qty < spec.min_qty:
            return RejectReason.QTY_BELOW_MIN, f"qty {cmd.qty} is below {spec.min_qty}"
        if cmd.qty > spec.max_qty:
            return RejectReason.QTY_ABOVE_MAX, f"qty {cmd.qty} is above {spec.max_qty}"
        shape = self._shape_error(cmd)
        if shape is not None:
            return RejectReason.INVALID_ORDER, shape
        for name, value in (
            ("price", cmd.price),
            ("stop_price", cmd.stop_price),
            ("activation_price", cmd.activation_price),
        ):
            if value is not None and not 1 <= value <= spec.max_price:
                return RejectReason.INVALID_PRICE, f"{name} {value} is not in 1..{spec.max_price}"
        if cmd.type in LIMIT_TYPES:
            assert cmd.price is not None  # the shape check guarantees it
            if cmd.price * cmd.qty * self._multiplier < spec.min_notional:
                return RejectReason.MIN_NOTIONAL, f"notional is below {spec.min_notional}"
            if not self._in_band(cmd.price):
                return RejectReason.PRICE_OUT_OF_BAND, f"price {cmd.price} is outside the band"
        if (
            cmd.reduce_only
            and cmd.type in IMMEDIATE_TYPES
            and self._capacity(cmd.account, cmd.side) == 0
        ):
            return RejectReason.REDUCE_ONLY_REJECTED, "the order would not reduce the position"
        if cmd.type == OrderType.LIMIT and cmd.tif == TimeInForce.GTX:
            assert cmd.price is not None
            if self._would_cross(cmd.side, cmd.price):
                return RejectReason.POST_ONLY_WOULD_TAKE, "a post-only order would take"
        if cmd.type in STOP_TYPES or cmd.type in TAKE_PROFIT_TYPES:
            assert cmd.stop_price is not None
            current = self._price_of(cmd.trigger)
            if current is not None and _condition_holds(
                cmd.type, cmd.side, cmd.stop_price, current
            ):
                return RejectReason.WOULD_IMMEDIATELY_TRIGGER, "the order would trigger now"
        return None

    def _shape_error(self, cmd: PlaceOrder) -> str | None:
        """PlaceOrder check 3: which fields each type must and must not carry."""
        if (cmd.type in LIMIT_TYPES) != (cmd.price is not None):
            return f"price is required by, and only by, limit types (got {cmd.type})"
        has_stop = cmd.type in STOP_TYPES or cmd.type in TAKE_PROFIT_TYPES
        if has_stop != (cmd.stop_price is not None):
            return f"stop_price is required by, and only by, stop/take-profit (got {cmd.type})"
        if cmd.type == OrderType.TRAILING_STOP_MARKET:
            rate = cmd.callback_rate
            low, high = self._spec.min_callback_rate, self._spec.max_callback_rate
            if rate is None or not low <= rate <= high:
                return f"callback_rate {rate} is not in {low}..{high}"
        elif cmd.callback_rate is not None or cmd.activation_price is not None:
            return f"callback_rate and activation_price belong to trailing stops (got {cmd.type})"
        return None

    def _cancel(self, cmd: CancelOrder) -> None:
        order = self._find(cmd.order_id)
        if order is None or order.account != cmd.account:
            self._reject_unknown(cmd.order_id, cmd.account)
            return
        self._remove(order)
        self._out.append(Cancelled(order.order_id, order.account, order.open, CancelReason.USER))

    def _cancel_all(self, cmd: CancelAll) -> None:
        for order in self._live_of(cmd.account):
            self._remove(order)
            self._out.append(
                Cancelled(order.order_id, order.account, order.open, CancelReason.CANCEL_ALL)
            )

    def _amend(self, cmd: AmendOrder) -> None:
        spec = self._spec
        order = self._find(cmd.order_id)
        if order is None or order.account != cmd.account:
            self._reject_unknown(cmd.order_id, cmd.account)
            return
        failure: tuple[RejectReason, str] | None = None
        if any(o is order for o in self._waiting):
            failure = RejectReason.NOT_AMENDABLE, "a conditional order cannot be amended"
        elif cmd.price is None and cmd.qty is None:
            failure = RejectReason.INVALID_ORDER, "an amend needs a price or a qty"
        elif cmd.qty is not None and cmd.qty < 0:
            failure = RejectReason.INVALID_QTY, f"qty {cmd.qty} is negative"
        elif cmd.qty is not None and cmd.qty > spec.max_qty:
            failure = RejectReason.QTY_ABOVE_MAX, f"qty {cmd.qty} is above {spec.max_qty}"
        elif cmd.price is not None and not 1 <= cmd.price <= spec.max_price:
            failure = RejectReason.INVALID_PRICE, f"price {cmd.price} is not in 1..{spec.max_price}"
        if failure is not None:
            self._out.append(Rejected(cmd.order_id, cmd.account, *failure))
            return
        assert order.price is not None
        if cmd.qty == 0:
            self._remove(order)
            self._out.append(
                Cancelled(order.order_id, order.account, order.open, CancelReason.AMEND_TO_ZERO)
            )
            return
        price_changed = cmd.price is not None and cmd.price != order.price
        if price_changed:
            assert cmd.price is not None
            if not self._in_band(cmd.price):
                failure = RejectReason.PRICE_OUT_OF_BAND, f"price {cmd.price} is outside the band"
            elif order.tif == TimeInForce.GTX and self._would_cross(order.side, cmd.price):
                failure = RejectReason.POST_ONLY_WOULD_TAKE, "a post-only order would take"
        if failure is not None:
            self._out.append(Rejected(cmd.order_id, cmd.account, *failure))
            return
        new_price = order.price if cmd.price is None else cmd.price
        new_qty = order.open if cmd.qty is None else cmd.qty
        if new_price == order.price and new_qty <= order.open:
            order.open = new_qty
            self._out.append(Amended(order.order_id, order.account, new_price, new_qty, True))
            return
        self._remove(order)
        self._out.append(Amended(order.order_id, order.account, new_price, new_qty, False))
        order.price = new_price
        order.open = new_qty
        self._execute(order)

    def _set_mark(self, cmd: SetMarkPrice) -> None:
        if not 1 <= cmd.price <= self._spec.max_price:
            self._out.append(
                Rejected(
                    0,
                    0,
                    RejectReason.INVALID_PRICE,
                    f"mark {cmd.price} is not in 1..{self._spec.max_price}",
                )
            )
            return
        self._mark = cmd.price

    # ------------------------------------------------------------------ taking

    def _execute(self, order: _Order) -> None:
        """Run an order (not on the book) as a taker, then rest or expire what is left."""
        limit = order.price if order.type in LIMIT_TYPES else None
        worst = limit if limit is not None else self._protection_bound(order.side)
        if limit is not None and order.tif == TimeInForce.FOK and not self._fok_fills(order):
            self._expire(order, ExpireReason.FOK)
            return
        if self._walk(order, worst) or order.open == 0:
            return
        if limit is None:
            remaining_makers = self._sorted_side(_opposite(order.side))
            reason = (
                ExpireReason.PRICE_PROTECTION if remaining_makers else ExpireReason.NO_LIQUIDITY
            )
            self._expire(order, reason)
        elif order.tif == TimeInForce.IOC:
            self._expire(order, ExpireReason.IOC)
        else:
            assert order.tif in (TimeInForce.GTC, TimeInForce.GTX), "a FOK that passed fills"
            self._rest(order)

    def _fok_fills(self, order: _Order) -> bool:
        """Simulate the walk on a deep copy of everything: would it fill the whole quantity?"""
        simulation = copy.deepcopy(self)
        probe = copy.deepcopy(order)
        stopped = simulation._walk(probe, probe.price)
        return not stopped and probe.open == 0

    def _walk(self, taker: _Order, worst: int | None) -> bool:
        """Take from the opposite side while the taker has quantity left.

        ``worst`` is the limit price or the protection bound (``None``: no bound). Returns
        ``True`` if the taker's rest was expired here (STP or reduce-only), so that the caller
        gives it no second expiry.
        """
        while taker.open > 0:
            makers = self._sorted_side(_opposite(taker.side))
            if not makers:
                return False
            maker = makers[0]
            assert maker.price is not None
            if worst is not None and (
                maker.price > worst if taker.side == Side.BUY else maker.price < worst
            ):
                return False
            if maker.account == taker.account and taker.stp != StpMode.NONE:
                if taker.stp == StpMode.EXPIRE_TAKER:
                    self._expire(taker, ExpireReason.STP)
                    return True
                self._remove(maker)
                self._expire(maker, ExpireReason.STP)
                if taker.stp == StpMode.EXPIRE_BOTH:
                    self._expire(taker, ExpireReason.STP)
                    return True
                continue
            qty = min(taker.open, maker.open)
            if taker.reduce_only:
                capacity = self._capacity(taker.account, taker.side)
                if capacity == 0:
                    self._expire(taker, ExpireReason.REDUCE_ONLY)
                    return True
                qty = min(qty, capacity)
            if maker.reduce_only:
                qty = min(qty, self._capacity(maker.account, maker.side))
            assert qty > 0, "upkeep keeps every resting reduce-only order reducing"
            self._trade(taker, maker, qty)
        return False

    def _trade(self, taker: _Order, maker: _Order, qty: int) -> None:
        assert maker.price is not None
        price = maker.price
        notional = price * qty * self._multiplier
        self._trade_id += 1
        self._out.append(
            Trade(
                trade_id=self._trade_id,
                price=price,
                qty=qty,
                taker_side=taker.side,
                taker_order_id=taker.order_id,
                taker_account=taker.account,
                maker_order_id=maker.order_id,
                maker_account=maker.account,
                taker_fee=ceil_div(notional * self._spec.taker_fee, RATE_ONE),
                maker_fee=ceil_div(notional * self._spec.maker_fee, RATE_ONE),
            )
        )
        signed = qty if taker.side == Side.BUY else -qty
        self._positions[taker.account] = self._positions.get(taker.account, 0) + signed
        self._positions[maker.account] = self._positions.get(maker.account, 0) - signed
        self._last = price
        taker.open -= qty
        maker.open -= qty
        if maker.open == 0:
            self._remove(maker)
        self._upkeep(taker.account)
        if maker.account != taker.account:
            self._upkeep(maker.account)

    def _upkeep(self, account: int) -> None:
        """Expire, in placement order, the account's resting reduce-only orders that no longer
        reduce its position."""
        for order in sorted(self._book, key=lambda o: o.seq):
            if (
                order.account == account
                and order.reduce_only
                and self._capacity(account, order.side) == 0
            ):
                self._remove(order)
                self._expire(order, ExpireReason.REDUCE_ONLY)

    def _rest(self, order: _Order) -> None:
        """Put a limit order's rest on the book as a new entry at the back of its level.

        The contract does not say what happens when a reduce-only taker's own fills flattened
        the position and the walk then stopped (no maker left within its price): resting it
        would break the stated invariant that a resting reduce-only order always reduces (a
        later fill against it would be capped to 0). Reading "reduce-only upkeep" as applying
        to the order the moment it rests, such a rest expires with ``reduce_only`` instead.
        """
        if order.reduce_only and self._capacity(order.account, order.side) == 0:
            self._expire(order, ExpireReason.REDUCE_ONLY)
            return
        self._entries += 1
        order.entry = self._entries
        self._book.append(order)

    def _expire(self, order: _Order, reason: ExpireReason) -> None:
        """Emit the expiry of everything the order still has open (the caller has taken it
        off the book or out of the waiting list, or it never was on either)."""
        self._out.append(Expired(order.order_id, order.account, order.open, reason))
        order.open = 0

    # ------------------------------------------------------------------ triggers

    def _evaluate_triggers(self) -> None:
        """Evaluate conditional orders until an evaluation finds nothing to trigger.

        Each evaluation looks at every waiting order (updating trailing stops) against the
        prices as they are when the evaluation starts, then fires the ones that hold, in
        placement order. ``Triggered.price`` is the price the order was evaluated at, even if
        an earlier order fired in the same evaluation has moved ``last`` since. The contract
        says the reduce-only and post-only checks come "before" the execution, "instead" of it:
        read here as ``Triggered`` first, then ``Expired`` instead of executing.
        """
        while True:
            fired: list[tuple[_Order, int]] = []
            for order in sorted(self._waiting, key=lambda o: o.seq):
                current = self._price_of(order.trigger)
                if current is not None and self._fires(order, current):
                    fired.append((order, current))
            if not fired:
                return
            for order, current in fired:
                # The contract fires an order only "if still live when its turn comes"; today
                # nothing but its own trigger takes a waiting order out, so it always is.
                assert any(o is order for o in self._waiting), "a fired order left early"
                self._remove(order)
                self._out.append(Triggered(order.order_id, order.account, current))
                if order.reduce_only and self._capacity(order.account, order.side) == 0:
                    self._expire(order, ExpireReason.REDUCE_ONLY)
                elif (
                    order.type in LIMIT_TYPES
                    and order.tif == TimeInForce.GTX
                    and order.price is not None
                    and self._would_cross(order.side, order.price)
                ):
                    self._expire(order, ExpireReason.POST_ONLY)
                else:
                    self._execute(order)

    def _fires(self, order: _Order, current: int) -> bool:
        """Whether a waiting order's condition holds at ``current``; updates trailing state."""
        if order.type != OrderType.TRAILING_STOP_MARKET:
            assert order.stop_price is not None
            return _condition_holds(order.type, order.side, order.stop_price, current)
        sell = order.side == Side.SELL
        if not order.active:
            activation = order.activation_price
            if activation is None or (current >= activation if sell else current <= activation):
                order.active = True
                order.extreme = current
            else:
                return False
        assert order.extreme is not None and order.callback_rate is not None
        order.extreme = max(order.extreme, current) if sell else min(order.extreme, current)
        rate = order.callback_rate
        if sell:
            return current * RATE_ONE <= order.extreme * (RATE_ONE - rate)
        return current * RATE_ONE >= order.extreme * (RATE_ONE + rate)

    # ------------------------------------------------------------------ helpers

    def _find(self, order_id: int) -> _Order | None:
        for order in self._book + self._waiting:
            if order.order_id == order_id:
                return order
        return None

    def _live_of(self, account: int) -> list[_Order]:
        """The account's live orders (resting and conditional) in placement order."""
        return sorted(
            (o for o in self._book + self._waiting if o.account == account),
            key=lambda o: o.seq,
        )

    def _remove(self, order: _Order) -> None:
        """Take a live order off the book or out of the waiting list."""
        self._book = [o for o in self._book if o is not order]
        self._waiting = [o for o in self._waiting if o is not order]

    def _reject_unknown(self, order_id: int, account: int) -> None:
        self._out.append(
            Rejected(
                order_id,
                account,
                RejectReason.UNKNOWN_ORDER,
                f"order {order_id} is not a live order of account {account}",
            )
        )

    def _sorted_side(self, side: Side) -> list[_Order]:
        """One side of the book in priority order: better price first, then earlier entry."""
        orders = [o for o in self._book if o.side == side]
        if side == Side.BUY:
            return sorted(orders, key=lambda o: (-_price(o), o.entry))
        return sorted(orders, key=lambda o: (_price(o), o.entry))

    def _levels(self, side: Side) -> Levels:
        levels: Levels = {}
        for order in self._book:
            if order.side == side:
                levels[_price(order)] = levels.get(_price(order), 0) + order.open
        return levels

    def _best(self, side: Side) -> int | None:
        orders = self._sorted_side(side)
        return _price(orders[0]) if orders else None

    def _capacity(self, account: int, side: Side) -> int:
        """How much an order on ``side`` can still reduce the account's position."""
        position = self._positions.get(account, 0)
        if side == Side.SELL and position > 0:
            return position
        if side == Side.BUY and position < 0:
            return -position
        return 0

    def _would_cross(self, side: Side, price: int) -> bool:
        """Whether a limit at ``price`` would reach the best opposite price."""
        if side == Side.BUY:
            best_ask = self._best(Side.SELL)
            return best_ask is not None and price >= best_ask
        best_bid = self._best(Side.BUY)
        return best_bid is not None and price <= best_bid

    def _in_band(self, price: int) -> bool:
        """PlaceOrder check 6: inside the band around the mark (always, if either is unset)."""
        if self._mark is None:
            return True
        up, down = self._spec.price_band_up, self._spec.price_band_down
        if up > 0 and price > self._mark * (RATE_ONE + up) // RATE_ONE:
            return False
        return not (down > 0 and price < ceil_div(self._mark * (RATE_ONE - down), RATE_ONE))

    def _protection_bound(self, side: Side) -> int | None:
        """The farthest price a market order may fill at (``None``: bounded by the book only)."""
        rate = self._spec.market_protection
        if rate <= 0:
            return None
        reference = self._mark if self._mark is not None else self._best(_opposite(side))
        if reference is None:
            return None
        if side == Side.BUY:
            return reference * (RATE_ONE + rate) // RATE_ONE
        return ceil_div(reference * (RATE_ONE - rate), RATE_ONE)

    def _price_of(self, trigger: TriggerBy) -> int | None:
        return self._last if trigger == TriggerBy.LAST else self._mark

    # ------------------------------------------------------------------ queries

    def best_bid(self) -> int | None:
        return self._best(Side.BUY)

    def best_ask(self) -> int | None:
        return self._best(Side.SELL)

    def depth(self, n: int) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """Top ``n`` aggregated levels per side: bids descending, asks ascending."""
        bids = sorted(self._levels(Side.BUY).items(), reverse=True)
        asks = sorted(self._levels(Side.SELL).items())
        count = max(n, 0)
        return bids[:count], asks[:count]

    @property
    def update_id(self) -> int:
        """The ``update_id`` of the last ``BookDelta`` emitted (0 before the first)."""
        return self._update_id

    def impact_price(self, side: Side, notional: int) -> Fraction | None:
        """Average price in ticks of a market order on ``side`` worth ``notional`` minor units.

        Walks the whole opposite side (no market protection, no owner: it measures the book),
        taking the last level fractionally. ``None`` if the side cannot absorb ``notional``.
        """
        if notional <= 0:
            raise ValueError(f"notional must be positive, got {notional}")
        bids, asks = self.depth(len(self._book))
        remaining = Fraction(notional)
        lots = Fraction(0)
        for price, qty in asks if side == Side.BUY else bids:
            value = price * qty * self._multiplier
            if value >= remaining:
                lots += remaining / (price * self._multiplier)
                remaining = Fraction(0)
                break
            lots += qty
            remaining -= value
        if remaining > 0:
            return None
        return Fraction(notional) / (lots * self._multiplier)

    def open_orders(self, account: int) -> list[int]:
        """Ids of the account's live orders (resting and conditional) in placement order."""
        return [o.order_id for o in self._live_of(account)]

    def position(self, account: int) -> int:
        """The account's net position in lots (+ long, − short)."""
        return self._positions.get(account, 0)


def _price(order: _Order) -> int:
    """The price of an order on the book (every resting order has one)."""
    assert order.price is not None
    return order.price


def _condition_holds(kind: OrderType, side: Side, stop_price: int, current: int) -> bool:
    """The trigger condition of a stop or take-profit order at price ``current``."""
    if kind in STOP_TYPES:
        return current >= stop_price if side == Side.BUY else current <= stop_price
    return current <= stop_price if side == Side.BUY else current >= stop_price


def _changed_levels(before: Levels, after: Levels) -> tuple[tuple[int, int], ...]:
    """Levels whose quantity differs, with their new quantity (0 = gone), ascending price."""
    prices = sorted(set(before) | set(after))
    return tuple((p, after.get(p, 0)) for p in prices if before.get(p, 0) != after.get(p, 0))
