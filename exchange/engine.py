"""The exchange as one deterministic state machine: every book and the ledger, commands in,
events out.

Each command runs risk check → match → settle in one step, as exchange-core's risk engine →
matching engine → risk engine pipeline does, so no order is ever checked against stale margin:
the pre-trade check (``exchange.risk``) runs before the matching core sees an order, and every
fill it produces is settled into positions and balances (``exchange.positions``,
``exchange.ledger``) before the next command. The state is a pure function of the commands; it
can be snapshotted and restored (``snapshot``, ``restore``) and is fingerprinted by
``state_hash``. Docs: docs/ledger.md.
"""

import hashlib
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from enum import StrEnum
from fractions import Fraction
from typing import Any

import msgspec
from sortedcontainers import SortedList

from exchange import liquidation, margin
from exchange.book_state import BookState
from exchange.client_ids import ClientIds
from exchange.commands import AmendOrder, CancelAll, CancelOrder, PlaceOrder, SetMarkPrice
from exchange.engine_commands import (
    AdjustMargin,
    CreateAccount,
    Deposit,
    EngineCommand,
    FundInsurance,
    Liquidate,
    Login,
    MarginMode,
    MarkPrice,
    OrderCommand,
    SetLeverage,
    SetMarginMode,
    SettleFunding,
    Withdraw,
)
from exchange.engine_events import (
    AccountCreated,
    CommandError,
    CommandRejected,
    Deleveraged,
    EngineEvent,
    FundingSettled,
    LeverageChanged,
    Liquidation,
    LiquidationStep,
    LoggedIn,
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
    Cancelled,
    Expired,
    MatchingEvent,
    Rejected,
    RejectReason,
    Trade,
    Triggered,
)
from exchange.funding_schedule import FundingSchedule
from exchange.ledger import (
    EXTERNAL,
    FEES,
    INSURANCE,
    Ledger,
    clearing,
    funding_pool,
    isolated_wallet,
    wallet,
)
from exchange.market import MarketSpec
from exchange.matching import MatchingEngine
from exchange.orders import LIMIT_TYPES, OrderType, Side, StpMode, TimeInForce
from exchange.positions import MarketAccount, apply_fill
from exchange.risk import (
    Holding,
    available_balance,
    open_loss_per_lot,
    order_margin,
    position_margin,
    projected_notional,
)
from exchange.units import RATE_ONE, ceil_div


class TrackedOrder(msgspec.Struct, kw_only=True):
    """What the ledger keeps of a live non-reduce-only order: enough to keep the side sums."""

    account: int
    is_buy: bool
    price: int
    """The price its margin is reckoned at: the limit price, or the stop price of a stop-market
    order, or the activation (else reference) price of a trailing stop."""
    qty: int
    loss: int
    """Open loss per lot (ticks), fixed when placed or amended."""


class Market:
    """One market: its spec, matching core, the ledger's view of its orders, its live orders'
    client ids and expiry times, and funding."""

    __slots__ = (
        "book",
        "client_ids",
        "expiries",
        "fee_rate",
        "funding_time",
        "multiplier",
        "orders",
        "roll",
        "schedule",
        "spec",
    )

    def __init__(
        self,
        spec: MarketSpec,
        book: MatchingEngine | None = None,
        schedule: FundingSchedule | None = None,
    ) -> None:
        margin.validate_brackets(spec.leverage_brackets)
        self.spec = spec
        self.book = book if book is not None else MatchingEngine(spec)
        self.client_ids = ClientIds()
        self.expiries: SortedList = SortedList()
        """(expire time, order id) of orders placed with an ``expire_time``, soonest first.
        An entry outlives an order that ended sooner; ``Engine._expire_due`` skips it then."""
        self.multiplier = spec.multiplier
        self.fee_rate = max(spec.taker_fee, spec.maker_fee, 0)
        self.orders: dict[int, TrackedOrder] = {}
        self.funding_time: int | None = None
        self.schedule = schedule
        self.roll: FundingRoll | None = None

    def price(self) -> int | None:
        """The price positions are valued at: the mark, else the last trade, else None."""
        book = self.book
        return book.mark if book.mark is not None else book.last


class MarginLevel(StrEnum):
    SAFE = "safe"
    WARNING = "warning"
    """Margin ratio at or above the warning level (a margin call)."""
    LIQUIDATION = "liquidation"
    """Margin ratio at or above 100 %, or no margin balance left."""


class MarginStatus(msgspec.Struct, frozen=True):
    """Margin of the cross account (``symbol`` empty) or of one isolated position."""

    account: int
    symbol: str
    maintenance: int
    margin_balance: int
    ratio: int | None
    """Maintenance / margin balance in rate units, rounded up; None when the balance is ≤ 0."""
    level: MarginLevel


class PositionRisk(msgspec.Struct, frozen=True):
    """One position valued at its market's price (``exchange.margin`` formulas)."""

    account: int
    symbol: str
    mode: MarginMode
    leverage: int
    size: int
    entry_notional: int
    price: int | None
    unrealized_pnl: int
    maintenance: int
    liquidation_price: int | None
    bankruptcy_price: int | None


class FundingRoll(msgspec.Struct, frozen=True):
    """A market's positions and mark as they stood when event time crossed a funding boundary.

    That boundary's settlement pays on these, not on what is held when its command arrives a
    moment later: a position opened after the boundary pays nothing for it, one closed after it
    still does (Binance: "only traders with open positions at the funding time")."""

    boundary: int
    mark: int | None
    sizes: list[tuple[int, int]]
    """(account, signed size) of every open position, by account."""


class MarketSnapshot(msgspec.Struct, frozen=True):
    symbol: str
    book: BookState
    funding_time: int | None
    orders: list[tuple[int, TrackedOrder]]
    roll: FundingRoll | None = None


FIRST_CREATED_ACCOUNT = 1 << 20
MAX_NONCE_LENGTH = 64
"""The longest login nonce the engine remembers (the gateway's protocol allows no longer)."""
"""Accounts made by ``CreateAccount`` are numbered from here; the ids below are for tools,
tests and the exchange's own bots (the market maker is 1,000,000)."""

_KEY_HASH = re.compile(r"[0-9a-f]{64}")
_ORDER_EVENTS = (Accepted, Amended, Cancelled, Expired, Triggered)
"""The matching events that add, change or remove an account's order."""


class EngineState(msgspec.Struct, frozen=True):
    """Everything that decides future events: the input of ``restore`` and ``state_hash``."""

    markets: list[MarketSnapshot]
    accounts: list[tuple[int, list[tuple[str, MarketAccount]]]]
    balances: list[tuple[str, int]]
    keys: list[tuple[str, int]] = []
    nonces: list[tuple[str, list[tuple[str, int]]]] = []
    next_account: int = FIRST_CREATED_ACCOUNT
    next_order_id: int = 1
    time: int = 0


_ENCODER = msgspec.msgpack.Encoder()


