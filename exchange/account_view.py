"""Every account's margin as the engine reckons it, rebuilt from the engine's events alone.

The liquidation service cannot ask the engine for margin (the engine answers commands, not
queries), so it keeps this read model of the event log and computes with the very functions
the engine uses (``exchange.margin``, ``exchange.liquidation``): a scope's margin status equals
``Engine.margin_status`` and a market's ADL scores equal ``Engine.adl_scores`` after every
command (``tests/test_account_view.py`` proves it on the engine's random command streams).

**What it reads.** ``Transfer`` (every balance: cross wallets ``u:<account>``, isolated wallets
``u:<account>:<SYM>``, the insurance fund), ``PositionUpdate`` (size and entry notional),
``MarginModeChanged``, ``LeverageChanged``, and each market's price exactly as
``Engine.Market.price()`` has it: the mark from ``MarkChanged``, else the last ``Trade``.

**Scopes.** A scope is what the engine liquidates as one: ``(account, "")`` the cross account
(its cross wallet and every cross position) and ``(account, SYM)`` one isolated position. A
scope exists while it holds a position; its level is SAFE, WARNING (margin ratio at or above
``warning_ratio``) or LIQUIDATION (ratio at or above 100 %, or no margin balance left).

**The trigger index: what a mark change costs.** With 100,000 accounts and a mark every
second, re-valuing everything on every mark is out of the question. A scope whose margin rests
on one market (an isolated position, or a cross account with one cross position) keeps an
interval ``(lo, hi)`` of that market's price on which its level provably cannot change; each
market keeps the ``lo`` and ``hi`` of its scopes in two sorted lists. A move from ``p`` to
``q < p`` can only change the scopes with ``lo >= q`` (one bisection, then exactly those), a
move up only those with ``hi <= q``; each of them is then re-valued exactly and re-indexed.
Cross accounts whose margin spans several markets (few: they are traders, not the crowd) are
re-valued on every move of any of their markets, and so are the long positions of a market
whose brackets break the monotonicity the interval needs (see ``_monotone_long``; never with
the default markets). Any other event re-values the scopes it touches.

How the interval is found, in exact integers. For a position of ``Q`` lots (``Qm`` minor units
per tick), entry notional ``EN`` and wallet ``W``, at price ``p`` in bracket ``(r, cum)``:
the margin balance is ``B(p) = W ± (p·Qm − EN)``, and the engine's maintenance margin
``MM = ⌈p·Qm·r / R⌉ − cum`` (``R`` = ``RATE_ONE``) satisfies ``R·MM ∈ [X, X + R)`` with
``X(p) = p·Qm·r − R·cum``. The ratio ``⌈R·MM / B⌉`` is at least ``k`` exactly when
``R·MM > (k − 1)·B``. So ``B ≤ 0 or X − (k−1)·B > 0`` proves the ratio has reached ``k``, and
``B > 0 and X + R − (k−1)·B ≤ 0`` proves it has not; between them (within a tick or so) only
the exact computation knows. Both conditions are linear in ``p`` within a bracket, and ``X``
is continuous across brackets (the ``cum`` recursion), so each is a half-line, solved bracket
by bracket without a search. The interval is where every threshold's proof holds on the
scope's side of it; where no proof holds at the current price, the interval is that price
alone, so the next move in either direction re-values the scope.

Units as in ``exchange.margin``. Rounding: the interval ends round inwards (``//`` and its
ceiling twin, chosen per inequality as commented), so an interval never claims a price it
cannot prove.
"""

from collections.abc import Iterable, Iterator, Sequence
from fractions import Fraction

import msgspec
from sortedcontainers import SortedList

from exchange import liquidation, margin
from exchange.engine import MarginLevel, MarginStatus
from exchange.engine_commands import MarginMode
from exchange.engine_events import (
    EngineEvent,
    LeverageChanged,
    MarginModeChanged,
    MarkChanged,
    MarketEvent,
    PositionUpdate,
    Transfer,
)
from exchange.events import Trade
from exchange.ledger import INSURANCE
from exchange.market import MarketSpec
from exchange.units import RATE_ONE

