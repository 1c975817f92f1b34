"""What the market maker knows of its own account, followed from the engine's events. Pure.

Why follow the event log rather than ask: the engine answers only commands, and the fills of
the maker's orders are written in the results of other users' commands. Every event names its
account, so one pass over all events keeps the maker's wallet, positions and orders.
"""

from typing import NamedTuple

from exchange.engine_events import EngineEvent, MarketEvent, PositionUpdate, Transfer
from exchange.events import Cancelled, Expired, MatchingEvent, Rejected, Trade
from exchange.ledger import wallet
from exchange.orders import Side


class MakerOrder(NamedTuple):
    symbol: str
    side: Side
    price: int
    open: int


class MakerBook:
    """The maker's cross wallet, positions and orders, as of the last event followed.

    ``orders`` holds the orders the maker sent and has not seen finish (rejected, cancelled,
    expired or filled): live ones and ones the engine has not answered yet. The wallet and
    positions are exact once the whole event log has been followed; started part-way (an
    embedded broker that restarted has forgotten the log), a position is corrected by the next
    ``PositionUpdate``, which carries the full size.
    """

    def __init__(self, account: int) -> None:
        self.account = account
        self.wallet = 0
        """Cross wallet balance, minor units."""
        self.positions: dict[str, int] = {}
        """Signed size in lots, by symbol."""
        self.orders: dict[int, MakerOrder] = {}
        self._address = wallet(account)

    def position(self, symbol: str) -> int:
        return self.positions.get(symbol, 0)

    def sent(self, order_id: int, order: MakerOrder) -> None:
        """Record an order the maker is sending."""
        self.orders[order_id] = order

    def follow(self, event: EngineEvent) -> Trade | Rejected | None:
        """Apply one event of the log; return it if it is a fill or a rejection of the maker's
        orders (what the maker reports), else None."""
        if isinstance(event, MarketEvent):
            return self._market(event.event)
        if isinstance(event, PositionUpdate) and event.account == self.account:
            self.positions[event.symbol] = event.size
        elif isinstance(event, Transfer):
            if event.target == self._address:
                self.wallet += event.amount
            if event.source == self._address:
                self.wallet -= event.amount
        return None

    def _market(self, event: MatchingEvent) -> Trade | Rejected | None:
        if isinstance(event, Trade):
            if event.maker_account != self.account:
                return None
            order = self.orders.pop(event.maker_order_id, None)
            if order is not None and order.open > event.qty:
                self.orders[event.maker_order_id] = order._replace(open=order.open - event.qty)
            return event
        if isinstance(event, Rejected | Cancelled | Expired) and event.account == self.account:
            self.orders.pop(event.order_id, None)
            return event if isinstance(event, Rejected) else None
        return None
