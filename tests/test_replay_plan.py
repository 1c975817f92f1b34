"""The replay's pure core without a broker: the grid, the recorded book, the kline path, the
plan's window and order, and the mirror driving the real engine state machine in process, so
that what the engine's book and trades become can be checked after every step.
"""

import gzip
import json
from collections import Counter
from collections.abc import Iterable
from decimal import Decimal

import pytest
from replay_data import CAPTURE, KLINES, TRADES, depth_reference, records

from exchange.default_markets import BTCUSDT, DEFAULT_MARKETS, USDT
from exchange.engine import Engine
from exchange.engine_commands import Deposit, OrderCommand, SetLeverage
from exchange.engine_events import CommandRejected, EngineEvent, MarketEvent
from exchange.events import Rejected, Trade
from exchange.orders import OrderType, Side
from load.marketdata import (
    DepthSnapshot,
    DepthUpdate,
    Kline,
    MarketRecord,
    TradeRecord,
)
from load.replay.book import RecordedBook
from load.replay.grid import Grid
from load.replay.mirror import (
    BOOK_ACCOUNT_BASE,
    LEVERAGE,
    TAKER_ACCOUNT_BASE,
    BookMirror,
)
from load.replay.plan import RESET_AFTER_RECORDS, Plan, Step

CAP = 100_000 * USDT
D = Decimal


class InProcess:
    """A plan whose commands the engine state machine applies one by one, results reported
    back to the mirror at once (the slowest a driver could be: nothing in flight)."""

    def __init__(self, fmt: str, items: Iterable[MarketRecord], accounts: int = 32, **plan: object):
        self.engine = Engine(DEFAULT_MARKETS, faucet_cap=CAP)
        self.books = [BOOK_ACCOUNT_BASE + i for i in range(accounts)]
        self.takers = [TAKER_ACCOUNT_BASE + i for i in range(accounts)]
        for account in self.books + self.takers:
            self.engine.process(Deposit(account=account, amount=CAP))
            self.engine.process(SetLeverage(account=account, symbol="BTCUSDT", leverage=LEVERAGE))
        self.book = RecordedBook(Grid(BTCUSDT))
        self.mirror = BookMirror(
            BTCUSDT,
            self.book,
            depth=100,
            book_accounts=self.books,
            taker_accounts=self.takers,
            budget=CAP * LEVERAGE * 6 // 10,
        )
        self.plan = Plan(
            items, fmt, BTCUSDT, symbol="BTCUSDT", mirror=self.mirror, book=self.book, **plan
        )  # type: ignore[arg-type]
        self.rejections: Counter[str] = Counter()
        self.trades: list[tuple[Step, Trade]] = []

    @property
    def market(self):  # type: ignore[no-untyped-def]
        return self.engine.markets["BTCUSDT"].book

    def apply(self, step: Step) -> list[EngineEvent]:
        out: list[EngineEvent] = []
        for sent in step.orders:
            events = self.engine.process(sent.command)
            for event in events:
                inner = event.event if isinstance(event, MarketEvent) else event
                if isinstance(inner, Rejected | CommandRejected):
                    self.rejections[str(inner.reason)] += 1
                if isinstance(inner, Trade):
                    self.trades.append((step, inner))
            self.mirror.on_result(sent, events)
            out += events
        return out

    def run(self) -> list[Step]:
        steps = []
        for step in self.plan.steps():
            self.apply(step)
            steps.append(step)
        return steps


# ------------------------------------------------------------------------------ grid


def test_the_grid_rounds_each_kind_of_price_its_own_way() -> None:
    grid = Grid(BTCUSDT)  # tick 0.1, lot 0.001
    assert grid.nearest_tick(D("5798.86")) == 57989
    assert grid.nearest_tick(D("5798.85")) == 57988  # half to even
    assert grid.nearest_tick(D("5798.95")) == 57990
    assert grid.bid_tick(D("5798.86")) == 57988  # a bid never better than recorded
    assert grid.ask_tick(D("5798.81")) == 57989  # an ask neither
    assert grid.mid_tick(D("61800.20"), D("61800.30")) == 618002  # 61800.25, half to even
    assert grid.lots(D("0.0015")) == 2
    assert grid.lots(D("0.0005")) == 0


# ----------------------------------------------------------------------- recorded book


def update(first: int, last: int, previous: int, bids: list[tuple[str, str]]) -> DepthUpdate:
    levels = tuple((D(p), D(q)) for p, q in bids)
    return DepthUpdate(0, 0, first, last, previous, levels, ())