Scope = tuple[int, str]
"""``(account, "")``: the cross account; ``(account, SYM)``: its isolated position in SYM."""

DEFAULT_WARNING_RATIO = RATE_ONE * 8 // 10
"""The engine's default margin-call level (``Engine.warning_ratio``): 80 %."""


class LevelChange(msgspec.Struct, frozen=True):
    """A scope's level after a command differs from before it; None: no position."""

    account: int
    symbol: str
    before: MarginLevel | None
    after: MarginLevel | None


class ViewPosition:
    """An account's state in one market, as the events tell it."""

    __slots__ = ("entry_notional", "leverage", "mode", "size")

    def __init__(self, leverage: int) -> None:
        self.size = 0
        self.entry_notional = 0
        self.leverage = leverage
        self.mode = MarginMode.CROSS


class ViewMarket:
    """One market: its price and its part of the trigger index."""

    __slots__ = (
        "brackets",
        "caps",
        "highs",
        "holders",
        "last",
        "lows",
        "mark",
        "monotone_long",
        "multiplier",
        "spec",
        "unindexed",
    )

    def __init__(self, spec: MarketSpec, warning_ratio: int) -> None:
        margin.validate_brackets(spec.leverage_brackets)
        self.spec = spec
        self.multiplier = spec.multiplier
        self.brackets = spec.leverage_brackets
        self.caps = [b.notional_cap for b in spec.leverage_brackets]
        self.mark: int | None = None
        self.last: int | None = None
        self.holders: set[int] = set()
        """Accounts with a position here."""
        self.lows: SortedList = SortedList()
        """``(lo, account, symbol)`` of every indexed scope of this market."""
        self.highs: SortedList = SortedList()
        """``(hi, account, symbol)``; an end that is infinite is not stored."""
        self.unindexed: set[Scope] = set()
        """Scopes valued at this market that the index does not cover: re-valued on every
        move (cross accounts over several markets; longs if not ``monotone_long``)."""
        self.monotone_long = _monotone_long(spec, warning_ratio)

    def price(self) -> int | None:
        """``Engine.Market.price()``: the mark, else the last trade, else None."""
        return self.mark if self.mark is not None else self.last


def _monotone_long(spec: MarketSpec, warning_ratio: int) -> bool:
    """Whether a long's thresholds are monotone in price in every bracket: the slope of
    ``X − (k−1)·B`` is ``Qm·(r − (k − 1))``, which must be negative for ``k`` = the warning
    ratio and 100 %, i.e. every maintenance rate below the warning ratio (minus one unit).
    Shorts are always monotone (their slope is ``Qm·(r + k − 1)``)."""
    rates = [b.maint_rate for b in spec.leverage_brackets]
    return all(r < k - 1 for r in rates for k in (warning_ratio, RATE_ONE))


class _ScopeState:
    __slots__ = ("hi", "indexed", "level", "lo", "unindexed")

    def __init__(self, level: MarginLevel) -> None:
        self.level = level
        self.lo: int | None = None
        self.hi: int | None = None
        self.indexed: str | None = None
        """The market whose sorted lists hold this scope's ``lo``/``hi``, if any."""
        self.unindexed: tuple[str, ...] = ()
        """Markets whose ``unindexed`` set holds this scope."""


