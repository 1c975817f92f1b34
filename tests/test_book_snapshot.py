"""Snapshot and restore of the fast engine: a restored engine must be indistinguishable.

The engine's state is a pure function of its commands, so the strongest check is behavioural:
cut a random stream anywhere, carry the state across through the bytes of ``BookState``, feed
the rest, and require every later event and the final state hash to be what the uninterrupted
run produced. The white-box tests pin down what the behaviour depends on but a short stream
rarely shows: FIFO order that differs from ``seq`` order, and order objects shared between
the engine's indexes.
"""

import hashlib
import random
from collections.abc import Callable, Sequence
from functools import cache

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import SPECS, make_spec, random_commands, specs_and_streams

from exchange.book_state import AccountOrders, BookState, LevelState
from exchange.commands import (
    AmendOrder,
    CancelAll,
    MatchingCommand,
    PlaceOrder,
    SetMarkPrice,
)
from exchange.events import Amended, MatchingEvent, Trade
from exchange.market import MarketSpec
from exchange.matching import MatchingEngine
from exchange.orders import OrderType, Side, TimeInForce

STREAM_LENGTH = 5_000
CUT_EVERY = 250
"""Besides a few odd cut points, a cut every this many commands: enough snapshots that the
tricky states (resting reduce-only orders, active trailing stops, reordered levels) occur."""


def through_bytes(state: BookState) -> BookState:
    """The state as another process would get it: encoded with msgpack and decoded."""
    return msgspec.msgpack.decode(msgspec.msgpack.encode(state), type=BookState)


@cache
def seeded_stream(name: str, seed: int) -> tuple[MatchingCommand, ...]:
    return tuple(random_commands(random.Random(seed), STREAM_LENGTH, SPECS[name]))


def run_with_cuts(
    spec: MarketSpec, stream: Sequence[MatchingCommand], cuts: Sequence[int]
) -> list[BookState]:
    """Run ``stream`` uninterrupted, then again with the engine replaced at every cut (before
    command #cut; ``len(stream)`` is after the last) by one restored from its snapshot's bytes;
    every event and the state hash at each cut and at the end must agree. Returns the snapshots
    taken at the cuts."""
    whole = MatchingEngine(spec)
    expected: list[list[MatchingEvent]] = []
    hashes_at: dict[int, str] = {}
    for index, cmd in enumerate(stream):
        if index in cuts:
            hashes_at[index] = whole.state_hash()
        expected.append(whole.process(cmd))
    hashes_at[len(stream)] = whole.state_hash()
    engine = MatchingEngine(spec)
    taken: list[BookState] = []
    for index, cmd in enumerate([*stream, None]):
        if index in cuts:
            state = engine.snapshot()
            assert through_bytes(state) == state
            taken.append(state)
            engine = MatchingEngine.restore(spec, through_bytes(state))
            assert engine.snapshot() == state, f"restore changed the state at #{index}"
            assert engine.state_hash() == hashes_at[index]
        if cmd is None:
            break
        got = engine.process(cmd)
        assert got == expected[index], (
            f"command #{index} {cmd}\n  restored: {got}\n  whole:    {expected[index]}"
        )
    assert engine.state_hash() == whole.state_hash()
    assert engine.snapshot() == whole.snapshot()
    return taken


def fifo_differs_from_seq(state: BookState) -> bool:
    """Whether some level's queue is not in ``seq`` order (an amend lost priority there)."""
    seq = {order.order_id: order.seq for order in state.orders}
    return any(
        [seq[i] for i in level.order_ids] != sorted(seq[i] for i in level.order_ids)
        for level in (*state.bids, *state.asks)
    )


@pytest.mark.parametrize("name", sorted(SPECS))
def test_restored_engine_continues_like_the_original(name: str) -> None:
    """Every spec (fees and rebates, price band, market protection, and none of them), two
    seeds each; the snapshots taken must include the states that make restore hard, or the
    test would prove little."""
    spec = make_spec(name)
    cuts = sorted({1, 7, 333, 4_999, STREAM_LENGTH, *range(0, STREAM_LENGTH, CUT_EVERY)})
    taken: list[BookState] = []
    for seed in (11, 12):
        taken += run_with_cuts(spec, seeded_stream(name, seed), cuts)
    assert any(state.conditional for state in taken)
    assert any(state.reduce_only_resting for state in taken)
    assert any(state.bids and state.asks for state in taken)
    assert any(fifo_differs_from_seq(state) for state in taken)
    assert any(order.extreme is not None for state in taken for order in state.orders)
    assert any(state.mark is not None and state.last is not None for state in taken)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=specs_and_streams(), data=st.data())
