"""The matching core of one market: commands in, events out, by the rules of docs/matching.md.

This is the fast implementation; ``exchange.reference`` is the slow, obviously correct one, and
the differential tests hold the two to identical events. The hot paths (a passive limit order, a
cancel, a fill) are written flat, with locals instead of repeated attribute lookups, because at
half a million commands per second every attribute access is a measurable share of the budget.
"""

import hashlib
from collections.abc import Callable
from copy import copy
from fractions import Fraction
from typing import Any, Self

import msgspec

from exchange.book import BookSide, Order
from exchange.book_state import AccountOrders, BookState, LevelState
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

BUY = Side.BUY
LIMIT = OrderType.LIMIT
MARKET = OrderType.MARKET
TRAILING = OrderType.TRAILING_STOP_MARKET
STOPS = frozenset({OrderType.STOP_MARKET, OrderType.STOP_LIMIT})
TAKE_PROFITS = frozenset({OrderType.TAKE_PROFIT_MARKET, OrderType.TAKE_PROFIT_LIMIT})
GTC = TimeInForce.GTC
GTX = TimeInForce.GTX
IOC = TimeInForce.IOC
FOK = TimeInForce.FOK
STP_NONE = StpMode.NONE
EXPIRE_TAKER = StpMode.EXPIRE_TAKER
EXPIRE_MAKER = StpMode.EXPIRE_MAKER
LAST_PRICE = TriggerBy.LAST


def _reducing_capacity(position: int, is_buy: bool) -> int:
    """How many lots an order on this side can still take off ``position`` (0: it would not)."""
    if is_buy:
        return -position if position < 0 else 0
    return position if position > 0 else 0


