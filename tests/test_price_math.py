"""Rounding to the tick and medians (exchange/price_math.py): by hand and as properties."""

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exchange.price_math import median, round_half_even, weighted_median


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Fraction(201, 2), 100),  # 100.5: exact half, to the even neighbour below
        (Fraction(203, 2), 102),  # 101.5: exact half, to the even neighbour above
        (Fraction(-5, 2), -2),
        (Fraction(-7, 2), -4),
        (Fraction(1, 2), 0),
        (Fraction(3, 2), 2),
        (Fraction(1001, 10), 100),  # below the half: down
        (Fraction(1006, 10), 101),  # above the half: up
        (Fraction(-1006, 10), -101),
        (Fraction(7), 7),
    ],
)
def test_round_half_even_by_hand(value: Fraction, expected: int) -> None:
    assert round_half_even(value) == expected


@given(st.integers(-(10**12), 10**12), st.integers(1, 10**6))
def test_round_half_even_is_nearest_and_agrees_with_python(num: int, den: int) -> None:
    value = Fraction(num, den)
    result = round_half_even(value)
    assert abs(value - result) <= Fraction(1, 2)
    assert result == round(value)  # Fraction.__round__ is documented as half to even


def test_median_odd_even_and_empty() -> None:
    assert median([3, 1, 2]) == 2
    assert median([4, 1, 3, 2]) == Fraction(5, 2)  # mean of the middle two, kept exact
    assert median([Fraction(1, 3)]) == Fraction(1, 3)
    with pytest.raises(ValueError):
        median([])


def test_weighted_median_by_hand() -> None:
    # Running weights 1, 2, 7 of a total 7: the first to pass 3.5 is 102.
    assert weighted_median([(100, 1), (101, 1), (102, 5)]) == 102
    # Tie: 3 of 6 at 100 exactly, so the median is halfway to the next price, 104.
    assert weighted_median([(104, 1), (100, 3), (106, 2)]) == 102
    # A tie between neighbours a tick apart leaves an exact half tick.
    assert weighted_median([(100, 1), (101, 1)]) == Fraction(201, 2)
    # Equal prices are one price.
    assert weighted_median([(100, 1), (100, 1)]) == 100
    assert weighted_median([(100, 1), (100, 1), (90, 1), (120, 1)]) == 100
    with pytest.raises(ValueError):
        weighted_median([])
    with pytest.raises(ValueError):
        weighted_median([(100, 0)])


weighted_items = st.lists(st.tuples(st.integers(1, 1000), st.integers(1, 20)), min_size=1)


@given(weighted_items)
def test_weighted_median_splits_the_weight(items: list[tuple[int, int]]) -> None:
    """No more than half the weight lies strictly below it, nor strictly above it."""
    result = weighted_median(items)
    total = sum(weight for _, weight in items)
    assert 2 * sum(w for p, w in items if p < result) <= total
    assert 2 * sum(w for p, w in items if p > result) <= total
    assert min(p for p, _ in items) <= result <= max(p for p, _ in items)


@given(st.lists(st.integers(1, 1000), min_size=1), st.integers(1, 7))
def test_weighted_median_with_equal_weights_is_the_median(prices: list[int], weight: int) -> None:
    assert weighted_median([(price, weight) for price in prices]) == median(prices)


@given(weighted_items, st.integers(2, 9))
def test_weighted_median_ignores_the_scale_of_weights(
    items: list[tuple[int, int]], factor: int
) -> None:
    assert weighted_median([(p, w * factor) for p, w in items]) == weighted_median(items)
