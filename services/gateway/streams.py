"""Subscriptions and pushes: what each command changed, to the connections that asked for it.

Channels (docs/gateway-protocol.md): public ``book.<SYMBOL>`` (a snapshot, then deltas with the
engine's ``update_id``s), ``trades.<SYMBOL>``, ``ticker.<SYMBOL>`` (best bid and ask, last
price, 24 h figures: pushed when one changes, the current one first), ``index.<SYMBOL>`` and
``mark.<SYMBOL>`` (the oracle's latest point first, then each new one), ``funding.<SYMBOL>``
(the estimate and the last settlement, the current ones first, then at every change); private
``orders``, ``fills``, ``positions``, ``balances`` of the account logged in.

A payload is encoded once however many connections it goes to; each connection wraps it with
its own ``seq`` (``Connection.push``). Pushing never waits: a connection's queue is bounded and
a slow one is disconnected (``connection``).

Private pushes go out right after the command that caused them was applied, in command order.
The busy public channels (book, trades, ticker) are gathered over one *step* (the event records
one poll of the log brought, ``publish``) and pushed once at its end (``end_step``): one book
delta with every level the step changed (``first_update_id`` … ``update_id``), one list of the
step's trades, one ticker. At thousands of orders a second a book subscriber got a frame per
engine delta, four of five of all the gateway's pushes, and each frame costs the gateway and
the client far more than its few levels; venues batch these streams the same way (Binance's
diff depth, Bybit's trade lists). Nothing runs between a step's records and its end, so a
snapshot taken at subscription and the deltas after it still fit exactly. Index, mark and the
funding estimate come from the price topic instead (``publish_price``), each push the board's
latest value, so there is no delta to fit: a subscriber gets the current value, then every
newer one.
"""

import msgspec

from exchange.engine_events import Liquidation
from exchange.events import Trade
from services.gateway.connection import Connection
from services.gateway.convert import Markets
from services.gateway.price_board import PriceBoard, PriceKind
from services.gateway.protocol import ENCODER, ErrorCode, Failure, FundingView, TickerView
from services.gateway.read_model import Changes, ReadModel
from services.gateway.risk_board import RiskBoard
from services.gateway.views import Views
from services.l2_book import MergedDeltas
from services.risk_messages import MarginCall, RiskMessage

PUBLIC_KINDS = ("book", "trades", "ticker", "index", "mark", "funding")
"""Public channels of one market: ``<kind>.<SYMBOL>``."""
PUBLIC_CHANNELS = ("insurance",)
"""Public channels of the whole exchange."""
PRIVATE_CHANNELS = (
    "orders",
    "fills",
    "positions",
    "balances",
    "liquidations",
    "adl",
    "margin_calls",
    "adl_quantile",
)