class Engine:
    """Every market and account of the exchange; ``process`` is the only way to change them.

    ``faucet_cap``: a deposit may not take a cross wallet above this (minor units).
    ``default_leverage``: an account's leverage in a market it has not set one for (Binance 20,
    capped at the market's first bracket). ``warning_ratio``: the margin-call level (rate units).
    """

    def __init__(
        self,
        specs: Sequence[MarketSpec],
        *,
        faucet_cap: int,
        default_leverage: int = 20,
        warning_ratio: int = RATE_ONE * 8 // 10,
        funding_schedules: Mapping[str, FundingSchedule] | None = None,
        login_window_ms: int = 10_000,
    ) -> None:
        schedules = funding_schedules or {}
        self.markets: dict[str, Market] = {
            spec.symbol: Market(spec, schedule=schedules.get(spec.symbol)) for spec in specs
        }
        self.time = 0
        """Event time (ms), from ``advance_time``; 0 until the first."""
        self._next_expiry: int | None = None
        """The soonest ``expire_time`` in the markets' expiry queues (its order may have ended
        sooner): ``process`` looks for due orders only once event time has reached it."""
        self.accounts: dict[int, dict[str, MarketAccount]] = {}
        self.ledger = Ledger()
        self.keys: dict[str, int] = {}
        """API key hash → account, for every ``CreateAccount``."""
        self.login_window_ms = login_window_ms
        """How far a login's timestamp may be from a gateway's clock (the gateways' setting)."""
        self.nonces: dict[str, dict[str, int]] = {}
        """Per key hash, the nonces of its logins → their timestamps, while they could pass a
        gateway's timestamp check (``Login``)."""
        self.next_account = FIRST_CREATED_ACCOUNT
        self.next_order_id = 1
        """The next id an order placed with ``order_id=0`` may get (ids in use are skipped)."""
        self.faucet_cap = faucet_cap
        self.default_leverage = default_leverage
        self.warning_ratio = warning_ratio
        self._handlers: dict[type, Callable[[Any], list[EngineEvent]]] = {
            OrderCommand: self._order,
            CreateAccount: self._create_account,
            Login: self._login,
            MarkPrice: self._mark,
            Deposit: self._deposit,
            Withdraw: self._withdraw,
            SetLeverage: self._set_leverage,
            SetMarginMode: self._set_margin_mode,
            AdjustMargin: self._adjust_margin,
            SettleFunding: self._settle_funding,
            Liquidate: self._liquidate,
            FundInsurance: self._fund_insurance,
        }

    def process(self, cmd: EngineCommand) -> list[EngineEvent]:
        """Apply one command; return its events in the order they happened: first the expiries
        of orders whose time has come (``_expire_due``), then the command's own."""
        due = self._next_expiry
        if due is not None and due <= self.time:
            out = self._expire_due()
            out += self._handlers[type(cmd)](cmd)
        else:
            out = self._handlers[type(cmd)](cmd)
        if out:
            self._report_order_margins(out)
        return out

    def _report_order_margins(self, out: list[EngineEvent]) -> None:
        """Append an ``OrderMarginChanged`` for each account and market whose order margin
        the command changed. Only what its events touched can have changed: an order placed,
        amended, cancelled, expired or triggered, a position (which nets against the orders'
        initial margin) or the leverage."""
        touched: dict[tuple[int, str], None] = {}
        for event in out:
            if isinstance(event, PositionUpdate | LeverageChanged):
                touched[event.account, event.symbol] = None
            elif isinstance(event, MarketEvent) and isinstance(event.event, _ORDER_EVENTS):
                touched[event.event.account, event.symbol] = None
        for account_id, symbol in touched:
            account = self.accounts.get(account_id, {}).get(symbol)
            if account is None:
                continue
            market = self.markets[symbol]
            amount = order_margin(account, market.multiplier, market.fee_rate)
            if amount != account.order_margin:
                account.order_margin = amount
                out.append(OrderMarginChanged(account_id, symbol, amount))

    def advance_time(self, time: int) -> None:
        """Event time moves to ``time`` (the engine service calls this with each command
        record's time, before its commands; it never goes back). Crossing a funding boundary
        of a market with a schedule records its positions and mark for that settlement; if
        one jump crosses several, only the latest is kept (nothing traded in between)."""
        previous = self.time
        if time <= previous:
            return
        self.time = time
        window = self.login_window_ms
        if time // window != previous // window:
            self._forget_nonces()
        if not previous:  # the first time seen: no interval is known to have run before it
            return
        for symbol, market in self.markets.items():
            schedule = market.schedule
            if schedule is not None and schedule.next_boundary(previous) <= time:
                sizes = [
                    (a, account.size) for a, account in self.accounts_in(symbol) if account.size
                ]
                market.roll = FundingRoll(schedule.previous_boundary(time), market.book.mark, sizes)

    # ------------------------------------------------------------------ orders

    def _order(self, cmd: OrderCommand) -> list[EngineEvent]:
        request = cmd.order
        market = self.markets.get(cmd.symbol)
        if market is None:
            if isinstance(request, CancelAll):
                return [_rejected(CommandError.UNKNOWN_MARKET, f"no market {cmd.symbol}")]
            message = f"no market {cmd.symbol}"
            reject = Rejected(
                request.order_id, request.account, RejectReason.UNKNOWN_MARKET, message
            )
            return [MarketEvent(cmd.symbol, reject)]
        placed: TrackedOrder | None = None
        if type(request) is PlaceOrder:
            if request.order_id == 0:
                request = msgspec.structs.replace(request, order_id=self._new_order_id(market))
            if request.price_match is not None:
                matched = _match_price(market, request)
                if isinstance(matched, Rejected):
                    return [MarketEvent(cmd.symbol, matched)]
                request = matched
            refusal = self._label_or_expiry_problem(market, request)
            if refusal is not None:
                return [MarketEvent(cmd.symbol, refusal)]
            verdict = self._check_place(market, request)
            if isinstance(verdict, Rejected):
                return [MarketEvent(cmd.symbol, verdict)]
            placed = verdict
            fresh = not market.book.knows(request.order_id)  # else the book refuses it
            out = self._settle(market, market.book.process(request), placed)
            _announce(out, cmd.symbol, request)
            if fresh and market.book.knows(request.order_id):  # accepted, and still live
                label, expire_time = request.client_order_id, request.expire_time
                if label is not None:
                    market.client_ids.add(request.account, label, request.order_id)
                if expire_time is not None:
                    market.expiries.add((expire_time, request.order_id))
                    if self._next_expiry is None or expire_time < self._next_expiry:
                        self._next_expiry = expire_time
            return out
        if isinstance(request, CancelOrder | AmendOrder) and request.client_order_id is not None:
            named = self._named_by_label(market, request)
            if isinstance(named, Rejected):
                return [MarketEvent(cmd.symbol, named)]
            request = named
        if type(request) is AmendOrder:
            amended = self._check_amend(market, request)
            if amended is not None:
                return [MarketEvent(cmd.symbol, amended)]
        return self._settle(market, market.book.process(request), placed)

    def _label_or_expiry_problem(self, market: Market, cmd: PlaceOrder) -> Rejected | None:
        """The engine's own placement rules, checked before the book's: a client order id
        that a live order of the account holds, or an expiry time that cannot work."""
        label = cmd.client_order_id
        if label is not None and market.client_ids.live(cmd.account, label) is not None:
            message = f"client order id {label!r} is live"
            return Rejected(
                cmd.order_id, cmd.account, RejectReason.DUPLICATE_CLIENT_ORDER_ID, message
            )
        expire_time = cmd.expire_time
        if expire_time is None:
            return None
        if cmd.type is OrderType.MARKET or (
            cmd.type in LIMIT_TYPES and cmd.tif in (TimeInForce.IOC, TimeInForce.FOK)
        ):
            message = "expire_time needs an order that can rest (not market, IOC or FOK)"
            return Rejected(cmd.order_id, cmd.account, RejectReason.INVALID_ORDER, message)
        if expire_time <= self.time:
            message = f"expire_time {expire_time} is not after the engine's time {self.time}"
            return Rejected(cmd.order_id, cmd.account, RejectReason.INVALID_ORDER, message)
        return None

    def _named_by_label(
        self, market: Market, cmd: CancelOrder | AmendOrder
    ) -> CancelOrder | AmendOrder | Rejected:
        """The command for the account's live order with ``cmd.client_order_id``: the engine
        knows its live labels exactly, so a client can cancel an order by its label before the
        placement's answer has reached it. Both an id and a label, or an unknown label, are
        refused."""
        label = cmd.client_order_id
        assert label is not None  # the caller's condition
        if cmd.order_id:
            message = "give order_id or client_order_id, not both"
            return Rejected(cmd.order_id, cmd.account, RejectReason.INVALID_ORDER, message)
        order_id = market.client_ids.live(cmd.account, label)
        if order_id is None:
            message = f"no live order with client order id {label!r}"
            return Rejected(0, cmd.account, RejectReason.UNKNOWN_ORDER, message)
        return msgspec.structs.replace(cmd, order_id=order_id)

    def _new_order_id(self, market: Market) -> int:
        """The lowest unused id from the counter on: ids a client chose itself are skipped."""
        order_id = self.next_order_id
        while market.book.knows(order_id):
            order_id += 1
        self.next_order_id = order_id + 1
        return order_id

    def _check_place(self, market: Market, cmd: PlaceOrder) -> TrackedOrder | Rejected | None:
        """The pre-trade check: the order to track if it passes, a rejection, or None for an
        order that holds no margin (reduce-only) or that the matching core will reject."""
        if cmd.reduce_only or market.book.place_problem(cmd) is not None:
            return None
        account = self._market_account(cmd.account, market)
        is_buy = cmd.side is Side.BUY
        mark = market.book.mark
        if cmd.type is OrderType.MARKET:
            qty, value, loss = self._sweep(market, cmd)
            order = TrackedOrder(account=cmd.account, is_buy=is_buy, price=0, qty=0, loss=0)
            extra = (is_buy, qty, value, loss)
        else:
            price = _margin_price(cmd, market)
            if price is None:
                message = "no price yet to reckon a trailing stop's margin at"
                return Rejected(cmd.order_id, cmd.account, RejectReason.INVALID_PRICE, message)
            per_lot = open_loss_per_lot(is_buy, price, mark)
            order = TrackedOrder(
                account=cmd.account, is_buy=is_buy, price=price, qty=cmd.qty, loss=per_lot
            )
            extra = (is_buy, cmd.qty, price * cmd.qty, per_lot * cmd.qty)
        problem = self._margin_problem(market, account, cmd.account, extra)
        if problem is not None:
            return Rejected(cmd.order_id, cmd.account, problem[0], problem[1])
        return order

    def _check_amend(self, market: Market, cmd: AmendOrder) -> Rejected | None:
        """Re-check the margin of an amended order; None lets the matching core decide."""
        order = market.orders.get(cmd.order_id)
        if order is None or order.account != cmd.account or cmd.qty == 0:
            return None
        if cmd.qty is not None and cmd.qty < 0:
            return None
        price = order.price if cmd.price is None else cmd.price
        qty = order.qty if cmd.qty is None else cmd.qty
        if not 0 < price <= market.spec.max_price or qty > market.spec.max_qty:
            return None
        account = self._market_account(cmd.account, market)
        loss = open_loss_per_lot(order.is_buy, price, market.book.mark)
        _untrack(account, order, order.qty)
        try:
            extra = (order.is_buy, qty, price * qty, loss * qty)
            problem = self._margin_problem(market, account, cmd.account, extra)
        finally:
            _track(account, order)
        if problem is None:
            return None
        return Rejected(cmd.order_id, cmd.account, problem[0], problem[1])

    def _margin_problem(
        self,
        market: Market,
        account: MarketAccount,
        account_id: int,
        extra: tuple[bool, int, int, int],
    ) -> tuple[RejectReason, str] | None:
        multiplier = market.multiplier
        is_buy, qty, value, loss = extra
        _add_side(account, is_buy, qty, value, loss)
        try:
            projected = projected_notional(account, is_buy, multiplier)
        finally:
            _add_side(account, is_buy, -qty, -value, -loss)
        if projected > max_notional(market.spec, account.leverage):
            message = f"position would exceed the maximum at {account.leverage}x"
            return RejectReason.MAX_POSITION, message
        before = order_margin(account, multiplier, market.fee_rate)
        after = order_margin(account, multiplier, market.fee_rate, extra)
        if after > before and self.available(account_id) < after - before:
            return RejectReason.INSUFFICIENT_MARGIN, "available balance below the order's cost"
        return None

    def _sweep(self, market: Market, cmd: PlaceOrder) -> tuple[int, int, int]:
        """Lots, tick·lots and open loss a market order would take from the book now.

        The account's own orders are skipped when self-trade prevention is on, since the order
        cannot fill against them and would go deeper into the book instead.
        """
        book = market.book
        is_buy = cmd.side is Side.BUY
        side = book.asks if is_buy else book.bids
        bound = book.protection_bound(is_buy)
        mark = book.mark
        skip_own = cmd.stp is not StpMode.NONE
        taken = value = loss = 0
        prices = side.prices
        for price in prices if is_buy else reversed(prices):
            if taken >= cmd.qty or (
                bound is not None and (price > bound if is_buy else price < bound)
            ):
                break
            level = side.levels[price]
            lots = level.total
            if skip_own:
                lots -= sum(o.open for o in level.orders.values() if o.account == cmd.account)
            lots = min(lots, cmd.qty - taken)
            taken += lots
            value += price * lots
            loss += open_loss_per_lot(is_buy, price, mark) * lots
        return taken, value, loss

    def _settle(
        self, market: Market, events: list[MatchingEvent], placed: TrackedOrder | None
    ) -> list[EngineEvent]:
        """Wrap the matching core's events and apply each one to the ledger, in order."""
        symbol = market.spec.symbol
        out: list[EngineEvent] = []
        orders = market.orders
        for event in events:
            out.append(MarketEvent(symbol, event))
            if isinstance(event, Trade):
                self._trade(market, event, out)
            elif isinstance(event, Accepted):
                if placed is not None and placed.qty:
                    orders[event.order_id] = placed
                    _track(self._market_account(placed.account, market), placed)
            elif isinstance(event, Cancelled | Expired):
                order = orders.pop(event.order_id, None)
                if order is not None and order.qty:
                    _untrack(self._market_account(order.account, market), order, order.qty)
            elif isinstance(event, Amended):
                order = orders.get(event.order_id)
                if order is not None:
                    account = self._market_account(order.account, market)
                    _untrack(account, order, order.qty)
                    order.price = event.price
                    order.qty = event.qty
                    order.loss = open_loss_per_lot(order.is_buy, event.price, market.book.mark)
                    _track(account, order)
        market.client_ids.forget_ended(events, market.book.knows)
        return out

    def _trade(self, market: Market, trade: Trade, out: list[EngineEvent]) -> None:
        for order_id in (trade.taker_order_id, trade.maker_order_id):
            order = market.orders.get(order_id)
            if order is not None and order.qty:
                _untrack(self._market_account(order.account, market), order, trade.qty)
                order.qty -= trade.qty
                if not order.qty:
                    del market.orders[order_id]
        signed = trade.qty if trade.taker_side is Side.BUY else -trade.qty
        self._fill(market, trade.taker_account, signed, trade.price, trade.taker_fee, out)
        self._fill(market, trade.maker_account, -signed, trade.price, trade.maker_fee, out)

    def _fill(
        self,
        market: Market,
        account_id: int,
        signed: int,
        price: int,
        fee: int,
        out: list[EngineEvent],
    ) -> None:
        """Settle one side of a fill: position, fee, realized PnL, isolated margin."""
        symbol = market.spec.symbol
        account = self._market_account(account_id, market)
        fill = apply_fill(account, signed, price, market.multiplier)
        ledger = self.ledger
        transfers: list[Transfer] = []
        cross = wallet(account_id)
        ledger.transfer(cross, FEES, fee, TransferReason.FEE, transfers)
        if account.mode is MarginMode.CROSS:
            ledger.transfer(
                clearing(symbol), cross, fill.realized, TransferReason.REALIZED_PNL, transfers
            )
            isolated = 0
        else:
            iso = isolated_wallet(account_id, symbol)
            ledger.transfer(
                clearing(symbol), iso, fill.realized, TransferReason.REALIZED_PNL, transfers
            )
            if fill.closed:
                held = ledger.balance(iso)
                if fill.closed < abs(fill.size_before):
                    held = held * fill.closed // abs(fill.size_before)
                ledger.transfer(iso, cross, held, TransferReason.ISOLATED_MARGIN, transfers)
            if fill.opened:
                needed = ceil_div(price * fill.opened * market.multiplier, account.leverage)
                ledger.transfer(cross, iso, needed, TransferReason.ISOLATED_MARGIN, transfers)
            isolated = ledger.balance(iso)
        out.extend(transfers)
        out.append(
            PositionUpdate(
                account_id,
                symbol,
                account.size,
                account.entry_notional,
                fill.realized,
                isolated,
            )
        )

    # -------------------------------------------------------------- mark price

    def _mark(self, cmd: MarkPrice) -> list[EngineEvent]:
        market = self.markets.get(cmd.symbol)
        if market is None:
            return [_rejected(CommandError.UNKNOWN_MARKET, f"no market {cmd.symbol}")]
        events = self._settle(market, market.book.process(SetMarkPrice(price=cmd.price)), None)
        if market.book.mark == cmd.price:
            events.insert(0, MarkChanged(cmd.symbol, cmd.price))
        return events

    def _expire_due(self) -> list[EngineEvent]:
        """End every order whose ``expire_time`` event time has reached.

        Why with the next command, whatever it is: time passing is no command, and an event
        must belong to the result of one. Live, commands come every second at least (the
        oracle's marks), so an order ends within about a second of its time, in a market
        nobody trades too. The expiries come before the command's own events: time passed
        before the command. Market by market in the specs' order, soonest first, then by order
        id: the same on every replay."""
        out: list[EngineEvent] = []
        for market in self.markets.values():
            due = market.expiries
            while due and due[0][0] <= self.time:
                expire_time, order_id = due.pop(0)
                terms = market.book.live_terms(order_id)
                if terms is None or terms.expire_time != expire_time:
                    continue  # ended before its time (the id may be another order's now)
                out.extend(self._settle(market, market.book.expire(order_id), None))
        self._next_expiry = self._soonest_expiry()
        return out

    def _soonest_expiry(self) -> int | None:
        soonest = [market.expiries[0][0] for market in self.markets.values() if market.expiries]
        return min(soonest) if soonest else None

    # ----------------------------------------------------------------- money

    def _deposit(self, cmd: Deposit) -> list[EngineEvent]:
        if cmd.amount <= 0:
            return [_rejected(CommandError.INVALID_AMOUNT, "deposit must be positive")]
        address = wallet(cmd.account)
        if self.ledger.balance(address) + cmd.amount > self.faucet_cap:
            return [_rejected(CommandError.FAUCET_CAP, f"wallet would exceed {self.faucet_cap}")]
        self.accounts.setdefault(cmd.account, {})
        out: list[Transfer] = []
        self.ledger.transfer(EXTERNAL, address, cmd.amount, TransferReason.DEPOSIT, out)
        return list(out)

    def _withdraw(self, cmd: Withdraw) -> list[EngineEvent]:
        if cmd.amount <= 0:
            return [_rejected(CommandError.INVALID_AMOUNT, "withdrawal must be positive")]
        if cmd.amount > self.withdrawable(cmd.account):
            return [_rejected(CommandError.INSUFFICIENT_BALANCE, "above the withdrawable amount")]
        out: list[Transfer] = []
        self.ledger.transfer(
            wallet(cmd.account), EXTERNAL, cmd.amount, TransferReason.WITHDRAWAL, out
        )
        return list(out)

    # ------------------------------------------------------- account settings

    def _set_leverage(self, cmd: SetLeverage) -> list[EngineEvent]:
        market = self.markets.get(cmd.symbol)
        if market is None:
            return [_rejected(CommandError.UNKNOWN_MARKET, f"no market {cmd.symbol}")]
        account = self._market_account(cmd.account, market)
        leverage = cmd.leverage
        multiplier = market.multiplier
        previous = account.leverage
        held = max(
            projected_notional(account, True, multiplier),
            projected_notional(account, False, multiplier),
        )
        if not margin.leverage_allowed(market.spec.leverage_brackets, held, leverage):
            message = f"leverage {leverage} not allowed for a notional of {held}"
            return [_rejected(CommandError.INVALID_LEVERAGE, message)]
        before = self._requirement(market, account)
        account.leverage = leverage
        after = self._requirement(market, account)
        unsafe = after > before and self.available(cmd.account) < 0
        if account.mode is MarginMode.ISOLATED and account.size:
            unsafe = unsafe or self._isolated_excess(cmd.account, market, account) < 0
        if unsafe:
            account.leverage = previous
            return [
                _rejected(CommandError.INSUFFICIENT_MARGIN, "not enough margin at that leverage")
            ]
        return [LeverageChanged(cmd.account, cmd.symbol, leverage)]

    def _requirement(self, market: Market, account: MarketAccount) -> int:
        held = order_margin(account, market.multiplier, market.fee_rate)
        if account.mode is MarginMode.CROSS:
            held += position_margin(account)
        return held

    def _set_margin_mode(self, cmd: SetMarginMode) -> list[EngineEvent]:
        market = self.markets.get(cmd.symbol)
        if market is None:
            return [_rejected(CommandError.UNKNOWN_MARKET, f"no market {cmd.symbol}")]
        account = self._market_account(cmd.account, market)
        if account.mode is not cmd.mode:
            if account.size or market.book.open_orders(cmd.account):
                message = "close the position and cancel the orders first"
                return [_rejected(CommandError.POSITION_OR_ORDERS_OPEN, message)]
            account.mode = cmd.mode
        return [MarginModeChanged(cmd.account, cmd.symbol, cmd.mode)]

    def _adjust_margin(self, cmd: AdjustMargin) -> list[EngineEvent]:
        market = self.markets.get(cmd.symbol)
        if market is None:
            return [_rejected(CommandError.UNKNOWN_MARKET, f"no market {cmd.symbol}")]
        account = self._market_account(cmd.account, market)
        if account.mode is not MarginMode.ISOLATED:
            return [_rejected(CommandError.NOT_ISOLATED, "the position is not isolated")]
        if not account.size:
            return [_rejected(CommandError.NO_POSITION, "no position to adjust")]
        amount = cmd.amount
        if amount == 0:
            return [_rejected(CommandError.INVALID_AMOUNT, "amount must not be zero")]
        if amount > 0 and amount > min(
            self.available(cmd.account), self.ledger.balance(wallet(cmd.account))
        ):
            return [_rejected(CommandError.INSUFFICIENT_BALANCE, "above the available balance")]
        if amount < 0 and self._isolated_excess(cmd.account, market, account) < -amount:
            message = "the position would fall below its initial margin"
            return [_rejected(CommandError.UNSAFE_MARGIN, message)]
        out: list[EngineEvent] = []
        transfers: list[Transfer] = []
        iso = isolated_wallet(cmd.account, cmd.symbol)
        self.ledger.transfer(
            wallet(cmd.account), iso, amount, TransferReason.ISOLATED_MARGIN, transfers
        )
        out.extend(transfers)
        out.append(
            PositionUpdate(
                cmd.account,
                cmd.symbol,
                account.size,
                account.entry_notional,
                0,
                self.ledger.balance(iso),
            )
        )
        return out

    def _isolated_excess(self, account_id: int, market: Market, account: MarketAccount) -> int:
        """Isolated wallet above the position's initial margin, unrealized profit not counted."""
        iso = self.ledger.balance(isolated_wallet(account_id, market.spec.symbol))
        pnl = self._unrealized(market, account)
        return iso + min(pnl, 0) - position_margin(account)

    # --------------------------------------------------------------- funding

    def _settle_funding(self, cmd: SettleFunding) -> list[EngineEvent]:
        market = self.markets.get(cmd.symbol)
        if market is None:
            return [_rejected(CommandError.UNKNOWN_MARKET, f"no market {cmd.symbol}")]
        if market.funding_time is not None and cmd.funding_time <= market.funding_time:
            message = f"funding at {cmd.funding_time} is already settled"
            return [_rejected(CommandError.DUPLICATE_FUNDING, message)]
        symbol = cmd.symbol
        roll = market.roll
        if roll is not None and roll.boundary == cmd.funding_time:
            mark, sizes = roll.mark, dict(roll.sizes)
        else:  # no record of that boundary: the positions and mark of now
            mark = market.book.mark
            sizes = {a: account.size for a, account in self.accounts_in(symbol) if account.size}
        if mark is None:
            return [_rejected(CommandError.NO_MARK_PRICE, "funding needs a mark price")]
        market.roll = None
        payments, remainder = margin.split_funding(sizes, mark, cmd.rate, market.multiplier)
        pool = funding_pool(symbol)
        transfers: list[Transfer] = []
        for account_id, amount in payments.items():
            # An isolated position still open is paid in its own wallet; one closed since the
            # boundary has handed its wallet back to the cross wallet, which pays instead.
            account = self.accounts[account_id][symbol]
            isolated = account.mode is MarginMode.ISOLATED and account.size != 0
            target = isolated_wallet(account_id, symbol) if isolated else wallet(account_id)
            self.ledger.transfer(pool, target, amount, TransferReason.FUNDING, transfers)
        self.ledger.transfer(
            pool, INSURANCE, remainder, TransferReason.FUNDING_REMAINDER, transfers
        )
        market.funding_time = cmd.funding_time
        out: list[EngineEvent] = list(transfers)
        out.append(
            FundingSettled(symbol, cmd.funding_time, cmd.rate, mark, len(payments), remainder)
        )
        return out

    # ------------------------------------------------------------ liquidation

    def _liquidate(self, cmd: Liquidate) -> list[EngineEvent]:
        """Binance's liquidation process (§4.1), with the venues' stepwise reduction (§4.2):
        cancel the orders, then one position at a time (cross: the one with the largest
        maintenance margin) a partial step down to the next lower bracket, and a full close if
        the account is still due. Each step is re-checked against this state, so a stale
        trigger does nothing."""
        account_id, symbol = cmd.account, cmd.symbol
        if symbol and symbol not in self.markets:
            return [_rejected(CommandError.UNKNOWN_MARKET, f"no market {symbol}")]
        if not self._due(account_id, symbol):
            message = "margin ratio below 100 %: nothing to liquidate"
            return [_rejected(CommandError.NOT_LIQUIDATABLE, message)]
        out: list[EngineEvent] = []
        for market in [self.markets[symbol]] if symbol else self.markets.values():
            if market.book.open_orders(account_id):
                events = market.book.process(CancelAll(account=account_id))
                out.extend(self._settle(market, events, None))
        stepped: set[str] = set()
        while self._due(account_id, symbol):
            target = symbol or self._largest_cross_position(account_id)
            if target is None:
                break
            partial = target not in stepped
            stepped.add(target)
            self._liquidation_step(account_id, self.markets[target], partial, out)
        return out

    def _due(self, account_id: int, symbol: str) -> bool:
        """Whether the cross account (``symbol`` empty) or that isolated position is at or past
        maintenance margin, by this engine's state."""
        if symbol:
            account = self.accounts.get(account_id, {}).get(symbol)
            if account is None or not account.size or account.mode is not MarginMode.ISOLATED:
                return False
        for status in self.margin_status(account_id):
            if status.symbol == symbol:
                return status.level is MarginLevel.LIQUIDATION
        return False

    def _largest_cross_position(self, account_id: int) -> str | None:
        largest: tuple[int, str] | None = None
        for symbol, account in sorted(self.accounts.get(account_id, {}).items()):
            if account.size and account.mode is MarginMode.CROSS:
                mm = self._maintenance(self.markets[symbol], account)
                if largest is None or mm > largest[0]:
                    largest = (mm, symbol)
        return largest[1] if largest is not None else None

    def _liquidation_step(
        self, account_id: int, market: Market, partial: bool, out: list[EngineEvent]
    ) -> None:
        """One step: an IOC order into the book at no worse than ``liquidation.limit_price``;
        for a full step, ADL for what the book did not take, then the insurance fund settles
        with the bankrupt position (it takes what is left, or pays what is missing)."""
        spec = market.spec
        symbol = spec.symbol
        multiplier = market.multiplier
        account = self.accounts[account_id][symbol]
        mode = account.mode
        size = account.size
        price = market.price()
        mark = market.book.mark
        keep = 0
        if partial and price is not None:
            keep = liquidation.partial_keep(spec.leverage_brackets, size, price, multiplier)
        step = LiquidationStep.PARTIAL if keep else LiquidationStep.FULL
        qty = abs(size) - keep
        risk = self.position_risk(account_id, symbol)
        bankruptcy = min(max(risk.bankruptcy_price or 0, 1), spec.max_price)
        closing_buy = size < 0
        fund_before = self.ledger.balance(INSURANCE)
        budget = 0
        if step is LiquidationStep.FULL:
            budget = max(fund_before, 0) // (qty * multiplier)
        limit = liquidation.limit_price(spec, closing_buy, bankruptcy, mark, budget)
        cross_before = self.ledger.balance(wallet(account_id))
        order_id = self._new_order_id(market)
        side = Side.BUY if closing_buy else Side.SELL
        events = market.book.liquidate(order_id, account_id, side, qty, limit)
        fee = filled = filled_value = 0
        for event in events:
            if type(event) is Trade and event.taker_order_id == order_id:
                filled += event.qty
                filled_value += event.price * event.qty
                fee += liquidation.clearance_fee(
                    event.price, event.qty, multiplier, spec.liquidation_fee
                )
        out.extend(self._settle(market, events, None))
        transfers: list[Transfer] = []
        uncovered = deleveraged = 0
        if step is LiquidationStep.PARTIAL:
            fee = min(fee, max(0, self._scope_balance(account_id, symbol, mode, wallet_only=True)))
            isolated = mode is MarginMode.ISOLATED
            source = isolated_wallet(account_id, symbol) if isolated else wallet(account_id)
            self.ledger.transfer(
                source,
                INSURANCE,
                fee,
                TransferReason.LIQUIDATION_FEE,
                transfers,
            )
        else:
            deleveraged = abs(account.size)
            if deleveraged:
                self._auto_deleverage(account_id, market, bankruptcy, out)
            if mode is MarginMode.ISOLATED:  # its whole wallet went back to the cross wallet
                left = self.ledger.balance(wallet(account_id)) - cross_before
            else:
                left = self._scope_balance(account_id, "", mode, wallet_only=False)
            uncovered = self._settle_bankruptcy(account_id, left, fee, transfers)
            fee = min(fee, max(left, 0))
        out.extend(transfers)
        out.append(
            Liquidation(
                account=account_id,
                symbol=symbol,
                mode=mode,
                step=step,
                size=size,
                filled=filled,
                deleveraged=deleveraged,
                mark=mark,
                bankruptcy_price=bankruptcy,
                limit_price=limit,
                fee=fee,
                insurance=self.ledger.balance(INSURANCE) - fund_before,
                uncovered=uncovered,
                order_id=order_id,
                qty=qty,
                filled_value=filled_value,
            )
        )

    def _scope_balance(
        self, account_id: int, symbol: str, mode: MarginMode, *, wallet_only: bool
    ) -> int:
        """Margin balance of the cross account or of one isolated position (wallet plus
        unrealized PnL); with ``wallet_only`` the least of that and the wallet itself, which
        is what a fee may take without leaving a wallet negative."""
        if mode is MarginMode.ISOLATED:
            held = self.ledger.balance(isolated_wallet(account_id, symbol))
            balance = held + self._unrealized(
                self.markets[symbol], self.accounts[account_id][symbol]
            )
        else:
            held, balance = (
                self.ledger.balance(wallet(account_id)),
                self._cross_margin(account_id)[1],
            )
        return min(held, balance) if wallet_only else balance

    def _settle_bankruptcy(
        self, account_id: int, left: int, fee: int, transfers: list[Transfer]
    ) -> int:
        """Settle a closed bankrupt position with the insurance fund: what the account has
        ``left`` (above a close at the bankruptcy price) goes to the fund, the clearance fee
        first; a negative ``left`` is paid by the fund as far as it can. Returns what it could
        not pay (0 unless the fund ran dry on a rounding)."""
        address = wallet(account_id)
        ledger = self.ledger
        if left >= 0:
            charged = min(fee, left)
            ledger.transfer(address, INSURANCE, charged, TransferReason.LIQUIDATION_FEE, transfers)
            ledger.transfer(
                address, INSURANCE, left - charged, TransferReason.LIQUIDATION_SURPLUS, transfers
            )
            return 0
        paid = min(-left, max(ledger.balance(INSURANCE), 0))
        ledger.transfer(INSURANCE, address, paid, TransferReason.LIQUIDATION_SHORTFALL, transfers)
        return -left - paid

    def _auto_deleverage(
        self, account_id: int, market: Market, price: int, out: list[EngineEvent]
    ) -> None:
        """Close what is left of the position against the opposite positions, in Binance's ADL
        order (§6.2), at the liquidated position's bankruptcy price (§6.3), without fees.
        Positions net to zero, so the opposite side always holds enough."""
        symbol = market.spec.symbol
        size = self.accounts[account_id][symbol].size
        queue = self.adl_queue(symbol, long=size < 0)
        remaining = abs(size)
        for rank, counterparty in enumerate(queue, start=1):
            if not remaining:
                break
            theirs = self.accounts[counterparty][symbol]
            qty = min(remaining, abs(theirs.size))
            signed = -qty if size > 0 else qty
            self._fill(market, account_id, signed, price, 0, out)
            self._fill(market, counterparty, -signed, price, 0, out)
            out.extend(
                self._settle(
                    market, market.book.move_position(account_id, counterparty, signed), None
                )
            )
            side = Side.BUY if size > 0 else Side.SELL
            out.append(Deleveraged(symbol, account_id, counterparty, side, qty, price, rank))
            remaining -= qty

    def adl_scores(self, symbol: str, *, long: bool) -> list[tuple[int, Fraction]]:
        """Binance's ADL score (``liquidation.adl_score``) of every long (or short) position in
        ``symbol``, by account: its own unrealized PnL against the wallet and margin ratio of
        its margin (the cross account, or the isolated position)."""
        ratios = sorted(self._adl_ratios(symbol, long))
        return [
            (account, Fraction(numerator, denominator))
            for account, numerator, denominator in ratios
        ]

    def adl_queue(self, symbol: str, *, long: bool) -> list[int]:
        """``liquidation.adl_order(self.adl_scores(...))``, first in line first, in a fraction of
        its time (``liquidation.adl_queue``): what a deleveraging walks."""
        return liquidation.adl_queue(self._adl_ratios(symbol, long))

    def _adl_ratios(self, symbol: str, long: bool) -> Iterator[tuple[int, int, int]]:
        """``(account, numerator, denominator)`` of each position's score
        (``liquidation.adl_ratio``), in no particular order. A losing position scores 0
        whatever its margin, so its margin is not valued."""
        market = self.markets[symbol]
        for account_id, mine in self.accounts.items():
            account = mine.get(symbol)
            if account is None or not account.size or (account.size > 0) is not long:
                continue
            pnl = self._unrealized(market, account)
            if pnl <= 0:
                yield account_id, 0, 1
                continue
            if account.mode is MarginMode.ISOLATED:
                held = self.ledger.balance(isolated_wallet(account_id, symbol))
                mm, balance = self._maintenance(market, account), held + pnl
            else:
                held = self.ledger.balance(wallet(account_id))
                if len(mine) == 1:  # this position is all of its cross margin
                    mm, balance = self._maintenance(market, account), held + pnl
                else:
                    mm, balance = self._cross_margin(account_id)
            yield account_id, *liquidation.adl_ratio(pnl, held, mm, balance)

    def _cross_margin(self, account_id: int) -> tuple[int, int]:
        """The cross account's maintenance margin and margin balance (wallet plus the
        unrealized PnL of its cross positions)."""
        mm, balance = 0, self.ledger.balance(wallet(account_id))
        for symbol, account in self.accounts.get(account_id, {}).items():
            if account.size and account.mode is MarginMode.CROSS:
                market = self.markets[symbol]
                mm += self._maintenance(market, account)
                balance += self._unrealized(market, account)
        return mm, balance

    def _create_account(self, cmd: CreateAccount) -> list[EngineEvent]:
        if not _KEY_HASH.fullmatch(cmd.key_hash):
            return [_rejected(CommandError.INVALID_KEY, "key_hash must be a hex SHA-256")]
        if cmd.key_hash in self.keys:
            return [_rejected(CommandError.DUPLICATE_KEY, "this key is registered already")]
        account = self.next_account
        self.next_account += 1
        self.keys[cmd.key_hash] = account
        return [AccountCreated(account, cmd.key_hash)]

    def _login(self, cmd: Login) -> list[EngineEvent]:
        account = self.keys.get(cmd.key_hash)
        if account is None:
            return [_rejected(CommandError.UNKNOWN_KEY, "no account has this key")]
        if not 0 < len(cmd.nonce) <= MAX_NONCE_LENGTH:
            message = f"a nonce has 1 to {MAX_NONCE_LENGTH} characters"
            return [_rejected(CommandError.INVALID_NONCE, message)]
        seen = self.nonces.setdefault(cmd.key_hash, {})
        if cmd.nonce in seen:
            return [_rejected(CommandError.REPLAYED_NONCE, "this nonce was used already")]
        seen[cmd.nonce] = cmd.timestamp
        return [LoggedIn(account, cmd.key_hash)]

    def _forget_nonces(self) -> None:
        """Forget the nonces whose login is more than two windows older than event time: no
        gateway would take that timestamp any more (event time is the gateways' clocks, and
        twice the window leaves room for their skew). Run when event time enters a new window,
        so that which nonces are kept depends on the log alone."""
        horizon = self.time - 2 * self.login_window_ms
        for key in list(self.nonces):
            seen = self.nonces[key]
            for nonce in [n for n, stamp in seen.items() if stamp < horizon]:
                del seen[nonce]
            if not seen:
                del self.nonces[key]

    def _fund_insurance(self, cmd: FundInsurance) -> list[EngineEvent]:
        if cmd.amount <= 0:
            return [_rejected(CommandError.INVALID_AMOUNT, "amount must be positive")]
        out: list[Transfer] = []
        self.ledger.transfer(EXTERNAL, INSURANCE, cmd.amount, TransferReason.INSURANCE_FUNDING, out)
        return list(out)

    # ----------------------------------------------------------------- queries

    def _market_account(self, account_id: int, market: Market) -> MarketAccount:
        mine = self.accounts.get(account_id)
        if mine is None:
            mine = self.accounts[account_id] = {}
        account = mine.get(market.spec.symbol)
        if account is None:
            account = mine[market.spec.symbol] = self._fresh(market)
        return account

    def _fresh(self, market: Market) -> MarketAccount:
        """A new account's state in a market: the default leverage, within the first bracket."""
        first = market.spec.leverage_brackets[0].max_leverage
        return MarketAccount(leverage=min(self.default_leverage, first))

    def _unrealized(self, market: Market, account: MarketAccount) -> int:
        price = market.price()
        if price is None or not account.size:
            return 0
        return margin.unrealized_pnl(account.size, account.entry_notional, price, market.multiplier)

    def available(self, account_id: int, *, with_profit: bool = True) -> int:
        """Binance ``availableBalance`` (``risk.available_balance``): what a new order may
        cost; ``with_profit=False`` leaves unrealized profit out."""
        holdings = []
        for symbol, account in self.accounts.get(account_id, {}).items():
            market = self.markets[symbol]
            isolated = account.mode is MarginMode.ISOLATED
            holdings.append(
                Holding(
                    order_margin(account, market.multiplier, market.fee_rate),
                    not isolated,
                    account.size,
                    account.entry_notional,
                    account.leverage,
                    self._unrealized(market, account),
                    self.ledger.balance(isolated_wallet(account_id, symbol)) if isolated else 0,
                )
            )
        cross = self.ledger.balance(wallet(account_id))
        return available_balance(cross, holdings, with_profit=with_profit)

    def withdrawable(self, account_id: int) -> int:
        """Binance ``maxWithdrawAmount``: available without unrealized profit, within the wallet."""
        cross = self.ledger.balance(wallet(account_id))
        return max(0, min(cross, self.available(account_id, with_profit=False)))

    def position_risk(self, account_id: int, symbol: str) -> PositionRisk:
        """Valuation, maintenance margin, liquidation and bankruptcy prices of one position."""
        market = self.markets[symbol]
        account = self._peek(account_id, market)
        spec = market.spec
        brackets = spec.leverage_brackets
        price = market.price()
        size = account.size
        mm = self._maintenance(market, account)
        pnl = self._unrealized(market, account)
        if account.mode is MarginMode.ISOLATED:
            balance = self.ledger.balance(isolated_wallet(account_id, symbol))
            other_mm = other_pnl = 0
        else:
            balance = self.ledger.balance(wallet(account_id))
            cross_mm, cross_balance = self._cross_margin(account_id)  # this position included
            other_mm, other_pnl = cross_mm - mm, cross_balance - balance - pnl
        liquidation = margin.liquidation_price(
            size,
            account.entry_notional,
            balance,
            brackets,
            market.multiplier,
            other_maintenance=other_mm,
            other_unrealized_pnl=other_pnl,
        )
        bankruptcy = margin.bankruptcy_price(
            size,
            account.entry_notional,
            balance,
            market.multiplier,
            other_unrealized_pnl=other_pnl,
        )
        return PositionRisk(
            account_id,
            symbol,
            account.mode,
            account.leverage,
            size,
            account.entry_notional,
            price,
            pnl,
            mm,
            liquidation,
            bankruptcy,
        )

    def _maintenance(self, market: Market, account: MarketAccount) -> int:
        if not account.size:
            return 0
        price = market.price()
        value = (
            margin.notional(price, account.size, market.multiplier)
            if price is not None
            else account.entry_notional
        )
        return margin.maintenance_margin(market.spec.leverage_brackets, value)

    def _peek(self, account_id: int, market: Market) -> MarketAccount:
        """The account's state in a market without creating it (a fresh default if absent)."""
        account = self.accounts.get(account_id, {}).get(market.spec.symbol)
        return account if account is not None else self._fresh(market)

    def margin_status(self, account_id: int) -> list[MarginStatus]:
        """The account's margin levels: the cross account (if it holds a cross position) and
        each isolated position. The liquidation service watches these."""
        statuses: list[MarginStatus] = []
        has_cross = False
        for symbol, account in sorted(self.accounts.get(account_id, {}).items()):
            if not account.size:
                continue
            if account.mode is MarginMode.CROSS:
                has_cross = True
                continue
            market = self.markets[symbol]
            mm = self._maintenance(market, account)
            pnl = self._unrealized(market, account)
            balance = self.ledger.balance(isolated_wallet(account_id, symbol)) + pnl
            statuses.append(self._status(account_id, symbol, mm, balance))
        if has_cross:
            statuses.insert(0, self._status(account_id, "", *self._cross_margin(account_id)))
        return statuses

    def _status(self, account_id: int, symbol: str, mm: int, balance: int) -> MarginStatus:
        ratio = margin.margin_ratio(mm, balance)
        if ratio is None or ratio >= RATE_ONE:
            level = MarginLevel.LIQUIDATION
        elif ratio >= self.warning_ratio:
            level = MarginLevel.WARNING
        else:
            level = MarginLevel.SAFE
        return MarginStatus(account_id, symbol, mm, balance, ratio, level)

    # ---------------------------------------------------- snapshot and hash

    def snapshot(self) -> EngineState:
        """The whole state as plain data, in a canonical order."""
        return EngineState(
            markets=[
                MarketSnapshot(
                    symbol,
                    market.book.snapshot(),
                    market.funding_time,
                    list(market.orders.items()),
                    market.roll,
                )
                for symbol, market in sorted(self.markets.items())
            ],
            accounts=[
                (account_id, sorted(mine.items()))
                for account_id, mine in sorted(self.accounts.items())
            ],
            balances=list(self.ledger.items()),
            keys=sorted(self.keys.items()),
            nonces=[(key, sorted(seen.items())) for key, seen in sorted(self.nonces.items())],
            next_account=self.next_account,
            next_order_id=self.next_order_id,
            time=self.time,
        )

    def state_hash(self) -> str:
        """sha256 of the canonical snapshot: equal hashes, equal states."""
        return hashlib.sha256(_ENCODER.encode(self.snapshot())).hexdigest()

    @classmethod
    def restore(
        cls,
        specs: Sequence[MarketSpec],
        state: EngineState,
        **settings: Any,
    ) -> "Engine":
        """Rebuild an engine from ``snapshot()`` output and the same specs and settings."""
        engine = cls(specs, **settings)
        by_symbol = {spec.symbol: spec for spec in specs}
        for saved in state.markets:
            spec = by_symbol[saved.symbol]
            schedule = engine.markets[saved.symbol].schedule
            market = Market(spec, MatchingEngine.restore(spec, saved.book), schedule)
            market.client_ids = ClientIds.from_orders(saved.book.orders)
            market.expiries.update(
                (order.cmd.expire_time, order.order_id)
                for order in saved.book.orders
                if order.cmd.expire_time is not None
            )
            market.funding_time = saved.funding_time
            market.roll = saved.roll
            market.orders = {
                order_id: msgspec.structs.replace(order) for order_id, order in saved.orders
            }
            engine.markets[saved.symbol] = market
        engine.accounts = {
            account_id: {symbol: msgspec.structs.replace(a) for symbol, a in mine}
            for account_id, mine in state.accounts
        }
        engine.ledger = Ledger(dict(state.balances))
        engine.keys = dict(state.keys)
        engine.nonces = {key: dict(seen) for key, seen in state.nonces}
        engine.next_account = state.next_account
        engine.next_order_id = state.next_order_id
        engine.time = state.time
        engine._next_expiry = engine._soonest_expiry()
        return engine

    def total_balance(self) -> int:
        """Sum of every ledger balance, ``external`` included: zero, or money was made or lost."""
        return self.ledger.total()

    def accounts_in(self, symbol: str) -> Iterable[tuple[int, MarketAccount]]:
        """Accounts with state in a market, by account id."""
        for account_id, mine in sorted(self.accounts.items()):
            account = mine.get(symbol)
            if account is not None:
                yield account_id, account


