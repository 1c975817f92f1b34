"""The funding rate (exchange/funding_rate.py): §2.1's formula by hand, Binance's published
figures (TV-B10, the dead zone, the caps), and the sampler on event time.

Rates are in RATE_ONE units (1e-8): 0.01 % is 10_000.
"""

from fractions import Fraction

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from exchange.commands import PlaceOrder
from exchange.default_markets import BTCUSDT, ETHUSDT, USDT
from exchange.funding_rate import (
    FundingCalculator,
    FundingConfig,
    FundingResult,
    PremiumWeighting,
    average_premium,
    funding_cap,
    funding_config_for,
    funding_rate,
    impact_margin_notional,
    premium_index,
    weighting_for,
)
from exchange.funding_schedule import HOUR_MS, FundingSchedule
from exchange.market import LeverageBracket
from exchange.matching import MatchingEngine
from exchange.orders import Side

LINEAR, EQUAL = PremiumWeighting.LINEAR, PremiumWeighting.EQUAL
BTC = funding_config_for(BTCUSDT)  # 8 h, linear, cap 0.3 %


def config(**changes: object) -> FundingConfig:
    return msgspec.structs.replace(BTC, **changes)


# --- Binance's parameters (§2.1, §9) ----------------------------------------------------------


def test_tv_b10_impact_margin_notional() -> None:
    """TV-B10: 200 / 0.008 = 25,000 USDT at 125x; 200 / 0.05 = 4,000 USDT at 20x."""
    assert impact_margin_notional(BTCUSDT) == 25_000 * USDT
    twenty = msgspec.structs.replace(
        BTCUSDT, leverage_brackets=(LeverageBracket(10_000 * USDT, 20, 2_500_000, 0),)
    )
    assert impact_margin_notional(twenty) == 4_000 * USDT
    assert impact_margin_notional(ETHUSDT) == 20_000 * USDT  # this project's ETH: 100x
    assert BTC.impact_notional == 25_000 * USDT


def test_cap_is_three_quarters_of_the_first_maintenance_rate() -> None:
    """§2.1: BTCUSDT ±0.3 % (MMR 0.4 %); DOGE ±0.4875 % (MMR 0.65 %, as ADAUSDT's FAQ example)."""
    assert funding_cap(BTCUSDT) == 300_000
    doge = msgspec.structs.replace(
        BTCUSDT, leverage_brackets=(LeverageBracket(5_000 * USDT, 75, 650_000, 0),)
    )
    assert funding_cap(doge) == 487_500
    assert funding_cap(ETHUSDT) == 375_000  # this project's ETH first tier is 0.5 %


def test_binance_defaults_and_weighting_by_interval() -> None:
    """§2.1: 5 s samples, I = 0.01 %, clamp 0.05 %, linear weights, equal for 1 h."""
    assert (BTC.sample_ms, BTC.interest_rate, BTC.clamp, BTC.weighting) == (
        5_000,
        10_000,
        50_000,
        LINEAR,
    )
    assert weighting_for(8 * HOUR_MS) is LINEAR
    assert weighting_for(4 * HOUR_MS) is LINEAR
    assert weighting_for(HOUR_MS) is EQUAL
    assert weighting_for(60_000) is EQUAL
    hourly = funding_config_for(BTCUSDT, FundingSchedule(interval_ms=HOUR_MS))
    assert hourly.weighting is EQUAL
    with pytest.raises(ValueError):
        config(sample_ms=7_000)  # does not divide 8 h
    with pytest.raises(ValueError):
        config(cap=-1)


# --- The premium index ------------------------------------------------------------------------


def test_premium_index_by_hand() -> None:
    """``P = [max(0, IB − X) − max(0, X − IA)] / X`` at index X = 10,000.0 (100_000 ticks)."""
    assert premium_index(100_100, 100_200, 100_000) == 100_000  # bids 0.1 % over: +0.1 %
    assert premium_index(99_800, 99_900, 100_000) == -100_000  # asks 0.1 % under: −0.1 %
    assert premium_index(99_990, 100_010, 100_000) == 0  # index inside the impact spread
    assert premium_index(100_000, 100_000, 100_000) == 0
    # 1 / 300_000 = 333.33 units: toward zero on both sides.
    assert premium_index(300_001, 300_002, 300_000) == 333
    assert premium_index(299_998, 299_999, 300_000) == -333
    assert premium_index(Fraction(200_001, 2), 100_010, 100_000) == 500  # 0.5 tick over
    assert premium_index(None, 100_010, 100_000) is None  # bid side cannot absorb IMN
    assert premium_index(99_990, None, 100_000) is None
    assert premium_index(99_990, 100_010, None) is None


