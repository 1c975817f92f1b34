"""Client order ids in the engine: unique among an account's live orders in a market, free again
once the order ends, kept across a snapshot, and checked by the command schema.

The random streams of ``test_engine_invariants`` check the same rule on every step; these are
the cases by name. Market and helpers: ``test_engine``.
"""

import msgspec
import pytest
from test_engine import OTHER, SPEC, engine, order, rejections, run

from exchange.commands import AmendOrder, CancelOrder
from exchange.engine import Engine, EngineState
from exchange.engine_commands import EngineCommand, MarkPrice, OrderCommand
from exchange.engine_events import EngineEvent, MarketEvent
from exchange.events import Accepted, Amended, Cancelled, Rejected, RejectReason
from exchange.orders import OrderType, Side, TimeInForce, TriggerBy

BUY, SELL = Side.BUY, Side.SELL
FUNDS = 100_000_00


def reasons(events: list[EngineEvent]) -> list[RejectReason]:
    return [r.reason for r in rejections(events) if isinstance(r, Rejected)]


def accepted(events: list[EngineEvent]) -> list[int]:
    return [
        e.event.order_id
        for e in events
        if isinstance(e, MarketEvent) and isinstance(e.event, Accepted)
    ]


def test_a_live_label_is_refused_and_the_first_order_stays() -> None:
    e = engine((1, FUNDS))
    run(e, order(1, BUY, 1, 100, order_id=1, client_order_id="grid-1"))
    events = run(e, order(1, BUY, 2, 99, order_id=2, client_order_id="grid-1"))
    assert reasons(events) == [RejectReason.DUPLICATE_CLIENT_ORDER_ID]
    assert e.markets["TEST"].book.knows(1) and not e.markets["TEST"].book.knows(2)
    assert e.markets["TEST"].client_ids.live(1, "grid-1") == 1


def test_the_label_is_free_again_once_the_order_is_cancelled_or_filled() -> None:
    e = engine((1, FUNDS), (2, FUNDS))
    run(e, order(1, BUY, 1, 100, order_id=1, client_order_id="a"))
    run(e, OrderCommand(symbol="TEST", order=CancelOrder(order_id=1, account=1)))
    assert accepted(run(e, order(1, BUY, 2, 100, order_id=2, client_order_id="a"))) == [2]
    # a partial fill keeps it live, the last lot frees it
    assert reasons(run(e, order(2, SELL, 1, 100, order_id=3))) == []
    assert reasons(run(e, order(1, BUY, 1, 99, order_id=4, client_order_id="a"))) == [
        RejectReason.DUPLICATE_CLIENT_ORDER_ID
    ]
    run(e, order(2, SELL, 1, 100, order_id=5))
    assert accepted(run(e, order(1, BUY, 1, 99, order_id=6, client_order_id="a"))) == [6]


def test_an_order_that_ends_on_arrival_leaves_its_label_free() -> None:
    e = engine((1, FUNDS), (2, FUNDS))
    run(e, order(2, SELL, 1, 100, order_id=1))
    run(e, order(1, BUY, 1, order_id=2, client_order_id="take"))  # market, filled at once
    run(e, order(1, BUY, 1, 90, order_id=3, client_order_id="ioc", tif=TimeInForce.IOC))  # expires
    assert e.markets["TEST"].client_ids.items() == []
    assert accepted(run(e, order(1, BUY, 1, 90, order_id=4, client_order_id="take"))) == [4]


def test_labels_are_per_account_and_per_market() -> None:
    e = engine((1, FUNDS), (2, FUNDS))
    events = run(
        e,
        order(1, BUY, 1, 100, order_id=1, client_order_id="x"),
        order(2, BUY, 1, 100, order_id=2, client_order_id="x"),
        order(1, BUY, 1, 100, order_id=3, client_order_id="x", symbol="OTHER"),
    )
    assert reasons(events) == [] and accepted(events) == [1, 2, 3]


