"""Funding boundaries on event time (exchange/funding_schedule.py)."""

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exchange.funding_schedule import HOUR_MS, FundingSchedule

BINANCE = FundingSchedule()


def ms(text: str) -> int:
    """Milliseconds since the epoch of an ISO time in UTC (only the tests need a calendar)."""
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


def test_default_boundaries_are_binance_00_08_16_utc() -> None:
    """§2.1: settlement at 00:00, 08:00 and 16:00 UTC."""
    assert BINANCE.next_boundary(ms("2024-03-01T07:59:59.999")) == ms("2024-03-01T08:00:00")
    assert BINANCE.next_boundary(ms("2024-03-01T08:00:00")) == ms("2024-03-01T16:00:00")
    assert BINANCE.next_boundary(ms("2024-03-01T08:00:00.001")) == ms("2024-03-01T16:00:00")
    assert BINANCE.next_boundary(ms("2024-03-01T23:00:00")) == ms("2024-03-02T00:00:00")
    assert BINANCE.previous_boundary(ms("2024-03-01T08:00:00")) == ms("2024-03-01T08:00:00")
    assert BINANCE.previous_boundary(ms("2024-03-01T07:59:59.999")) == ms("2024-03-01T00:00:00")
    day = list(BINANCE.boundaries_between(ms("2024-03-01T00:00:00"), ms("2024-03-02T00:00:00")))
    assert day == [ms("2024-03-01T08:00:00"), ms("2024-03-01T16:00:00"), ms("2024-03-02T00:00")]
    assert BINANCE.is_boundary(ms("2024-03-01T16:00:00"))
    assert not BINANCE.is_boundary(ms("2024-03-01T16:00:00.001"))
    assert BINANCE.time_until_next(ms("2024-03-01T04:00:00")) == 4 * HOUR_MS
    assert BINANCE.time_until_next(ms("2024-03-01T08:00:00")) == 8 * HOUR_MS


def test_boundaries_between_is_half_open() -> None:
    """``(a, b]``: a boundary at ``a`` was the previous call's; one at ``b`` is this one's."""
    eight = ms("2024-03-01T08:00:00")
    assert list(BINANCE.boundaries_between(eight - 1, eight)) == [eight]
    assert list(BINANCE.boundaries_between(eight, eight + 1)) == []
    assert list(BINANCE.boundaries_between(eight, eight)) == []
    assert list(BINANCE.boundaries_between(eight + 5, eight)) == []  # backwards: nothing


def test_drill_schedule_every_minute_with_a_phase() -> None:
    minute = FundingSchedule(interval_ms=60_000)
    assert list(minute.boundaries_between(0, 180_000)) == [60_000, 120_000, 180_000]
    shifted = FundingSchedule(interval_ms=60_000, phase_ms=15_000)
    assert shifted.next_boundary(0) == 15_000
    assert shifted.next_boundary(15_000) == 75_000
    assert shifted.previous_boundary(14_999) == -45_000
    assert list(shifted.boundaries_between(0, 135_000)) == [15_000, 75_000, 135_000]
    four_hours = FundingSchedule(interval_ms=4 * HOUR_MS)
    assert four_hours.next_boundary(ms("2024-03-01T05:00:00")) == ms("2024-03-01T08:00:00")


def test_schedule_validation() -> None:
    with pytest.raises(ValueError):
        FundingSchedule(interval_ms=0)
    with pytest.raises(ValueError):
        FundingSchedule(interval_ms=60_000, phase_ms=60_000)
    with pytest.raises(ValueError):
        FundingSchedule(interval_ms=60_000, phase_ms=-1)


schedules = st.builds(
    lambda interval, phase: FundingSchedule(interval_ms=interval, phase_ms=phase % interval),
    st.integers(1, 10_000),
    st.integers(0, 10_000),
)
times = st.integers(-(10**6), 10**6)


@given(schedules, times)
def test_next_and_previous_boundary_bracket_the_time(schedule: FundingSchedule, t: int) -> None:
    previous, following = schedule.previous_boundary(t), schedule.next_boundary(t)
    assert schedule.is_boundary(previous) and schedule.is_boundary(following)
    assert previous <= t < following == previous + schedule.interval_ms
    assert 0 < schedule.time_until_next(t) <= schedule.interval_ms


@given(schedules, times, st.integers(0, 5_000), st.integers(0, 5_000))
def test_consecutive_spans_see_every_boundary_once(
    schedule: FundingSchedule, a: int, step1: int, step2: int
) -> None:
    b, c = a + step1, a + step1 + step2
    joined = list(schedule.boundaries_between(a, b)) + list(schedule.boundaries_between(b, c))
    assert joined == list(schedule.boundaries_between(a, c))
    assert joined == [t for t in range(a + 1, c + 1) if schedule.is_boundary(t)]
