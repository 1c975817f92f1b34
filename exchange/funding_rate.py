"""Binance's funding rate: premium index samples, their weighted average, the clamped rate.

perp-mechanics.md §2.1 (Binance USDⓈ-M, "Formula", "Impact prices and sampling", "Interest
rate", "Cap and floor"):

```
P_t  = [max(0, ImpactBid_t − Index_t) − max(0, Index_t − ImpactAsk_t)] / Index_t
IMN  = 200 USDT / (initial-margin rate at the symbol's maximum leverage)
P̄    = Σ t·P_t / Σ t            (linear time weights, t = 1..n; equal weights for 1 h intervals)
F    = [P̄ + clamp(I − P̄, −0.05%, +0.05%)] / (8/N)      (N = interval in hours)
F_capped = clamp(F, −0.75·MMR, +0.75·MMR)                (MMR of the max-leverage tier)
```

* P is sampled every 5 s of event time (5,760 points in 8 h). The points are the times
  ``boundary + k × 5 s`` of the interval ``[boundary, next boundary)``; point ``t`` has weight
  ``t`` (its 1-based slot in the interval), so a point with no sample leaves its weight out
  and every other point keeps its own.
* ``I`` = 0.01 % and the ±0.05 % clamp are per 8 h; the whole of ``F`` is then scaled by
  ``N/8`` (the ``/(8/N)`` factor Binance applies from 2025-09-18), so a 1 h market's dead-zone
  rate is 0.00125 % and a one-minute drill's 0.01 % / 480.
* Dead zone: ``P̄ ∈ [I − 0.05 %, I + 0.05 %]`` (``[−0.04 %, +0.06 %]``) gives ``F = I`` exactly.

Choices where §2.1 is silent:

* **No impact price** (a book side that cannot absorb IMN) or no index: the point has no
  sample, its weight is left out; the premium is not measurable then, and counting it as zero
  would drag the average towards the interest rate while the book is broken.
* **No samples at all** in an interval: ``P̄ = 0``, so ``F`` is the interest-only result
  ``clamp(I, ±0.05 %) × N/8`` (0.01 % for 8 h): with no evidence of a premium, funding is the
  interest component alone.

Rounding: each sample ``P_t`` is kept in ``RATE_ONE`` units (1e-8), rounded toward zero; the
average and the clamp are exact; ``F`` is rounded toward zero to ``RATE_ONE`` units (the payer
never pays more than the exact rate; dYdX also rounds funding towards zero, §10), then capped.
"""

import math
from collections.abc import Sequence
from enum import StrEnum
from fractions import Fraction

import msgspec

from exchange.funding_schedule import BINANCE_INTERVAL_MS, HOUR_MS, FundingSchedule
from exchange.market import MarketSpec
from exchange.units import RATE_ONE, ceil_div

INTEREST_RATE = RATE_ONE // 10_000
"""``I`` = 0.01 % per 8 h (§2.1; 0.03 % a day)."""

PREMIUM_CLAMP = 5 * RATE_ONE // 10_000
"""The ±0.05 % bound of ``clamp(I − P̄, …)`` (§2.1)."""

IMPACT_MARGIN = 200
"""IMN is what 200 units of the settlement asset (USDT) buy at maximum leverage (§2.1)."""

DEFAULT_SAMPLE_MS = 5_000
"""§2.1: P is sampled every 5 s."""


class PremiumWeighting(StrEnum):
    LINEAR = "linear"
    """Point ``t`` of the interval has weight ``t`` (§2.1)."""
    EQUAL = "equal"
    """Every point has weight 1 (§2.1: Binance's 1 h intervals)."""


def weighting_for(interval_ms: int) -> PremiumWeighting:
    """Binance's weighting for an interval: equal for 1 h (§2.1), linear for longer ones.

    Binance has no interval under 1 h; drills that settle every few minutes get equal weights
    too, as the closest published case.
    """
    return PremiumWeighting.EQUAL if interval_ms <= HOUR_MS else PremiumWeighting.LINEAR


def impact_margin_notional(spec: MarketSpec, margin: int = IMPACT_MARGIN) -> int:
    """IMN in minor units: ``margin / IMR`` at the first bracket's maximum leverage (§2.1).

    The initial-margin rate at leverage ``L`` is ``1/L``, so IMN is ``margin × L`` exactly:
    TV-B10 gives 200 / 0.008 = 25,000 USDT at 125x and 200 / 0.05 = 4,000 USDT at 20x.
    """
    if not spec.leverage_brackets:
        raise ValueError(f"{spec.symbol}: IMN needs the leverage brackets")
    minor_units: int = 10**spec.settle_decimals
    return margin * minor_units * spec.leverage_brackets[0].max_leverage