def _match_price(market: Market, cmd: PlaceOrder) -> PlaceOrder | Rejected:
    """A ``price_match`` limit order with the price the book gives it now (Binance's
    ``priceMatch``): the N-th best price of the other side (``OPPONENT_N``) or of its own
    (``QUEUE_N``). Refused for other types, with a price of its own, or when that side of the
    book has fewer than N levels."""
    match = cmd.price_match
    assert match is not None  # the caller's condition
    if cmd.type is not OrderType.LIMIT or cmd.price is not None:
        message = "price_match needs a limit order without a price"
        return Rejected(cmd.order_id, cmd.account, RejectReason.INVALID_ORDER, message)
    bids, asks = market.book.depth(match.level)
    is_buy = cmd.side is Side.BUY
    levels = (asks if is_buy else bids) if match.opponent else (bids if is_buy else asks)
    if len(levels) < match.level:
        message = f"no level {match.level} on that side of the book for {match.value}"
        return Rejected(cmd.order_id, cmd.account, RejectReason.INVALID_ORDER, message)
    return msgspec.structs.replace(cmd, price=levels[match.level - 1][0])


def _announce(out: list[EngineEvent], symbol: str, placed: PlaceOrder) -> None:
    """Put the order's terms (``OrderPlaced``) before its ``Accepted``, which the matching core
    puts first of a placement's events; a refused placement gets none."""
    if out and type(first := out[0]) is MarketEvent and type(first.event) is Accepted:
        out.insert(0, OrderPlaced(symbol, placed))