def test_restore_at_any_point(
    case: tuple[MarketSpec, list[MatchingCommand]], data: st.DataObject
) -> None:
    spec, stream = case
    cut = data.draw(st.integers(0, len(stream)), label="cut")
    run_with_cuts(spec, stream, [cut])


def test_empty_engine() -> None:
    spec = make_spec("banded")
    fresh = MatchingEngine(spec)
    state = fresh.snapshot()
    assert state == BookState(
        orders=(),
        bids=(),
        asks=(),
        conditional=(),
        reduce_only_resting=(),
        positions=(),
        last=None,
        mark=None,
        update_id=0,
        trade_id=0,
        seq=0,
    )
    restored = MatchingEngine.restore(spec, through_bytes(state))
    assert restored.state_hash() == fresh.state_hash()
    assert restored.best_bid() is None and restored.best_ask() is None
    stream = seeded_stream("banded", 3)[:200]
    assert [restored.process(cmd) for cmd in stream] == [fresh.process(cmd) for cmd in stream]


def limit(order_id: int, account: int, side: Side, price: int, qty: int) -> PlaceOrder:
    return PlaceOrder(
        order_id=order_id, account=account, side=side, qty=qty, type=OrderType.LIMIT, price=price
    )


def test_fifo_after_an_amend_that_lost_priority() -> None:
    """Order 1 is placed before order 2 at the same price, then amended up, which sends it to
    the back of the level with its ``seq`` unchanged: order 2 must fill first, also after a
    restore (rebuilding levels by ``seq`` would get this wrong)."""
    spec = make_spec("plain")
    engine = MatchingEngine(spec)
    engine.process(limit(1, 1, Side.BUY, 100, 5))
    engine.process(limit(2, 2, Side.BUY, 100, 5))
    events = engine.process(AmendOrder(order_id=1, account=1, qty=6))
    assert Amended(1, 1, 100, 6, False) in events
    state = through_bytes(engine.snapshot())
    assert state.bids == (LevelState(price=100, order_ids=(2, 1)),)
    assert [o.order_id for o in state.orders] == [1, 2]  # _live keeps placement order
    assert fifo_differs_from_seq(state)

    restored = MatchingEngine.restore(spec, state)
    for which in (engine, restored):
        trades = [e for e in which.process(limit(3, 3, Side.SELL, 100, 7)) if type(e) is Trade]
        assert [(t.maker_order_id, t.qty) for t in trades] == [(2, 5), (1, 2)]
    assert restored.state_hash() == engine.state_hash()
    assert restored.depth(5) == ([(100, 4)], [])


def rich_engine() -> MatchingEngine:
    """Resting orders on both sides, a resting reduce-only order, a waiting stop, a mark."""
    engine = MatchingEngine(make_spec("plain"))
    commands: list[MatchingCommand] = [
        SetMarkPrice(price=100),
        limit(1, 1, Side.BUY, 99, 5),
        limit(2, 2, Side.BUY, 99, 3),
        limit(3, 2, Side.SELL, 101, 4),
        limit(4, 3, Side.SELL, 102, 2),
        PlaceOrder(order_id=5, account=1, side=Side.BUY, qty=2, type=OrderType.MARKET),
        PlaceOrder(  # account 1 is long 2 now: a reduce-only sell rests above the market
            order_id=6,
            account=1,
            side=Side.SELL,
            qty=2,
            type=OrderType.LIMIT,
            price=103,
            reduce_only=True,
        ),
        PlaceOrder(
            order_id=7,
            account=3,
            side=Side.SELL,
            qty=1,
            type=OrderType.STOP_MARKET,
            stop_price=90,
            tif=TimeInForce.GTC,
        ),
    ]
    for cmd in commands:
        engine.process(cmd)
    return engine


