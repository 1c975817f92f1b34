"""Funding settlement boundaries on event time, in integer milliseconds since the Unix epoch.

Binance settles 8-hour symbols at 00:00, 08:00 and 16:00 UTC (perp-mechanics.md §2.1,
"Schedule"); others every 4 h or 1 h. A boundary here is any time ``phase + k × interval``:
the epoch is 00:00 UTC and 8 h divides a day, so the default (8 h, phase 0) gives exactly
Binance's three times, with no calendar or time zone involved. A drill can settle every minute
with ``FundingSchedule(interval_ms=60_000)``.

Intervals are half-open, ``[boundary, next boundary)``: a boundary starts the interval after it,
and the settlement *at* a boundary covers the interval that ends there. So ``next_boundary(t)``
is strictly after ``t`` and ``boundaries_between(a, b)`` is ``(a, b]``: consecutive calls with
``(a, b]``, ``(b, c]`` see every boundary exactly once.
"""

import msgspec

HOUR_MS = 3_600_000
"""One hour in milliseconds."""

BINANCE_INTERVAL_MS = 8 * HOUR_MS
"""Binance's default funding interval (§2.1), also the interval its rates are quoted for."""


class FundingSchedule(msgspec.Struct, frozen=True, kw_only=True):
    """Boundaries every ``interval_ms``, offset from the epoch by ``phase_ms``."""

    interval_ms: int = BINANCE_INTERVAL_MS
    phase_ms: int = 0
    """Offset of the boundaries from the epoch, ``0 <= phase_ms < interval_ms``."""

    def __post_init__(self) -> None:
        if self.interval_ms <= 0:
            raise ValueError(f"funding interval {self.interval_ms} ms must be positive")
        if not 0 <= self.phase_ms < self.interval_ms:
            raise ValueError(f"phase {self.phase_ms} ms must be in [0, {self.interval_ms})")

    def is_boundary(self, time: int) -> bool:
        return (time - self.phase_ms) % self.interval_ms == 0

    def previous_boundary(self, time: int) -> int:
        """The latest boundary at or before ``time``: the start of the interval holding it."""
        return time - (time - self.phase_ms) % self.interval_ms  # % is floor-mod: also < 0

    def next_boundary(self, time: int) -> int:
        """The earliest boundary strictly after ``time``: when the interval holding it settles.

        At a boundary itself this is the following one: that boundary's settlement is due at
        the very time, and what is ahead is the next.
        """
        return self.previous_boundary(time) + self.interval_ms

    def time_until_next(self, time: int) -> int:
        """Milliseconds from ``time`` to ``next_boundary(time)``: in ``(0, interval_ms]``."""
        return self.next_boundary(time) - time

    def boundaries_between(self, start: int, end: int) -> range:
        """Every boundary ``b`` with ``start < b <= end``, ascending (empty if ``end <= start``).

        A ``range``, so a span of years costs nothing until it is iterated.
        """
        return range(self.next_boundary(start), end + 1, self.interval_ms)
