"""What a gateway knows of the exchange: the engine's event log, folded. Pure, no I/O.

Orders, balances, positions, books, the key → account map and funding settlements all come
from the events; an order's terms (side, price, type, flags, label) from the ``OrderPlaced``
the engine puts just before its ``Accepted``.

Every instance folds the same log from its beginning, so every instance answers the same,
and a client may use any of them. ``apply`` returns what changed, for the pushes.
"""

from collections import OrderedDict, deque
from dataclasses import dataclass, field

import msgspec

from exchange.commands import PlaceOrder
from exchange.engine_commands import MarginMode
from exchange.engine_events import (
    AccountCreated,
    Deleveraged,
    FundingSettled,
    LeverageChanged,
    Liquidation,
    MarginModeChanged,
    MarkChanged,
    MarketEvent,
    OrderMarginChanged,
    OrderPlaced,
    PositionUpdate,
    Transfer,
    TransferReason,
)
from exchange.events import (
    Accepted,
    Amended,
    BookDelta,
    Cancelled,
    Expired,
    MatchingEvent,
    Trade,
    Triggered,
)
from exchange.ledger import INSURANCE, funding_pool
from exchange.market import MarketSpec
from exchange.orders import Side
from services.gateway.protocol import OrderStatus
from services.gateway.ticker_stats import RollingStats
from services.l2_book import L2Book
from services.wire import CommandResult

OrderKey = tuple[str, int]
"""(symbol, order id): ids are unique among one market's live orders."""


class OrderState(msgspec.Struct, kw_only=True):
    """One order: its terms (``OrderPlaced``) and its progress, from the events."""

    symbol: str
    order_id: int
    account: int
    terms: PlaceOrder
    price: int | None
    """The limit price now (an amend can change it)."""
    qty: int
    """The quantity ordered: filled plus open, as placed or as an amend set it."""
    open: int
    filled: int = 0
    filled_value: int = 0
    """Σ price × qty of its fills, in tick·lots: the average price is this over ``filled``."""
    status: OrderStatus = OrderStatus.NEW
    triggered: bool = False
    end_reason: str | None = None
    created: int
    updated: int


class FillState(msgspec.Struct, kw_only=True):
    """One side of a trade, as its account sees it. ``realized_pnl`` (minor units) is set from
    the ``PositionUpdate`` the engine sends for this side right after the trade."""

    symbol: str
    trade_id: int
    order_id: int
    side: Side
    maker: bool
    price: int
    qty: int
    fee: int
    time: int
    realized_pnl: int = 0


class PositionState(msgspec.Struct, kw_only=True):
    size: int = 0
    entry_notional: int = 0
    realized_pnl: int = 0
    leverage: int
    mode: MarginMode = MarginMode.CROSS


class SettlementState(msgspec.Struct, frozen=True, kw_only=True):
    """One funding settlement: the engine's ``FundingSettled`` and the totals of the funding
    transfers of the same result (which it does not carry)."""

    symbol: str
    funding_time: int
    rate: int
    mark: int
    positions: int
    paid: int
    """Σ of the transfers from positions into the market's funding pool."""
    received: int
    """Σ of the transfers from the pool to positions."""
    remainder: int


class InsuranceMovement(msgspec.Struct, frozen=True):
    """One movement of the insurance fund: ``change`` (signed) left it at ``balance``."""

    balance: int
    change: int
    reason: TransferReason
    time: int


class Stamped(msgspec.Struct, frozen=True):
    """An engine event of an account's liquidation history, with the event time it came at."""

    event: Liquidation | Deleveraged
    time: int


