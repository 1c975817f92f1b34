"""Properties every engine must have, whatever the stream, checked after every command.

They are checked from the outside: a small *ledger* follows each order through the events
alone (placed quantity, fills, amends, cancels, expiries) and must agree with what the queries
report. Parametrized over both engines: a property that fails on the reference engine too is a
bug in the contract's reading, not only in the fast engine.
"""

import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from strategies import SPECS, command_streams, random_commands, specs_and_streams

from exchange.commands import MatchingCommand, PlaceOrder
from exchange.events import (
    Accepted,
    Amended,
    BookDelta,
    Cancelled,
    Expired,
    ExpireReason,
    MatchingEvent,
    Trade,
    Triggered,
)
from exchange.market import MarketSpec
from exchange.matching import MatchingEngine
from exchange.orders import CONDITIONAL_TYPES, LIMIT_TYPES, Side, TimeInForce
from exchange.reference import ReferenceEngine

ENGINES = [
    pytest.param(ReferenceEngine, id="reference"),
    pytest.param(MatchingEngine, id="fast"),
]


@dataclass
class _Tracked:
    """What the events say about one live order."""

    placed: PlaceOrder
    seq: int
    open: int
    price: int | None
    waiting: bool


class Ledger:
    """Follows every order through the events and checks the per-command properties."""

    def __init__(self) -> None:
        self.orders: dict[int, _Tracked] = {}
        self.positions: dict[int, int] = defaultdict(int)
        self.update_id = 0
        self.trade_id = 0
        self._seq = 0
        self.levels: dict[Side, dict[int, int]] = {side: {} for side in Side}
        """Aggregated open quantity of the resting orders per side and price."""

    def apply(self, cmd: MatchingCommand, events: Sequence[MatchingEvent]) -> None:
        """Follow one command's events, checking each against what came before."""
        taken: dict[int, tuple[PlaceOrder, int]] = {}
        """The order and the quantity each taker took during this command."""
        for index, event in enumerate(events):
            if isinstance(event, BookDelta):
                assert index == len(events) - 1, "BookDelta must be the command's last event"
                assert event.update_id == self.update_id + 1, "update_id must grow by one"
                self.update_id = event.update_id
                for side in (event.bids, event.asks):
                    prices = [price for price, _ in side]
                    assert prices == sorted(set(prices)), "delta levels ascending, unique"
            elif isinstance(event, Accepted):
                assert isinstance(cmd, PlaceOrder) and cmd.order_id == event.order_id
                assert event.order_id not in self.orders, "accepted a live id"
                self._seq += 1
                self.orders[event.order_id] = _Tracked(
                    cmd, self._seq, cmd.qty, cmd.price, cmd.type in CONDITIONAL_TYPES
                )
            elif isinstance(event, Triggered):
                tracked = self.orders[event.order_id]
                assert tracked.waiting, "only a waiting order can trigger"
                tracked.waiting = False
            elif isinstance(event, Trade):
                placed = self.orders[event.taker_order_id].placed
                before = taken.get(event.taker_order_id, (placed, 0))[1]
                taken[event.taker_order_id] = placed, before + event.qty
                self._trade(event)
            elif isinstance(event, Amended):
                tracked = self.orders[event.order_id]
                assert not tracked.waiting
                tracked.price, tracked.open = event.price, event.qty
            elif isinstance(event, Cancelled | Expired):
                tracked = self.orders.pop(event.order_id)
                assert event.open_qty == tracked.open, (
                    f"conservation: {event} but the events leave {tracked.open} open"
                )
                if isinstance(event, Expired) and event.reason == ExpireReason.FOK:
                    assert event.open_qty == tracked.placed.qty, "a FOK expires whole"
                    assert event.order_id not in taken, "a FOK that traded then expired"
        for placed, qty in taken.values():
            if placed.type in LIMIT_TYPES and placed.tif == TimeInForce.FOK:
                assert qty == placed.qty, f"FOK order {placed.order_id} filled {qty} only"
        levels = self._resting_levels()
        changed = tuple(
            tuple(
                (price, levels[side].get(price, 0))
                for price in sorted(set(self.levels[side]) | set(levels[side]))
                if self.levels[side].get(price, 0) != levels[side].get(price, 0)
            )
            for side in (Side.BUY, Side.SELL)
        )
        delta = events[-1] if events and isinstance(events[-1], BookDelta) else None
        if changed == ((), ()):
            assert delta is None, "a BookDelta without a changed level"
        else:
            assert delta is not None and (delta.bids, delta.asks) == changed, (
                f"the delta must list exactly the changed levels {changed}"
            )
        self.levels = levels

    def _resting_levels(self) -> dict[Side, dict[int, int]]:
        """Open quantity per level of the orders that are neither waiting nor finished, which
        after a command can only be resting GTC/GTX limit orders."""
        levels: dict[Side, dict[int, int]] = {side: {} for side in Side}
        for order_id, tracked in self.orders.items():
            if tracked.waiting:
                continue
            placed = tracked.placed
            assert placed.type in LIMIT_TYPES and placed.tif in (
                TimeInForce.GTC,
                TimeInForce.GTX,
            ), f"order {order_id} ({placed.type} {placed.tif}) outlived its command"
            assert tracked.price is not None and tracked.open > 0
            side = levels[placed.side]
            side[tracked.price] = side.get(tracked.price, 0) + tracked.open
        return levels

    def _trade(self, trade: Trade) -> None:
        assert trade.trade_id == self.trade_id + 1, "trade ids grow by one"
        self.trade_id = trade.trade_id
        taker = self.orders[trade.taker_order_id]
        maker = self.orders[trade.maker_order_id]
        assert not taker.waiting and not maker.waiting
        assert 0 < trade.qty <= min(taker.open, maker.open), "a fill beyond what is open"
        assert trade.price == maker.price, "trades happen at the maker's price"
        assert trade.taker_side == taker.placed.side and maker.placed.side != taker.placed.side
        assert not (taker.placed.type in LIMIT_TYPES and taker.placed.tif == TimeInForce.GTX), (
            "a post-only order took liquidity"
        )
        if taker.placed.type in LIMIT_TYPES:
            assert taker.price is not None
            worse = (
                trade.price > taker.price
                if trade.taker_side == Side.BUY
                else (trade.price < taker.price)
            )
            assert not worse, f"trade at {trade.price} beyond the limit {taker.price}"
        taker.open -= trade.qty
        maker.open -= trade.qty
        signed = trade.qty if trade.taker_side == Side.BUY else -trade.qty
        self.positions[trade.taker_account] += signed
        self.positions[trade.maker_account] -= signed
        for order_id in (trade.taker_order_id, trade.maker_order_id):
            if self.orders[order_id].open == 0:
                del self.orders[order_id]

    def check_engine(self, engine: Any, accounts: Sequence[int]) -> None:
        """The queries must agree with the ledger (call after ``apply``)."""
        bid, ask = engine.best_bid(), engine.best_ask()
        assert bid is None or ask is None or bid < ask, f"crossed book: {bid} >= {ask}"
        assert engine.update_id == self.update_id
        bids, asks = engine.depth(10_000)
        assert bids == sorted(self.levels[Side.BUY].items(), reverse=True), "bids != open qty"
        assert asks == sorted(self.levels[Side.SELL].items()), "asks != open qty"
        assert bid == (bids[0][0] if bids else None) and ask == (asks[0][0] if asks else None)
        for account in accounts:
            assert engine.position(account) == self.positions[account]
            mine = [(t.seq, i) for i, t in self.orders.items() if t.placed.account == account]
            assert engine.open_orders(account) == [i for _, i in sorted(mine)]
        assert sum(engine.position(a) for a in accounts) == 0, "positions must net to zero"


