"""The fast ADL queue (``liquidation.adl_queue``) against the exact one (``adl_order``)."""

from fractions import Fraction

from hypothesis import given
from hypothesis import strategies as st

from exchange import liquidation


def exact(ratios: list[tuple[int, int, int]]) -> list[int]:
    return liquidation.adl_order([(a, Fraction(n, d)) for a, n, d in ratios])


def test_scores_too_close_for_a_float_are_still_told_apart() -> None:
    big = 10**20
    ratios = [(1, big, big + 1), (2, big + 1, big + 1), (3, big - 1, big + 1), (4, 1, 1)]
    assert float(Fraction(big, big + 1)) == float(Fraction(big - 1, big + 1)) == 1.0
    assert liquidation.adl_queue(ratios) == [2, 4, 1, 3] == exact(ratios)


def test_equal_scores_go_by_account_and_zero_scores_last() -> None:
    ratios = [(9, 0, 1), (5, 2, 4), (3, 1, 2), (7, 3, 6), (1, 0, 1), (8, 3, 4)]
    assert liquidation.adl_queue(ratios) == [8, 3, 5, 7, 1, 9] == exact(ratios)


def test_an_empty_side_has_an_empty_queue() -> None:
    assert liquidation.adl_queue([]) == []


scores = st.tuples(st.integers(0, 10**30), st.integers(1, 10**30))


@given(st.lists(scores, max_size=40))
def test_the_fast_queue_is_the_exact_one(pairs: list[tuple[int, int]]) -> None:
    ratios = [(account, n, d) for account, (n, d) in enumerate(pairs, start=1)]
    ratios += [(100 + a, n * 3, d * 3) for a, n, d in ratios[:5]]  # equal scores, other terms
    assert liquidation.adl_queue(ratios) == exact(ratios)
