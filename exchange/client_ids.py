"""Client order ids: the labels clients give their orders, unique among an account's live
orders in one market, as Binance's ``newClientOrderId`` is.

Why in the engine and not in a front: uniqueness is only exact where orders are ordered, and
the label must outlive a front's restart and be the same on every front instance. It is what
makes a retried placement safe: the retry of an order that went in is refused while the order
lives, instead of placing it twice.

The index is derived state: it always equals the client ids of the book's live orders (each
order keeps its ``PlaceOrder``), so a snapshot does not store it and ``from_orders`` rebuilds it.
"""

from collections.abc import Callable, Iterable

from exchange.book import Order
from exchange.events import Cancelled, Expired, MatchingEvent, Trade


class ClientIds:
    """(account, client order id) → order id, for one market's live orders that have one."""

    __slots__ = ("_by_label", "_label_of")

    def __init__(self) -> None:
        self._by_label: dict[tuple[int, str], int] = {}
        self._label_of: dict[int, tuple[int, str]] = {}

    @classmethod
    def from_orders(cls, orders: Iterable[Order]) -> "ClientIds":
        """The index of these live orders (a restored book's)."""
        index = cls()
        for order in orders:
            label = order.cmd.client_order_id
            if label is not None:
                index.add(order.account, label, order.order_id)
        return index

    def live(self, account: int, label: str) -> int | None:
        """The id of the account's live order with this label, or None."""
        return self._by_label.get((account, label))

    def add(self, account: int, label: str, order_id: int) -> None:
        """A new live order with this label (the caller has checked it is free)."""
        self._by_label[account, label] = order_id
        self._label_of[order_id] = (account, label)

    def forget_ended(self, events: Iterable[MatchingEvent], knows: Callable[[int], bool]) -> None:
        """Drop the labels of the orders these events ended (filled, cancelled, expired)."""
        if not self._label_of:
            return
        for event in events:
            if type(event) is Trade:
                self._forget_if_ended(event.taker_order_id, knows)
                self._forget_if_ended(event.maker_order_id, knows)
            elif type(event) is Cancelled or type(event) is Expired:
                self._forget_if_ended(event.order_id, knows)

    def _forget_if_ended(self, order_id: int, knows: Callable[[int], bool]) -> None:
        key = self._label_of.get(order_id)
        if key is not None and not knows(order_id):
            del self._label_of[order_id]
            del self._by_label[key]

    def items(self) -> list[tuple[tuple[int, str], int]]:
        """Every (account, label) and its order id, sorted: to compare with a rebuilt index."""
        return sorted(self._by_label.items())
