"""Parsing of the values the readers meet, each failure a ``MarketDataError`` that says where.

Decimals are parsed exactly (never through a float); integers only from digits; times are
brought to milliseconds by their magnitude (``time_ms``).
"""

import re
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from load.marketdata.records import MarketDataError

_DIGITS = re.compile(r"[0-9]{1,19}")
_MAX_EXPONENT = 30
"""A price or quantity above 10^30 is no market's: refused rather than carried (a value like
``1e999999`` would make every later conversion slow)."""
_MS_LIMIT = 10**14
"""Times below this are milliseconds (10^14 ms is the year 5138)."""
_US_LIMIT = 10**17
"""Times below this (and at or above ``_MS_LIMIT``) are microseconds; above, nanoseconds."""


class Where:
    """The file and line being read, to build errors that name them."""

    def __init__(self, path: str, line: int) -> None:
        self.path = path
        self.line = line

    def error(self, reason: str, column: int | None = None, field: str | None = None) -> Exception:
        return MarketDataError(self.path, self.line, reason, column=column, field=field)


def decimal(
    text: str, where: Where, column: int | None, field: str, *, zero: bool = False
) -> Decimal:
    """``text`` as an exact Decimal: finite, not above 10^30, positive (or zero if ``zero``)."""
    try:
        value = Decimal(text.strip())
    except (InvalidOperation, ValueError):
        raise where.error(f"{text!r} is not a decimal number", column, field) from None
    if not value.is_finite():
        raise where.error(f"{text!r} is not a finite number", column, field)
    if value.adjusted() > _MAX_EXPONENT:
        raise where.error(f"{text!r} is too large", column, field)
    if value < 0 or (value == 0 and not zero):
        raise where.error(f"{text!r} must be {'zero or ' if zero else ''}positive", column, field)
    return value


def integer(text: str, where: Where, column: int | None, field: str) -> int:
    """A non-negative integer written in at most 19 digits."""
    stripped = text.strip()
    if not _DIGITS.fullmatch(stripped):
        raise where.error(f"{text!r} is not a whole number", column, field)
    return int(stripped)


def time_ms(value: int) -> int:
    """A Binance time in milliseconds, whatever unit it was written in, told by its magnitude.

    Binance's public data files give times in milliseconds, except the spot files from
    2025-01-01 on, which give microseconds; some captures use nanoseconds. Milliseconds below
    10^14 (the year 5138), microseconds below 10^17, nanoseconds above; microseconds and
    nanoseconds are truncated to the millisecond (floor).
    """
    if value < _MS_LIMIT:
        return value
    if value < _US_LIMIT:
        return value // 1_000
    return value // 1_000_000


def timestamp(text: str, where: Where, column: int | None, field: str) -> int:
    """A time column: digits (ms, µs or ns, by magnitude) or an ISO 8601 date-time (UTC if it
    names no zone), in milliseconds."""
    stripped = text.strip()
    if _DIGITS.fullmatch(stripped):
        return time_ms(int(stripped))
    try:
        moment = datetime.fromisoformat(stripped)
    except ValueError:
        raise where.error(
            f"{text!r} is neither a time in ms nor an ISO 8601 date-time", column, field
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000 + delta.microseconds // 1_000


def boolean(text: str, where: Where, column: int | None, field: str) -> bool:
    lowered = text.strip().lower()
    if lowered == "true":
        return True
    if lowered == "false":
        return False
    raise where.error(f"{text!r} is not true or false", column, field)