def test_premium_index_from_a_real_book() -> None:
    """Impact prices of 25,000 USDT from the matching core's book (BTCUSDT, tick 0.1)."""
    book = MatchingEngine(BTCUSDT)
    notional = BTC.impact_notional
    book.process(PlaceOrder(order_id=1, account=1, side=Side.SELL, qty=200, price=600_100))
    book.process(PlaceOrder(order_id=2, account=1, side=Side.SELL, qty=1_000, price=600_200))
    book.process(PlaceOrder(order_id=3, account=1, side=Side.BUY, qty=100, price=599_900))
    # 0.2 BTC at 60,010.0 is 12,002 USDT; the other 12,998 take 12,998 / 60,020 BTC at
    # 60,020.0: impact ask = 25,000 / 0.41656… = 60,015.1988 (7_502_500_000 / 12_501 ticks).
    impact_ask = book.impact_price(Side.BUY, notional)
    assert impact_ask == Fraction(7_502_500_000, 12_501)
    # The bid side holds 0.1 BTC (5,999 USDT): no impact bid, so no sample.
    assert book.impact_price(Side.SELL, notional) is None
    assert premium_index(book.impact_price(Side.SELL, notional), impact_ask, 600_500) is None
    book.process(PlaceOrder(order_id=4, account=1, side=Side.BUY, qty=1_000, price=599_800))
    impact_bid = book.impact_price(Side.SELL, notional)
    assert impact_bid is not None and impact_bid < 600_500
    # Index 60,050.0: asks are 34.80 under it, (60,050 − 60,015.1988) / 60,050 = −0.057953 %.
    assert premium_index(impact_bid, impact_ask, 600_500) == -57_953


def test_average_premium_weights_point_t_by_t() -> None:
    """§2.1: ``P̄ = Σ t·P_t / Σ t``; equal weights for 1 h; a point with no sample drops out."""
    assert average_premium([100, 200, 400], LINEAR) == Fraction(100 + 400 + 1_200, 6)
    assert average_premium([100, 200, 400], EQUAL) == Fraction(700, 3)
    assert average_premium([100, None, 400], LINEAR) == Fraction(100 + 1_200, 4)
    assert average_premium([100, None, 400], EQUAL) == 250
    assert average_premium([], LINEAR) == 0
    assert average_premium([None, None], LINEAR) == 0


# --- The rate ---------------------------------------------------------------------------------


def rate(average: int | Fraction, cfg: FundingConfig = BTC) -> int:
    return funding_rate(Fraction(average), cfg)[0]


def test_dead_zone_gives_exactly_the_interest_rate() -> None:
    """§2.1: P̄ in [−0.04 %, +0.06 %] → F = I = 0.01 %; one unit outside, F leaves I."""
    for average in (-40_000, -12_345, 0, 10_000, 59_999, 60_000, Fraction(1, 3)):
        assert rate(average) == 10_000
    assert rate(-40_001) == 9_999  # P̄ + 0.05 %
    assert rate(60_001) == 10_001  # P̄ − 0.05 %


def test_rate_outside_the_dead_zone_negative_premium_and_caps() -> None:
    assert rate(100_000) == 50_000  # +0.1 % − 0.05 %
    assert rate(-200_000) == -150_000  # −0.2 % + 0.05 %: shorts pay longs
    assert rate(350_000) == 300_000  # exactly at the cap
    assert funding_rate(Fraction(1_000_000), BTC) == (300_000, 950_000)  # capped at +0.3 %
    assert funding_rate(Fraction(-1_000_000), BTC) == (-300_000, -950_000)  # floored at −0.3 %
    assert rate(-1_000_000, config(cap=2_000_000)) == -950_000  # a ±2 % market: not capped


def test_rate_rounds_toward_zero() -> None:
    assert rate(Fraction(300_001, 3)) == 50_000  # 50_000.33 → 50_000
    assert rate(Fraction(-600_001, 3)) == -150_000  # −150_000.33 → −150_000


