"""Binance's mark price of a perpetual: the median of three prices, in exact integers.

perp-mechanics.md §1.1 (Binance USDⓈ-M, "Mark price, perpetuals"):

```
Mark    = median(Price1, Price2, last contract price)
Price1  = Index × (1 + lastFundingRate × (timeUntilNextFunding / 8h))
Price2  = Index + MA(basis)
basis_t = (bid1_t + ask1_t)/2 − Index_t
```

* The MA is over one-second points of event time: 30 of them by default, Binance's current
  30-second basis (from 2025-09-18, §1.1); ``MarkConfig`` sets the spacing and count (Bybit's
  five minutes is ``window=300``).
* ``8h`` is Binance's funding interval; for a market with another interval this module divides
  by that interval, as BitMEX writes it (§1.2, ``TimeUntilFunding / FundingInterval``), so the
  funding basis always decays from one full rate to zero over one interval.
* The median of three is what makes the mark robust: one wild trade moves only the last price,
  and the mark stays between the two index-based prices.

Missing components, which §1.1 does not cover: without an index there is no mark. Without a
last price (no trade yet) or without basis samples (an empty book side throughout the window),
``Price1`` stands in for the missing component, so the mark is ``Price1``: an index-anchored
price, never a lone book- or trade-derived one. Price1 always exists when the index does.

Rounding: the components are exact rationals; the mark is their exact median rounded to a tick,
half to even (``round_half_even``), and never below one tick. Rounding is monotone, so this is
also the median of the rounded components that ``MarkResult`` reports.
"""

from collections import deque
from fractions import Fraction

import msgspec

from exchange.funding_schedule import FundingSchedule
from exchange.price_math import median, round_half_even
from exchange.units import RATE_ONE, ceil_div


class MarkConfig(msgspec.Struct, frozen=True, kw_only=True):
    sample_ms: int = 1_000
    """Spacing of the basis samples: at every multiple of it, in ms of event time."""
    window: int = 30
    """Number of sample points the moving average covers (30 × 1 s: Binance, §1.1)."""

    def __post_init__(self) -> None:
        if self.sample_ms <= 0 or self.window <= 0:
            raise ValueError("sample_ms and window must be positive")


class BasisAverage:
    """The moving average of ``basis = (best bid + best ask)/2 − index`` over sample points.

    Sample points are the multiples of ``sample_ms``. The sample at point ``s`` is the state in
    effect at ``s``: the book and index after every update with time ``<= s``. It is taken when
    event time passes ``s``, so the caller, before applying an update at time ``t``, calls
    ``advance(t, best_bid, best_ask, index)`` with the state from before it; that state is then
    recorded for every point in between. A quiet stretch is thus a constant state, as it was.
    A point where a book side is empty or there is no index has no sample; the average is over
    the samples among the last ``window`` points (None if there are none). So in a window full of
    samples, a sample ``b`` away from the one it displaces moves the average by ``b / window``:
    a one-second spike of the basis moves the mark's Price2 by at most spike / window.

    Exact: a basis is a half-integer number of ticks, kept doubled as an integer, and the average
    is the ``Fraction`` of their sum over twice their count.
    """

    def __init__(self, config: MarkConfig | None = None) -> None:
        self.config = config or MarkConfig()
        self._next: int | None = None  # the next point to record; None: clock not started
        self._points: deque[int | None] = deque()  # doubled basis per point, None: no sample
        self._sum = 0
        self._samples = 0

    @property
    def samples(self) -> int:
        """How many of the last ``window`` points have a sample."""
        return self._samples

    def due(self, now: int) -> bool:
        """Whether ``advance(now, …)`` would record a point (or start the clock)."""
        return self._next is None or self._next < now

    def advance(
        self, now: int, best_bid: int | None, best_ask: int | None, index: int | None
    ) -> int:
        """Record every point before ``now`` not yet recorded with this state; return how many.

        The first call only starts the clock: points from ``now`` on are recorded by later calls,
        since there is no state known for earlier ones. A ``now`` at or before the last recorded
        point records nothing (a late update cannot change samples already taken).
        """
        step = self.config.sample_ms
        if self._next is None:
            self._next = ceil_div(now, step) * step
            return 0
        if self._next >= now:
            return 0
        count = ceil_div(now - self._next, step)
        self._next += count * step
        value = None
        if best_bid is not None and best_ask is not None and index is not None:
            value = best_bid + best_ask - 2 * index
        for _ in range(min(count, self.config.window)):
            self._push(value)
        return count

    def average(self) -> Fraction | None:
        """The mean basis (ticks) over the samples in the window; None without samples."""
        if not self._samples:
            return None
        return Fraction(self._sum, 2 * self._samples)

    def _push(self, value: int | None) -> None:
        if len(self._points) == self.config.window:
            old = self._points.popleft()
            if old is not None:
                self._sum -= old
                self._samples -= 1
        self._points.append(value)
        if value is not None:
            self._sum += value
            self._samples += 1


