"""Orders with an expiry time (Binance's GTD): they end with the first command the engine
processes at or after that event time, whatever command and market it is, before its own
events; they give back what they held, and are refused when they could never rest. The random
streams of ``test_engine_invariants`` check after every command that no live order is overdue;
these are the cases by name. Market and helpers: ``test_engine``.
"""

import msgspec
import pytest
from test_engine import OTHER, SPEC, engine, order, rejections, run

from exchange.commands import CancelOrder
from exchange.engine import Engine, EngineState
from exchange.engine_commands import Deposit, MarkPrice, OrderCommand
from exchange.engine_events import EngineEvent, MarketEvent, OrderMarginChanged, Transfer
from exchange.events import Expired, ExpireReason, Rejected, RejectReason
from exchange.orders import OrderType, Side, TimeInForce

BUY, SELL = Side.BUY, Side.SELL
FUNDS = 100_000_00
T0 = 1_700_000_000_000


def expired(events: list[EngineEvent]) -> list[tuple[int, ExpireReason]]:
    return [
        (e.event.order_id, e.event.reason)
        for e in events
        if isinstance(e, MarketEvent) and isinstance(e.event, Expired)
    ]


def started() -> Engine:
    e = engine((1, FUNDS), (2, FUNDS))
    e.advance_time(T0)
    return e


def mark_at(e: Engine, time: int, price: int = 100) -> list[EngineEvent]:
    e.advance_time(time)
    return run(e, MarkPrice(symbol="TEST", price=price))


def test_an_order_expires_with_the_first_command_at_or_after_its_time() -> None:
    e = started()
    run(e, order(1, BUY, 3, 95, order_id=1, expire_time=T0 + 60_000))
    assert expired(mark_at(e, T0 + 59_999)) == []
    e.advance_time(T0 + 70_000)  # time passes, but an event needs a command to belong to
    assert e.markets["TEST"].book.knows(1)
    events = run(e, Deposit(account=2, amount=1))  # any command, of any market or none
    assert expired(events) == [(1, ExpireReason.GTD)]
    kinds = [type(x.event if isinstance(x, MarketEvent) else x) for x in events]
    assert kinds.index(Expired) < kinds.index(Transfer)  # the command's own events after
    assert not e.markets["TEST"].book.knows(1)
    assert e.markets["TEST"].book.depth(5)[0] == []
    margins = [x for x in events if isinstance(x, OrderMarginChanged)]
    assert [(m.account, m.amount) for m in margins] == [(1, 0)]  # what it held is free


def test_a_partly_filled_order_expires_with_its_open_rest() -> None:
    e = started()
    run(e, order(1, BUY, 3, 100, order_id=1, expire_time=T0 + 1_000))
    run(e, order(2, SELL, 1, 100, order_id=2))
    events = mark_at(e, T0 + 1_000)
    (event,) = [x.event for x in events if isinstance(x, MarketEvent)][:1]
    assert isinstance(event, Expired) and (event.order_id, event.open_qty) == (1, 2)


def test_expiries_come_soonest_first_and_before_the_mark_moves_anything() -> None:
    e = started()
    stop = dict(type=OrderType.STOP_MARKET, stop_price=90)
    run(
        e,
        order(1, BUY, 1, 95, order_id=1, expire_time=T0 + 3_000),
        order(1, SELL, 1, order_id=2, expire_time=T0 + 2_000, **stop),
        order(1, BUY, 1, 96, order_id=3, expire_time=T0 + 5_000),
    )
    events = mark_at(e, T0 + 4_000, price=89)  # would trigger the stop, had it not expired
    assert expired(events) == [(2, ExpireReason.GTD), (1, ExpireReason.GTD)]
    assert e.markets["TEST"].book.knows(3)


def test_an_order_that_ended_sooner_leaves_a_reused_id_alone() -> None:
    e = started()
    run(e, order(1, BUY, 1, 95, order_id=7, expire_time=T0 + 1_000))
    run(e, OrderCommand(symbol="TEST", order=CancelOrder(order_id=7, account=1)))
    run(e, order(1, BUY, 1, 95, order_id=7))  # the id again, no expiry
    assert expired(mark_at(e, T0 + 2_000)) == []
    assert e.markets["TEST"].book.knows(7)


@pytest.mark.parametrize(
    "fields",
    [
        {"price": None},  # market
        {"tif": TimeInForce.IOC},
        {"tif": TimeInForce.FOK},
        {"expire_time": T0},  # not after the engine's time
    ],
)
def test_an_expiry_that_cannot_work_is_refused(fields: dict[str, object]) -> None:
    e = started()
    run(e, order(2, SELL, 5, 100, order_id=1))
    price = fields.pop("price", 101)
    expire_time = fields.pop("expire_time", T0 + 60_000)
    cmd = order(1, BUY, 1, price, order_id=2, expire_time=expire_time, **fields)  # type: ignore[arg-type]
    before = e.state_hash()
    (refusal,) = rejections(run(e, cmd))
    assert isinstance(refusal, Rejected) and refusal.reason is RejectReason.INVALID_ORDER
    assert "expire_time" in refusal.message
    assert e.state_hash() == before  # refused before it could trade


def test_a_restored_engine_expires_the_same_orders() -> None:
    e = started()
    run(e, order(1, BUY, 1, 95, order_id=1, expire_time=T0 + 5_000, symbol="OTHER"))
    wire = msgspec.msgpack.encode(e.snapshot())
    state = msgspec.msgpack.decode(wire, type=EngineState)
    restored = Engine.restore([SPEC, OTHER], state, faucet_cap=e.faucet_cap, default_leverage=10)
    for engine_ in (e, restored):
        engine_.advance_time(T0 + 5_000)
        events = run(engine_, MarkPrice(symbol="OTHER", price=100))
        assert expired(events) == [(1, ExpireReason.GTD)]
    assert restored.state_hash() == e.state_hash()