def run_checked(
    engine_class: type[Any], spec: MarketSpec, stream: Sequence[MatchingCommand]
) -> None:
    engine = engine_class(spec)
    ledger = Ledger()
    accounts = range(0, 6)
    for index, cmd in enumerate(stream):
        events = engine.process(cmd)
        try:
            ledger.apply(cmd, events)
            ledger.check_engine(engine, accounts)
        except AssertionError as error:
            raise AssertionError(f"after command #{index} {cmd}: {events}") from error


@pytest.mark.parametrize("engine_class", ENGINES)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=specs_and_streams())
def test_invariants_after_every_command(
    engine_class: type[Any], case: tuple[MarketSpec, list[MatchingCommand]]
) -> None:
    spec, stream = case
    run_checked(engine_class, spec, stream)


@pytest.mark.parametrize("engine_class", ENGINES)
def test_invariants_on_a_long_stream(engine_class: type[Any]) -> None:
    for seed, name in enumerate(sorted(SPECS), start=7):
        spec = SPECS[name]
        run_checked(engine_class, spec, random_commands(random.Random(seed), 5_000, spec))


@pytest.mark.parametrize("engine_class", ENGINES)
@settings(max_examples=60, deadline=None)
@given(stream=command_streams(SPECS["banded"]))
def test_same_stream_same_events(engine_class: type[Any], stream: list[MatchingCommand]) -> None:
    first, second = engine_class(SPECS["banded"]), engine_class(SPECS["banded"])
    for cmd in stream:
        assert first.process(cmd) == second.process(cmd)
