"""Hand-computed scenarios: the contract of docs/matching.md as exact event lists.

Every expected value here was worked out by hand from the contract, never by running an
engine, so these tests pin down what the reference engine (and through the differential tests,
the fast engine) must do. Market: multiplier 1 (tick 0.1 × lot 0.001 at 4 settlement decimals),
maker fee 0.2 %, taker fee 0.5 %, no band, no protection, unless a test says otherwise.
"""

from collections.abc import Iterator, Sequence
from fractions import Fraction
from typing import Any

import msgspec
import pytest

from exchange.commands import (
    AmendOrder,
    CancelAll,
    CancelOrder,
    MatchingCommand,
    PlaceOrder,
    SetMarkPrice,
)
from exchange.events import (
    Accepted,
    Amended,
    BookDelta,
    Cancelled,
    CancelReason,
    Expired,
    ExpireReason,
    MatchingEvent,
    Rejected,
    RejectReason,
    Trade,
    Triggered,
)
from exchange.market import MarketSpec
from exchange.matching import MatchingEngine
from exchange.orders import OrderType, Side, StpMode, TimeInForce, TriggerBy
from exchange.reference import ReferenceEngine

SPEC = MarketSpec(
    symbol="TEST",
    tick_size="0.1",
    lot_size="0.001",
    settle_decimals=4,
    maker_fee=200_000,
    taker_fee=500_000,
)
BUY, SELL = Side.BUY, Side.SELL


AnyEngine = MatchingEngine | ReferenceEngine
Engine: type[AnyEngine] = ReferenceEngine
"""The engine class under test; the fixture below runs every scenario on both."""


@pytest.fixture(autouse=True, params=[ReferenceEngine, MatchingEngine], ids=["reference", "fast"])
def engine_class(request: pytest.FixtureRequest) -> Iterator[None]:
    global Engine
    Engine = request.param
    yield
    Engine = ReferenceEngine


def buy(order_id: int, account: int, qty: int, price: int | None = None, **kw: Any) -> PlaceOrder:
    return PlaceOrder(order_id=order_id, account=account, side=BUY, qty=qty, price=price, **kw)


def sell(order_id: int, account: int, qty: int, price: int | None = None, **kw: Any) -> PlaceOrder:
    return PlaceOrder(order_id=order_id, account=account, side=SELL, qty=qty, price=price, **kw)


def market(order_id: int, account: int, side: Side, qty: int, **kw: Any) -> PlaceOrder:
    return PlaceOrder(
        order_id=order_id, account=account, side=side, qty=qty, type=OrderType.MARKET, **kw
    )


def conditional(
    order_id: int,
    account: int,
    side: Side,
    qty: int,
    order_type: OrderType,
    stop_price: int,
    **kw: Any,
) -> PlaceOrder:
    return PlaceOrder(
        order_id=order_id,
        account=account,
        side=side,
        qty=qty,
        type=order_type,
        stop_price=stop_price,
        **kw,
    )


def rejected(order_id: int, account: int, reason: RejectReason) -> Rejected:
    """Messages are free text; ``events`` blanks them so that the reason is what is compared."""
    return Rejected(order_id, account, reason, "")


def events(engine: AnyEngine, cmd: MatchingCommand) -> list[MatchingEvent]:
    return [
        msgspec.structs.replace(e, message="") if isinstance(e, Rejected) else e
        for e in engine.process(cmd)
    ]


def engine_after(setup: Sequence[MatchingCommand], spec: MarketSpec = SPEC) -> AnyEngine:
    """A fresh engine that has processed ``setup``, none of which may be rejected."""
    engine = Engine(spec)
    for cmd in setup:
        for event in engine.process(cmd):
            assert not isinstance(event, Rejected), f"setup step rejected: {cmd} -> {event}"
    return engine


def trade(
    trade_id: int,
    price: int,
    qty: int,
    taker: tuple[Side, int, int],
    maker: tuple[int, int],
    fees: tuple[int, int],
) -> Trade:
    """``taker`` is (side, order id, account), ``maker`` (order id, account), ``fees``
    (taker, maker)."""
    side, taker_id, taker_account = taker
    maker_id, maker_account = maker
    return Trade(
        trade_id, price, qty, side, taker_id, taker_account, maker_id, maker_account, *fees
    )


