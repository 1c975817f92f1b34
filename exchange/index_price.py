"""The index price of one market from several spot sources, with Binance's protections.

perp-mechanics.md §1.1 (Binance USDⓈ-M, "Price index" and "Protections on the index", from the
venue's FAQ and the old help-centre text mirrored in ``bradkyle/Qenv:logic/binance.md``):

* the index is the weighted average of the sources' prices, ``Σ w_i·Price_i / Σ w_i``;
* a source that deviates more than 5 % from the median of all sources gets weight 0;
* if more than one source deviates by more than 5 %, the median of all sources replaces the
  weighted average;
* a source with no update for 10 s gets weight 0.

``IndexCalculator`` applies these rules on event time. "All sources" means the *live* ones (those
that are not stale): a stale price says nothing about the market now. The median of all is the
plain (unweighted) median, as the text says; for an even count it is the mean of the two middle
prices. ``IndexMethod.WEIGHTED_MEDIAN`` replaces the weighted average by the weighted median of
the sources in (``price_math.weighted_median``, with its tie rule): not Binance's rule, but one
that a single wrong source can move less; the deviation and staleness rules stay the same.

When no source is live the index is *frozen*: it keeps its last value and the result says so.
A source that was out comes back by itself: a stale one with its next update, a deviant one as
soon as its price is within the bound again.

Units: prices in the market's ticks, times in ms of event time, the bound in ``RATE_ONE``
units. The index is exact until it is rounded to a tick, half to even (``round_half_even``).
"""

from collections.abc import Mapping
from enum import StrEnum
from fractions import Fraction

import msgspec

from exchange.price_math import median, round_half_even, weighted_median
from exchange.units import RATE_ONE

DEFAULT_STALE_AFTER_MS = 10_000
"""§1.1: a source with no update for 10 s gets weight 0."""

DEFAULT_MAX_DEVIATION = 5 * RATE_ONE // 100
"""§1.1: a source more than 5 % from the median of all sources gets weight 0."""


class IndexMethod(StrEnum):
    WEIGHTED_AVERAGE = "weighted_average"
    """Binance (§1.1): weighted average of the sources in; the median of all live sources when
    more than one deviates."""
    WEIGHTED_MEDIAN = "weighted_median"
    """Weighted median of the sources in; the median of all live sources when none is in."""


class SourceState(StrEnum):
    INCLUDED = "included"
    STALE = "stale"
    """No update within ``stale_after_ms`` of event time."""
    DEVIANT = "deviant"
    """Live, but more than ``max_deviation`` from the median of all live sources."""
    NO_DATA = "no_data"
    """Configured but never updated."""


class IndexBasis(StrEnum):
    """How the index of one result was obtained."""

    WEIGHTED_AVERAGE = "weighted_average"
    WEIGHTED_MEDIAN = "weighted_median"
    MEDIAN = "median"
    """The plain median of all live sources, deviant ones included (§1.1's multi-source rule)."""
    FROZEN = "frozen"
    """No source live: the last index is kept (or there is none yet)."""


class IndexSource(msgspec.Struct, frozen=True):
    """A configured source: ``name`` as it appears in ``IndexTick.source``, and its weight."""

    name: str
    weight: int = 1


class IndexConfig(msgspec.Struct, frozen=True, kw_only=True):
    sources: tuple[IndexSource, ...]
    stale_after_ms: int = DEFAULT_STALE_AFTER_MS
    """A source is stale when ``now − its time > stale_after_ms`` (at exactly 10 s it is live:
    §1.1 takes weight away after "no update for 10 s", i.e. beyond it)."""
    max_deviation: int = DEFAULT_MAX_DEVIATION
    """A live source is deviant when ``|price − median| > max_deviation × median`` (strictly
    more, as §1.1 says "more than 5 %")."""
    method: IndexMethod = IndexMethod.WEIGHTED_AVERAGE

    def __post_init__(self) -> None:
        names = [source.name for source in self.sources]
        if not names:
            raise ValueError("an index needs at least one source")
        if len(set(names)) != len(names):
            raise ValueError("index source names must be unique")
        if any(source.weight <= 0 for source in self.sources):
            raise ValueError("index source weights must be positive")
        if self.stale_after_ms < 0 or self.max_deviation <= 0:
            raise ValueError("stale_after_ms must be >= 0 and max_deviation > 0")


class SourceStatus(msgspec.Struct, frozen=True, kw_only=True):
    """One source in one computation: its state and the latest price and time it had sent."""

    source: str
    state: SourceState
    weight: int
    price: int | None
    time: int | None


