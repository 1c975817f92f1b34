"""Exact rational helpers of the price oracle: rounding to the tick grid and medians.

The index, the mark and their components are exact rationals (``Fraction``) until they are
published; only then are they rounded to whole ticks, once, by ``round_half_even``. Medians are
computed on the exact values: rounding is monotone, so the median of rounded values equals the
rounded median, and it does not matter to the result which of the two a reader has in mind.
"""

from collections.abc import Sequence
from fractions import Fraction


def round_half_even(value: Fraction) -> int:
    """``value`` rounded to the nearest integer; an exact half goes to the even neighbour.

    Used for prices (index, mark and their components), where nobody is owed the difference:
    to nearest keeps the error within half a tick, and half-to-even keeps exact halves, which are
    common (a one-tick spread puts every mid-price on a half tick), from leaning one way.
    """
    quotient, remainder = divmod(value.numerator, value.denominator)  # floor, 0 <= r < den
    twice = 2 * remainder
    if twice > value.denominator or (twice == value.denominator and quotient % 2 == 1):
        quotient += 1
    return quotient


def median(values: Sequence[Fraction | int]) -> Fraction:
    """The middle value of ``values``; for an even count, the mean of the two middle ones.

    Exact (no rounding): the mean of two integers is kept as a half if it is one.
    """
    if not values:
        raise ValueError("the median of no values is undefined")
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return Fraction(ordered[middle])
    return Fraction(ordered[middle - 1] + ordered[middle], 2)


def weighted_median(items: Sequence[tuple[int, int]]) -> Fraction:
    """The weighted median of ``(price, weight)`` pairs (weights positive), exactly.

    Sorted by price, it is the first price at which the running weight reaches half the total.
    Tie rule: if the running weight equals exactly half the total at some price, the prices
    below and above split the weight evenly and the median is the mean of that price and the
    next higher one. With equal weights this is the ordinary median (``median``), including
    its even-count rule, so switching the index method never changes an equal-weight index.
    """
    if not items:
        raise ValueError("the weighted median of no values is undefined")
    if any(weight <= 0 for _, weight in items):
        raise ValueError("weights must be positive")
    ordered = sorted(items)
    total = sum(weight for _, weight in ordered)
    running = 0
    for position, (price, weight) in enumerate(ordered):
        running += weight
        if 2 * running > total:
            return Fraction(price)
        if 2 * running == total:
            return Fraction(price + ordered[position + 1][0], 2)
    raise AssertionError("unreachable: the running weight reaches the total")
