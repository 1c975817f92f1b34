"""The simplest sensible Python order book: the yardstick for the matching engine's speed.

A ``SortedDict`` of price levels per side, each level an ``OrderedDict`` used as a FIFO queue
(O(1) removal from anywhere, for cancels), and one order-id index. No events, no validation,
no fees, no positions: only the matching that decides who trades with whom, which is what both
must pay for. It keeps the engine's rules that change *which* trades happen on an order stream
(time-in-force, post-only, amend priority, ownership of cancels and the default self-trade
prevention, EXPIRE_TAKER), so that it and the engine agree on the trades of any well-formed
stream and the benchmark can check that they did the same work.

Input is pre-parsed tuples so that a timing of ``run`` measures matching only.
"""

from collections import OrderedDict
from collections.abc import Iterable

from sortedcontainers import SortedDict

from exchange.commands import AmendOrder, CancelOrder, PlaceOrder
from exchange.orders import OrderType, Side, TimeInForce

NEW, CANCEL, AMEND = 0, 1, 2
GTC, IOC, FOK, GTX = 0, 1, 2, 3
KEEP = -1
"""An amend's quantity that leaves the open quantity unchanged."""

BaselineOp = tuple[int, int, int, bool, int | None, int, int]
"""``(op, order_id, account, is_buy, price, qty, tif)``. ``price`` is None for a market order
and for an amend that keeps its price; ``is_buy`` and ``tif`` matter only to NEW; ``qty`` is
``KEEP`` for an amend that keeps its quantity."""

_TIF_CODES = {
    TimeInForce.GTC: GTC,
    TimeInForce.IOC: IOC,
    TimeInForce.FOK: FOK,
    TimeInForce.GTX: GTX,
}


def to_baseline(commands: Iterable[PlaceOrder | CancelOrder | AmendOrder]) -> list[BaselineOp]:
    """Translate order-stream commands (limit and market orders, cancels, amends) to tuples."""
    ops: list[BaselineOp] = []
    for cmd in commands:
        if isinstance(cmd, PlaceOrder):
            if cmd.type not in (OrderType.LIMIT, OrderType.MARKET):
                raise ValueError(f"the baseline book has no {cmd.type} orders")
            is_buy = cmd.side is Side.BUY
            if cmd.type is OrderType.MARKET:  # market orders ignore their tif
                ops.append((NEW, cmd.order_id, cmd.account, is_buy, None, cmd.qty, IOC))
            else:
                tif = _TIF_CODES[cmd.tif]
                ops.append((NEW, cmd.order_id, cmd.account, is_buy, cmd.price, cmd.qty, tif))
        elif isinstance(cmd, CancelOrder):
            ops.append((CANCEL, cmd.order_id, cmd.account, False, None, 0, GTC))
        else:
            qty = KEEP if cmd.qty is None else cmd.qty
            ops.append((AMEND, cmd.order_id, cmd.account, False, cmd.price, qty, GTC))
    return ops


class Order:
    __slots__ = ("account", "is_buy", "order_id", "post_only", "price", "qty")

    def __init__(
        self, order_id: int, account: int, is_buy: bool, price: int, qty: int, post_only: bool
    ) -> None:
        self.order_id = order_id
        self.account = account
        self.is_buy = is_buy
        self.price = price
        self.qty = qty
        self.post_only = post_only


Level = OrderedDict[int, Order]


class BaselineBook:
    def __init__(self) -> None:
        self.bids: SortedDict = SortedDict()  # price -> Level; the best bid is the last key
        self.asks: SortedDict = SortedDict()  # price -> Level; the best ask is the first key
        self.orders: dict[int, Order] = {}
        self.trades = 0
        self.traded_qty = 0

    def run(self, ops: Iterable[BaselineOp]) -> None:
        new, cancel, amend = self.new, self.cancel, self.amend
        for op, order_id, account, is_buy, price, qty, tif in ops:
            if op == NEW:
                new(order_id, account, is_buy, price, qty, tif)
            elif op == CANCEL:
                cancel(order_id, account)
            else:
                amend(order_id, account, price, qty)

    def new(
        self, order_id: int, account: int, is_buy: bool, price: int | None, qty: int, tif: int
    ) -> None:
        if tif == GTX and price is not None and self._crosses(is_buy, price):
            return
        if tif == FOK and not self._fillable(account, is_buy, price, qty):
            return
        rest = self._take(account, is_buy, price, qty)
        if rest and price is not None and tif in (GTC, GTX):
            self._rest(Order(order_id, account, is_buy, price, rest, tif == GTX))

    def cancel(self, order_id: int, account: int) -> None:
        order = self.orders.get(order_id)
        if order is not None and order.account == account:
            self._remove(order)

    def amend(self, order_id: int, account: int, price: int | None, qty: int) -> None:
        order = self.orders.get(order_id)
        if order is None or order.account != account:
            return
        if qty == 0:
            self._remove(order)
            return
        new_price = order.price if price is None else price
        new_qty = order.qty if qty == KEEP else qty
        if new_price == order.price and new_qty <= order.qty:
            order.qty = new_qty
            return
        if order.post_only and new_price != order.price and self._crosses(order.is_buy, new_price):
            return
        self._remove(order)
        rest = self._take(account, order.is_buy, new_price, new_qty)
        if rest:
            order.price, order.qty = new_price, rest
            self._rest(order)

    def best_bid(self) -> int | None:
        return self.bids.peekitem(-1)[0] if self.bids else None

    def best_ask(self) -> int | None:
        return self.asks.peekitem(0)[0] if self.asks else None

    def _crosses(self, is_buy: bool, price: int) -> bool:
        if is_buy:
            return bool(self.asks) and price >= self.asks.peekitem(0)[0]
        return bool(self.bids) and price <= self.bids.peekitem(-1)[0]

    def _take(self, account: int, is_buy: bool, limit: int | None, qty: int) -> int:
        """Fill against the opposite side; return what may rest (0 after self-trade prevention
        expired the rest)."""
        book = self.asks if is_buy else self.bids
        best = 0 if is_buy else -1
        while qty and book:
            price, level = book.peekitem(best)
            if limit is not None and (price > limit if is_buy else price < limit):
                break
            while qty and level:
                maker = next(iter(level.values()))
                if maker.account == account:
                    return 0
                fill = min(qty, maker.qty)
                qty -= fill
                maker.qty -= fill
                self.trades += 1
                self.traded_qty += fill
                if not maker.qty:
                    level.popitem(last=False)
                    del self.orders[maker.order_id]
            if not level:
                del book[price]
        return qty

    def _fillable(self, account: int, is_buy: bool, limit: int | None, qty: int) -> bool:
        """Would ``_take`` fill all of ``qty``? (A fill-or-kill order's dry run.)"""
        if is_buy:
            prices = self.asks.irange(maximum=limit)
            book = self.asks
        else:
            prices = self.bids.irange(minimum=limit, reverse=True)
            book = self.bids
        for price in prices:
            for maker in book[price].values():
                if maker.account == account:
                    return False
                qty -= maker.qty
                if qty <= 0:
                    return True
        return False

    def _rest(self, order: Order) -> None:
        book = self.bids if order.is_buy else self.asks
        level = book.get(order.price)
        if level is None:
            level = book[order.price] = OrderedDict()
        level[order.order_id] = order
        self.orders[order.order_id] = order

    def _remove(self, order: Order) -> None:
        book = self.bids if order.is_buy else self.asks
        level = book[order.price]
        del level[order.order_id]
        if not level:
            del book[order.price]
        del self.orders[order.order_id]