def max_notional(spec: MarketSpec, leverage: int) -> int:
    """Largest position notional allowed at ``leverage``: the cap of the last bracket that still
    allows it (Binance "maximum position at current leverage"); 0 if none does."""
    allowed = [b.notional_cap for b in spec.leverage_brackets if b.max_leverage >= leverage]
    return max(allowed, default=0)


def _margin_price(cmd: PlaceOrder, market: Market) -> int | None:
    if cmd.type in LIMIT_TYPES:
        return cmd.price
    if cmd.stop_price is not None:
        return cmd.stop_price
    if cmd.activation_price is not None:
        return cmd.activation_price
    return market.price()


def _add_side(account: MarketAccount, is_buy: bool, qty: int, value: int, loss: int) -> None:
    if is_buy:
        account.buy_qty += qty
        account.buy_value += value
        account.buy_loss += loss
    else:
        account.sell_qty += qty
        account.sell_value += value
        account.sell_loss += loss


def _track(account: MarketAccount, order: TrackedOrder) -> None:
    qty = order.qty
    _add_side(account, order.is_buy, qty, order.price * qty, order.loss * qty)


def _untrack(account: MarketAccount, order: TrackedOrder, qty: int) -> None:
    _add_side(account, order.is_buy, -qty, -order.price * qty, -order.loss * qty)


def _rejected(reason: CommandError, message: str) -> CommandRejected:
    return CommandRejected(reason, message)