class MatchingEngine:
    """One market's book, conditional orders and net positions; see docs/matching.md."""

    def __init__(self, spec: MarketSpec) -> None:
        spec.validate()
        self.spec = spec
        self.bids = BookSide(is_bid=True)
        self.asks = BookSide(is_bid=False)
        self.last: int | None = None
        self.mark: int | None = None
        self.update_id = 0
        self._multiplier = spec.multiplier
        self._trade_id = 0
        self._seq = 0
        self._live: dict[int, Order] = {}
        self._conditional: dict[int, Order] = {}
        self._trigger_due = False
        self._positions: dict[int, int] = {}
        self._ro_resting: dict[int, dict[int, Order]] = {}
        self._events: list[MatchingEvent] = []
        self._handlers: dict[type, Callable[[Any], None]] = {
            PlaceOrder: self._place,
            CancelOrder: self._cancel,
            AmendOrder: self._amend,
            CancelAll: self._cancel_all,
            SetMarkPrice: self._set_mark,
        }

    # ----------------------------------------------------------------- commands

    def process(self, cmd: MatchingCommand) -> list[MatchingEvent]:
        """Apply one command and return its events, in the order they happened."""
        if type(cmd) is PlaceOrder:
            if cmd.type is LIMIT and (cmd.tif is GTC or cmd.tif is GTX) and not cmd.reduce_only:
                fast = self._place_passive(cmd)
                if fast is not None:
                    return fast
        elif type(cmd) is CancelOrder:
            fast = self._cancel_plain(cmd)
            if fast is not None:
                return fast
        events: list[MatchingEvent] = []
        self._events = events
        self._handlers[type(cmd)](cmd)
        if self._trigger_due and self._conditional:
            self._run_triggers()
        self._append_delta(events)
        return events

    def _append_delta(self, events: list[MatchingEvent]) -> None:
        """Close a command: one BookDelta for every level it changed, if any."""
        bid_touched = self.bids.touched
        ask_touched = self.asks.touched
        if bid_touched or ask_touched:
            bid_levels = self.bids.take_delta() if bid_touched else ()
            ask_levels = self.asks.take_delta() if ask_touched else ()
            if bid_levels or ask_levels:
                self.update_id += 1
                events.append(BookDelta(self.update_id, bid_levels, ask_levels))

    def place_problem(self, cmd: PlaceOrder) -> tuple[RejectReason, str] | None:
        """Why ``process`` would reject this order, or None: lets a risk check run only on
        orders the book would take, so a rejection names the first rule broken."""
        return self._place_problem(cmd)

    def protection_bound(self, is_buy: bool) -> int | None:
        """The worst price a market order on this side may fill at now (None: unbounded)."""
        return self._protection_bound(is_buy, self.asks if is_buy else self.bids)

    def move_position(self, account: int, counterparty: int, signed: int) -> list[MatchingEvent]:
        """Move ``signed`` lots to ``account`` from ``counterparty`` outside the book.

        This is how auto-deleveraging changes positions; the engine keeps net positions for
        reduce-only orders, so it must see the move, and a reduce-only order that no longer
        reduces expires as it would after a fill.
        """
        events: list[MatchingEvent] = []
        self._events = events
        positions = self._positions
        positions[account] = positions.get(account, 0) + signed
        positions[counterparty] = positions.get(counterparty, 0) - signed
        if self._ro_resting:
            self._ro_upkeep(account)
            self._ro_upkeep(counterparty)
        self._append_delta(events)
        return events

    def expire(self, order_id: int) -> list[MatchingEvent]:
        """End a live order because its time has come (``PlaceOrder.expire_time``): the
        engine's clock ends it, not a command to the book, so it is a method like
        ``liquidate``. An order that is not live gives no events."""
        order = self._live.get(order_id)
        if order is None:
            return []
        events: list[MatchingEvent] = []
        self._events = events
        self._withdraw(order)
        events.append(Expired(order_id, order.account, order.open, ExpireReason.GTD))
        self._append_delta(events)
        return events

    def live_terms(self, order_id: int) -> PlaceOrder | None:
        """The placement of a live order (resting or conditional), or None."""
        order = self._live.get(order_id)
        return None if order is None else order.cmd

    def liquidate(
        self, order_id: int, account: int, side: Side, qty: int, limit: int
    ) -> list[MatchingEvent]:
        """Run the liquidation engine's order: IOC, reduce-only, at ``limit`` or better.

        The exchange sends it, not a user, and it must be able to close any position: so the
        order rules meant for users (quantity limits, minimum notional, the price band) do not
        apply, and it pays no trading fee (the liquidation clearance fee replaces it, charged by
        the engine); the maker side pays its fee as usual.
        """
        cmd = PlaceOrder(
            order_id=order_id,
            account=account,
            side=side,
            qty=qty,
            price=limit,
            tif=IOC,
            reduce_only=True,
            stp=STP_NONE,
        )
        events: list[MatchingEvent] = []
        self._events = events
        self._seq += 1
        order = Order(order_id, account, side, side is BUY, limit, qty, True, self._seq, cmd)
        self._live[order_id] = order
        events.append(Accepted(order_id, account))
        self._execute(order)
        if self._trigger_due and self._conditional:
            self._run_triggers()
        self._append_delta(events)
        return [
            msgspec.structs.replace(e, taker_fee=0)
            if type(e) is Trade and e.taker_order_id == order_id
            else e
            for e in events
        ]

    def _place_passive(self, cmd: PlaceOrder) -> list[MatchingEvent] | None:
        """The commonest command, a valid GTC or GTX limit order that does not cross, in one step.

        Returns None for anything else (an invalid or crossing order), which then takes the
        general path. Nothing else can happen in such a command: no trade, no trigger, and
        exactly one level changes, so its delta is built directly.
        """
        spec = self.spec
        order_id = cmd.order_id
        qty = cmd.qty
        price = cmd.price
        if (
            price is None
            or order_id in self._live
            or not spec.min_qty <= qty <= spec.max_qty
            or not 0 < price <= spec.max_price
            or cmd.stop_price is not None
            or cmd.activation_price is not None
            or cmd.callback_rate is not None
            or (spec.min_notional and price * qty * self._multiplier < spec.min_notional)
            or (self.mark is not None and not self._in_band(price))
        ):
            return None
        is_buy = cmd.side is BUY
        if is_buy:
            best = self.asks.best
            if best is not None and best <= price:
                return None
            book = self.bids
        else:
            best = self.bids.best
            if best is not None and best >= price:
                return None
            book = self.asks
        self._seq += 1
        order = Order(order_id, cmd.account, cmd.side, is_buy, price, qty, False, self._seq, cmd)
        self._live[order_id] = order
        level = book.levels.get(price)
        if level is None:
            book.add(order)
            book.touched.clear()
            total = qty
        else:
            level.orders[order_id] = order
            total = level.total = level.total + qty
        self.update_id += 1
        changed = ((price, total),)
        if is_buy:
            return [Accepted(order_id, cmd.account), BookDelta(self.update_id, changed, ())]
        return [Accepted(order_id, cmd.account), BookDelta(self.update_id, (), changed)]

    def _cancel_plain(self, cmd: CancelOrder) -> list[MatchingEvent] | None:
        """Cancel a resting order without reduce-only upkeep in one step (None: not that case)."""
        order_id = cmd.order_id
        order = self._live.get(order_id)
        if (
            order is None
            or order.account != cmd.account
            or order.reduce_only
            or order_id in self._conditional
        ):
            return None
        del self._live[order_id]
        book = self.bids if order.is_buy else self.asks
        price = order.price
        level = book.levels[price]
        del level.orders[order_id]
        total = level.total = level.total - order.open
        if not level.orders:
            book.drop(price)
        self.update_id += 1
        changed = ((price, total),)
        cancelled = Cancelled(order_id, order.account, order.open, CancelReason.USER)
        if order.is_buy:
            return [cancelled, BookDelta(self.update_id, changed, ())]
        return [cancelled, BookDelta(self.update_id, (), changed)]

    def _reject(self, order_id: int, account: int, reason: RejectReason, message: str) -> None:
        self._events.append(Rejected(order_id, account, reason, message))

    def _place(self, cmd: PlaceOrder) -> None:
        problem = self._place_problem(cmd)
        if problem is not None:
            self._events.append(Rejected(cmd.order_id, cmd.account, problem[0], problem[1]))
            return
        kind = cmd.type
        order_id = cmd.order_id
        is_buy = cmd.side is BUY
        price = cmd.price or 0
        self._seq += 1
        order = Order(
            order_id, cmd.account, cmd.side, is_buy, price, cmd.qty, cmd.reduce_only, self._seq, cmd
        )
        self._live[order_id] = order
        self._events.append(Accepted(order_id, cmd.account))
        if kind is LIMIT:
            best = (self.asks if is_buy else self.bids).best
            if (
                cmd.reduce_only
                or cmd.tif is not GTC
                or (best is not None and (best <= price if is_buy else best >= price))
            ):
                self._execute(order)
            else:  # the most common command of all: a passive limit order joins the book
                (self.bids if is_buy else self.asks).add(order)
        elif kind is MARKET:
            order.is_market = True
            self._execute(order)
        else:
            if kind is TRAILING and cmd.activation_price is None:
                order.active = True
            self._conditional[order_id] = order
            self._trigger_due = True

    def _place_problem(self, cmd: PlaceOrder) -> tuple[RejectReason, str] | None:
        """The first check of docs/matching.md (PlaceOrder) that ``cmd`` fails, or None."""
        spec = self.spec
        if cmd.order_id in self._live:
            return RejectReason.DUPLICATE_ORDER_ID, "order id is live"
        qty = cmd.qty
        if not spec.min_qty <= qty <= spec.max_qty:  # min_qty >= 1, so this catches qty <= 0
            return self._qty_problem(qty)
        kind = cmd.type
        price = cmd.price
        if kind is LIMIT:  # the common case, checked without the general shape rules
            if (
                price is None
                or cmd.stop_price is not None
                or cmd.activation_price is not None
                or cmd.callback_rate is not None
            ):
                return RejectReason.INVALID_ORDER, _shape_error(cmd)
            if not 0 < price <= spec.max_price:
                return RejectReason.INVALID_PRICE, f"price {price} out of range"
        else:
            problem = _shape_problem(cmd, spec)
            if problem is not None:
                return RejectReason.INVALID_ORDER, problem
            for value in (price, cmd.stop_price, cmd.activation_price):
                if value is not None and not 0 < value <= spec.max_price:
                    return RejectReason.INVALID_PRICE, f"price {value} out of range"
        if price is not None:
            if spec.min_notional and price * qty * self._multiplier < spec.min_notional:
                return RejectReason.MIN_NOTIONAL, "notional below minimum"
            if self.mark is not None and not self._in_band(price):
                return RejectReason.PRICE_OUT_OF_BAND, "price outside the band"
        is_buy = cmd.side is BUY
        if (
            cmd.reduce_only
            and (kind is LIMIT or kind is MARKET)
            and not _reducing_capacity(self._positions.get(cmd.account, 0), is_buy)
        ):
            return RejectReason.REDUCE_ONLY_REJECTED, "reduce-only order would not reduce"
        if kind is LIMIT:
            if cmd.tif is GTX and (self.asks if is_buy else self.bids).crosses(price):  # type: ignore[arg-type]
                return RejectReason.POST_ONLY_WOULD_TAKE, "post-only order would take"
            return None
        if kind in STOPS or kind in TAKE_PROFITS:
            now = self.last if cmd.trigger is LAST_PRICE else self.mark
            if now is not None and _condition_holds(kind, is_buy, cmd.stop_price, now):  # type: ignore[arg-type]
                return RejectReason.WOULD_IMMEDIATELY_TRIGGER, "order would immediately trigger"
        return None

    def _qty_problem(self, qty: int) -> tuple[RejectReason, str]:
        if qty <= 0:
            return RejectReason.INVALID_QTY, f"quantity {qty} must be positive"
        if qty < self.spec.min_qty:
            return RejectReason.QTY_BELOW_MIN, f"quantity {qty} below the minimum"
        return RejectReason.QTY_ABOVE_MAX, f"quantity {qty} above the maximum"

    def _in_band(self, price: int) -> bool:
        """Binance PERCENT_PRICE: the limit price must be within the band around the mark."""
        spec = self.spec
        mark = self.mark
        assert mark is not None
        if spec.price_band_up and price > mark * (RATE_ONE + spec.price_band_up) // RATE_ONE:
            return False
        return not (
            spec.price_band_down
            and price < ceil_div(mark * (RATE_ONE - spec.price_band_down), RATE_ONE)
        )

    def _cancel(self, cmd: CancelOrder) -> None:
        order = self._live.get(cmd.order_id)
        if order is None or order.account != cmd.account:
            return self._reject(
                cmd.order_id, cmd.account, RejectReason.UNKNOWN_ORDER, "no such order"
            )
        self._withdraw(order)
        self._events.append(Cancelled(order.order_id, order.account, order.open, CancelReason.USER))
        return None

    def _cancel_all(self, cmd: CancelAll) -> None:
        account = cmd.account
        mine = [order for order in self._live.values() if order.account == account]
        for order in mine:
            self._withdraw(order)
            self._events.append(
                Cancelled(order.order_id, account, order.open, CancelReason.CANCEL_ALL)
            )

    def _withdraw(self, order: Order) -> None:
        """Take a live order out of the engine (book or conditional list) without an event."""
        if self._conditional.pop(order.order_id, None) is None:
            self._unrest(order)
        del self._live[order.order_id]

    def _amend(self, cmd: AmendOrder) -> None:
        order_id = cmd.order_id
        account = cmd.account
        spec = self.spec
        order = self._live.get(order_id)
        if order is None or order.account != account:
            return self._reject(order_id, account, RejectReason.UNKNOWN_ORDER, "no such order")
        if order_id in self._conditional:
            return self._reject(
                order_id,
                account,
                RejectReason.NOT_AMENDABLE,
                "conditional orders cannot be amended",
            )
        price, qty = cmd.price, cmd.qty
        if price is None and qty is None:
            return self._reject(order_id, account, RejectReason.INVALID_ORDER, "nothing to amend")
        if qty is not None and qty < 0:
            return self._reject(order_id, account, RejectReason.INVALID_QTY, "negative quantity")
        if qty is not None and qty > spec.max_qty:
            return self._reject(order_id, account, RejectReason.QTY_ABOVE_MAX, "quantity too large")
        if price is not None and not 0 < price <= spec.max_price:
            return self._reject(order_id, account, RejectReason.INVALID_PRICE, "price out of range")
        if qty == 0:
            self._withdraw(order)
            self._events.append(
                Cancelled(order_id, account, order.open, CancelReason.AMEND_TO_ZERO)
            )
            return None
        new_price = order.price if price is None else price
        new_qty = order.open if qty is None else qty
        if new_price != order.price:
            if self.mark is not None and not self._in_band(new_price):
                return self._reject(
                    order_id, account, RejectReason.PRICE_OUT_OF_BAND, "price outside the band"
                )
            opposite = self.asks if order.is_buy else self.bids
            if order.cmd.tif is GTX and opposite.crosses(new_price):
                return self._reject(
                    order_id,
                    account,
                    RejectReason.POST_ONLY_WOULD_TAKE,
                    "post-only order would take",
                )
        elif new_qty <= order.open:
            (self.bids if order.is_buy else self.asks).reduce(order, order.open - new_qty)
            self._events.append(Amended(order_id, account, new_price, new_qty, True))
            return None
        self._unrest(order)
        order.price = new_price
        order.open = new_qty
        self._events.append(Amended(order_id, account, new_price, new_qty, False))
        self._execute(order)
        return None

    def _set_mark(self, cmd: SetMarkPrice) -> None:
        if not 0 < cmd.price <= self.spec.max_price:
            return self._reject(0, 0, RejectReason.INVALID_PRICE, f"mark {cmd.price} out of range")
        self.mark = cmd.price
        self._trigger_due = True
        return None

    # ------------------------------------------------------------- execution

    def _rest(self, order: Order) -> None:
        """Put the rest of a limit order on the book; a reduce-only one only while it reduces."""
        if order.reduce_only:
            if not _reducing_capacity(self._positions.get(order.account, 0), order.is_buy):
                return self._expire(order, order.open, ExpireReason.REDUCE_ONLY)
            self._ro_resting.setdefault(order.account, {})[order.order_id] = order
        (self.bids if order.is_buy else self.asks).add(order)
        return None

    def _unrest(self, order: Order) -> None:
        (self.bids if order.is_buy else self.asks).remove(order)
        if order.reduce_only:
            self._forget_reduce_only(order)

    def _forget_reduce_only(self, order: Order) -> None:
        mine = self._ro_resting[order.account]
        del mine[order.order_id]
        if not mine:
            del self._ro_resting[order.account]

    def _expire(self, order: Order, qty: int, reason: ExpireReason) -> None:
        """Finish an order that is not on the book (a taker) with an Expired event."""
        del self._live[order.order_id]
        self._events.append(Expired(order.order_id, order.account, qty, reason))

    def _execute(self, order: Order) -> None:
        """Run ``order`` as a taker, then rest or expire what is left (docs: Taking)."""
        is_buy = order.is_buy
        opposite = self.asks if is_buy else self.bids
        tif = order.cmd.tif
        if order.is_market:
            bound = self._protection_bound(is_buy, opposite)
        else:
            bound = order.price
            best = opposite.best
            if best is None or (best > bound if is_buy else best < bound):
                if tif is IOC or tif is FOK:
                    return self._expire(order, order.open, ExpireReason(tif.lower()))
                return self._rest(order)
            if tif is FOK and not self._fok_fills(order, opposite, bound):
                return self._expire(order, order.open, ExpireReason.FOK)
        if self._take(order, opposite, bound):
            return None
        rest = order.open
        if not rest:
            del self._live[order.order_id]
        elif order.is_market:
            reason = (
                ExpireReason.NO_LIQUIDITY
                if opposite.best is None
                else ExpireReason.PRICE_PROTECTION
            )
            self._expire(order, rest, reason)
        elif tif is IOC or tif is FOK:
            self._expire(order, rest, ExpireReason(tif.lower()))
        else:
            self._rest(order)
        return None

    def _protection_bound(self, is_buy: bool, opposite: BookSide) -> int | None:
        protection = self.spec.market_protection
        if not protection:
            return None
        ref = self.mark if self.mark is not None else opposite.best
        if ref is None:
            return None
        if is_buy:
            return ref * (RATE_ONE + protection) // RATE_ONE
        return ceil_div(ref * (RATE_ONE - protection), RATE_ONE)

    def _take(self, taker: Order, opposite: BookSide, bound: int | None) -> bool:
        """Walk the opposite side; leave the taker's rest in ``taker.open``.

        Returns True when the walk itself finished the taker (STP or reduce-only expiry).
        The loop is written flat on purpose: it runs once per fill.
        """
        events = self._events
        live = self._live
        positions = self._positions
        levels = opposite.levels
        touched = opposite.touched
        is_buy = taker.is_buy
        account = taker.account
        stp = taker.cmd.stp
        side = taker.side
        multiplier = self._multiplier
        taker_fee_rate = self.spec.taker_fee
        maker_fee_rate = self.spec.maker_fee
        remaining = taker.open
        while remaining:
            price = opposite.best
            if price is None or (
                bound is not None and (price > bound if is_buy else price < bound)
            ):
                break
            level = levels[price]
            orders = level.orders
            if price not in touched:
                touched[price] = level.total
            while remaining and orders:
                maker = next(iter(orders.values()))
                maker_account = maker.account
                if maker_account == account and stp is not STP_NONE:
                    if stp is EXPIRE_TAKER:
                        self._expire(taker, remaining, ExpireReason.STP)
                        return True
                    self._unrest(maker)
                    del live[maker.order_id]
                    events.append(
                        Expired(maker.order_id, maker_account, maker.open, ExpireReason.STP)
                    )
                    if stp is EXPIRE_MAKER:
                        continue
                    self._expire(taker, remaining, ExpireReason.STP)
                    return True
                qty = remaining if remaining < maker.open else maker.open
                if taker.reduce_only:
                    cap = _reducing_capacity(positions.get(account, 0), is_buy)
                    if not cap:
                        self._expire(taker, remaining, ExpireReason.REDUCE_ONLY)
                        return True
                    if qty > cap:
                        qty = cap
                if maker.reduce_only:
                    cap = _reducing_capacity(positions.get(maker_account, 0), not is_buy)
                    if qty > cap:
                        qty = cap
                notional = price * qty * multiplier
                self._trade_id += 1
                events.append(
                    Trade(
                        self._trade_id,
                        price,
                        qty,
                        side,
                        taker.order_id,
                        account,
                        maker.order_id,
                        maker_account,
                        -(-notional * taker_fee_rate // RATE_ONE) if taker_fee_rate else 0,
                        -(-notional * maker_fee_rate // RATE_ONE) if maker_fee_rate else 0,
                    )
                )
                remaining -= qty
                level.total -= qty
                if qty == maker.open:
                    del live[maker.order_id]
                    del orders[maker.order_id]
                    if maker.reduce_only:
                        self._forget_reduce_only(maker)
                else:
                    maker.open -= qty
                signed = qty if is_buy else -qty
                positions[account] = positions.get(account, 0) + signed
                positions[maker_account] = positions.get(maker_account, 0) - signed
                self.last = price
                self._trigger_due = True
                if self._ro_resting:
                    self._ro_upkeep(account)
                    if maker_account != account:
                        self._ro_upkeep(maker_account)
            if not orders and levels.get(price) is level:  # upkeep may have dropped it already
                opposite.drop(price)
        taker.open = remaining
        return False

    def _ro_upkeep(self, account: int) -> None:
        """Expire the account's resting reduce-only orders that would no longer reduce."""
        mine = self._ro_resting.get(account)
        if not mine:
            return
        position = self._positions.get(account, 0)
        stale = [o for o in mine.values() if not _reducing_capacity(position, o.is_buy)]
        stale.sort(key=lambda o: o.seq)
        for order in stale:
            self._unrest(order)
            del self._live[order.order_id]
            self._events.append(
                Expired(order.order_id, account, order.open, ExpireReason.REDUCE_ONLY)
            )

    def _fok_fills(self, taker: Order, opposite: BookSide, bound: int) -> bool:
        """Whether the walk would fill ``taker`` in full: the same rules on a virtual state."""
        need = taker.open
        is_buy = taker.is_buy
        account = taker.account
        stp = taker.cmd.stp
        moved: dict[int, int] = {}
        gone: set[int] = set()

        def position(who: int) -> int:
            return self._positions.get(who, 0) + moved.get(who, 0)

        for price in opposite.prices_from_best():
            if price > bound if is_buy else price < bound:
                return False
            for maker in list(opposite.levels[price].orders.values()):
                if maker.order_id in gone:
                    continue
                if maker.account == account and stp is not STP_NONE:
                    if stp is EXPIRE_MAKER:
                        gone.add(maker.order_id)
                        continue
                    return False
                left = maker.open
                while left:  # the real walk stays on a maker until it is finished or gone
                    qty = min(need, left)
                    if taker.reduce_only:
                        cap = _reducing_capacity(position(account), is_buy)
                        if not cap:
                            return False
                        qty = min(qty, cap)
                    if maker.reduce_only:
                        qty = min(qty, _reducing_capacity(position(maker.account), not is_buy))
                    need -= qty
                    left -= qty
                    if need == 0:
                        return True
                    signed = qty if is_buy else -qty
                    moved[account] = moved.get(account, 0) + signed
                    moved[maker.account] = moved.get(maker.account, 0) - signed
                    for who in {account, maker.account}:
                        for resting in self._ro_resting.get(who, {}).values():
                            if not _reducing_capacity(position(who), resting.is_buy):
                                gone.add(resting.order_id)
                    if maker.order_id in gone:
                        break
        return False

    # -------------------------------------------------------------- triggers

    def _run_triggers(self) -> None:
        """Evaluate conditional orders until a round triggers nothing (docs: Triggers)."""
        while True:
            self._trigger_due = False
            fired: list[tuple[Order, int]] = []
            for order in self._conditional.values():
                now = self.last if order.cmd.trigger is LAST_PRICE else self.mark
                if now is not None and self._observe(order, now):
                    fired.append((order, now))
            if not fired:
                return
            for order, now in fired:
                if self._conditional.pop(order.order_id, None) is None:
                    continue
                self._fire(order, now)

    def _observe(self, order: Order, now: int) -> bool:
        """Feed one price to a conditional order; return whether it triggers."""
        cmd = order.cmd
        kind = cmd.type
        if kind is not TRAILING:
            return _condition_holds(kind, order.is_buy, cmd.stop_price, now)  # type: ignore[arg-type]
        if not order.active:
            activation = cmd.activation_price
            assert activation is not None
            if now <= activation if order.is_buy else now >= activation:
                order.active = True
                order.extreme = now
            return False
        extreme = order.extreme
        callback = cmd.callback_rate
        assert callback is not None
        if order.is_buy:
            extreme = now if extreme is None or now < extreme else extreme
            order.extreme = extreme
            return now * RATE_ONE >= extreme * (RATE_ONE + callback)
        extreme = now if extreme is None or now > extreme else extreme
        order.extreme = extreme
        return now * RATE_ONE <= extreme * (RATE_ONE - callback)

    def _fire(self, order: Order, now: int) -> None:
        cmd = order.cmd
        self._events.append(Triggered(order.order_id, order.account, now))
        if order.reduce_only and not _reducing_capacity(
            self._positions.get(order.account, 0), order.is_buy
        ):
            return self._expire(order, order.open, ExpireReason.REDUCE_ONLY)
        if cmd.type in LIMIT_TYPES:
            assert cmd.price is not None
            order.price = cmd.price
            opposite = self.asks if order.is_buy else self.bids
            if cmd.tif is GTX and opposite.crosses(cmd.price):
                return self._expire(order, order.open, ExpireReason.POST_ONLY)
        else:
            order.is_market = True
        return self._execute(order)

    # --------------------------------------------------------------- queries

    def best_bid(self) -> int | None:
        return self.bids.best

    def best_ask(self) -> int | None:
        return self.asks.best

    def depth(self, n: int) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """Top ``n`` levels: bids descending, asks ascending."""
        return self.bids.depth(n), self.asks.depth(n)

    def impact_price(self, side: Side, notional: int) -> Fraction | None:
        """Average price of a market order on ``side`` worth ``notional`` minor units."""
        book = self.asks if side is BUY else self.bids
        return book.impact_price(notional, self._multiplier)

    def knows(self, order_id: int) -> bool:
        """Whether ``order_id`` is taken by a resting or a conditional order."""
        return order_id in self._live or order_id in self._conditional

    def open_orders(self, account: int) -> list[int]:
        """Ids of the account's live orders (resting and conditional), in placement order."""
        return [o.order_id for o in self._live.values() if o.account == account]

    def position(self, account: int) -> int:
        return self._positions.get(account, 0)

    # ------------------------------------------------------------- snapshots

    def snapshot(self) -> BookState:
        """The engine's complete state as plain data (see ``exchange.book_state``).

        Between commands only. Orders are copied, so the snapshot stays as it was while the
        engine goes on; ``restore`` of it, fed the same commands, emits the same events.
        """
        return BookState(
            orders=tuple([copy(order) for order in self._live.values()]),
            bids=_level_states(self.bids),
            asks=_level_states(self.asks),
            conditional=tuple(self._conditional),
            reduce_only_resting=tuple(
                [
                    AccountOrders(account=account, order_ids=tuple(mine))
                    for account, mine in self._ro_resting.items()
                ]
            ),
            positions=tuple(self._positions.items()),
            last=self.last,
            mark=self.mark,
            update_id=self.update_id,
            trade_id=self._trade_id,
            seq=self._seq,
        )

    @classmethod
    def restore(cls, spec: MarketSpec, state: BookState) -> Self:
        """A new engine in exactly the state ``snapshot`` captured, for the market ``spec``.

        Each order becomes one object shared by the live list, its level (or the conditional
        list) and the reduce-only index, as in the engine that took the snapshot: the engine
        mutates orders in place and relies on all of them seeing the change. The state may come
        from outside (a file, another process), so it is checked for consistency first; an
        inconsistent one raises ``ValueError`` rather than giving an engine that misbehaves
        later. The orders are copied: restoring the same state twice gives independent engines.
        """
        engine = cls(spec)
        live = engine._live
        for saved in state.orders:
            if saved.order_id in live:
                raise ValueError(f"order {saved.order_id} is listed twice")
            if saved.open <= 0 or saved.seq > state.seq:
                raise ValueError(f"order {saved.order_id}: open or seq out of range")
            live[saved.order_id] = copy(saved)
        resting: set[int] = set()
        for book, levels in ((engine.bids, state.bids), (engine.asks, state.asks)):
            below: int | None = None
            for level in levels:
                if not level.order_ids or (below is not None and level.price <= below):
                    raise ValueError(f"level {level.price}: empty or out of order")
                below = level.price
                for order_id in level.order_ids:
                    order = live.get(order_id)
                    if (
                        order is None
                        or order_id in resting
                        or order.price != level.price
                        or order.is_buy != book.is_bid
                    ):
                        raise ValueError(f"level {level.price}: order {order_id} does not fit")
                    resting.add(order_id)
                    book.add(order)  # in FIFO order, so each joins the back of its level
            book.touched.clear()  # restoring is not a change to publish
        conditional = engine._conditional
        for order_id in state.conditional:
            order = live.get(order_id)
            if order is None or order_id in resting or order_id in conditional:
                raise ValueError(f"conditional order {order_id} does not fit")
            conditional[order_id] = order
        if len(resting) + len(conditional) != len(live):
            raise ValueError("a live order is neither on the book nor conditional")
        indexed = 0
        for entry in state.reduce_only_resting:
            if entry.account in engine._ro_resting or not entry.order_ids:
                raise ValueError(f"reduce-only index of account {entry.account}: repeated/empty")
            mine = engine._ro_resting[entry.account] = {}
            for order_id in entry.order_ids:
                order = live.get(order_id)
                if (
                    order is None
                    or order_id not in resting
                    or order_id in mine
                    or not order.reduce_only
                    or order.account != entry.account
                ):
                    raise ValueError(f"reduce-only order {order_id} does not fit")
                mine[order_id] = order
            indexed += len(mine)
        if indexed != sum(1 for order_id in resting if live[order_id].reduce_only):
            raise ValueError("a resting reduce-only order is missing from the index")
        engine._positions = dict(state.positions)
        if len(engine._positions) != len(state.positions):
            raise ValueError("an account has two positions")
        engine.last = state.last
        engine.mark = state.mark
        engine.update_id = state.update_id
        engine._trade_id = state.trade_id
        engine._seq = state.seq
        return engine

    def state_hash(self) -> str:
        """SHA-256 (hex) of the encoded snapshot: equal exactly when the snapshots are equal.

        ``BookState`` holds only ordered containers and msgspec encodes struct fields in
        declaration order, so the bytes, and with them the hash, are canonical: two engines
        (in different processes, or one restored from a snapshot) can be compared by hash.
        """
        return hashlib.sha256(msgspec.msgpack.encode(self.snapshot())).hexdigest()


def _level_states(book: BookSide) -> tuple[LevelState, ...]:
    """A book side's levels by ascending price, each with its order ids in FIFO order."""
    levels = book.levels
    return tuple(
        [LevelState(price=price, order_ids=tuple(levels[price].orders)) for price in book.prices]
    )


def _condition_holds(kind: OrderType, is_buy: bool, stop_price: int, now: int) -> bool:
    """Binance trigger rules: stops fire on a move through the price, take-profits on a return."""
    if kind in STOPS:
        return now >= stop_price if is_buy else now <= stop_price
    return now <= stop_price if is_buy else now >= stop_price


def _shape_problem(cmd: PlaceOrder, spec: MarketSpec) -> str | None:
    """What is wrong with the fields of a non-LIMIT order, or None."""
    kind = cmd.type
    if (cmd.price is None) == (kind in LIMIT_TYPES):
        return _shape_error(cmd)
    if (cmd.stop_price is None) == (kind in STOPS or kind in TAKE_PROFITS):
        return f"{kind} {'needs' if cmd.stop_price is None else 'takes no'} stop_price"
    if kind is TRAILING:
        rate = cmd.callback_rate
        if rate is None or not spec.min_callback_rate <= rate <= spec.max_callback_rate:
            return "trailing stop needs a callback rate within the market's limits"
    elif cmd.callback_rate is not None or cmd.activation_price is not None:
        return f"{kind} takes no callback_rate or activation_price"
    assert kind is MARKET or kind in CONDITIONAL_TYPES
    return None


def _shape_error(cmd: PlaceOrder) -> str:
    if cmd.type in LIMIT_TYPES:
        if cmd.price is None:
            return f"{cmd.type} needs a price"
        return f"{cmd.type} takes no stop_price, callback_rate or activation_price"
    return f"{cmd.type} takes no price"