def test_cross_with_partial_fill() -> None:
    engine = Engine(SPEC)
    assert events(engine, sell(1, 1, 5, 100)) == [Accepted(1, 1), BookDelta(1, (), ((100, 5),))]
    # 3 lots at 100 = 300 minor units: taker ceil(1.5) = 2, maker ceil(0.6) = 1.
    assert events(engine, buy(2, 2, 3, 101)) == [
        Accepted(2, 2),
        trade(1, 100, 3, (BUY, 2, 2), (1, 1), (2, 1)),
        BookDelta(2, (), ((100, 2),)),
    ]
    assert (engine.best_bid(), engine.best_ask()) == (None, 100)
    assert (engine.position(1), engine.position(2)) == (-3, 3)
    assert engine.open_orders(1) == [1] and engine.open_orders(2) == []
    assert engine.update_id == 2


def test_price_then_time_priority() -> None:
    engine = engine_after([sell(1, 1, 2, 101), sell(2, 2, 2, 100), sell(3, 3, 2, 100)])
    # 200 minor units: fees ceil(1.0) = 1 and ceil(0.4) = 1; 101: ceil(0.505), ceil(0.202).
    assert events(engine, buy(4, 4, 5, 101)) == [
        Accepted(4, 4),
        trade(1, 100, 2, (BUY, 4, 4), (2, 2), (1, 1)),
        trade(2, 100, 2, (BUY, 4, 4), (3, 3), (1, 1)),
        trade(3, 101, 1, (BUY, 4, 4), (1, 1), (1, 1)),
        BookDelta(4, (), ((100, 0), (101, 1))),
    ]


@pytest.mark.parametrize(
    ("stp", "expected", "asks_after"),
    [
        (
            StpMode.NONE,
            [
                Accepted(3, 1),
                trade(1, 100, 2, (BUY, 3, 1), (1, 1), (1, 1)),
                trade(2, 100, 1, (BUY, 3, 1), (2, 2), (1, 1)),
                BookDelta(3, (), ((100, 1),)),
            ],
            [(100, 1)],
        ),
        (StpMode.EXPIRE_TAKER, [Accepted(3, 1), Expired(3, 1, 3, ExpireReason.STP)], [(100, 4)]),
        (
            StpMode.EXPIRE_MAKER,
            [
                Accepted(3, 1),
                Expired(1, 1, 2, ExpireReason.STP),
                trade(1, 100, 2, (BUY, 3, 1), (2, 2), (1, 1)),
                BookDelta(3, ((100, 1),), ((100, 0),)),
            ],
            [],
        ),
        (
            StpMode.EXPIRE_BOTH,
            [
                Accepted(3, 1),
                Expired(1, 1, 2, ExpireReason.STP),
                Expired(3, 1, 3, ExpireReason.STP),
                BookDelta(3, (), ((100, 2),)),
            ],
            [(100, 2)],
        ),
    ],
)
def test_self_trade_prevention(
    stp: StpMode, expected: list[MatchingEvent], asks_after: list[tuple[int, int]]
) -> None:
    """Account 1 buys 3 into its own 2 lots at the front of the level, then account 2's 2."""
    engine = engine_after([sell(1, 1, 2, 100), sell(2, 2, 2, 100)])
    assert events(engine, buy(3, 1, 3, 100, stp=stp)) == expected
    assert engine.depth(5)[1] == asks_after


def test_self_trade_with_stp_none_leaves_the_position_unchanged() -> None:
    engine = engine_after([sell(1, 1, 2, 100), buy(2, 1, 2, 100, stp=StpMode.NONE)])
    assert engine.position(1) == 0


def test_fill_or_kill_fills_across_levels() -> None:
    engine = engine_after([sell(1, 1, 2, 100), sell(2, 2, 2, 101)])
    # 202 minor units: taker ceil(1.01) = 2, maker ceil(0.404) = 1.
    assert events(engine, buy(3, 3, 4, 101, tif=TimeInForce.FOK)) == [
        Accepted(3, 3),
        trade(1, 100, 2, (BUY, 3, 3), (1, 1), (1, 1)),
        trade(2, 101, 2, (BUY, 3, 3), (2, 2), (2, 1)),
        BookDelta(3, (), ((100, 0), (101, 0))),
    ]


def test_fill_or_kill_that_cannot_fill_changes_nothing() -> None:
    engine = engine_after([sell(1, 1, 2, 100), sell(2, 2, 2, 101)])
    assert events(engine, buy(3, 3, 5, 101, tif=TimeInForce.FOK)) == [
        Accepted(3, 3),
        Expired(3, 3, 5, ExpireReason.FOK),
    ]
    assert engine.depth(5)[1] == [(100, 2), (101, 2)]


