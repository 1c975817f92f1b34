"""The mark price (exchange/mark_price.py): §1.1's median of three, by hand and in a thin book.

Prices are in ticks of 0.1: 100_000 ticks is 10,000.0.
"""

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exchange.commands import PlaceOrder
from exchange.events import Trade
from exchange.funding_schedule import HOUR_MS, FundingSchedule
from exchange.mark_price import (
    BasisAverage,
    MarkCalculator,
    MarkConfig,
    funding_basis_price,
    mark_price,
)
from exchange.market import MarketSpec
from exchange.matching import MatchingEngine
from exchange.orders import OrderType, Side
from exchange.price_math import median

EIGHT_HOURS = 8 * HOUR_MS


def test_tv_b8_funding_basis_price() -> None:
    """Binance's worked example (§1.1 "TV-B8", text in the Qenv mirror of the old FAQ):
    funding rate 0.03 %, 4 h until funding, index 10,000 → mark 10,001.5."""
    assert funding_basis_price(100_000, 30_000, 4 * HOUR_MS, EIGHT_HOURS) == 100_015
    calc = MarkCalculator(FundingSchedule())
    result = calc.compute(4 * HOUR_MS, 100_000, 30_000)  # 04:00 UTC: 4 h to 08:00
    assert (result.price, result.funding_price) == (100_015, 100_015)
    assert (result.basis_price, result.last_price) == (None, None)