def funding_cap(spec: MarketSpec) -> int:
    """``0.75 × MMR`` of the first (max-leverage) bracket in ``RATE_ONE`` units (§2.1).

    Rounded down, so the cap is never wider than the rule (BTCUSDT: 0.75 × 0.4 % = 0.3 %).
    """
    if not spec.leverage_brackets:
        raise ValueError(f"{spec.symbol}: the funding cap needs the leverage brackets")
    return 3 * spec.leverage_brackets[0].maint_rate // 4


class FundingConfig(msgspec.Struct, frozen=True, kw_only=True):
    """One market's funding parameters (``funding_config_for`` derives Binance's from a spec)."""

    cap: int
    """``|F|`` is capped at this (``RATE_ONE`` units)."""
    impact_notional: int
    """IMN in minor units: the caller measures impact bid and ask for this notional."""
    schedule: FundingSchedule = FundingSchedule()
    sample_ms: int = DEFAULT_SAMPLE_MS
    weighting: PremiumWeighting = PremiumWeighting.LINEAR
    interest_rate: int = INTEREST_RATE
    """``I`` per ``quote_interval_ms``."""
    clamp: int = PREMIUM_CLAMP
    quote_interval_ms: int = BINANCE_INTERVAL_MS
    """The interval ``I`` and the clamp are quoted for: the 8 of ``/(8/N)``."""

    def __post_init__(self) -> None:
        if self.sample_ms <= 0 or self.schedule.interval_ms % self.sample_ms:
            raise ValueError("sample_ms must be positive and divide the funding interval")
        if min(self.cap, self.clamp) < 0 or self.impact_notional <= 0:
            raise ValueError("cap and clamp must be >= 0 and impact_notional > 0")
        if self.quote_interval_ms <= 0:
            raise ValueError("quote_interval_ms must be positive")


def funding_config_for(spec: MarketSpec, schedule: FundingSchedule | None = None) -> FundingConfig:
    """Binance's parameters for ``spec``: IMN and cap from its first bracket, weighting from the
    interval, 5 s samples, ``I`` = 0.01 % and the ±0.05 % clamp per 8 h."""
    schedule = schedule or FundingSchedule()
    return FundingConfig(
        cap=funding_cap(spec),
        impact_notional=impact_margin_notional(spec),
        schedule=schedule,
        weighting=weighting_for(schedule.interval_ms),
    )


def premium_index(
    impact_bid: Fraction | int | None, impact_ask: Fraction | int | None, index: int | None
) -> int | None:
    """One sample ``P`` (§2.1) in ``RATE_ONE`` units, rounded toward zero; None if unmeasurable.

    Impact prices in ticks (``Book.impact_price`` gives exact fractions), the index in ticks.
    None when either impact price or the index is missing (module docstring).
    """
    if impact_bid is None or impact_ask is None or index is None:
        return None
    if index <= 0:
        raise ValueError(f"index {index} must be positive")
    premium = max(0, impact_bid - index) - max(0, index - impact_ask)
    return math.trunc(Fraction(premium) * RATE_ONE / index)


def slot_weight_sum(first_slot: int, count: int, weighting: PremiumWeighting) -> int:
    """The total weight of ``count`` consecutive points from 1-based slot ``first_slot``."""
    if weighting is PremiumWeighting.EQUAL:
        return count
    return count * (2 * first_slot + count - 1) // 2  # an arithmetic series: always whole


def average_premium(samples: Sequence[int | None], weighting: PremiumWeighting) -> Fraction:
    """``P̄ = Σ t·P_t / Σ t`` over one interval's points in order (None: no sample), exactly.

    ``t`` is the point's 1-based slot (or 1 for equal weights); points without a sample add
    nothing to either sum; no samples at all give 0.
    """
    weights = weighted = 0
    for slot, sample in enumerate(samples, start=1):
        if sample is not None:
            weight = slot_weight_sum(slot, 1, weighting)
            weights += weight
            weighted += weight * sample
    return Fraction(weighted, weights) if weights else Fraction(0)