def test_restore_shares_one_order_object_between_indexes() -> None:
    """The engine changes orders in place (fills, trailing extremes) and relies on every index
    seeing it; the restored book must also be well formed and not report a pending delta."""
    original = rich_engine()
    state = through_bytes(original.snapshot())
    assert state.conditional == (7,)
    assert state.reduce_only_resting == (AccountOrders(account=1, order_ids=(6,)),)
    assert dict(state.positions) == {1: 2, 2: -2}
    engine = MatchingEngine.restore(make_spec("plain"), state)
    live = engine._live
    assert list(live) == list(original._live)
    for book in (engine.bids, engine.asks):
        assert list(book.prices) == sorted(book.levels)
        assert book.best == (max if book.is_bid else min)(book.levels)
        assert not book.touched
        for price, level in book.levels.items():
            assert level.price == price
            assert level.total == sum(order.open for order in level.orders.values())
            for order_id, order in level.orders.items():
                assert order is live[order_id]
    assert all(order is live[order_id] for order_id, order in engine._conditional.items())
    for mine in engine._ro_resting.values():
        assert all(order is live[order_id] for order_id, order in mine.items())
    assert engine.depth(5) == original.depth(5)
    assert engine.update_id == original.update_id


def test_snapshot_and_restore_do_not_share_orders() -> None:
    """A snapshot is a value: neither the engine it came from nor one restored from it (without
    going through bytes) may change it by going on."""
    engine = rich_engine()
    state = engine.snapshot()
    frozen = through_bytes(state)
    first = MatchingEngine.restore(engine.spec, state)
    second = MatchingEngine.restore(engine.spec, state)
    more: list[MatchingCommand] = [
        limit(8, 3, Side.SELL, 99, 6),
        AmendOrder(order_id=3, account=2, qty=1),
        SetMarkPrice(price=89),
        CancelAll(account=1),
    ]
    for cmd in more:
        want = engine.process(cmd)
        assert first.process(cmd) == want
    assert state == frozen
    assert second.snapshot() == frozen
    assert first.state_hash() == engine.state_hash() != second.state_hash()


def test_state_hash_is_the_digest_of_the_canonical_bytes() -> None:
    engine = rich_engine()
    encoded = msgspec.msgpack.encode(engine.snapshot())
    assert engine.state_hash() == hashlib.sha256(encoded).hexdigest()
    assert msgspec.msgpack.encode(through_bytes(engine.snapshot())) == encoded
    assert rich_engine().state_hash() == engine.state_hash()
    before = engine.state_hash()
    engine.process(AmendOrder(order_id=2, account=2, qty=2))  # keeps priority, one lot less
    assert engine.state_hash() != before


def _drop_from_level(state: BookState) -> BookState:
    level = state.bids[0]
    shorter = msgspec.structs.replace(level, order_ids=level.order_ids[1:])
    return msgspec.structs.replace(state, bids=(shorter, *state.bids[1:]))


CORRUPTIONS: dict[str, Callable[[BookState], BookState]] = {
    "order twice": lambda s: msgspec.structs.replace(s, orders=(*s.orders, s.orders[0])),
    "order on no level": _drop_from_level,
    "bid on the ask side": lambda s: msgspec.structs.replace(s, asks=(*s.bids, *s.asks)),
    "unknown conditional": lambda s: msgspec.structs.replace(s, conditional=(*s.conditional, 99)),
    "resting and conditional": lambda s: msgspec.structs.replace(
        s, conditional=(*s.conditional, s.bids[0].order_ids[0])
    ),
    "reduce-only index lost": lambda s: msgspec.structs.replace(s, reduce_only_resting=()),
    "not reduce-only": lambda s: msgspec.structs.replace(
        s, reduce_only_resting=(AccountOrders(account=1, order_ids=(1, 6)),)
    ),
    "levels descending": lambda s: msgspec.structs.replace(s, asks=s.asks[::-1]),
    "seq behind orders": lambda s: msgspec.structs.replace(s, seq=1),
}


@pytest.mark.parametrize("corrupt", CORRUPTIONS.values(), ids=CORRUPTIONS.keys())
def test_inconsistent_states_are_refused(corrupt: Callable[[BookState], BookState]) -> None:
    engine = rich_engine()
    state = engine.snapshot()
    MatchingEngine.restore(engine.spec, state)  # the uncorrupted state is fine
    with pytest.raises(ValueError):
        MatchingEngine.restore(engine.spec, corrupt(state))