def test_funding_basis_decays_over_the_interval() -> None:
    # A whole interval ahead: index × (1 + rate); 1 ms ahead: almost the index.
    assert funding_basis_price(100_000, 100_000, EIGHT_HOURS, EIGHT_HOURS) == 100_100
    assert funding_basis_price(100_000, 100_000, 1, EIGHT_HOURS) == Fraction(
        100_000 * (100_000_000 * EIGHT_HOURS + 100_000), 100_000_000 * EIGHT_HOURS
    )
    # A 1 h market divides by its own interval: half an hour left is half the rate.
    assert funding_basis_price(100_000, -20_000, HOUR_MS // 2, HOUR_MS) == 99_990
    with pytest.raises(ValueError):
        funding_basis_price(100_000, 100_000_000, 1, EIGHT_HOURS)


def mark(
    *, index: int | None = 100_000, rate: int = 0, basis: Fraction | None, last: int | None
) -> int | None:
    return mark_price(
        time=0,
        index=index,
        funding_rate=rate,
        until_funding_ms=EIGHT_HOURS,
        interval_ms=EIGHT_HOURS,
        basis_average=basis,
        last_price=last,
    ).price


def test_median_of_the_three_components() -> None:
    """§1.1: "if Price1 < Price2 < Contract Price, take Price2"; and every other order."""
    # Price1 = 100_000 × 1.0001 = 100_010; Price2 = 100_000 + basis.
    assert mark(rate=10_000, basis=Fraction(20), last=100_050) == 100_020  # P1 < P2 < last
    assert mark(rate=10_000, basis=Fraction(20), last=99_000) == 100_010  # last < P1 < P2
    assert mark(rate=10_000, basis=Fraction(5), last=100_007) == 100_007  # P2 < last < P1
    assert mark(rate=10_000, basis=Fraction(-50), last=100_500) == 100_010  # P2 < P1 < last


def test_missing_components() -> None:
    """No index: no mark. No trade yet or no basis samples: Price1 stands in for the missing
    component, so the mark is Price1 (our rule; §1.1 is silent)."""
    assert mark(index=None, basis=Fraction(3), last=100_000) is None
    assert mark(rate=10_000, basis=Fraction(500), last=None) == 100_010
    assert mark(rate=10_000, basis=None, last=130_000) == 100_010
    assert mark(rate=10_000, basis=None, last=None) == 100_010


def test_mark_rounds_half_to_even() -> None:
    # Median 100_000.5 (Price2 with a half-tick basis) → 100_000; 100_001.5 → 100_002.
    assert mark(basis=Fraction(1, 2), last=100_001) == 100_000
    assert mark(index=100_001, basis=Fraction(1, 2), last=100_002) == 100_002
    result = mark_price(
        time=0,
        index=100_001,
        funding_rate=0,
        until_funding_ms=1,
        interval_ms=EIGHT_HOURS,
        basis_average=Fraction(1, 2),
        last_price=100_002,
    )
    assert (result.funding_price, result.basis_price, result.last_price) == (
        100_001,
        100_002,
        100_002,
    )


def test_basis_samples_are_the_state_at_each_second() -> None:
    basis = BasisAverage(MarkConfig(sample_ms=1_000, window=30))
    assert basis.due(500)
    assert basis.advance(500, 99_999, 100_005, 100_000) == 0  # starts the clock: next is 1_000
    assert basis.average() is None
    assert not basis.due(1_000)  # the point at 1_000 may still change at 1_000
    assert basis.advance(1_000, 99_999, 100_005, 100_000) == 0
    assert basis.advance(1_001, 99_999, 100_005, 100_000) == 1  # point 1_000: basis 2
    assert basis.average() == 2
    # The state changed at 1_001; the next update comes at 3_500: points 2_000 and 3_000 get it.
    assert basis.advance(3_500, 99_999, 100_006, 100_000) == 2  # basis 2.5
    assert basis.samples == 3
    assert basis.average() == Fraction(2 + Fraction(5, 2) * 2, 3)
    assert basis.advance(3_200, 1, 1, 1) == 0  # late: samples taken stay as they were
    assert basis.average() == Fraction(7, 3)


def test_basis_window_slides_and_skips_points_without_a_mid() -> None:
    basis = BasisAverage(MarkConfig(sample_ms=1_000, window=3))
    basis.advance(0, None, None, None)
    basis.advance(1_000, 100, 104, 100)  # point 0: 2
    basis.advance(2_000, 100, 106, 100)  # point 1_000: 3
    basis.advance(3_000, None, 106, 100)  # point 2_000: no bid, no sample
    assert (basis.average(), basis.samples) == (Fraction(5, 2), 2)
    basis.advance(4_000, 100, 110, 100)  # point 3_000: 5; point 0 leaves the window
    assert (basis.average(), basis.samples) == (Fraction(8, 2), 2)
    basis.advance(5_000, 100, 100, None)  # no index, no sample; point 1_000 leaves
    assert (basis.average(), basis.samples) == (Fraction(5), 1)
    basis.advance(60_000, 100, 100, 100)  # a quiet minute: the window is all this state
    assert (basis.average(), basis.samples) == (Fraction(0), 3)
    basis.advance(70_000, 100, None, 100)  # an empty side for ten seconds: nothing left
    assert (basis.average(), basis.samples) == (None, 0)


def test_a_one_second_basis_spike_moves_the_average_by_spike_over_window() -> None:
    basis = BasisAverage()  # Binance: 30 one-second points
    basis.advance(0, None, None, None)
    basis.advance(30_000, 99_999, 100_005, 100_000)  # points 0 … 29 s: basis 2
    assert (basis.average(), basis.samples) == (Fraction(2), 30)
    basis.advance(31_000, 99_999, 120_000, 100_000)  # point 30 s: basis 9_999.5
    assert basis.average() == 2 + (Fraction(19_999, 2) - 2) / 30
    basis.advance(61_000, 99_999, 100_005, 100_000)  # 30 more normal points: gone
    assert basis.average() == 2


Q = MarketSpec(symbol="TEST", tick_size="0.1", lot_size="0.001")


def test_a_large_trade_in_a_thin_book_does_not_move_the_mark() -> None:
    """A market buy sweeps a thin ask side up 20 %: the last price jumps, the mark does not.

    Driven the way the oracle service will: before each update at time ``t``, ``advance`` with
    the book as it was, then the update. Funding rate 0.01 % with 8 h to go: Price1 = 100_010.
    """
    book = MatchingEngine(Q)
    calc = MarkCalculator(FundingSchedule())
    index, rate = 100_000, 10_000
    order_ids = iter(range(1, 100))

    def at(time: int, order: PlaceOrder | None = None) -> None:
        calc.advance(time, book.best_bid(), book.best_ask(), index)
        for event in book.process(order) if order else []:
            if isinstance(event, Trade):
                calc.trade(event.price)

    def limit(side: Side, qty: int, price: int) -> PlaceOrder:
        return PlaceOrder(order_id=next(order_ids), account=1, side=side, qty=qty, price=price)

    at(0, limit(Side.BUY, 5, 99_999))
    at(0, limit(Side.SELL, 1, 100_005))
    at(0, limit(Side.SELL, 1, 100_010))
    at(0, limit(Side.SELL, 20, 120_000))
    at(29_500, PlaceOrder(order_id=50, account=2, side=Side.BUY, qty=1, type=OrderType.MARKET))
    at(29_600, limit(Side.SELL, 1, 100_005))  # the maker refills at once
    before = calc.compute(29_999, index, rate)
    # Points 0 … 29 s: mid 100_002 → Price2 = 100_002. Last 100_005 sits between: the mark.
    assert (before.funding_price, before.basis_price, before.last_price) == (
        100_010,
        100_002,
        100_005,
    )
    assert before.price == 100_005

    sweep = PlaceOrder(order_id=51, account=2, side=Side.BUY, qty=5, type=OrderType.MARKET)
    at(30_500, sweep)  # 1 lot at 100_005, 1 at 100_010, 3 at 120_000
    after = calc.compute(30_500, index, rate)
    assert after.last_price == 120_000
    assert after.price == 100_010  # median: the larger of Price1 and Price2
    assert after.price is not None and before.price is not None
    assert abs(after.price - before.price) <= abs(100_010 - 100_002)  # |Price1 − Price2|

    # The sweep's hole lasts over one sample point (31 s) before the maker refills: that one
    # sample moves the 30-point average by at most spike / 30.
    at(31_200, limit(Side.SELL, 1, 100_005))
    spiked = calc.compute(31_200, index, rate)
    spike = Fraction(99_999 + 120_000, 2) - index
    assert calc.basis.average() == 2 + (spike - 2) / 30
    assert spiked.basis_price == 100_335  # 100_002 + 333.25
    assert spiked.price == 100_335  # Price2 is now the middle one; nowhere near 120_000


def test_trade_price_must_be_positive() -> None:
    with pytest.raises(ValueError):
        MarkCalculator(FundingSchedule()).trade(0)
    with pytest.raises(ValueError):
        MarkConfig(window=0)


@given(
    st.integers(1_000, 10**9),
    st.integers(-300_000, 300_000),
    st.integers(1, EIGHT_HOURS),
    st.one_of(st.none(), st.fractions(min_value=-(10**6), max_value=10**6)),
    st.one_of(st.none(), st.integers(1, 2 * 10**9)),
)
def test_mark_lies_within_its_components(
    index: int, rate: int, until: int, basis: Fraction | None, last: int | None
) -> None:
    result = mark_price(
        time=0,
        index=index,
        funding_rate=rate,
        until_funding_ms=until,
        interval_ms=EIGHT_HOURS,
        basis_average=basis,
        last_price=last,
    )
    assert result.price is not None and result.funding_price is not None
    if result.basis_price is None or result.last_price is None:
        assert result.price == max(1, result.funding_price)
        return
    components = [result.funding_price, result.basis_price, result.last_price]
    # Rounding is monotone: the rounded median is the median of the rounded components.
    assert result.price == max(1, median(components))
    if min(components) >= 1:
        assert min(components) <= result.price <= max(components)


@given(
    st.integers(1, 40),
    st.lists(st.integers(-500, 500), min_size=40, max_size=60),
    st.integers(-(10**6), 10**6),
)
def test_one_sample_moves_a_full_window_by_its_difference_over_window(
    window: int, baseline: list[int], spike: int
) -> None:
    """Whatever the window holds, one new sample changes the average by exactly (new − the
    sample it displaces) / window. Values here are doubled bases: ask − bid with bid = index."""
    basis = BasisAverage(MarkConfig(sample_ms=1_000, window=window))
    basis.advance(0, None, None, None)
    for k, doubled in enumerate(baseline):
        basis.advance(1_000 * k + 1, 100_000, 100_000 + doubled, 100_000)
    before = basis.average()
    assert before is not None and basis.samples == window
    basis.advance(1_000 * len(baseline) + 1, 100_000, 100_000 + spike, 100_000)
    after = basis.average()
    assert after is not None
    assert after - before == Fraction(spike - baseline[-window], 2 * window)