def funding_rate(average: Fraction, config: FundingConfig) -> tuple[int, int]:
    """``(capped F, uncapped F)`` in ``RATE_ONE`` units from ``P̄`` (§2.1).

    ``F = [P̄ + clamp(I − P̄, −clamp, +clamp)] × interval / quote interval``, rounded toward
    zero, then clamped to ``±cap``.
    """
    nudge = config.interest_rate - average
    if nudge < -config.clamp:
        nudge = Fraction(-config.clamp)
    elif nudge > config.clamp:
        nudge = Fraction(config.clamp)
    exact = (average + nudge) * config.schedule.interval_ms / config.quote_interval_ms
    uncapped = math.trunc(exact)
    return max(-config.cap, min(config.cap, uncapped)), uncapped


class FundingResult(msgspec.Struct, frozen=True, kw_only=True):
    """The rate for the settlement at ``funding_time``: final, or predicted from the samples so
    far. ``rate`` is what ``SettleFunding.rate`` carries."""

    funding_time: int
    rate: int
    uncapped_rate: int
    average_premium: int
    """``P̄`` in ``RATE_ONE`` units, rounded toward zero (for display; ``rate`` uses it exact)."""
    samples: int
    final: bool


class FundingCalculator:
    """One market's funding on event time: premium samples in, settlements out.

    The caller feeds it in event-time order. Before applying any update (book or index) at time
    ``t`` it calls ``advance(t, impact_bid, impact_ask, index)`` with the state from before the
    update (``due(t)`` says whether anything would be done, so impact prices need measuring only
    then). That state is the sample of every point before ``t`` not yet sampled (a quiet
    stretch is a constant state), and each boundary ``<= t`` passed is settled, in order, each
    from its own interval's samples. ``predicted()`` is the rate the samples so far would give.

    The first interval is the one holding ``start``; its points before ``start`` have no sample.
    """

    def __init__(self, config: FundingConfig, start: int) -> None:
        self.config = config
        step = config.sample_ms
        schedule = config.schedule
        self._interval_start = schedule.previous_boundary(start)
        self._end = self._interval_start + schedule.interval_ms
        self._next = self._interval_start + ceil_div(start - self._interval_start, step) * step
        self._weights = 0
        self._weighted = 0
        self._samples = 0
        self.last_settled: FundingResult | None = None

    @property
    def next_funding_time(self) -> int:
        return self._end

    def due(self, now: int) -> bool:
        """Whether ``advance(now, …)`` would record a sample point or settle a boundary."""
        return self._next < now or now >= self._end

    def advance(
        self,
        now: int,
        impact_bid: Fraction | int | None,
        impact_ask: Fraction | int | None,
        index: int | None,
    ) -> tuple[FundingResult, ...]:
        """Sample every point before ``now`` with this state; settle every boundary ``<= now``."""
        if not self.due(now):
            return ()
        return self.advance_premium(now, premium_index(impact_bid, impact_ask, index))

    def advance_premium(self, now: int, sample: int | None) -> tuple[FundingResult, ...]:
        """``advance`` with the state given as its premium sample ``P`` (``premium_index``;
        None: not measurable). For a caller that receives ``P`` measured elsewhere: the funding
        service samples the premium the oracle publishes with every point."""
        step = self.config.sample_ms
        settled: list[FundingResult] = []
        while True:
            until = min(now, self._end)
            if self._next < until:
                count = ceil_div(until - self._next, step)
                if sample is not None:
                    slot = (self._next - self._interval_start) // step + 1
                    weight = slot_weight_sum(slot, count, self.config.weighting)
                    self._weights += weight
                    self._weighted += weight * sample
                    self._samples += count
                self._next += count * step
            if now < self._end:
                return tuple(settled)
            settled.append(self._result(final=True))
            self.last_settled = settled[-1]
            self._interval_start = self._end
            self._end += self.config.schedule.interval_ms
            self._next = max(self._next, self._interval_start)
            self._weights = self._weighted = self._samples = 0

    def predicted(self) -> FundingResult:
        """The rate the current interval's samples so far give (Binance's estimated rate)."""
        return self._result(final=False)

    def _result(self, final: bool) -> FundingResult:
        average = Fraction(self._weighted, self._weights) if self._weights else Fraction(0)
        rate, uncapped = funding_rate(average, self.config)
        return FundingResult(
            funding_time=self._end,
            rate=rate,
            uncapped_rate=uncapped,
            average_premium=math.trunc(average),
            samples=self._samples,
            final=final,
        )