def test_other_intervals_scale_the_whole_rate_by_n_over_8() -> None:
    """§2.1 (from 2025-09-18): F = [P̄ + clamp(I − P̄, ±0.05 %)] / (8/N)."""
    four = config(schedule=FundingSchedule(interval_ms=4 * HOUR_MS))
    hourly = funding_config_for(BTCUSDT, FundingSchedule(interval_ms=HOUR_MS))
    minute = funding_config_for(BTCUSDT, FundingSchedule(interval_ms=60_000))
    assert rate(0, four) == 5_000
    assert rate(0, hourly) == 1_250
    assert rate(0, minute) == 20  # 10_000 / 480 = 20.83 → 20
    assert rate(-200_000, hourly) == -18_750
    assert rate(-200_000, minute) == -312  # −312.5 → −312
    assert rate(10_000_000, hourly) == 300_000  # the cap applies to the scaled rate


@given(
    st.fractions(min_value=-(10**8), max_value=10**8),
    st.integers(0, 3_000_000),
    st.sampled_from([60_000, HOUR_MS, 4 * HOUR_MS, 8 * HOUR_MS]),
)
def test_rate_is_always_within_the_cap(average: Fraction, cap: int, interval: int) -> None:
    cfg = config(cap=cap, schedule=FundingSchedule(interval_ms=interval))
    capped, uncapped = funding_rate(average, cfg)
    assert -cap <= capped <= cap
    assert capped == max(-cap, min(cap, uncapped))


# --- The calculator on event time -------------------------------------------------------------

X = 100_000  # the index in these scenarios


def book_with(premium: int | None) -> tuple[int | None, int | None]:
    """Impact bid and ask that give ``premium`` (in units of 1e-5 = 1 tick at X) at index X."""
    if premium is None:
        return None, X + 10
    if premium >= 0:
        return X + premium, X + premium + 10
    return X + premium - 10, X + premium


SMALL = config(
    schedule=FundingSchedule(interval_ms=20_000),
    quote_interval_ms=20_000,  # no N/8 scaling, to read the rates directly
    weighting=LINEAR,
    cap=5_000_000,
)
"""Four 5 s points per interval: slots 1 … 4 at 0, 5, 10 and 15 s after each boundary."""


def test_linear_weights_over_one_interval_and_the_predicted_rate() -> None:
    calc = FundingCalculator(SMALL, start=0)
    assert calc.advance(0, *book_with(1_000), X) == ()  # nothing before 0
    assert calc.advance(5_000, *book_with(1_000), X) == ()  # point 0: +1 %
    assert not calc.due(5_000)  # point 5 s is the state after every update at 5 s
    assert calc.advance(12_000, *book_with(500), X) == ()  # points 5 s, 10 s: +0.5 %
    predicted = calc.predicted()
    # (1·1 % + 2·0.5 % + 3·0.5 %) / 6 = 0.58333 %; F = P̄ − 0.05 %.
    assert (predicted.average_premium, predicted.rate, predicted.samples) == (583_333, 533_333, 3)
    assert (predicted.funding_time, predicted.final) == (20_000, False)
    assert calc.due(20_000)
    (settled,) = calc.advance(20_000, *book_with(0), X)  # point 15 s: 0; then the boundary
    # (1·1 % + 2·0.5 % + 3·0.5 % + 4·0) / 10 = 0.35 %; F = 0.30 %.
    assert (settled.funding_time, settled.average_premium, settled.rate) == (
        20_000,
        350_000,
        300_000,
    )
    assert (settled.samples, settled.final) == (4, True)
    assert calc.last_settled == settled
    assert calc.next_funding_time == 40_000
    assert calc.advance(20_000, *book_with(0), X) == ()  # a boundary settles once
    assert calc.advance(19_000, *book_with(0), X) == ()  # and time never runs back


def test_equal_weights_give_the_plain_mean() -> None:
    calc = FundingCalculator(msgspec.structs.replace(SMALL, weighting=EQUAL), start=0)
    calc.advance(5_000, *book_with(1_000), X)  # point 0: +1 %
    calc.advance(12_000, *book_with(500), X)
    (settled,) = calc.advance(20_000, *book_with(0), X)
    assert (settled.average_premium, settled.rate) == (500_000, 450_000)  # (1 + 0.5·2 + 0) / 4


