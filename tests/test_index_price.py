"""The index price from several sources (exchange/index_price.py), §1.1's rules by hand.

Prices are in ticks; with a 0.1 tick, 100_000 ticks is 10,000.0.
"""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exchange.index_price import (
    IndexBasis,
    IndexCalculator,
    IndexConfig,
    IndexMethod,
    IndexSource,
    SourceChange,
    SourceState,
    source_changes,
)

INCLUDED, STALE, DEVIANT, NO_DATA = (
    SourceState.INCLUDED,
    SourceState.STALE,
    SourceState.DEVIANT,
    SourceState.NO_DATA,
)


def calculator(
    weights: dict[str, int], method: IndexMethod = IndexMethod.WEIGHTED_AVERAGE
) -> IndexCalculator:
    sources = tuple(IndexSource(name, weight) for name, weight in weights.items())
    return IndexCalculator(IndexConfig(sources=sources, method=method))


def fed(calc: IndexCalculator, prices: dict[str, int], time: int = 0) -> IndexCalculator:
    for source, price in prices.items():
        assert calc.update(source, price, time)
    return calc


def test_weighted_average_by_hand_and_its_rounding_at_halves() -> None:
    """§1.1: Σ w·p / Σ w, then to the tick, half to even."""
    calc = fed(calculator({"a": 1, "b": 1, "c": 2}), {"a": 100_000, "b": 100_002, "c": 100_004})
    result = calc.compute(0)
    # (100_000 + 100_002 + 2 × 100_004) / 4 = 100_002.5: an exact half, to the even 100_002.
    assert (result.price, result.basis, result.frozen) == (
        100_002,
        IndexBasis.WEIGHTED_AVERAGE,
        False,
    )
    assert result.included == ("a", "b", "c")
    calc.update("a", 100_001, 1)
    # 400_011 / 4 = 100_002.75 → 100_003.
    assert calc.compute(1).price == 100_003
    calc.update("a", 100_004, 2)
    calc.update("b", 100_006, 2)
    calc.update("c", 100_003, 2)
    # 400_016 / 4 = 100_004 exactly.
    assert calc.compute(2).price == 100_004
    two = fed(calculator({"a": 1, "b": 1}), {"a": 100_001, "b": 100_002})
    assert two.compute(0).price == 100_002  # 100_001.5 → the even neighbour above


def test_single_source_is_the_index() -> None:
    calc = fed(calculator({"feed": 3}), {"feed": 123_457})
    assert calc.compute(0).price == 123_457


def test_stale_source_is_excluded_and_recovers_with_its_next_update() -> None:
    """§1.1: no update for 10 s → weight 0. At exactly 10 s a source is still live."""
    calc = fed(calculator({"a": 1, "b": 1, "c": 1}), {"a": 100_000, "b": 100_010, "c": 100_020})
    calc.update("b", 100_010, 5_000)
    calc.update("c", 100_020, 5_000)
    at_10s = calc.compute(10_000)
    assert at_10s.states == {"a": INCLUDED, "b": INCLUDED, "c": INCLUDED}
    assert at_10s.price == 100_010
    past = calc.compute(10_001)
    assert past.states == {"a": STALE, "b": INCLUDED, "c": INCLUDED}
    assert past.price == 100_015  # (100_010 + 100_020) / 2
    assert source_changes(at_10s, past) == (SourceChange(source="a", before=INCLUDED, after=STALE),)
    assert calc.update("a", 100_003, 12_000)
    back = calc.compute(12_000)
    assert back.states["a"] is INCLUDED
    assert back.price == 100_011  # 300_033 / 3
    assert source_changes(past, back) == (SourceChange(source="a", before=STALE, after=INCLUDED),)


def test_deviant_source_gets_weight_zero_and_recovers_within_the_bound() -> None:
    """§1.1: more than 5 % from the median of all sources → weight 0. Exactly 5 % is in."""
    calc = fed(calculator({"a": 1, "b": 1, "c": 1}), {"a": 100_000, "b": 100_000, "c": 105_000})
    exactly = calc.compute(0)
    assert exactly.states["c"] is INCLUDED  # 5_000 / 100_000 = 5 %: not more than 5 %
    assert exactly.price == 101_667  # 305_000 / 3 = 101_666.67
    calc.update("c", 105_001, 1)
    beyond = calc.compute(1)
    assert beyond.states == {"a": INCLUDED, "b": INCLUDED, "c": DEVIANT}
    assert (beyond.price, beyond.basis) == (100_000, IndexBasis.WEIGHTED_AVERAGE)
    calc.update("c", 100_100, 2)
    recovered = calc.compute(2)
    assert recovered.states["c"] is INCLUDED
    assert recovered.price == 100_033  # 300_100 / 3 = 100_033.3


def test_more_than_one_deviant_source_switches_to_the_median_of_all() -> None:
    """§1.1: if more than one source deviates, the median of all sources is the index."""
    prices = {"a": 100_000, "b": 100_010, "c": 100_020, "d": 110_000, "e": 90_000}
    calc = fed(calculator(dict.fromkeys(prices, 1)), prices)
    result = calc.compute(0)
    assert result.states == {
        "a": INCLUDED,
        "b": INCLUDED,
        "c": INCLUDED,
        "d": DEVIANT,
        "e": DEVIANT,
    }
    assert (result.price, result.basis) == (100_010, IndexBasis.MEDIAN)