class AccountView:
    """The engine's accounts as its events tell them; ``apply`` one command's events at a time.

    ``warning_ratio`` must be the engine's (``Engine.warning_ratio``) for the levels to agree;
    ``default_leverage`` is the engine's too (it only matters for the leverage shown).
    """

    def __init__(
        self,
        specs: Sequence[MarketSpec],
        *,
        warning_ratio: int = DEFAULT_WARNING_RATIO,
        default_leverage: int = 20,
    ) -> None:
        if not 1 < warning_ratio <= RATE_ONE:
            raise ValueError(f"warning ratio {warning_ratio} must be in (1, {RATE_ONE}]")
        self.warning_ratio = warning_ratio
        self.default_leverage = default_leverage
        self.markets: dict[str, ViewMarket] = {
            spec.symbol: ViewMarket(spec, warning_ratio) for spec in specs
        }
        self.balances: dict[str, int] = {}
        self.positions: dict[int, dict[str, ViewPosition]] = {}
        self._scopes: dict[Scope, _ScopeState] = {}
        self._dirty: set[Scope] = set()
        self._moved: dict[str, int | None] = {}
        """Markets whose price changed in the command being applied: their price before it."""
        self.adl_dirty: set[str] = set()
        """Markets whose ADL scores may have changed since the caller last cleared this."""
        self.revalued = 0
        """Scopes valued exactly so far (the index's cost, for benchmarks)."""

    # --------------------------------------------------------------------------- events

    def apply(self, events: Iterable[EngineEvent]) -> list[LevelChange]:
        """Apply the events of one command (a ``CommandResult`` that is not a duplicate) and
        return the scopes whose level differs from before it, by scope."""
        dirty = self._dirty
        for event in events:
            kind = type(event)
            if kind is Transfer:
                assert isinstance(event, Transfer)
                self._transfer(event.source, -event.amount)
                self._transfer(event.target, event.amount)
            elif kind is PositionUpdate:
                assert isinstance(event, PositionUpdate)
                self._position_update(event)
            elif kind is MarketEvent:
                assert isinstance(event, MarketEvent)
                inner = event.event
                if type(inner) is Trade:
                    market = self.markets.get(event.symbol)
                    if market is not None:
                        self._move(event.symbol, market, market.mark, inner.price)
            elif kind is MarkChanged:
                assert isinstance(event, MarkChanged)
                market = self.markets.get(event.symbol)
                if market is not None:
                    self._move(event.symbol, market, event.price, market.last)
            elif kind is MarginModeChanged:
                assert isinstance(event, MarginModeChanged)
                self._position(event.account, event.symbol).mode = event.mode
                dirty.add((event.account, ""))
                dirty.add((event.account, event.symbol))
            elif kind is LeverageChanged:
                assert isinstance(event, LeverageChanged)
                self._position(event.account, event.symbol).leverage = event.leverage
        return self._settle()

    def _transfer(self, address: str, amount: int) -> None:
        balances = self.balances
        balances[address] = balances.get(address, 0) + amount
        if address.startswith("u:"):
            _, account, *symbol = address.split(":", 2)
            self._dirty.add((int(account), symbol[0] if symbol else ""))

    def _position(self, account: int, symbol: str) -> ViewPosition:
        mine = self.positions.get(account)
        if mine is None:
            mine = self.positions[account] = {}
        position = mine.get(symbol)
        if position is None:
            market = self.markets.get(symbol)
            first = market.brackets[0].max_leverage if market is not None else 1
            position = mine[symbol] = ViewPosition(min(self.default_leverage, first))
        return position

    def _position_update(self, event: PositionUpdate) -> None:
        market = self.markets.get(event.symbol)
        if market is None:  # not a market of this view: nothing it values
            return
        position = self._position(event.account, event.symbol)
        position.size = event.size
        position.entry_notional = event.entry_notional
        if event.size:
            market.holders.add(event.account)
        else:
            market.holders.discard(event.account)
        self.adl_dirty.add(event.symbol)
        cross = position.mode is MarginMode.CROSS
        self._dirty.add((event.account, "" if cross else event.symbol))

    def _move(self, symbol: str, market: ViewMarket, mark: int | None, last: int | None) -> None:
        before = market.price()
        if symbol not in self._moved:
            self._moved[symbol] = before
        market.mark, market.last = mark, last

    def _settle(self) -> list[LevelChange]:
        """Re-value what the command touched: the scopes it changed, and those a price move
        crossed by the index (whose entries were made at the price before the move)."""
        dirty = self._dirty
        for symbol, before in self._moved.items():
            market = self.markets[symbol]
            after = market.price()
            if after == before:
                continue
            self.adl_dirty.add(symbol)
            dirty.update(market.unindexed)
            if before is None or after is None:
                dirty.update((account, "") for account in market.holders)
                dirty.update((account, symbol) for account in market.holders)
            elif after < before:
                lows = market.lows
                for _, account, scope_symbol in lows.islice(lows.bisect_left((after,))):
                    dirty.add((account, scope_symbol))
            else:
                highs = market.highs
                for _, account, scope_symbol in highs.islice(0, highs.bisect_left((after + 1,))):
                    dirty.add((account, scope_symbol))
        self._moved.clear()
        if not dirty:
            return []
        changes: list[LevelChange] = []
        for scope in sorted(dirty):
            before_level, after_level = self._revalue(scope)
            if before_level is not after_level:
                changes.append(LevelChange(scope[0], scope[1], before_level, after_level))
        dirty.clear()
        return changes

    # ------------------------------------------------------------------------ valuation

    def _valued(self, market: ViewMarket, position: ViewPosition) -> tuple[int, int]:
        """Maintenance margin and unrealized PnL of a position (``Engine._maintenance`` and
        ``Engine._unrealized``): at the market's price, or at entry before there is one."""
        price = market.price()
        size = position.size
        if price is None:
            return margin.maintenance_margin(market.brackets, position.entry_notional), 0
        value = price * abs(size) * market.multiplier
        pnl = value - position.entry_notional if size > 0 else position.entry_notional - value
        return margin.maintenance_margin(market.brackets, value), pnl

    def _holdings(self, scope: Scope) -> tuple[int, list[tuple[str, ViewPosition]]]:
        """The wallet and the positions a scope's margin is made of (none: no scope)."""
        account, symbol = scope
        mine = self.positions.get(account, {})
        if symbol:
            position = mine.get(symbol)
            if position is None or not position.size or position.mode is not MarginMode.ISOLATED:
                return 0, []
            return self.balances.get(f"u:{account}:{symbol}", 0), [(symbol, position)]
        held = [(s, p) for s, p in mine.items() if p.size and p.mode is MarginMode.CROSS]
        return self.balances.get(f"u:{account}", 0), held

    def _status(self, scope: Scope) -> MarginStatus | None:
        wallet, held = self._holdings(scope)
        if not held:
            return None
        mm, balance = 0, wallet
        for symbol, position in held:
            position_mm, pnl = self._valued(self.markets[symbol], position)
            mm += position_mm
            balance += pnl
        return self._make_status(scope, mm, balance)

    def _make_status(self, scope: Scope, mm: int, balance: int) -> MarginStatus:
        ratio = margin.margin_ratio(mm, balance)
        if ratio is None or ratio >= RATE_ONE:
            level = MarginLevel.LIQUIDATION
        elif ratio >= self.warning_ratio:
            level = MarginLevel.WARNING
        else:
            level = MarginLevel.SAFE
        return MarginStatus(scope[0], scope[1], mm, balance, ratio, level)

    def _revalue(self, scope: Scope) -> tuple[MarginLevel | None, MarginLevel | None]:
        """Value a scope exactly and re-index it; its level before and after."""
        self.revalued += 1
        state = self._scopes.get(scope)
        before = state.level if state is not None else None
        if state is not None:
            self._unindex(scope, state)
        wallet, held = self._holdings(scope)
        if not held:
            if state is not None:
                del self._scopes[scope]
            return before, None
        mm, balance = 0, wallet
        for symbol, position in held:
            position_mm, pnl = self._valued(self.markets[symbol], position)
            mm += position_mm
            balance += pnl
        level = self._make_status(scope, mm, balance).level
        self.adl_dirty.update(symbol for symbol, _ in held)
        if state is None:
            state = self._scopes[scope] = _ScopeState(level)
        state.level = level
        self._index(scope, state, wallet, held)
        return before, level

    # ----------------------------------------------------------------------------- index

    def _index(
        self, scope: Scope, state: _ScopeState, wallet: int, held: list[tuple[str, ViewPosition]]
    ) -> None:
        if len(held) == 1:
            symbol, position = held[0]
            market = self.markets[symbol]
            price = market.price()
            if price is not None and (position.size < 0 or market.monotone_long):
                lo, hi = self._interval(market, position, wallet, price, state.level)
                account, scope_symbol = scope
                if lo is not None:
                    market.lows.add((lo, account, scope_symbol))
                if hi is not None:
                    market.highs.add((hi, account, scope_symbol))
                state.lo, state.hi, state.indexed = lo, hi, symbol
                return
        state.unindexed = tuple(symbol for symbol, _ in held)
        for symbol in state.unindexed:
            self.markets[symbol].unindexed.add(scope)

    def _unindex(self, scope: Scope, state: _ScopeState) -> None:
        if state.indexed is not None:
            market = self.markets[state.indexed]
            account, symbol = scope
            if state.lo is not None:
                market.lows.remove((state.lo, account, symbol))
            if state.hi is not None:
                market.highs.remove((state.hi, account, symbol))
            state.lo = state.hi = state.indexed = None
        for symbol in state.unindexed:
            self.markets[symbol].unindexed.discard(scope)
        state.unindexed = ()

    def _interval(
        self,
        market: ViewMarket,
        position: ViewPosition,
        wallet: int,
        price: int,
        level: MarginLevel,
    ) -> tuple[int | None, int | None]:
        """``(lo, hi)``, None for an infinite end: the level is ``level`` at every price
        strictly between them (the current ``price`` is always inside)."""
        long = position.size > 0
        warn = _thresholds(market, position, wallet, self.warning_ratio)
        liq = _thresholds(market, position, wallet, RATE_ONE)
        # The set of prices where the level is proven to be ``level``: [low, high].
        low: int | None
        high: int | None
        if long:  # worse as the price falls: reached below a, surely not above b
            if level is MarginLevel.SAFE:
                low, high = max(warn[1], liq[1]), None
            elif level is MarginLevel.WARNING:
                low, high = liq[1], warn[0]
            else:
                low, high = None, liq[0]
        elif level is MarginLevel.SAFE:  # a short is worse as the price rises
            low, high = None, min(warn[1], liq[1])
        elif level is MarginLevel.WARNING:
            low, high = warn[0], liq[1]
        else:
            low, high = liq[0], None
        if (low is not None and price < low) or (high is not None and price > high):
            return price - 1, price + 1  # not proven here: this price alone
        return (
            low - 1 if low is not None else None,
            high + 1 if high is not None else None,
        )

    # --------------------------------------------------------------------------- queries

    def price(self, symbol: str) -> int | None:
        return self.markets[symbol].price()

    def balance(self, address: str) -> int:
        return self.balances.get(address, 0)

    @property
    def insurance(self) -> int:
        """The insurance fund's balance."""
        return self.balances.get(INSURANCE, 0)

    def level(self, scope: Scope) -> MarginLevel | None:
        """A scope's level as the index keeps it; None when it holds no position."""
        state = self._scopes.get(scope)
        return state.level if state is not None else None

    def levels(self) -> dict[Scope, MarginLevel]:
        """Every scope's level as the index keeps it."""
        return {scope: state.level for scope, state in self._scopes.items()}

    def trigger_interval(self, scope: Scope) -> tuple[str, int | None, int | None] | None:
        """``(market, lo, hi)`` of an indexed scope (None ends are infinite); None when the
        scope is not indexed (no position, or re-valued on every move)."""
        state = self._scopes.get(scope)
        if state is None or state.indexed is None:
            return None
        return state.indexed, state.lo, state.hi

    def scopes_at(self, level: MarginLevel) -> list[Scope]:
        """The scopes at ``level``, in order."""
        return sorted(scope for scope, state in self._scopes.items() if state.level is level)

    def scope_status(self, scope: Scope) -> MarginStatus | None:
        """A scope's margin status computed now (None: no position)."""
        return self._status(scope)

    def margin_status(self, account: int) -> list[MarginStatus]:
        """``Engine.margin_status``: the cross account (if it holds a cross position) first,
        then each isolated position by symbol."""
        statuses: list[MarginStatus] = []
        cross = self._status((account, ""))
        if cross is not None:
            statuses.append(cross)
        for symbol in sorted(self.positions.get(account, {})):
            status = self._status((account, symbol))
            if status is not None:
                statuses.append(status)
        return statuses

    def all_scopes(self) -> Iterator[Scope]:
        """Every scope that holds a position now, from the positions (not the index)."""
        for account, mine in self.positions.items():
            if any(p.size and p.mode is MarginMode.CROSS for p in mine.values()):
                yield account, ""
            for symbol, position in mine.items():
                if position.size and position.mode is MarginMode.ISOLATED:
                    yield account, symbol

    def scan(self) -> dict[Scope, MarginLevel]:
        """Every scope's level by a full valuation, without the index (tests, catch-up)."""
        found: dict[Scope, MarginLevel] = {}
        for scope in self.all_scopes():
            status = self._status(scope)
            if status is not None:
                found[scope] = status.level
        return found

    def revalue_all(self) -> list[LevelChange]:
        """Value and re-index every scope (the index's own levels included): the changes it
        finds are ones the index missed, so there should be none."""
        self._dirty.update(self.all_scopes())
        self._dirty.update(self._scopes)
        return self._settle()

    # ---------------------------------------------------------------------------------- ADL

    def adl_scores(self, symbol: str, *, long: bool) -> list[tuple[int, Fraction]]:
        """``Engine.adl_scores``: Binance's ADL score of every long (or short) position in
        ``symbol``, by account."""
        market = self.markets[symbol]
        scores: list[tuple[int, Fraction]] = []
        for account in sorted(market.holders):
            position = self.positions[account][symbol]
            if (position.size > 0) is not long:
                continue
            scores.append((account, self._adl_score(account, symbol, market, position)))
        return scores

    def _adl_ratio(
        self, account: int, symbol: str, market: ViewMarket, position: ViewPosition
    ) -> tuple[int, int]:
        """``liquidation.adl_score`` as an unreduced fraction ``(numerator, denominator)``,
        ``(0, 1)`` for a score of 0. A losing position scores 0 whatever its margin, so its
        margin is not valued (half of a market's positions, any time)."""
        price = market.price()
        if price is None:
            return 0, 1
        size = position.size
        value = price * abs(size) * market.multiplier
        pnl = value - position.entry_notional if size > 0 else position.entry_notional - value
        if pnl <= 0:
            return 0, 1
        if position.mode is MarginMode.ISOLATED:
            held = self.balances.get(f"u:{account}:{symbol}", 0)
            mm = margin.maintenance_margin(market.brackets, value)
            balance = held + pnl
        else:
            held = self.balances.get(f"u:{account}", 0)
            if len(self.positions[account]) == 1:  # this is all its cross margin
                mm = margin.maintenance_margin(market.brackets, value)
                balance = held + pnl
            else:
                cross = self._status((account, ""))
                assert cross is not None
                mm, balance = cross.maintenance, cross.margin_balance
        return liquidation.adl_ratio(pnl, held, mm, balance)

    def _adl_score(
        self, account: int, symbol: str, market: ViewMarket, position: ViewPosition
    ) -> Fraction:
        numerator, denominator = self._adl_ratio(account, symbol, market, position)
        return Fraction(numerator, denominator)

    def adl_queue(self, symbol: str, *, long: bool) -> list[int]:
        """``liquidation.adl_order`` of the longs (or shorts) of ``symbol``, first in line
        first, without a ``Fraction`` per position (``liquidation.adl_queue``)."""
        market = self.markets[symbol]
        ratios = []
        for account in market.holders:
            position = self.positions[account][symbol]
            if (position.size > 0) is long:
                ratios.append((account, *self._adl_ratio(account, symbol, market, position)))
        return liquidation.adl_queue(ratios)

    def adl_quantiles(self, symbol: str) -> dict[int, tuple[bool, int]]:
        """Every position's ADL queue indicator in ``symbol``: account → (long, 0 … 4), as
        ``liquidation.adl_quantiles`` over ``adl_scores`` of its side."""
        out: dict[int, tuple[bool, int]] = {}
        for long in (True, False):
            queue = self.adl_queue(symbol, long=long)
            for account, quantile in liquidation.queue_quantiles(queue).items():
                out[account] = (long, quantile)
        return out