def test_fill_or_kill_counts_no_quantity_from_a_maker_stp_would_expire() -> None:
    """Only account 2's 2 lots count; the simulated expiry of account 1's own order is not
    carried out."""
    engine = engine_after([sell(1, 1, 2, 100), sell(2, 2, 2, 101)])
    fok = buy(3, 1, 4, 101, tif=TimeInForce.FOK, stp=StpMode.EXPIRE_MAKER)
    assert events(engine, fok) == [Accepted(3, 1), Expired(3, 1, 4, ExpireReason.FOK)]
    assert engine.open_orders(1) == [1]


def test_post_only_that_would_take_is_rejected() -> None:
    engine = engine_after([sell(1, 1, 2, 100)])
    assert events(engine, buy(2, 1, 1, 100, tif=TimeInForce.GTX)) == [
        rejected(2, 1, RejectReason.POST_ONLY_WOULD_TAKE)
    ]
    assert events(engine, buy(2, 2, 1, 99, tif=TimeInForce.GTX)) == [
        Accepted(2, 2),
        BookDelta(2, ((99, 1),), ()),
    ]


def _long_three() -> list[MatchingCommand]:
    """Account 1 buys 3 lots from account 2 at 100: account 1 is long 3."""
    return [sell(1, 2, 3, 100), buy(2, 1, 3, 100)]


def test_reduce_only_maker_fills_are_capped_and_upkeep_expires_the_rest() -> None:
    engine = engine_after(
        [*_long_three(), sell(3, 1, 2, 105, reduce_only=True), sell(4, 1, 2, 106, reduce_only=True)]
    )
    # Order 3 fills 2 (position 3 -> 1); order 4 is capped to 1 (position 1 -> 0), after which
    # upkeep expires its last lot; the taker rests its 2 remaining lots at 106.
    # 210 minor units: ceil(1.05) = 2, ceil(0.42) = 1; 106: ceil(0.53) = 1, ceil(0.212) = 1.
    assert events(engine, buy(5, 3, 5, 106)) == [
        Accepted(5, 3),
        trade(2, 105, 2, (BUY, 5, 3), (3, 1), (2, 1)),
        trade(3, 106, 1, (BUY, 5, 3), (4, 1), (1, 1)),
        Expired(4, 1, 1, ExpireReason.REDUCE_ONLY),
        BookDelta(5, ((106, 2),), ((105, 0), (106, 0))),
    ]
    assert engine.position(1) == 0


def test_reduce_only_taker_is_capped_then_expires() -> None:
    engine = engine_after([*_long_three(), buy(3, 2, 5, 100)])
    # 300 minor units: taker ceil(1.5) = 2, maker ceil(0.6) = 1.
    assert events(engine, market(4, 1, SELL, 5, reduce_only=True)) == [
        Accepted(4, 1),
        trade(2, 100, 3, (SELL, 4, 1), (3, 2), (2, 1)),
        Expired(4, 1, 2, ExpireReason.REDUCE_ONLY),
        BookDelta(4, ((100, 2),), ()),
    ]


def test_reduce_only_that_would_not_reduce_is_rejected() -> None:
    engine = engine_after(_long_three())
    assert events(engine, buy(3, 1, 1, 90, reduce_only=True)) == [
        rejected(3, 1, RejectReason.REDUCE_ONLY_REJECTED)
    ]
    assert events(engine, sell(3, 3, 1, 110, reduce_only=True)) == [
        rejected(3, 3, RejectReason.REDUCE_ONLY_REJECTED)
    ]


def test_reduce_only_rest_expires_once_its_own_fills_flattened_the_position() -> None:
    """The reference's reading of a gap in the contract: a reduce-only order whose own fills
    flatten the position does not rest (it could never fill again)."""
    engine = engine_after([*_long_three(), buy(3, 2, 3, 100)])
    assert events(engine, sell(4, 1, 5, 100, reduce_only=True)) == [
        Accepted(4, 1),
        trade(2, 100, 3, (SELL, 4, 1), (3, 2), (2, 1)),
        Expired(4, 1, 2, ExpireReason.REDUCE_ONLY),
        BookDelta(4, ((100, 0),), ()),
    ]


