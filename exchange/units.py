"""Conversion between decimal strings (the edges) and integer units (everything inside).

Prices are integers in ticks, quantities in lots, money in minor units of the settlement asset,
and rates in units of 1e-8 (``RATE_ONE`` is 100 %). Decimal strings exist only where data
enters or leaves the system; a value that is not on its grid is an error, never rounded.
"""

from decimal import Context, Decimal, InvalidOperation, localcontext
from functools import cache

RATE_ONE = 100_000_000
"""A rate of 1.0 (100 %) in rate units; 0.01 % is 10_000."""

MAX_UNITS = 2**63 - 1
"""Largest integer any price, quantity or amount may take (fits a signed 64-bit field)."""


_EXACT = Context(prec=80)
"""Enough digits for any value ``to_units`` accepts (at most 31 integer digits) over any step."""


def ceil_div(a: int, b: int) -> int:
    """``a / b`` rounded up, exactly, for ``b > 0``: the rounding of every amount the exchange
    is owed (fees, margin requirements), so that rounding never favours the payer."""
    return -(-a // b)


class UnitError(ValueError):
    """A decimal string that cannot become an integer number of units."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def to_units(text: str, step: Decimal, what: str = "value") -> int:
    """Return ``text`` as an exact positive integer multiple of ``step``.

    Rejects (``UnitError.reason``): ``not_a_number`` (garbage, NaN, infinity), ``not_positive``
    (zero or negative), ``off_grid`` (not a multiple of ``step``), ``too_large`` (over 2**63-1).
    """
    try:
        value = Decimal(text.strip())
    except (InvalidOperation, AttributeError):
        raise UnitError("not_a_number", f"{what} {text!r} is not a decimal number") from None
    if not value.is_finite():
        raise UnitError("not_a_number", f"{what} {text!r} is not a finite number")
    if value <= 0:
        raise UnitError("not_positive", f"{what} {text!r} must be positive")
    if value.adjusted() > 30:
        raise UnitError("too_large", f"{what} {text!r} is too large")
    with localcontext(_EXACT):  # the default 28 digits cannot hold 1e30 / 0.001 exactly
        units, remainder = divmod(value, step)
    if remainder != 0:
        raise UnitError("off_grid", f"{what} {text!r} is not a multiple of {step}")
    if units > MAX_UNITS:
        raise UnitError("too_large", f"{what} {text!r} is too large")
    return int(units)


def from_units(units: int, step: Decimal | str) -> str:
    """Return ``units`` × ``step`` as a plain decimal string with the step's number of places.

    Integer arithmetic on the step's scale, not ``Decimal``: every price and quantity a
    gateway pushes goes through here, and the ``Decimal`` product and its formatting were a
    tenth of the gateway's time under load. Exact all the same (``tests/test_units.py`` checks
    it against the ``Decimal`` formatting)."""
    multiplier, places = _scale(str(step))
    value = units * multiplier
    if not places:
        return str(value)
    digits = str(abs(value)).rjust(places + 1, "0")
    sign = "-" if value < 0 else ""
    return f"{sign}{digits[:-places]}.{digits[-places:]}"


@cache
def _scale(step: str) -> tuple[int, int]:
    """``step`` as ``multiplier`` × 10^-``places``, both whole and ``places`` ≥ 0. Keyed by
    the text, because ``Decimal("0.10") == Decimal("0.1")`` but they print differently; a
    market has a handful of steps, so the cache stays small."""
    exact = Decimal(step)
    exponent = exact.as_tuple().exponent
    places = -exponent if isinstance(exponent, int) and exponent < 0 else 0
    return int(exact.scaleb(places)), places


def rate_from_str(text: str) -> int:
    """Parse a rate written as a fraction (``"0.0002"`` is 0.02 %) into rate units, exactly."""
    try:
        value = Decimal(text.strip())
    except (InvalidOperation, AttributeError):
        raise UnitError("not_a_number", f"rate {text!r} is not a decimal number") from None
    if not value.is_finite():
        raise UnitError("not_a_number", f"rate {text!r} is not a finite number")
    scaled = value * RATE_ONE
    if scaled != scaled.to_integral_value():
        raise UnitError("off_grid", f"rate {text!r} has more than 8 decimal places")
    return int(scaled)