def _thresholds(market: ViewMarket, position: ViewPosition, wallet: int, k: int) -> tuple[int, int]:
    """``(a, b)`` for the threshold ratio ``k`` (rate units) of a one-position scope.

    A long: the ratio has surely reached ``k`` at every price ``<= a`` and surely not at every
    price ``>= b``. A short: surely reached at ``>= a``, surely not at ``<= b``. Bracket by
    bracket (the price range ``[plo, phi]`` whose notional it holds), each proof is a
    half-line; the union over brackets of each is again a half-line (module docstring), so its
    end is the largest (or smallest) per-bracket end.
    """
    size = position.size
    entry = position.entry_notional
    qm = abs(size) * market.multiplier
    brackets = market.brackets
    caps = market.caps
    last = len(brackets) - 1
    a: int | None = None
    b: int | None = None
    if size > 0:
        p_bankrupt = (entry - wallet) // qm  # B(p) <= 0  <=>  p <= this
        for t, bracket in enumerate(brackets):
            plo = caps[t - 1] // qm + 1 if t else None
            phi = caps[t] // qm if t < last else None
            if plo is not None and phi is not None and plo > phi:
                continue
            slope = qm * (k - 1 - bracket.maint_rate)  # > 0: checked by _monotone_long
            num = -RATE_ONE * bracket.maint_amount - (k - 1) * (wallet - entry)
            reached = max(p_bankrupt, (num - 1) // slope)  # p·slope < num
            if plo is None or reached >= plo:
                end = reached if phi is None else min(reached, phi)
                a = end if a is None else max(a, end)
            safe = max(p_bankrupt + 1, -(-(num + RATE_ONE) // slope))  # p·slope >= num + R
            if phi is None or safe <= phi:
                start = safe if plo is None else max(safe, plo)
                b = start if b is None else min(b, start)
    else:
        p_bankrupt = -(-(wallet + entry) // qm)  # B(p) <= 0  <=>  p >= this
        for t, bracket in enumerate(brackets):
            plo = caps[t - 1] // qm + 1 if t else None
            phi = caps[t] // qm if t < last else None
            if plo is not None and phi is not None and plo > phi:
                continue
            slope = qm * (bracket.maint_rate + k - 1)
            num = RATE_ONE * bracket.maint_amount + (k - 1) * (wallet + entry)
            reached = min(p_bankrupt, num // slope + 1)  # p·slope > num
            if phi is None or reached <= phi:
                start = reached if plo is None else max(reached, plo)
                a = start if a is None else min(a, start)
            safe = min(p_bankrupt - 1, (num - RATE_ONE) // slope)  # p·slope <= num − R
            if plo is None or safe >= plo:
                end = safe if phi is None else min(safe, phi)
                b = end if b is None else max(b, end)
    assert a is not None and b is not None  # the first and last brackets are unbounded
    return a, b