def test_stop_market_triggered_by_a_trade() -> None:
    engine = engine_after([sell(1, 2, 1, 100), sell(2, 2, 3, 102)])
    stop = conditional(3, 3, BUY, 2, OrderType.STOP_MARKET, 100)
    assert events(engine, stop) == [Accepted(3, 3)]
    # The trade at 100 sets last = 100 >= 100: the stop buys 2 at 102.
    # 100: ceil(0.5) = 1, ceil(0.2) = 1; 204: ceil(1.02) = 2, ceil(0.408) = 1.
    assert events(engine, buy(4, 4, 1, 100)) == [
        Accepted(4, 4),
        trade(1, 100, 1, (BUY, 4, 4), (1, 2), (1, 1)),
        Triggered(3, 3, 100),
        trade(2, 102, 2, (BUY, 3, 3), (2, 2), (2, 1)),
        BookDelta(3, (), ((100, 0), (102, 1))),
    ]


def test_take_profit_triggered_by_the_mark() -> None:
    engine = engine_after([SetMarkPrice(price=100), buy(1, 2, 2, 101)])
    take_profit = conditional(
        2, 1, SELL, 2, OrderType.TAKE_PROFIT_MARKET, 103, trigger=TriggerBy.MARK
    )
    assert events(engine, take_profit) == [Accepted(2, 1)]
    assert events(engine, SetMarkPrice(price=102)) == []
    # 202 minor units: ceil(1.01) = 2, ceil(0.404) = 1.
    assert events(engine, SetMarkPrice(price=103)) == [
        Triggered(2, 1, 103),
        trade(1, 101, 2, (SELL, 2, 1), (1, 2), (2, 1)),
        BookDelta(2, ((101, 0),), ()),
    ]


def test_stop_whose_condition_already_holds_is_rejected() -> None:
    engine = engine_after([SetMarkPrice(price=100)])
    take_profit = conditional(
        1, 1, SELL, 1, OrderType.TAKE_PROFIT_MARKET, 100, trigger=TriggerBy.MARK
    )
    assert events(engine, take_profit) == [rejected(1, 1, RejectReason.WOULD_IMMEDIATELY_TRIGGER)]


def test_triggered_reduce_only_that_would_not_reduce_expires() -> None:
    """Read as ``Triggered`` then ``Expired`` (the check is "before" the execution)."""
    stop = conditional(
        1, 1, SELL, 1, OrderType.STOP_MARKET, 95, trigger=TriggerBy.MARK, reduce_only=True
    )
    engine = engine_after([stop])
    assert events(engine, SetMarkPrice(price=95)) == [
        Triggered(1, 1, 95),
        Expired(1, 1, 1, ExpireReason.REDUCE_ONLY),
    ]


def _trailing(order_id: int, side: Side, rate: int, activation: int | None = None) -> PlaceOrder:
    return PlaceOrder(
        order_id=order_id,
        account=1,
        side=side,
        qty=1,
        type=OrderType.TRAILING_STOP_MARKET,
        callback_rate=rate,
        activation_price=activation,
        trigger=TriggerBy.MARK,
    )


def test_trailing_stop_sells_one_percent_below_the_highest_mark() -> None:
    engine = engine_after([buy(1, 2, 1, 95), SetMarkPrice(price=100)])
    assert events(engine, _trailing(2, SELL, 1_000_000)) == [Accepted(2, 1)]
    # Highest mark 110: it triggers once mark × R <= 110 × 0.99 R, i.e. at 108.9 or below.
    assert events(engine, SetMarkPrice(price=110)) == []
    assert events(engine, SetMarkPrice(price=109)) == []
    # 95 minor units: ceil(0.475) = 1, ceil(0.19) = 1.
    assert events(engine, SetMarkPrice(price=108)) == [
        Triggered(2, 1, 108),
        trade(1, 95, 1, (SELL, 2, 1), (1, 2), (1, 1)),
        BookDelta(2, ((95, 0),), ()),
    ]


def test_trailing_stop_buy_waits_for_its_activation_price() -> None:
    engine = engine_after([SetMarkPrice(price=100), _trailing(1, BUY, 1_000_000, activation=95)])
    # Not active above 95, so the rise from 96 to 100 does not count.
    for mark in (96, 100, 94, 93):
        assert events(engine, SetMarkPrice(price=mark)) == []
    # Active since 94, lowest 93: triggers at 93 × 1.01 = 93.93 or above.
    assert events(engine, SetMarkPrice(price=94)) == [
        Triggered(1, 1, 94),
        Expired(1, 1, 1, ExpireReason.NO_LIQUIDITY),
    ]