class IndexResult(msgspec.Struct, frozen=True, kw_only=True):
    """The index at event time ``time``, and every source's part in it.

    ``price`` is None only while no source has ever been live. ``frozen`` is true when no source
    is live now; ``price`` is then the last index computed from live sources.
    """

    time: int
    price: int | None
    frozen: bool
    basis: IndexBasis
    sources: tuple[SourceStatus, ...]

    @property
    def states(self) -> dict[str, SourceState]:
        return {status.source: status.state for status in self.sources}

    @property
    def included(self) -> tuple[str, ...]:
        return tuple(s.source for s in self.sources if s.state is SourceState.INCLUDED)


class SourceChange(msgspec.Struct, frozen=True, kw_only=True):
    """A source whose state differs between two results (``before`` None: no earlier result)."""

    source: str
    before: SourceState | None
    after: SourceState


def source_changes(before: IndexResult | None, after: IndexResult) -> tuple[SourceChange, ...]:
    """The sources whose state changed from ``before`` to ``after``: what a service logs."""
    previous: Mapping[str, SourceState] = before.states if before is not None else {}
    return tuple(
        SourceChange(source=s.source, before=previous.get(s.source), after=s.state)
        for s in after.sources
        if previous.get(s.source) is not s.state
    )


class IndexCalculator:
    """The index of one market: sources' latest prices in, ``IndexResult`` out, on event time.

    Deterministic and without a clock: ``update`` records a price, ``compute(now)`` judges every
    source at ``now`` and returns the index. The only state besides the latest prices is the last
    index, which a frozen result repeats.
    """

    def __init__(self, config: IndexConfig) -> None:
        self.config = config
        self._weights = {source.name: source.weight for source in config.sources}
        self._latest: dict[str, tuple[int, int]] = {}  # source -> (price, time)
        self._last: int | None = None

    @property
    def sources(self) -> tuple[str, ...]:
        return tuple(self._weights)

    @property
    def last(self) -> int | None:
        """The last index computed from live sources (what a frozen result holds)."""
        return self._last

    def update(self, source: str, price: int, time: int) -> bool:
        """Record ``source``'s price at event time ``time``; False if older than what it has.

        An update older than the source's latest is ignored (a late, reordered tick must not
        roll a source back); one at the same time replaces it. Raises ``ValueError`` for an
        unknown source or a price that is not positive.
        """
        if source not in self._weights:
            raise ValueError(f"unknown index source {source!r}")
        if price <= 0:
            raise ValueError(f"index source price {price} must be positive")
        latest = self._latest.get(source)
        if latest is not None and time < latest[1]:
            return False
        self._latest[source] = (price, time)
        return True

    def compute(self, now: int) -> IndexResult:
        """The index at event time ``now`` under §1.1's rules (module docstring)."""
        live = {
            name: price
            for name, (price, time) in self._latest.items()
            if now - time <= self.config.stale_after_ms
        }
        if not live:
            return self._result(now, self._last, True, IndexBasis.FROZEN, live, set())
        middle = median(list(live.values()))
        bound = self.config.max_deviation * middle
        deviant = {name for name, price in live.items() if abs(price - middle) * RATE_ONE > bound}
        included = [
            (price, self._weights[name]) for name, price in live.items() if name not in deviant
        ]
        value: Fraction
        if self.config.method is IndexMethod.WEIGHTED_AVERAGE and len(deviant) <= 1:
            # At most one deviant leaves a source in: one live source never deviates, two are
            # equally far from their mean (both deviate or neither), and of three or more the
            # middle one is in.
            total = sum(weight for _, weight in included)
            value = Fraction(sum(price * weight for price, weight in included), total)
            basis = IndexBasis.WEIGHTED_AVERAGE
        elif self.config.method is IndexMethod.WEIGHTED_MEDIAN and included:
            value, basis = weighted_median(included), IndexBasis.WEIGHTED_MEDIAN
        else:
            value, basis = middle, IndexBasis.MEDIAN
        self._last = round_half_even(value)
        return self._result(now, self._last, False, basis, live, deviant)

    def _result(
        self,
        now: int,
        price: int | None,
        frozen: bool,
        basis: IndexBasis,
        live: Mapping[str, int],
        deviant: set[str],
    ) -> IndexResult:
        statuses = []
        for name, weight in self._weights.items():
            latest = self._latest.get(name)
            if latest is None:
                state = SourceState.NO_DATA
            elif name not in live:
                state = SourceState.STALE
            elif name in deviant:
                state = SourceState.DEVIANT
            else:
                state = SourceState.INCLUDED
            statuses.append(
                SourceStatus(
                    source=name,
                    state=state,
                    weight=weight,
                    price=None if latest is None else latest[0],
                    time=None if latest is None else latest[1],
                )
            )
        return IndexResult(
            time=now, price=price, frozen=frozen, basis=basis, sources=tuple(statuses)
        )
