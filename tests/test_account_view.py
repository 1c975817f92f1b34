"""The liquidation service's account view against the engine, and its trigger index against a
full scan: no broker, no I/O.

1. **A second implementation proves the first** (exchange-core style): the engine's random
   command streams (``tests/engine_streams.py``: orders, marks, deposits, withdrawals, leverage
   and margin-mode changes, isolated margin, funding, liquidations with ADL, insurance) run
   through an ``Engine``; every event goes into an ``AccountView``; after every command the
   view's margin statuses and ADL scores equal ``Engine.margin_status`` / ``Engine.adl_scores``
   for every account, and its balances equal the ledger's.
2. **The index finds exactly what a full scan finds**: after every command (above) and after
   every mark of random walks over many accounts of every shape (long and short, cross and
   isolated, one market and two, near and far from their thresholds, on the default markets'
   brackets and on small test brackets where rounding matters), the levels the index keeps
   equal a full valuation, and the changes it reports are exactly the scan's differences.
3. **Each interval is sound**: at every price strictly inside a scope's interval, its exact
   level is the one the index keeps.
"""

import random
from collections.abc import Iterator

from engine_streams import MARKETS, engine_streams, random_engine_commands
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exchange import liquidation
from exchange.account_view import AccountView, LevelChange, Scope
from exchange.default_markets import BTCUSDT, ETHUSDT, USDT
from exchange.engine import Engine, MarginLevel
from exchange.engine_commands import EngineCommand, MarginMode
from exchange.engine_events import (
    EngineEvent,
    Liquidation,
    MarginModeChanged,
    MarkChanged,
    PositionUpdate,
    Transfer,
    TransferReason,
)
from exchange.market import MarketSpec

FAUCET_CAP = 400


def check_against_engine(engine: Engine, view: AccountView) -> None:
    for account in engine.accounts:
        assert view.margin_status(account) == engine.margin_status(account), account
    for symbol in engine.markets:
        assert view.price(symbol) == engine.markets[symbol].price()
        quantiles: dict[int, tuple[bool, int]] = {}
        for long in (True, False):
            scores = engine.adl_scores(symbol, long=long)
            assert view.adl_scores(symbol, long=long) == scores
            assert view.adl_queue(symbol, long=long) == liquidation.adl_order(scores)
            quantiles.update((a, (long, q)) for a, q in liquidation.adl_quantiles(scores).items())
        assert view.adl_quantiles(symbol) == quantiles
    assert {k: v for k, v in view.balances.items() if v} == dict(engine.ledger.items())
    check_index(view)


def check_index(view: AccountView) -> None:
    assert view.levels() == view.scan()


def run_both(commands: list[EngineCommand], *, every: int = 1) -> tuple[int, int]:
    """Both through ``commands``, checked; the liquidation steps and level changes seen."""
    engine = Engine(MARKETS, faucet_cap=FAUCET_CAP)
    view = AccountView(MARKETS)
    steps = changed = 0
    for step, cmd in enumerate(commands):
        before = view.scan()
        events = engine.process(cmd)
        steps += sum(isinstance(event, Liquidation) for event in events)
        changes = view.apply(events)
        changed += len(changes)
        after = view.scan()
        assert changes == diff(before, after), (step, cmd)
        if step % every == 0:
            check_against_engine(engine, view)
    check_against_engine(engine, view)
    return steps, changed


def diff(before: dict[Scope, MarginLevel], after: dict[Scope, MarginLevel]) -> list[LevelChange]:
    return [
        LevelChange(scope[0], scope[1], before.get(scope), after.get(scope))
        for scope in sorted(before.keys() | after.keys())
        if before.get(scope) is not after.get(scope)
    ]


@given(engine_streams())
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_the_view_equals_the_engine_after_every_command(commands: list[EngineCommand]) -> None:
    run_both(commands)


def test_the_view_equals_the_engine_over_seeded_streams() -> None:
    """20,000 commands of each of three seeds; liquidations happen, so the view follows the
    engine through cancels, partial and full steps, the insurance fund and ADL. Most streams
    of this length liquidate rarely (the pre-trade check keeps accounts safe): these seeds are
    ones that liquidate and deleverage, and the assertion below says so if the streams change."""
    for seed in (1, 4, 9):
        commands = random_engine_commands(random.Random(seed), 20_000)
        steps, changed = run_both(commands, every=7)
        assert steps and changed > 50, (steps, changed)


# ------------------------------------------------------------------- the index, in bulk

SMALL = MARKETS[0]
"""Multiplier 1 and three brackets of 2 %, 5 % and 20 %: a lot is one minor unit a tick, so
the ceiling in the maintenance margin and the ratio is felt at every tick."""