def test_two_sources_far_apart_both_deviate_and_the_index_is_their_midpoint() -> None:
    calc = fed(calculator({"a": 1, "b": 3}), {"a": 100_000, "b": 120_001})
    result = calc.compute(0)
    assert result.states == {"a": DEVIANT, "b": DEVIANT}
    # The plain median of all, unweighted: 110_000.5, an exact half → 110_000.
    assert (result.price, result.basis) == (110_000, IndexBasis.MEDIAN)


def test_all_sources_stale_freezes_the_index_until_one_recovers() -> None:
    calc = calculator({"a": 1, "b": 1})
    empty = calc.compute(0)
    assert (empty.price, empty.frozen, empty.basis) == (None, True, IndexBasis.FROZEN)
    assert empty.states == {"a": NO_DATA, "b": NO_DATA}
    fed(calc, {"a": 100_000, "b": 100_010})
    live = calc.compute(1_000)
    assert (live.price, live.frozen) == (100_005, False)
    frozen = calc.compute(10_001)
    assert (frozen.price, frozen.frozen, frozen.basis) == (100_005, True, IndexBasis.FROZEN)
    assert frozen.states == {"a": STALE, "b": STALE}
    assert frozen.included == ()
    assert calc.last == 100_005
    calc.update("b", 100_500, 20_000)
    thawed = calc.compute(20_000)
    assert (thawed.price, thawed.frozen) == (100_500, False)
    assert thawed.states == {"a": STALE, "b": INCLUDED}


def test_updates_out_of_order_are_ignored() -> None:
    calc = fed(calculator({"a": 1}), {"a": 100_000}, time=5_000)
    assert not calc.update("a", 90_000, 4_999)
    assert calc.compute(5_000).price == 100_000
    assert calc.update("a", 100_100, 5_000)  # the same time: the later message wins
    assert calc.compute(5_000).price == 100_100
    with pytest.raises(ValueError):
        calc.update("nobody", 100_000, 6_000)
    with pytest.raises(ValueError):
        calc.update("a", 0, 6_000)


def test_weighted_median_method_and_its_tie_rule() -> None:
    prices = {"a": 100_000, "b": 100_001, "c": 100_004}
    calc = fed(calculator({"a": 1, "b": 1, "c": 2}, IndexMethod.WEIGHTED_MEDIAN), prices)
    tied = calc.compute(0)
    # Running weights 1, 2 of 4: a tie at b, so halfway to c: 100_002.5, half to even → 100_002.
    assert (tied.price, tied.basis) == (100_002, IndexBasis.WEIGHTED_MEDIAN)
    heavy = fed(calculator({"a": 1, "b": 1, "c": 3}, IndexMethod.WEIGHTED_MEDIAN), prices)
    assert heavy.compute(0).price == 100_004
    # A deviant source is out of the weighted median too.
    deviant = fed(
        calculator({"a": 1, "b": 1, "c": 5}, IndexMethod.WEIGHTED_MEDIAN),
        {"a": 100_000, "b": 100_002, "c": 110_000},
    )
    result = deviant.compute(0)
    assert result.states["c"] is DEVIANT
    assert result.price == 100_001  # a and b tie at 1 of 2: their midpoint
    split = fed(
        calculator({"a": 1, "b": 1}, IndexMethod.WEIGHTED_MEDIAN), {"a": 100_000, "b": 120_000}
    )
    assert (split.compute(0).price, split.compute(0).basis) == (110_000, IndexBasis.MEDIAN)


def test_source_changes_from_nothing_and_config_validation() -> None:
    calc = fed(calculator({"a": 1, "b": 1}), {"a": 100_000})
    first = calc.compute(0)
    assert source_changes(None, first) == (
        SourceChange(source="a", before=None, after=INCLUDED),
        SourceChange(source="b", before=None, after=NO_DATA),
    )
    assert source_changes(first, calc.compute(1)) == ()
    with pytest.raises(ValueError):
        IndexConfig(sources=())
    with pytest.raises(ValueError):
        IndexConfig(sources=(IndexSource("a"), IndexSource("a")))
    with pytest.raises(ValueError):
        IndexConfig(sources=(IndexSource("a", 0),))
    with pytest.raises(ValueError):
        IndexConfig(sources=(IndexSource("a"),), max_deviation=0)


source_feeds = st.lists(
    st.tuples(st.integers(90_000, 112_000), st.integers(0, 30_000), st.integers(1, 5)),
    min_size=1,
    max_size=7,
)


@given(source_feeds, st.sampled_from(IndexMethod), st.integers(0, 40_000))
def test_index_lies_within_the_live_sources(
    feeds: list[tuple[int, int, int]], method: IndexMethod, now: int
) -> None:
    names = [f"s{i}" for i in range(len(feeds))]
    calc = calculator(
        {name: weight for name, (_, _, weight) in zip(names, feeds, strict=True)}, method
    )
    calc.update(names[0], 100_000, -1)  # so that a frozen index has a last value
    calc.compute(-1)
    for name, (price, time, _) in zip(names, feeds, strict=True):
        calc.update(name, price, time)
    result = calc.compute(now)
    live = {s.source: s.price for s in result.sources if s.state in (INCLUDED, DEVIANT)}
    stale = {s.source for s in result.sources if s.state is STALE}
    assert all(
        now - time > 10_000
        for name, (_, time, _) in zip(names, feeds, strict=True)
        if name in stale
    )
    assert result.frozen == (not live)
    assert result.price is not None
    if result.frozen:
        assert result.price == 100_000  # the index computed at -1
        return
    prices = [p for p in live.values() if p is not None]
    assert min(prices) <= result.price <= max(prices)
    included = [s.price for s in result.sources if s.state is INCLUDED and s.price is not None]
    if result.basis is not IndexBasis.MEDIAN:
        assert included and min(included) <= result.price <= max(included)
