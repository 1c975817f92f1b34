"""Decimal strings at the edges become exact integers or a clear error, never a rounded value."""

from decimal import Context, Decimal, localcontext

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exchange.market import MarketSpec
from exchange.units import (
    MAX_UNITS,
    UnitError,
    ceil_div,
    from_units,
    rate_from_str,
    to_units,
)

TICK = Decimal("0.1")


@pytest.mark.parametrize(
    ("text", "expected"),
    [("123.4", 1234), ("0.1", 1), ("7", 70), (" 5.50 ", 55), ("1E+3", 10_000)],
)
def test_values_on_the_grid_convert_exactly(text: str, expected: int) -> None:
    assert to_units(text, TICK) == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("abc", "not_a_number"),
        ("", "not_a_number"),
        ("NaN", "not_a_number"),
        ("-Infinity", "not_a_number"),
        ("0", "not_positive"),
        ("-0.1", "not_positive"),
        ("123.45", "off_grid"),
        ("1e30", "too_large"),
        ("1e40", "too_large"),
        (str(MAX_UNITS + 1), "too_large"),
    ],
)
def test_bad_values_are_rejected_with_a_reason(text: str, reason: str) -> None:
    with pytest.raises(UnitError) as error:
        to_units(text, TICK)
    assert error.value.reason == reason


def test_largest_representable_value_is_accepted() -> None:
    assert to_units(str(MAX_UNITS), Decimal(1)) == MAX_UNITS


def test_round_trip_keeps_the_steps_places() -> None:
    spec = MarketSpec(symbol="X", tick_size="0.10", lot_size="0.001")
    assert spec.ticks_to_str(12345) == "1234.50"
    assert spec.lots_to_str(1) == "0.001"
    assert spec.price_to_ticks(spec.ticks_to_str(12345)) == 12345


def test_rates_are_parsed_exactly_to_eight_places() -> None:
    assert rate_from_str("0.0002") == 20_000
    assert rate_from_str("-0.00000001") == -1
    with pytest.raises(UnitError):
        rate_from_str("0.000000001")


def test_a_spec_whose_grid_is_not_whole_minor_units_is_refused() -> None:
    with pytest.raises(ValueError, match="minor units"):
        MarketSpec(symbol="X", tick_size="0.1", lot_size="0.001", settle_decimals=2).validate()


@pytest.mark.parametrize(("a", "b", "expected"), [(7, 2, 4), (6, 2, 3), (-7, 2, -3), (0, 5, 0)])
def test_ceil_div_rounds_up_exactly(a: int, b: int, expected: int) -> None:
    assert ceil_div(a, b) == expected


@given(
    units=st.integers(min_value=-(2**70), max_value=2**70),
    step=st.sampled_from(["0.1", "0.5", "0.001", "0.10", "0.00000001", "1", "5", "1E+1", "25"]),
    as_decimal=st.booleans(),
)
def test_from_units_writes_what_decimal_writes(units: int, step: str, as_decimal: bool) -> None:
    """The integer formatting is the ``Decimal`` product formatted with the step's places,
    for negative amounts, zero, steps with a trailing zero or a positive exponent alike."""
    exponent = Decimal(step).as_tuple().exponent
    assert isinstance(exponent, int)
    places = max(0, -exponent)
    with localcontext(Context(prec=100)):
        expected = f"{Decimal(units) * Decimal(step):.{places}f}"
    assert from_units(units, Decimal(step) if as_decimal else step) == expected