def events_for(
    rng: random.Random, account: int, specs: list[MarketSpec], prices: dict[str, int]
) -> Iterator[EngineEvent]:
    """A random account: a cross wallet and one to three positions, each cross or isolated,
    long or short, some near their liquidation price and some far from it."""
    yield Transfer("external", f"u:{account}", rng.randint(0, 3_000 * scale(specs[0])), _DEPOSIT)
    for spec in rng.sample(specs, rng.randint(1, len(specs))):
        price = prices[spec.symbol]
        lots = rng.randint(1, 3_000 if spec.multiplier > 1 else 40)
        size = lots if rng.random() < 0.5 else -lots
        entry = price * lots * spec.multiplier * rng.randint(90, 110) // 100
        if rng.random() < 0.4:
            yield MarginModeChanged(account, spec.symbol, MarginMode.ISOLATED)
            margin_held = entry * rng.randint(1, 30) // 100 + rng.randint(0, 5)
            yield Transfer(f"u:{account}", f"u:{account}:{spec.symbol}", margin_held, _MARGIN)
            yield PositionUpdate(account, spec.symbol, size, entry, 0, margin_held)
        else:
            yield PositionUpdate(account, spec.symbol, size, entry, 0, 0)


_DEPOSIT = TransferReason.DEPOSIT
_MARGIN = TransferReason.ISOLATED_MARGIN


def scale(spec: MarketSpec) -> int:
    return USDT if spec.multiplier > 1 else 1


def random_walk(rng: random.Random, price: int, steps: int) -> Iterator[int]:
    for _ in range(steps):
        roll = rng.random()
        if roll < 0.6:
            price += rng.randint(-3, 3)
        elif roll < 0.9:
            price += rng.randint(-price // 50, price // 50)
        else:
            price += rng.randint(-price // 8, price // 8)
        yield max(1, price)


def walk_and_compare(specs: list[MarketSpec], start: dict[str, int], seed: int) -> AccountView:
    rng = random.Random(seed)
    view = AccountView(specs)
    for symbol, price in start.items():
        view.apply([MarkChanged(symbol, price)])
    for account in range(1, 301):
        view.apply(list(events_for(rng, account, specs, start)))
    check_index(view)
    walks = {s: random_walk(rng, p, 400) for s, p in start.items()}
    scopes = len(view.levels())
    revalued = view.revalued
    marks = 0
    seen: set[MarginLevel | None] = set()
    for _ in range(400):
        symbol = rng.choice(list(walks))
        price = next(walks[symbol])
        before = view.scan()
        changes = view.apply([MarkChanged(symbol, price)])
        after = view.scan()
        assert changes == diff(before, after), (symbol, price)
        assert view.levels() == after
        seen.update(change.after for change in changes)
        marks += 1
    assert seen >= set(MarginLevel), seen  # the walk crossed every threshold somewhere
    per_mark = (view.revalued - revalued) / marks
    assert per_mark < scopes / 4, (per_mark, scopes)  # the index, not a rescan
    return view


def test_the_index_finds_what_a_full_scan_finds_on_the_default_markets() -> None:
    for seed in (1, 2, 3):
        walk_and_compare([BTCUSDT, ETHUSDT], {"BTCUSDT": 600_000, "ETHUSDT": 300_000}, seed)


def test_the_index_finds_what_a_full_scan_finds_where_rounding_is_felt() -> None:
    other = MARKETS[1]
    for seed in (4, 5, 6):
        walk_and_compare([SMALL, other], {SMALL.symbol: 100, other.symbol: 120}, seed)


# ------------------------------------------------------------------ each interval, exactly


@given(
    st.sampled_from([BTCUSDT, ETHUSDT, SMALL]),
    st.integers(1, 5_000),
    st.booleans(),
    st.integers(80, 120),
    st.integers(0, 60),
    st.integers(-5_000, 5_000),
    st.booleans(),
)
@settings(max_examples=300, deadline=None)
def test_every_price_inside_an_interval_has_the_level_the_index_keeps(
    spec: MarketSpec,
    lots: int,
    long: bool,
    entry_percent: int,
    margin_percent: int,
    offset: int,
    isolated: bool,
) -> None:
    """One position; the price anywhere near its thresholds; then every price within 400 ticks
    of it that the interval claims is checked by exact valuation."""
    base = 100 if spec is SMALL else 600_000
    size = lots if long else -lots
    entry = base * lots * spec.multiplier * entry_percent // 100
    wallet = entry * margin_percent // 100
    view = AccountView([spec])
    scope: Scope = (1, spec.symbol if isolated else "")
    events: list[EngineEvent] = [Transfer("external", "u:1", wallet, _DEPOSIT)]
    if isolated:
        events.append(MarginModeChanged(1, spec.symbol, MarginMode.ISOLATED))
        events.append(Transfer("u:1", f"u:1:{spec.symbol}", wallet, _MARGIN))
    events.append(PositionUpdate(1, spec.symbol, size, entry, 0, wallet if isolated else 0))
    price = max(1, base + offset * base // 10_000)
    events.append(MarkChanged(spec.symbol, price))
    view.apply(events)
    interval = view.trigger_interval(scope)
    assert interval is not None
    _, lo, hi = interval
    assert (lo is None or lo < price) and (hi is None or price < hi)
    kept = view.level(scope)
    for probe in range(max(1, price - 400), price + 401):
        if (lo is None or lo < probe) and (hi is None or probe < hi):
            view.apply([MarkChanged(spec.symbol, probe)])
            status = view.scope_status(scope)
            assert status is not None and status.level is kept, (probe, lo, hi)