def funding_basis_price(
    index: int, funding_rate: int, until_funding_ms: int, interval_ms: int
) -> Fraction:
    """Price1 = ``index × (1 + rate × until / interval)`` (§1.1, §1.2), exact, in ticks.

    ``funding_rate`` in ``RATE_ONE`` units for one interval. Binance's old worked example (the
    Qenv mirror of §1.1, "TV-B8"): rate 0.03 %, 4 h of 8 h left, index 10,000 → 10,001.5.
    """
    if abs(funding_rate) >= RATE_ONE:
        raise ValueError(f"funding rate {funding_rate} must be under 100 %")
    scale = RATE_ONE * interval_ms
    return Fraction(index * (scale + funding_rate * until_funding_ms), scale)


class MarkResult(msgspec.Struct, frozen=True, kw_only=True):
    """The mark at event time ``time`` and its components, each rounded to a tick.

    ``price`` is None only without an index. ``basis_price`` is None without basis samples,
    ``last_price`` None before the first trade; then ``price`` is ``funding_price``.
    """

    time: int
    price: int | None
    index: int | None
    funding_price: int | None
    """Price1: the index with the funding basis."""
    basis_price: int | None
    """Price2: the index plus the moving average of the basis."""
    last_price: int | None
    basis_samples: int


def mark_price(
    *,
    time: int,
    index: int | None,
    funding_rate: int,
    until_funding_ms: int,
    interval_ms: int,
    basis_average: Fraction | None,
    last_price: int | None,
    basis_samples: int = 0,
) -> MarkResult:
    """``median(Price1, Price2, last)`` (§1.1) with this module's rules for missing parts."""
    if index is None:
        return MarkResult(
            time=time,
            price=None,
            index=None,
            funding_price=None,
            basis_price=None,
            last_price=last_price,
            basis_samples=basis_samples,
        )
    price1 = funding_basis_price(index, funding_rate, until_funding_ms, interval_ms)
    price2 = None if basis_average is None else index + basis_average
    exact = price1  # a missing component is replaced by Price1, so the median is Price1
    if price2 is not None and last_price is not None:
        exact = median([price1, price2, last_price])
    return MarkResult(
        time=time,
        price=max(1, round_half_even(exact)),
        index=index,
        funding_price=round_half_even(price1),
        basis_price=None if price2 is None else round_half_even(price2),
        last_price=last_price,
        basis_samples=basis_samples,
    )


class MarkCalculator:
    """The mark of one market: its basis average, its last trade price and its funding clock.

    The caller feeds it in event-time order: before applying any update (book, index or trade)
    at time ``t``, ``advance(t, …)`` with the state before it (``due(t)`` says whether that is
    needed); ``trade(price)`` for each trade; and asks ``compute(now, index, funding_rate)``
    whenever it publishes. Which funding rate to pass is the caller's choice (see
    docs/oracle-and-funding.md: Binance's text says the most recent one).
    """

    def __init__(self, schedule: FundingSchedule, config: MarkConfig | None = None) -> None:
        self.schedule = schedule
        self.basis = BasisAverage(config)
        self.last_price: int | None = None

    def due(self, now: int) -> bool:
        return self.basis.due(now)

    def advance(
        self, now: int, best_bid: int | None, best_ask: int | None, index: int | None
    ) -> int:
        return self.basis.advance(now, best_bid, best_ask, index)

    def trade(self, price: int) -> None:
        """The contract's last price: the price of the latest trade."""
        if price <= 0:
            raise ValueError(f"trade price {price} must be positive")
        self.last_price = price

    def compute(self, now: int, index: int | None, funding_rate: int) -> MarkResult:
        return mark_price(
            time=now,
            index=index,
            funding_rate=funding_rate,
            until_funding_ms=self.schedule.time_until_next(now),
            interval_ms=self.schedule.interval_ms,
            basis_average=self.basis.average(),
            last_price=self.last_price,
            basis_samples=self.basis.samples,
        )