@dataclass
class Changes:
    """What one command changed, in the order it happened, for ``streams``."""

    orders: dict[tuple[int, str, int], None] = field(default_factory=dict)
    """(account, symbol, order id), each once, in order of first change."""
    fills: list[tuple[int, FillState]] = field(default_factory=list)
    positions: dict[tuple[int, str], None] = field(default_factory=dict)
    balances: dict[int, None] = field(default_factory=dict)
    book: list[tuple[str, BookDelta]] = field(default_factory=list)
    trades: list[tuple[str, Trade]] = field(default_factory=list)
    tickers: dict[str, None] = field(default_factory=dict)
    funding: dict[str, None] = field(default_factory=dict)
    """Markets with a new settlement."""
    liquidations: list[tuple[int, Stamped]] = field(default_factory=list)
    """(account, its liquidation step or ADL notice): the liquidated account for a step, the
    counterparty for a notice."""
    insurance: list[InsuranceMovement] = field(default_factory=list)
    transfers: list[Transfer] = field(default_factory=list)
    """Every ledger transfer of the command, for fronts that show an income history."""


@dataclass
class AccountState:
    open_orders: dict[OrderKey, OrderState] = field(default_factory=dict)
    finished: "OrderedDict[OrderKey, OrderState]" = field(default_factory=OrderedDict)
    labels: dict[tuple[str, str], OrderKey] = field(default_factory=dict)
    """(symbol, client order id) → its latest order still kept, open or finished: the engine
    lets a label come again only once its order has ended, so the latest is the live one."""
    fills: "deque[FillState]" = field(default_factory=deque)
    positions: dict[str, PositionState] = field(default_factory=dict)
    wallet: int = 0
    isolated: dict[str, int] = field(default_factory=dict)
    order_margin: dict[str, int] = field(default_factory=dict)
    """What its open orders hold, per market (``OrderMarginChanged``): for the available
    balance."""
    liquidations: "deque[Stamped]" = field(default_factory=deque)
    """Its latest liquidation steps and ADL notices, newest first (bounded)."""