def snapshot(
    last_id: int, bids: list[tuple[str, str]], asks: list[tuple[str, str]]
) -> DepthSnapshot:
    return DepthSnapshot(
        0,
        0,
        last_id,
        tuple((D(p), D(q)) for p, q in bids),
        tuple((D(p), D(q)) for p, q in asks),
    )


def test_updates_before_the_snapshot_are_held_and_sequenced() -> None:
    book = RecordedBook(Grid(BTCUSDT))
    book.on_update(update(90, 95, 80, [("100.0", "9")]))  # ends before the snapshot: dropped
    book.on_update(update(96, 105, 95, [("100.1", "1")]))  # straddles it
    assert not book.bids
    book.on_snapshot(snapshot(100, [("100.0", "2")], [("100.5", "1")]))
    assert book.total(True, 1000) == D(2) and book.total(True, 1001) == D(1)
    assert (book.stale, book.gaps) == (1, 0)
    book.on_update(update(106, 110, 105, [("100.1", "0")]))  # follows: pu = previous u
    assert book.best(True) == 1000 and book.gaps == 0
    book.on_update(update(120, 130, 115, [("99.9", "1")]))  # pu 115 != 110: a gap
    assert book.gaps == 1
    book.on_update(update(100, 104, 99, [("50.0", "1")]))  # older than the book: stale
    assert book.stale == 2 and book.best(True) == 1000


def test_a_trade_implies_the_book_around_its_price() -> None:
    book = RecordedBook(Grid(BTCUSDT))
    book.on_snapshot(
        snapshot(1, [("99.9", "1"), ("99.8", "1")], [("100.0", "1"), ("100.1", "0.5")])
    )
    changed = book.expect_trade(True, D("100.1"), D("2"))  # a buy at 100.1: 100.0 was gone
    assert changed.asks == {1000, 1001}
    assert list(book.asks) == [1001] and book.total(False, 1001) == D(2)
    book.take(True, D("100.1"), D("2"))
    assert not book.asks and book.best(True) == 999
    book.expect_trade(False, D("99.8"), D("0.5"))  # a sell at 99.8: 99.9 was gone
    assert list(book.bids) == [998]
    assert book.total(True, 998) == D(1)


# ------------------------------------------------------------------------ klines


def test_a_kline_is_four_ticks_against_its_direction_first() -> None:
    fmt, items = records(KLINES)
    down = items[0]
    up = next(k for k in items if isinstance(k, Kline) and k.close > k.open)
    plan = Plan([down, up], fmt, BTCUSDT, symbol="BTCUSDT", mirror=None)
    steps = list(plan.steps())
    assert isinstance(down, Kline) and down.close < down.open  # 5794.00 → 5771.16
    assert isinstance(up, Kline) and up.close >= up.open
    t0, t1 = down.open_time, up.open_time
    assert [(s.time, s.tick) for s in steps[:4]] == [
        (t0, 57940),  # open 5794.00
        (t0 + 20_000, 57989),  # high 5798.86, rounded half to even onto 0.1
        (t0 + 40_000, 57687),  # low 5768.73
        (t0 + 59_999, 57712),  # close 5771.16
    ]
    assert [s.time for s in steps[4:]] == [t1, t1 + 20_000, t1 + 40_000, t1 + 59_999]
    ticks = [s.tick for s in steps[4:]]
    assert ticks[1] == Grid(BTCUSDT).nearest_tick(up.low)  # a bar that rose: low first
    assert ticks[2] == Grid(BTCUSDT).nearest_tick(up.high)
    assert all(not s.orders for s in steps)


def test_start_end_and_limit_choose_the_window() -> None:
    fmt, items = records(KLINES)
    first = items[0]
    assert isinstance(first, Kline)
    start, end = first.open_time + 10 * 60_000, first.open_time + 20 * 60_000
    plan = Plan(items, fmt, BTCUSDT, symbol="BTCUSDT", mirror=None, start=start, end=end)
    steps = list(plan.steps())
    assert len(steps) == 4 * 11 and steps[0].time == start
    assert plan.counts["events_before_start"] == 10
    limited = Plan(items, fmt, BTCUSDT, symbol="BTCUSDT", mirror=None, limit=3)
    assert len(list(limited.steps())) == 12 and limited.replayed == 3


# -------------------------------------------------------------------------- order