def test_amend_down_keeps_priority() -> None:
    engine = engine_after([sell(1, 1, 2, 100), sell(2, 2, 2, 100)])
    assert events(engine, AmendOrder(order_id=1, account=1, qty=1)) == [
        Amended(1, 1, 100, 1, True),
        BookDelta(3, (), ((100, 3),)),
    ]
    assert events(engine, buy(3, 3, 1, 100)) == [
        Accepted(3, 3),
        trade(1, 100, 1, (BUY, 3, 3), (1, 1), (1, 1)),
        BookDelta(4, (), ((100, 2),)),
    ]


def test_amend_up_loses_priority() -> None:
    engine = engine_after([sell(1, 1, 2, 100), sell(2, 2, 2, 100)])
    assert events(engine, AmendOrder(order_id=1, account=1, qty=3)) == [
        Amended(1, 1, 100, 3, False),
        BookDelta(3, (), ((100, 5),)),
    ]
    assert events(engine, buy(3, 3, 1, 100)) == [
        Accepted(3, 3),
        trade(1, 100, 1, (BUY, 3, 3), (2, 2), (1, 1)),
        BookDelta(4, (), ((100, 4),)),
    ]


def test_amend_to_a_crossing_price_takes() -> None:
    engine = engine_after([sell(1, 1, 2, 102), buy(2, 2, 1, 101)])
    # 101 minor units: ceil(0.505) = 1, ceil(0.202) = 1.
    assert events(engine, AmendOrder(order_id=1, account=1, price=101)) == [
        Amended(1, 1, 101, 2, False),
        trade(1, 101, 1, (SELL, 1, 1), (2, 2), (1, 1)),
        BookDelta(3, ((101, 0),), ((101, 1), (102, 0))),
    ]


def test_amend_rejections() -> None:
    engine = engine_after(
        [sell(1, 1, 2, 102), conditional(2, 1, SELL, 1, OrderType.STOP_MARKET, 90)]
    )
    assert events(engine, AmendOrder(order_id=2, account=1, qty=2)) == [
        rejected(2, 1, RejectReason.NOT_AMENDABLE)
    ]
    assert events(engine, AmendOrder(order_id=1, account=1)) == [
        rejected(1, 1, RejectReason.INVALID_ORDER)
    ]
    assert events(engine, AmendOrder(order_id=1, account=1, qty=0)) == [
        Cancelled(1, 1, 2, CancelReason.AMEND_TO_ZERO),
        BookDelta(2, (), ((102, 0),)),
    ]


def test_cancel_of_another_accounts_order_is_unknown() -> None:
    engine = engine_after([sell(1, 1, 2, 100)])
    assert events(engine, CancelOrder(order_id=1, account=2)) == [
        rejected(1, 2, RejectReason.UNKNOWN_ORDER)
    ]
    assert events(engine, CancelOrder(order_id=1, account=1)) == [
        Cancelled(1, 1, 2, CancelReason.USER),
        BookDelta(2, (), ((100, 0),)),
    ]
    assert events(engine, CancelOrder(order_id=1, account=1)) == [
        rejected(1, 1, RejectReason.UNKNOWN_ORDER)
    ]


def test_cancel_all_in_placement_order() -> None:
    engine = engine_after(
        [
            sell(7, 1, 1, 101),
            sell(3, 2, 1, 101),
            buy(5, 1, 2, 99),
            conditional(1, 1, BUY, 1, OrderType.STOP_MARKET, 110),
        ]
    )
    assert events(engine, CancelAll(account=1)) == [
        Cancelled(7, 1, 1, CancelReason.CANCEL_ALL),
        Cancelled(5, 1, 2, CancelReason.CANCEL_ALL),
        Cancelled(1, 1, 1, CancelReason.CANCEL_ALL),
        BookDelta(4, ((99, 0),), ((101, 1),)),
    ]
    assert events(engine, CancelAll(account=1)) == []


def test_market_order_into_an_empty_book() -> None:
    engine = Engine(SPEC)
    assert events(engine, market(1, 1, BUY, 3)) == [
        Accepted(1, 1),
        Expired(1, 1, 3, ExpireReason.NO_LIQUIDITY),
    ]
    assert engine.update_id == 0