class ReadModel:
    """Accounts, orders, fills, positions, balances and books, as of the last result applied.

    ``finished_orders`` and ``recent_fills`` bound what is kept per account beyond its open
    orders, ``history`` the insurance fund's movements and each account's liquidations;
    ``default_leverage`` is the engine's (shown for a market never set).
    """

    def __init__(
        self,
        specs: tuple[MarketSpec, ...],
        *,
        default_leverage: int,
        finished_orders: int = 1_000,
        recent_fills: int = 1_000,
        history: int = 1_000,
    ) -> None:
        self.specs = {spec.symbol: spec for spec in specs}
        self.accounts: dict[str, int] = {}
        """API key hash → account, from ``AccountCreated``."""
        self.books = {symbol: L2Book() for symbol in self.specs}
        self.last: dict[str, tuple[int, int]] = {}
        """Per market, the price and quantity of the last trade."""
        self.marks: dict[str, int] = {}
        self.open_interest = {symbol: 0 for symbol in self.specs}
        """Per market, Σ of the long positions in lots (= Σ of the short ones)."""
        """Per market, the engine's mark price (``MarkChanged``): what it values margin at."""
        self.stats_24h = {symbol: RollingStats() for symbol in self.specs}
        """Per market, the trades of the last 24 h of event time, for the ticker."""
        self.time = 0
        """Event time (ms) of the last command record applied."""
        self.offset = -1
        """The command offset of the last event record applied."""
        self.gaps = 0
        """Book deltas whose ``update_id`` did not follow the previous one (should stay 0)."""
        self.settlements: dict[str, list[SettlementState]] = {symbol: [] for symbol in self.specs}
        """Per market, every funding settlement, oldest first: a few a day (one a minute in a
        drill), so all of them are kept."""
        self._default_leverage = {
            spec.symbol: min(
                [default_leverage, *(b.max_leverage for b in spec.leverage_brackets[:1])]
            )
            for spec in specs
        }
        """The engine's leverage for an account that never set one: its default, within the
        market's first bracket."""
        self.insurance = 0
        """The insurance fund's balance."""
        self.insurance_movements: deque[InsuranceMovement] = deque(maxlen=history)
        """Its latest movements, newest first."""
        self._finished_orders = finished_orders
        self._recent_fills = recent_fills
        self._history = history
        self._accounts: dict[int, AccountState] = {}

    # ------------------------------------------------------------------------------ reading

    def account(self, account: int) -> AccountState:
        state = self._accounts.get(account)
        if state is None:
            state = self._accounts[account] = AccountState(
                fills=deque(maxlen=self._recent_fills),
                liquidations=deque(maxlen=self._history),
            )
        return state

    def order(self, account: int, symbol: str, order_id: int) -> OrderState | None:
        """An order of ``account``, open or recently finished; None for an id that is not its
        own, whether or not another account has it."""
        state = self._accounts.get(account)
        if state is None:
            return None
        key = (symbol, order_id)
        return state.open_orders.get(key) or state.finished.get(key)

    def order_by_label(self, account: int, symbol: str, label: str) -> OrderState | None:
        """The account's latest order in ``symbol`` with this client order id, open or recently
        finished; None if it has none."""
        state = self._accounts.get(account)
        key = None if state is None else state.labels.get((symbol, label))
        return None if key is None else self.order(account, *key)

    def position(self, account: int, symbol: str) -> PositionState:
        """The account's position in ``symbol`` (flat, at the defaults, if never touched)."""
        positions = self.account(account).positions
        position = positions.get(symbol)
        if position is None:
            position = positions[symbol] = PositionState(leverage=self._default_leverage[symbol])
        return position

    def price(self, symbol: str) -> int | None:
        """The price the engine values positions at: the mark, else the last trade."""
        mark = self.marks.get(symbol)
        if mark is not None:
            return mark
        last = self.last.get(symbol)
        return None if last is None else last[0]

    def open_orders(self, account: int, symbol: str | None = None) -> list[OrderState]:
        state = self._accounts.get(account)
        if state is None:
            return []
        return [o for o in state.open_orders.values() if symbol is None or o.symbol == symbol]

    # ----------------------------------------------------------------------------- applying

    def apply(self, result: CommandResult, time: int) -> Changes:
        """Fold one command's result in; ``time`` is its record's event time."""
        changes = Changes()
        if time > self.time:
            self.time = time
            for symbol, stats in self.stats_24h.items():
                if stats.expire(time):  # trades left the window: the ticker changed
                    changes.tickers[symbol] = None
        if result.duplicate:  # the first result's events again: nothing happened twice
            return changes
        placed: PlaceOrder | None = None
        """The terms of the order whose ``Accepted`` comes next (``OrderPlaced``)."""
        flows: dict[str, tuple[int, int]] = {}
        """Per funding pool, (paid in, paid out) by this result's funding transfers, which
        come before their ``FundingSettled``."""
        unsettled: dict[tuple[int, str], deque[FillState]] = {}
        """Per account and market, this result's fills whose ``PositionUpdate`` (taker's, then
        maker's, right after each trade) has not come yet."""
        for event in result.events:
            if isinstance(event, Transfer):
                self._transfer(event, changes)
                if event.reason is TransferReason.FUNDING:
                    _funding_flow(event, flows)
            elif isinstance(event, FundingSettled):
                if event.symbol in self.specs:
                    self._settled(event, flows.get(funding_pool(event.symbol), (0, 0)), changes)
            elif isinstance(event, OrderPlaced):
                placed = event.order
            elif isinstance(event, AccountCreated):
                self.accounts[event.key_hash] = event.account
            elif isinstance(event, MarkChanged):
                self.marks[event.symbol] = event.price
            elif isinstance(event, OrderMarginChanged):
                if event.symbol in self.specs:
                    self.account(event.account).order_margin[event.symbol] = event.amount
                    changes.balances[event.account] = None
            elif isinstance(event, Liquidation | Deleveraged):
                if event.symbol in self.specs:
                    stamped = Stamped(event, self.time)
                    owner = event.account if isinstance(event, Liquidation) else event.counterparty
                    self.account(owner).liquidations.appendleft(stamped)
                    changes.liquidations.append((owner, stamped))
            elif isinstance(
                event, MarketEvent | PositionUpdate | LeverageChanged | MarginModeChanged
            ):
                if event.symbol not in self.specs:  # a market this gateway does not serve
                    continue
                if isinstance(event, MarketEvent):
                    self._market_event(event.symbol, event.event, placed, changes, unsettled)
                else:
                    self._position_event(event, changes, unsettled)
        return changes

    def _settled(self, event: FundingSettled, flow: tuple[int, int], changes: Changes) -> None:
        paid, received = flow
        settlement = SettlementState(
            symbol=event.symbol,
            funding_time=event.funding_time,
            rate=event.rate,
            mark=event.mark,
            positions=event.positions,
            paid=paid,
            received=received,
            remainder=event.remainder,
        )
        self.settlements[event.symbol].append(settlement)
        changes.funding[event.symbol] = None

    def _position_event(
        self,
        event: PositionUpdate | LeverageChanged | MarginModeChanged,
        changes: Changes,
        unsettled: dict[tuple[int, str], deque[FillState]],
    ) -> None:
        position = self.position(event.account, event.symbol)
        if isinstance(event, PositionUpdate):
            self.open_interest[event.symbol] += max(event.size, 0) - max(position.size, 0)
            changes.tickers[event.symbol] = None
            position.size = event.size
            position.entry_notional = event.entry_notional
            position.realized_pnl += event.realized_pnl
            waiting = unsettled.get((event.account, event.symbol))
            if waiting:
                waiting.popleft().realized_pnl = event.realized_pnl
        elif isinstance(event, LeverageChanged):
            position.leverage = event.leverage
        else:
            position.mode = event.mode
        changes.positions[event.account, event.symbol] = None

    def _market_event(
        self,
        symbol: str,
        event: MatchingEvent,
        placed: PlaceOrder | None,
        changes: Changes,
        unsettled: dict[tuple[int, str], deque[FillState]],
    ) -> None:
        if isinstance(event, BookDelta):
            if not self.books[symbol].apply(event):
                self.gaps += 1
            changes.book.append((symbol, event))
            changes.tickers[symbol] = None
        elif isinstance(event, Trade):
            self._trade(symbol, event, changes, unsettled)
        elif isinstance(event, Accepted):
            if placed is not None and placed.order_id == event.order_id:
                self._accepted(symbol, event, placed, changes)
        elif isinstance(event, Cancelled | Expired):
            order = self._open(event.account, symbol, event.order_id)
            if order is not None:
                order.status = (
                    OrderStatus.CANCELLED if isinstance(event, Cancelled) else OrderStatus.EXPIRED
                )
                order.end_reason = event.reason.value
                order.open = 0
                self._touch(order, changes)
        elif isinstance(event, Amended):
            order = self._open(event.account, symbol, event.order_id)
            if order is not None:
                order.price = event.price
                order.open = event.qty
                order.qty = order.filled + event.qty
                self._touch(order, changes)
        elif isinstance(event, Triggered):
            order = self._open(event.account, symbol, event.order_id)
            if order is not None:
                order.triggered = True
                self._touch(order, changes)

    def _accepted(self, symbol: str, event: Accepted, terms: PlaceOrder, changes: Changes) -> None:
        order = OrderState(
            symbol=symbol,
            order_id=event.order_id,
            account=event.account,
            terms=terms,
            price=terms.price,
            qty=terms.qty,
            open=terms.qty,
            created=self.time,
            updated=self.time,
        )
        state = self.account(event.account)
        state.open_orders[symbol, event.order_id] = order
        if terms.client_order_id is not None:
            state.labels[symbol, terms.client_order_id] = (symbol, event.order_id)
        self._touch(order, changes)

    def _trade(
        self,
        symbol: str,
        trade: Trade,
        changes: Changes,
        unsettled: dict[tuple[int, str], deque[FillState]],
    ) -> None:
        self.last[symbol] = (trade.price, trade.qty)
        self.stats_24h[symbol].add(self.time, trade.price, trade.qty)
        changes.trades.append((symbol, trade))
        changes.tickers[symbol] = None
        maker_side = Side.SELL if trade.taker_side is Side.BUY else Side.BUY
        for account, order_id, side, fee, maker in (
            (trade.taker_account, trade.taker_order_id, trade.taker_side, trade.taker_fee, False),
            (trade.maker_account, trade.maker_order_id, maker_side, trade.maker_fee, True),
        ):
            fill = FillState(
                symbol=symbol,
                trade_id=trade.trade_id,
                order_id=order_id,
                side=side,
                maker=maker,
                price=trade.price,
                qty=trade.qty,
                fee=fee,
                time=self.time,
            )
            self.account(account).fills.appendleft(fill)
            changes.fills.append((account, fill))
            unsettled.setdefault((account, symbol), deque()).append(fill)
            order = self._open(account, symbol, order_id)
            if order is not None:
                order.open -= trade.qty
                order.filled += trade.qty
                order.filled_value += trade.price * trade.qty
                order.status = (
                    OrderStatus.FILLED if not order.open else OrderStatus.PARTIALLY_FILLED
                )
                self._touch(order, changes)

    def _transfer(self, transfer: Transfer, changes: Changes) -> None:
        changes.transfers.append(transfer)
        if INSURANCE in (transfer.source, transfer.target):
            change = transfer.amount if transfer.target == INSURANCE else -transfer.amount
            self.insurance += change
            movement = InsuranceMovement(self.insurance, change, transfer.reason, self.time)
            self.insurance_movements.appendleft(movement)
            changes.insurance.append(movement)
        for address, amount in (
            (transfer.source, -transfer.amount),
            (transfer.target, transfer.amount),
        ):
            owner = _user_address(address)
            if owner is None:
                continue
            account, symbol = owner
            state = self.account(account)
            if symbol is None:
                state.wallet += amount
            else:
                state.isolated[symbol] = state.isolated.get(symbol, 0) + amount
                if symbol in self.specs:
                    changes.positions[account, symbol] = None
            changes.balances[account] = None

    def _open(self, account: int, symbol: str, order_id: int) -> OrderState | None:
        state = self._accounts.get(account)
        return None if state is None else state.open_orders.get((symbol, order_id))

    def _touch(self, order: OrderState, changes: Changes) -> None:
        """Record the change; move an order that ended to the bounded finished orders."""
        order.updated = self.time
        changes.orders[order.account, order.symbol, order.order_id] = None
        if order.status in (OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED):
            return
        state = self.account(order.account)
        key = (order.symbol, order.order_id)
        state.open_orders.pop(key, None)
        state.finished[key] = order
        state.finished.move_to_end(key)
        while len(state.finished) > self._finished_orders:
            _, dropped = state.finished.popitem(last=False)
            label = dropped.terms.client_order_id
            if label is not None and state.labels.get((dropped.symbol, label)) == (
                dropped.symbol,
                dropped.order_id,
            ):
                del state.labels[dropped.symbol, label]


def _funding_flow(transfer: Transfer, flows: dict[str, tuple[int, int]]) -> None:
    """Add a funding transfer to its pool's (paid in, paid out): a payer's goes from its wallet
    into ``funding:<SYMBOL>``, a receiver's from there to its wallet."""
    paid_in = _user_address(transfer.source) is not None
    pool = transfer.target if paid_in else transfer.source
    into, out = flows.get(pool, (0, 0))
    flows[pool] = (into + transfer.amount, out) if paid_in else (into, out + transfer.amount)


def _user_address(address: str) -> tuple[int, str | None] | None:
    """``u:<account>`` (cross wallet) or ``u:<account>:<SYMBOL>`` (isolated wallet), parsed;
    None for the exchange's own addresses (fees, insurance, clearing, external)."""
    if not address.startswith("u:"):
        return None
    _, account, *symbol = address.split(":", 2)
    return int(account), symbol[0] if symbol else None