def test_a_capture_is_replayed_in_event_time_order() -> None:
    def trade(line: int, time: int) -> TradeRecord:
        return TradeRecord(line, time, D("100"), D("1"), False, line)

    items: list[MarketRecord] = [trade(1, 1_000), trade(2, 1_100), trade(3, 990), trade(4, 5_000)]
    items += [trade(5, 900)]  # more than a second late
    plan = Plan(items, "ws", BTCUSDT, symbol="BTCUSDT", mirror=None)
    assert [r.line for r in plan._in_order(items)] == [3, 1, 2, 5, 4]
    assert plan.counts["events_late"] == 1
    steps = list(Plan(items, "ws", BTCUSDT, symbol="BTCUSDT", mirror=None).steps())
    assert [s.time for s in steps] == [990]  # one tick: the price never changes


# --------------------------------------------------------------- the capture's book


def test_the_capture_rebuilds_its_book_and_prints_its_trades_in_the_engine() -> None:
    fmt, items = records(CAPTURE)
    run = InProcess(fmt, items)
    market = run.market
    grid = Grid(BTCUSDT)
    checked = 0
    for step in run.plan.steps():
        run.apply(step)
        if run.book.synced:
            # The engine's best bid and ask are the recorded book's after every step...
            assert (market.bids.best, market.asks.best) == (
                run.book.best(True),
                run.book.best(False),
            )
        if isinstance(step.record, DepthUpdate) and run.book.synced:
            # ... and after each depth update, the depth stream's own.
            assert (market.bids.best, market.asks.best) == depth_reference(items, step.time)
            checked += 1
    assert checked >= 100
    assert not run.rejections
    assert run.mirror.counts["taker_mispredicted"] == 0
    assert run.mirror.counts["levels_without_room"] == 0
    # Every trade replayed prints at the recorded price of the trade it replays.
    assert len(run.trades) >= 180
    for step, trade in run.trades:
        record = step.record
        assert isinstance(record, TradeRecord)
        buys = not record.buyer_is_maker
        expected = grid.ask_tick(record.price) if buys else grid.bid_tick(record.price)
        assert trade.price == expected
        assert trade.taker_side is (Side.BUY if buys else Side.SELL)
        assert trade.taker_account in run.takers and trade.maker_account in run.books
    recorded = sum(r.qty for r in items if isinstance(r, TradeRecord))
    replayed = sum(t.qty for _, t in run.trades)
    assert replayed == grid.lots(recorded) - sum(
        grid.lots(r.qty) for r in items if isinstance(r, TradeRecord) and r.time < 1_723_161_256_493
    )  # all but the few before the snapshot


def test_a_reset_cancels_every_book_order_and_places_the_window_again() -> None:
    fmt, items = records(CAPTURE)
    run = InProcess(fmt, items[:400])
    steps = run.plan.steps()
    for step in steps:
        run.apply(step)
        if run.book.synced and run.mirror.levels(True):
            break
    run.mirror.needs_reset = True
    step = next(steps)
    kinds = Counter(sent.kind for sent in step.orders)
    assert kinds["cancel_all"] == len(run.books) and kinds["place"] >= 100
    run.apply(step)
    market = run.market
    assert (market.bids.best, market.asks.best) == (run.book.best(True), run.book.best(False))
    assert run.mirror.counts["resets"] == 1 and not run.rejections
    run.mirror.needs_reset = True  # again at once: held back until enough records went by
    assert not any(s.kind == "cancel_all" for s in next(steps).orders)
    assert RESET_AFTER_RECORDS > 1


def test_a_level_below_the_minimum_notional_is_placed_at_it_and_amended_down() -> None:
    items: list[MarketRecord] = [snapshot(1, [("61800.0", "0.001")], [("61800.5", "0.5")])]
    run = InProcess("ws", items)
    (step,) = run.plan.steps()
    kinds = [(s.kind, getattr(s.command, "order", None)) for s in step.orders]
    assert [k for k, _ in kinds] == ["place", "amend", "place"]
    place, amend = kinds[0][1], kinds[1][1]
    assert place is not None and place.qty == 2  # 100 USDT at 61,800 is 0.002 BTC
    assert amend is not None and amend.qty == 1
    run.apply(step)
    assert run.market.bids.levels[618000].total == 1 and not run.rejections