class Streams:
    def __init__(
        self,
        model: ReadModel,
        board: PriceBoard,
        views: Views,
        markets: Markets,
        risk: RiskBoard | None = None,
    ) -> None:
        self.model = model
        self.board = board
        self.risk = risk if risk is not None else RiskBoard(frozenset(markets.specs))
        """The liquidation service's margin calls and ADL indicators (the risk topic)."""
        self.views = views
        self.markets = markets
        self._public: dict[str, set[Connection]] = {}
        """Public channel → its subscribers."""
        self._accounts: dict[int, set[Connection]] = {}
        """Account → its logged-in connections (each pushes only the private channels it
        subscribed)."""
        self._tickers: dict[str, TickerView] = {}
        """Per market, the ticker last pushed (without its time): one push per change."""
        self._fundings: dict[str, FundingView] = {}
        """Per market, the funding view last pushed: one push per change."""
        self._books: dict[str, MergedDeltas] = {}
        self._trades: dict[str, list[tuple[Trade, int]]] = {}
        self._step_tickers: dict[str, None] = {}
        """What this step changed on the public channels, pushed by ``end_step``."""

    # ---------------------------------------------------------------------- subscriptions

    def logged_in(self, connection: Connection) -> None:
        assert connection.account is not None
        self._accounts.setdefault(connection.account, set()).add(connection)

    def subscribe(self, connection: Connection, channel: str) -> None:
        """Subscribe (again: ``seq`` restarts and a book sends a fresh snapshot); the caller
        answers the request, then calls ``start`` for the channel's first push."""
        if channel in PRIVATE_CHANNELS:
            if connection.account is None:
                raise Failure(ErrorCode.UNAUTHENTICATED, f"log in to subscribe to {channel}")
        else:
            kind, _, symbol = channel.partition(".")
            if channel not in PUBLIC_CHANNELS:
                if kind not in PUBLIC_KINDS:
                    every = [f"{k}.<SYMBOL>" for k in PUBLIC_KINDS]
                    channels = ", ".join([*every, *PUBLIC_CHANNELS, *PRIVATE_CHANNELS])
                    message = f"no channel {channel!r} ({channels})"
                    raise Failure(ErrorCode.UNKNOWN_CHANNEL, message)
                self.markets.spec(symbol)
            self._public.setdefault(channel, set()).add(connection)
        connection.channels[channel] = 0

    def start(self, connection: Connection, channel: str) -> None:
        """The first push of a channel just subscribed: the book's snapshot, the ticker and
        the funding now, the latest index and mark (none before the oracle's first point)."""
        kind, _, symbol = channel.partition(".")
        payload: object = None
        if kind == "book":
            snapshot = self.views.book_snapshot(symbol, self.model.books[symbol])
            connection.push(channel, msgspec.Raw(snapshot))
        elif kind == "ticker":
            payload = ticker = self.views.ticker(self.model, symbol)
            self._tickers[symbol] = _ticker_key(ticker)
        elif kind == "funding":
            payload = self._fundings[symbol] = self.views.funding(self.model, self.board, symbol)
        elif kind == "index" and symbol in self.board.index:
            payload = self.views.index(self.board.index[symbol])
        elif kind == "mark" and symbol in self.board.mark:
            payload = self.views.mark(self.board.mark[symbol])
        if payload is not None:
            connection.push(channel, msgspec.Raw(ENCODER.encode(payload)))

    def unsubscribe(self, connection: Connection, channel: str) -> None:
        if connection.channels.pop(channel, None) is None:
            raise Failure(ErrorCode.UNKNOWN_CHANNEL, f"not subscribed to {channel!r}")
        subscribers = self._public.get(channel)
        if subscribers is not None:
            subscribers.discard(connection)
            if not subscribers:
                del self._public[channel]

    def drop(self, connection: Connection) -> None:
        """Forget a connection that has closed."""
        for channel in list(connection.channels):
            self.unsubscribe(connection, channel)
        if connection.account is not None:
            mine = self._accounts.get(connection.account)
            if mine is not None:
                mine.discard(connection)
                if not mine:
                    del self._accounts[connection.account]

    # ------------------------------------------------------------------------------ pushes

    def publish(self, changes: Changes) -> None:
        """Push what one command changed to each account's own channels; gather what it
        changed on the public book, trades and ticker for ``end_step``. A payload is built
        only if someone is subscribed to it."""
        views, model = self.views, self.model
        for symbol, delta in changes.book:
            if self._public.get(f"book.{symbol}"):
                step = self._books.get(symbol)
                if step is None:
                    self._books[symbol] = MergedDeltas(delta)
                else:
                    step.add(delta)
        for symbol, trade in changes.trades:
            if self._public.get(f"trades.{symbol}"):
                self._trades.setdefault(symbol, []).append((trade, model.time))
        self._step_tickers.update(changes.tickers)
        for symbol in changes.funding:
            self._funding(symbol)
        for account, symbol, order_id in changes.orders:
            order = model.order(account, symbol, order_id)
            to = self._private(account, "orders")
            if to and order is not None:
                _push(to, "orders", ENCODER.encode(views.order(order)))
        for account, fill in changes.fills:
            to = self._private(account, "fills")
            if to:
                _push(to, "fills", ENCODER.encode(views.fill(fill)))
        for account, symbol in changes.positions:
            to = self._private(account, "positions")
            if to:
                _push(to, "positions", ENCODER.encode(views.position(model, account, symbol)))
        for account in changes.balances:
            to = self._private(account, "balances")
            if to:
                _push(to, "balances", ENCODER.encode(views.balance(model, account)))
        for account, stamped in changes.liquidations:
            if isinstance(stamped.event, Liquidation):
                to = self._private(account, "liquidations")
                if to:
                    _push(to, "liquidations", ENCODER.encode(views.liquidation(stamped)))
            else:
                to = self._private(account, "adl")
                if to:
                    _push(to, "adl", ENCODER.encode(views.adl_notice(stamped)))
        if changes.insurance and self._public.get("insurance"):
            for movement in changes.insurance:
                payload = ENCODER.encode(views.insurance_movement(movement))
                self._to_public("insurance", payload)

    def end_step(self) -> None:
        """Push what the step gathered on the public channels: per market one book delta
        (every level it changed, at its last quantity), one list of its trades (oldest first),
        and the ticker if it changed."""
        views = self.views
        for symbol, step in self._books.items():
            bids = sorted(step.bids.items(), reverse=True)
            asks = sorted(step.asks.items())
            payload = views.book(symbol, "delta", step.last, bids, asks, first=step.first)
            self._to_public(f"book.{symbol}", payload)
        for symbol, trades in self._trades.items():
            payload = ENCODER.encode([views.trade(symbol, t, time) for t, time in trades])
            self._to_public(f"trades.{symbol}", payload)
        for symbol in self._step_tickers:
            self._ticker(symbol)
        self._books.clear()
        self._trades.clear()
        self._step_tickers.clear()

    def publish_risk(self, message: RiskMessage) -> None:
        """Take a risk-topic message and push what it changed to the accounts it concerns."""
        views = self.views
        for account, change in self.risk.apply(message):
            if isinstance(change, MarginCall):
                to = self._private(account, "margin_calls")
                if to:
                    _push(to, "margin_calls", ENCODER.encode(views.margin_call(change)))
            else:
                to = self._private(account, "adl_quantile")
                if to:
                    payload = views.adl_quantile(self.risk, account, change)
                    _push(to, "adl_quantile", ENCODER.encode(payload))

    def publish_price(self, kind: PriceKind, symbol: str) -> None:
        """Push what a price message just taken by the board changed."""
        if kind is PriceKind.FUNDING:
            self._funding(symbol)
            return
        channel = f"{kind}.{symbol}"
        if not self._public.get(channel):
            return
        if kind is PriceKind.INDEX:
            payload = ENCODER.encode(self.views.index(self.board.index[symbol]))
        else:
            payload = ENCODER.encode(self.views.mark(self.board.mark[symbol]))
        self._to_public(channel, payload)

    def _to_public(self, channel: str, payload: bytes) -> None:
        _push(list(self._public.get(channel, ())), channel, payload)

    def _private(self, account: int, channel: str) -> list[Connection]:
        """The account's connections subscribed to ``channel``."""
        connections = self._accounts.get(account, ())
        return [connection for connection in connections if channel in connection.channels]

    def _ticker(self, symbol: str) -> None:
        channel = f"ticker.{symbol}"
        if not self._public.get(channel):
            return
        ticker = self.views.ticker(self.model, symbol)
        if self._tickers.get(symbol) == _ticker_key(ticker):
            return
        self._tickers[symbol] = _ticker_key(ticker)
        self._to_public(channel, ENCODER.encode(ticker))

    def _funding(self, symbol: str) -> None:
        channel = f"funding.{symbol}"
        if not self._public.get(channel):
            return
        funding = self.views.funding(self.model, self.board, symbol)
        if self._fundings.get(symbol) == funding:
            return
        self._fundings[symbol] = funding
        self._to_public(channel, ENCODER.encode(funding))


def _ticker_key(ticker: TickerView) -> TickerView:
    """What a ticker push is for: a change of anything but the time alone."""
    return msgspec.structs.replace(ticker, time=0)


def _push(connections: list[Connection], channel: str, payload: bytes) -> None:
    data = msgspec.Raw(payload)
    for connection in connections:
        connection.push(channel, data)