def test_a_gap_over_two_boundaries_settles_each_from_its_own_samples() -> None:
    calc = FundingCalculator(SMALL, start=0)
    settled = calc.advance(45_000, *book_with(2_000), X)  # a quiet 45 s at +2 %
    assert [s.funding_time for s in settled] == [20_000, 40_000]
    assert [(s.samples, s.rate) for s in settled] == [(4, 1_950_000), (4, 1_950_000)]
    assert calc.predicted().samples == 1  # point 40 s of the third interval


def test_starting_mid_interval_keeps_the_slots_weights() -> None:
    calc = FundingCalculator(SMALL, start=7_000)  # first point: 10 s, slot 3
    calc.advance(12_000, *book_with(1_000), X)
    (settled,) = calc.advance(20_000, *book_with(-1_000), X)
    # (3·1 % + 4·(−1 %)) / 7 = −0.142857 %; F = P̄ + 0.05 %.
    assert (settled.samples, settled.average_premium, settled.rate) == (2, -142_857, -92_857)


def test_empty_book_side_skips_samples_and_no_samples_give_the_interest_rate() -> None:
    calc = FundingCalculator(SMALL, start=0)
    calc.advance(10_000, *book_with(None), X)  # points 0, 5 s: no impact bid
    (settled,) = calc.advance(20_000, *book_with(2_000), X)  # points 10 s, 15 s: +2 %
    assert (settled.samples, settled.average_premium) == (2, 2_000_000)  # only what was measured
    (empty,) = calc.advance(40_000, *book_with(None), X)
    assert (empty.samples, empty.average_premium, empty.rate) == (0, 0, 10_000)  # I = 0.01 %
    (no_index,) = calc.advance(60_000, *book_with(2_000), None)
    assert (no_index.samples, no_index.rate) == (0, 10_000)


def test_a_premium_measured_elsewhere_drives_the_calculator_as_the_book_does() -> None:
    """``advance_premium`` (the funding service's entry: the oracle measures P) takes the same
    samples and settles the same rates as ``advance`` from impact prices."""
    by_book, by_premium = FundingCalculator(SMALL, start=0), FundingCalculator(SMALL, start=0)
    settled: list[FundingResult] = []
    for now, premium in ((5_000, 1_000), (12_000, None), (20_000, 500), (45_000, -2_000)):
        state = book_with(premium)
        expected = by_book.advance(now, *state, X)
        assert by_premium.advance_premium(now, premium_index(*state, X)) == expected
        settled += expected
        assert by_premium.predicted() == by_book.predicted()
    assert [s.funding_time for s in settled] == [20_000, 40_000]


def test_a_full_binance_interval_has_5760_samples() -> None:
    """§2.1: one sample every 5 s is 5,760 points in 8 h."""
    calc = FundingCalculator(BTC, start=0)
    (settled,) = calc.advance(8 * HOUR_MS, *book_with(100), X)  # a constant +0.1 %
    assert (settled.samples, settled.average_premium, settled.rate) == (5_760, 100_000, 50_000)
    assert settled.funding_time == 8 * HOUR_MS


premium_points = st.lists(st.one_of(st.none(), st.integers(-3_000, 3_000)), min_size=1, max_size=40)


@given(premium_points, st.sampled_from(PremiumWeighting))
def test_calculator_agrees_with_the_formula(
    points: list[int | None], weighting: PremiumWeighting
) -> None:
    cfg = config(schedule=FundingSchedule(interval_ms=5_000 * len(points)), weighting=weighting)
    calc = FundingCalculator(cfg, start=0)
    for k, premium in enumerate(points):
        assert calc.advance(5_000 * k + 1, *book_with(premium), X) == ()
    (settled,) = calc.advance(5_000 * len(points), None, None, None)
    in_units = [None if p is None else p * 1_000 for p in points]  # 1 tick at X is 1e-5
    expected = funding_rate(average_premium(in_units, weighting), cfg)[0]
    assert settled.rate == expected
    assert settled.samples == sum(p is not None for p in points)


@given(st.integers(-50_000, 50_000), st.lists(st.integers(0, 30_000), max_size=12))
def test_settlements_are_exactly_the_boundaries_passed(start: int, steps: list[int]) -> None:
    schedule = FundingSchedule(interval_ms=10_000, phase_ms=2_500)
    cfg = config(schedule=schedule)
    calc = FundingCalculator(cfg, start=start)
    now, times = start, []
    for step in steps:
        now += step
        times += [s.funding_time for s in calc.advance(now, *book_with(10), X)]
    assert times == list(schedule.boundaries_between(start, now))