def test_a_conditional_order_holds_its_label_until_it_ends() -> None:
    e = engine((1, FUNDS), (2, FUNDS))
    run(e, MarkPrice(symbol="TEST", price=100))
    stop = order(
        1,
        SELL,
        1,
        order_id=1,
        client_order_id="sl",
        type=OrderType.STOP_MARKET,
        stop_price=90,
        trigger=TriggerBy.MARK,
    )
    run(e, stop)
    assert e.markets["TEST"].client_ids.live(1, "sl") == 1
    run(e, MarkPrice(symbol="TEST", price=89))  # triggers; an empty book expires it
    assert not e.markets["TEST"].book.knows(1)
    assert e.markets["TEST"].client_ids.live(1, "sl") is None


def test_a_restored_engine_refuses_the_same_labels() -> None:
    e = engine((1, FUNDS))
    run(e, order(1, BUY, 1, 100, order_id=1, client_order_id="keep"))
    wire = msgspec.msgpack.encode(e.snapshot())
    restored = Engine.restore(
        [SPEC, OTHER],
        msgspec.msgpack.decode(wire, type=EngineState),
        faucet_cap=e.faucet_cap,
        default_leverage=10,
    )
    assert restored.state_hash() == e.state_hash()
    events = restored.process(order(1, BUY, 1, 99, order_id=2, client_order_id="keep"))
    assert reasons(events) == [RejectReason.DUPLICATE_CLIENT_ORDER_ID]


@pytest.mark.parametrize("label", ["", "x" * 37, "has space", "ünï", "newline\n"])
def test_the_command_schema_refuses_a_label_binance_would(label: str) -> None:
    raw = msgspec.json.encode(order(1, BUY, 1, 100, order_id=1)).replace(
        b'"client_order_id":null', b'"client_order_id":' + msgspec.json.encode(label)
    )
    with pytest.raises(msgspec.ValidationError, match="client_order_id"):
        msgspec.json.decode(raw, type=EngineCommand)


def test_the_longest_legal_label_decodes() -> None:
    label = "A.b:c/d_e-" + "9" * 26
    raw = msgspec.json.encode(order(1, BUY, 1, 100, order_id=1, client_order_id=label))
    decoded = msgspec.json.decode(raw, type=EngineCommand)
    assert decoded.order.client_order_id == label


def test_an_order_is_cancelled_or_amended_by_its_label() -> None:
    e = engine((1, FUNDS), (2, FUNDS))
    run(e, order(1, BUY, 3, 100, order_id=5, client_order_id="bid"))
    amend = AmendOrder(order_id=0, account=1, price=99, client_order_id="bid")
    events = run(e, OrderCommand(symbol="TEST", order=amend))
    (amended,) = [x.event for x in events if isinstance(x, MarketEvent)][:1]
    assert isinstance(amended, Amended) and (amended.order_id, amended.price) == (5, 99)
    other = CancelOrder(order_id=0, account=2, client_order_id="bid")  # not account 2's label
    (refusal,) = rejections(run(e, OrderCommand(symbol="TEST", order=other)))
    assert isinstance(refusal, Rejected) and refusal.reason is RejectReason.UNKNOWN_ORDER
    assert e.markets["TEST"].book.knows(5)
    mine = CancelOrder(order_id=0, account=1, client_order_id="bid")
    events = run(e, OrderCommand(symbol="TEST", order=mine))
    cancelled = [x.event for x in events if isinstance(x, MarketEvent)]
    assert [c.order_id for c in cancelled if isinstance(c, Cancelled)] == [5]
    (refusal,) = rejections(run(e, OrderCommand(symbol="TEST", order=mine)))  # gone now
    assert isinstance(refusal, Rejected) and refusal.reason is RejectReason.UNKNOWN_ORDER


def test_an_id_and_a_label_together_are_refused() -> None:
    e = engine((1, FUNDS))
    run(e, order(1, BUY, 1, 100, order_id=5, client_order_id="bid"))
    both = CancelOrder(order_id=5, account=1, client_order_id="bid")
    (refusal,) = rejections(run(e, OrderCommand(symbol="TEST", order=both)))
    assert isinstance(refusal, Rejected) and refusal.reason is RejectReason.INVALID_ORDER
    assert e.markets["TEST"].book.knows(5)