def test_market_order_stops_at_its_protection_bound() -> None:
    spec = msgspec.structs.replace(SPEC, market_protection=2_000_000)
    engine = engine_after([SetMarkPrice(price=100), sell(1, 2, 1, 102), sell(2, 2, 1, 103)], spec)
    # Bound floor(100 × 1.02) = 102: the 103 ask stays. 102: ceil(0.51) = 1, ceil(0.204) = 1.
    assert events(engine, market(3, 1, BUY, 2)) == [
        Accepted(3, 1),
        trade(1, 102, 1, (BUY, 3, 1), (1, 2), (1, 1)),
        Expired(3, 1, 1, ExpireReason.PRICE_PROTECTION),
        BookDelta(3, (), ((102, 0),)),
    ]


@pytest.mark.parametrize(
    ("maker_rate", "qty", "expected_fees"),
    [
        (200_000, 3, (2, 1)),  # 300: taker ceil(1.5) = 2, maker ceil(0.6) = 1
        (200_000, 10, (5, 2)),  # 1000: exact 5 and 2, no rounding
        (-100_000, 3, (2, 0)),  # maker rebate -0.3 rounds toward zero: 0
        (-100_000, 15, (8, -1)),  # 1500: taker ceil(7.5) = 8, rebate ceil(-1.5) = -1
        (0, 3, (2, 0)),
    ],
)
def test_fee_rounding(maker_rate: int, qty: int, expected_fees: tuple[int, int]) -> None:
    spec = msgspec.structs.replace(SPEC, maker_fee=maker_rate)
    engine = engine_after([sell(1, 1, qty, 100)], spec)
    fill = events(engine, buy(2, 2, qty, 100))[1]
    assert isinstance(fill, Trade) and (fill.taker_fee, fill.maker_fee) == expected_fees


def test_fees_scale_with_the_multiplier() -> None:
    spec = msgspec.structs.replace(SPEC, settle_decimals=8)  # multiplier 10 000
    engine = engine_after([sell(1, 1, 3, 100)], spec)
    fill = events(engine, buy(2, 2, 3, 100))[1]
    assert isinstance(fill, Trade) and (fill.taker_fee, fill.maker_fee) == (15_000, 6_000)


def test_placement_checks_come_in_order() -> None:
    spec = msgspec.structs.replace(
        SPEC, min_qty=2, max_qty=10, min_notional=250, price_band_up=5_000_000
    )
    engine = engine_after([SetMarkPrice(price=100), sell(1, 1, 3, 100)], spec)
    cases = [
        (sell(1, 2, 0), RejectReason.DUPLICATE_ORDER_ID),  # the id check comes first
        (buy(2, 2, 0, 100), RejectReason.INVALID_QTY),
        (buy(2, 2, 1, 100), RejectReason.QTY_BELOW_MIN),
        (buy(2, 2, 11, 100), RejectReason.QTY_ABOVE_MAX),
        (buy(2, 2, 2), RejectReason.INVALID_ORDER),  # a limit without a price
        (buy(2, 2, 2, 0), RejectReason.INVALID_PRICE),
        (buy(2, 2, 2, 100), RejectReason.MIN_NOTIONAL),  # 200 < 250
        (buy(2, 2, 3, 106), RejectReason.PRICE_OUT_OF_BAND),  # floor(100 × 1.05) = 105
    ]
    for cmd, reason in cases:
        assert events(engine, cmd) == [rejected(cmd.order_id, cmd.account, reason)], cmd
    assert events(engine, buy(2, 2, 3, 99)) == [Accepted(2, 2), BookDelta(2, ((99, 3),), ())]


def test_invalid_mark_is_rejected() -> None:
    engine = Engine(SPEC)
    assert events(engine, SetMarkPrice(price=0)) == [rejected(0, 0, RejectReason.INVALID_PRICE)]


def test_depth_and_impact_prices_by_hand() -> None:
    """Impact prices take the last level fractionally (Binance's premium-index definition)."""
    engine = engine_after([sell(1, 1, 2, 100), sell(2, 1, 3, 102), buy(3, 2, 4, 98)])
    assert engine.depth(5) == ([(98, 4)], [(100, 2), (102, 3)])
    assert engine.depth(1) == ([(98, 4)], [(100, 2)])
    multiplier = SPEC.multiplier
    # 2 lots at 100 ticks is 200 tick·lots; 302 tick·lots more takes 302/102 lots at 102.
    notional = 502 * multiplier
    expected = Fraction(502, 2 + Fraction(302, 102))
    assert engine.impact_price(Side.BUY, notional) == expected
    assert engine.impact_price(Side.SELL, 98 * 4 * multiplier) == 98
    assert engine.impact_price(Side.SELL, 98 * 4 * multiplier + 1) is None
    assert Engine(SPEC).impact_price(Side.BUY, multiplier) is None