def test_a_level_larger_than_an_account_is_spread_and_a_wall_capped() -> None:
    items: list[MarketRecord] = [
        snapshot(1, [("60000.0", "30"), ("59999.0", "500")], [("60001.0", "1")])
    ]
    run = InProcess("ws", items, accounts=16)  # 16 × 1.2 M USDT; a level at most 2 × 1.2 M
    (step,) = run.plan.steps()
    run.apply(step)
    budget_lots = CAP * LEVERAGE * 6 // 10 // (600000 * BTCUSDT.multiplier)
    level = run.market.bids.levels[600000]
    assert level.total == 30_000  # 1.8 M USDT: two accounts
    assert len({o.account for o in level.orders.values()}) == 2
    wall = run.market.bids.levels[599990]
    assert wall.total == 2 * CAP * LEVERAGE * 6 // 10 // (599990 * BTCUSDT.multiplier)
    assert budget_lots == 20_000 and run.mirror.counts["levels_capped"] == 1
    assert not run.rejections


# ------------------------------------------------------------------ trades files


def test_a_trades_file_prints_each_trade_against_a_synthetic_book() -> None:
    fmt, items = records(TRADES)
    run = InProcess(fmt, items)
    steps = run.run()
    assert not run.rejections and run.mirror.counts["taker_mispredicted"] == 0
    grid = Grid(BTCUSDT)
    trades = [r for r in items if isinstance(r, TradeRecord)]
    assert len(run.trades) == len(trades)
    for (_, trade), record in zip(run.trades, trades, strict=True):
        assert trade.price == grid.nearest_tick(record.price)
        assert trade.qty == grid.lots(record.qty)
        assert trade.taker_side is (Side.SELL if record.buyer_is_maker else Side.BUY)
    assert not run.market.bids.levels and not run.market.asks.levels  # nothing left resting
    assert run.market.last == grid.nearest_tick(trades[-1].price)
    ticks = [s.tick for s in steps if s.tick is not None]
    assert ticks and len(ticks) < len(trades)  # a tick only when the price moves
    market_orders = [
        s.command.order
        for step in steps
        for s in step.orders
        if isinstance(s.command, OrderCommand) and s.kind == "taker"
    ]
    assert all(o.type is OrderType.MARKET for o in market_orders)  # type: ignore[union-attr]


def test_the_capture_from_a_start_places_the_book_as_it_stood() -> None:
    fmt, items = records(CAPTURE)
    start = 1_723_161_259_000
    run = InProcess(fmt, items, start=start)
    steps = run.plan.steps()
    first = next(steps)
    assert first.time >= start
    assert sum(s.kind == "place" for s in first.orders) >= 150  # the window, at once
    run.apply(first)
    for step in steps:
        run.apply(step)
    market = run.market
    assert (market.bids.best, market.asks.best) == (run.book.best(True), run.book.best(False))
    assert not run.rejections and run.trades
    assert all(s.time >= start for s, _ in run.trades)


def test_the_fixture_is_what_its_readme_says() -> None:
    with gzip.open(CAPTURE, "rt") as capture:
        lines = capture.read().splitlines()
    assert len(lines) == 1200
    assert "lastUpdateId" in json.loads(lines[54].split(" ", 1)[1])


def test_a_mirror_needs_a_depth_and_must_follow_the_plans_book() -> None:
    def mirror(depth: int) -> BookMirror:
        book = RecordedBook(Grid(BTCUSDT))
        return BookMirror(
            BTCUSDT, book, depth=depth, book_accounts=[1], taker_accounts=[2], budget=1
        )

    with pytest.raises(ValueError, match="depth"):
        mirror(-1)
    with pytest.raises(ValueError, match="the plan's book"):
        Plan([], "ws", BTCUSDT, symbol="BTCUSDT", mirror=mirror(0))


def test_the_replay_accounts_are_in_the_range_left_to_tools() -> None:
    """Below 2^20, where the engine numbers the accounts it creates, apart from each other and
    from the market maker's default account."""
    from exchange.engine import FIRST_CREATED_ACCOUNT
    from load.replay.mirror import MAX_ACCOUNTS
    from services.settings import Settings

    books = range(BOOK_ACCOUNT_BASE, BOOK_ACCOUNT_BASE + MAX_ACCOUNTS)
    takers = range(TAKER_ACCOUNT_BASE, TAKER_ACCOUNT_BASE + MAX_ACCOUNTS)
    assert books[-1] < takers[0] and takers[-1] < FIRST_CREATED_ACCOUNT
    assert Settings().maker_account not in books and Settings().maker_account not in takers
