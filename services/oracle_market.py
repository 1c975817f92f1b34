"""One market's index and mark on event time: the oracle's logic, without I/O or a clock.

It drives the pure calculators (``exchange.index_price``, ``exchange.mark_price``) as
docs/oracle-and-funding.md sketches, from three inputs: index ticks (which carry event time),
the engine's book and trades (``L2Book``; the event log carries no time, so a book change or a
trade counts from the latest event time seen when it is read), and the last settled funding rate.

**Points.** The oracle publishes at every multiple of ``publish_ms`` of event time. A point
``p`` is the state after every input up to ``p``, so it is *closed* when an input at or after
``p`` arrives: a tick at ``t`` first closes the points before ``t`` with the state before it,
then takes its price, then closes ``t`` itself if ``t`` is a point. Between two inputs nothing
changes but time, so of a stretch of points with no input between them only the first (the new
state) and the last (where time alone has made sources stale) are closed; the funding service,
which samples the points in between as the state of the latest point before them, sees exactly
what it would have seen from all of them. A replay of minute data is thus three points a
minute, not sixty. A tick older than the points already closed counts from the next one.

**Frozen.** When no source is live the index keeps its last value (``IndexCalculator``) and the
mark repeats the last mark made from a live index, so the engine gets no new mark from a dead
feed; the premium is then not measurable (None): funding skips those samples.
"""

import msgspec

from exchange.funding_rate import impact_margin_notional, premium_index
from exchange.funding_schedule import FundingSchedule
from exchange.index_price import (
    IndexCalculator,
    IndexConfig,
    IndexResult,
    SourceChange,
    source_changes,
)
from exchange.mark_price import MarkCalculator, MarkConfig
from exchange.market import MarketSpec
from exchange.orders import Side
from exchange.units import ceil_div
from services.l2_book import L2Book
from services.prices import IndexPrice, MarkTick


class OraclePoint(msgspec.Struct, frozen=True, kw_only=True):
    """What the oracle publishes for one point, and what it logs about it."""

    index: IndexPrice
    mark: MarkTick
    changes: tuple[SourceChange, ...]
    """The sources whose state differs from the previous point's."""
    froze: bool | None
    """True: the index froze at this point; False: it came back; None: neither."""


class OracleMarket:
    """The index, mark, book and points of one market (module docstring)."""

    def __init__(
        self,
        spec: MarketSpec,
        index: IndexConfig,
        schedule: FundingSchedule,
        mark: MarkConfig,
        publish_ms: int,
    ) -> None:
        if publish_ms <= 0:
            raise ValueError("publish_ms must be positive")
        self.symbol = spec.symbol
        self.schedule = schedule
        self.publish_ms = publish_ms
        self.book = L2Book()
        self.funding_rate = 0
        """The last settled funding rate (Price1's; Binance's ``lastFundingRate``), 0 before
        the first settlement."""
        self.predicted_rate: int | None = None
        """The funding service's latest estimate, published with the mark for display."""
        self._index = IndexCalculator(index)
        self._mark = MarkCalculator(schedule, mark)
        self._impact_notional = impact_margin_notional(spec)
        self._multiplier = spec.multiplier
        self._clock: int | None = None
        """The latest tick time: this market's event time."""
        self._next: int | None = None
        """The next point to close."""
        self._live_index: int | None = None
        """The index as of ``_clock``, None while it is frozen: what the basis is measured to."""
        self._previous: IndexResult | None = None
        """The index of the last point closed, for its sources' changes."""
        self._live_mark: int | None = None
        """The last mark made from a live index: what a frozen mark repeats."""

    @property
    def sources(self) -> tuple[str, ...]:
        return self._index.sources

    def trade(self, price: int) -> None:
        self._mark.trade(price)

    def tick(self, source: str, price: int, time: int) -> list[OraclePoint]:
        """Take one source's price at event time ``time``; return the points it closes.

        Raises ``ValueError`` (and changes nothing) for a source not configured or a price
        that is not positive.
        """
        if source not in self._index.sources or price <= 0:
            raise ValueError(f"{self.symbol}: no index source {source!r} or price {price} <= 0")
        step = self.publish_ms
        points = []
        if self._next is None:
            self._next = ceil_div(time, step) * step
        elif self._next < time:
            last = ceil_div(time, step) * step - step  # the last point before ``time``
            points.append(self._close(self._next))
            if last > self._next:
                points.append(self._close(last))
            self._next = last + step
        book = self.book
        self._mark.advance(time, book.best_bid, book.best_ask, self._live_index)
        self._index.update(source, price, time)
        self._clock = time if self._clock is None else max(self._clock, time)
        now = self._index.compute(self._clock)
        self._live_index = None if now.frozen else now.price
        if time == self._next:
            points.append(self._close(time))
            self._next += step
        return points

    def _close(self, time: int) -> OraclePoint:
        index = self._index.compute(time)
        previous, self._previous = self._previous, index
        live = None if index.frozen else index.price
        book = self.book
        bid, ask = book.best_bid, book.best_ask
        self._mark.advance(time + 1, bid, ask, live)  # the basis samples up to ``time``
        mark = self._mark.compute(time, index.price, self.funding_rate)
        price = mark.price
        if index.frozen and self._live_mark is not None:
            price = self._live_mark
        elif not index.frozen:
            self._live_mark = price
        premium = None
        if live is not None:
            notional, multiplier = self._impact_notional, self._multiplier
            premium = premium_index(
                book.impact_price(Side.SELL, notional, multiplier),
                book.impact_price(Side.BUY, notional, multiplier),
                live,
            )
        changes = source_changes(previous, index)
        froze = None
        if previous is not None and previous.frozen != index.frozen:
            froze = index.frozen
        return OraclePoint(
            index=IndexPrice(
                symbol=self.symbol,
                time=time,
                price=index.price,
                frozen=index.frozen,
                basis=index.basis,
                sources=index.sources,
                changed=tuple(change.source for change in changes),
            ),
            mark=MarkTick(
                symbol=self.symbol,
                time=time,
                mark=price,
                index=index.price,
                frozen=index.frozen,
                funding_price=mark.funding_price,
                basis_price=mark.basis_price,
                last_price=mark.last_price,
                best_bid=bid,
                best_ask=ask,
                premium=premium,
                funding_rate=self.funding_rate,
                predicted_rate=self.predicted_rate,
                next_funding_time=self.schedule.next_boundary(time),
            ),
            changes=changes,
            froze=froze,
        )
