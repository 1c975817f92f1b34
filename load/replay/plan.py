"""From a file's records to what the replay sends, step by step, on the data's event time. Pure.

Each step is an event time, an index price to publish as an ``IndexTick`` (or none) and the
commands to send (``mirror.Sent``). What each format gives:

* **Klines and OHLCV**: index ticks only (a kline says nothing of the book or of single
  trades). A 1 m kline only gives its open, high, low and close, so each bar becomes four ticks
  on a path through them: **O, L, H, C for a bar that closed at or above its open, O, H, L, C
  for one that closed below it** (the extreme against the bar's direction first, the common
  convention of bar back-testers), at the bar's open time, a third and two thirds into it, and
  its close time (``open_time + 20 s``, ``+ 40 s`` and ``+ 59.999 s`` for a minute bar).
* **aggTrades and trades**: an index tick at each trade whose price differs from the last one
  published, and (unless orders are off) each trade replayed as a market order of its quantity
  against a thin synthetic book: the trade implies its quantity resting at its price
  (``RecordedBook.expect_trade``), so a post-only order of that size is placed there from a
  book account and taken by the market order at once. The engine's trades and last price then
  follow the file's, one for one.
* **Websocket captures**: the depth snapshot and ``depthUpdate``\\s rebuild the book
  (``RecordedBook``) and the mirror keeps our engine's levels equal to its best ``depth`` of each
  side; each trade is replayed as a market order against that copy; index ticks are the mid of
  each ``bookTicker`` whose mid moved (or of the trades, for a capture without one until its
  first ``bookTicker``). The streams of a capture interleave out of order (up to 110 ms of
  transaction time in the bundled one), so records are put back in event-time order through a
  buffer of ``reorder_ms`` (1 s); a record later than that is counted and taken at the time of
  the last one released.

**Window.** ``start``/``end`` (ms, inclusive) and ``limit`` (records replayed) choose what is
sent. A capture's book is built from its beginning whatever the start (the snapshot is at the
beginning): records before ``start`` are applied to the book silently, and at ``start`` the
whole window of the book is placed at once.

Event times never go back in what is sent: a record older than the last step is sent at the
last step's time (and counted).
"""

import heapq
from collections import Counter
from collections.abc import Iterable, Iterator
from decimal import Decimal
from typing import NamedTuple

from exchange.market import MarketSpec
from load.marketdata.records import (
    BookTicker,
    DepthSnapshot,
    DepthUpdate,
    Kline,
    MarketRecord,
    OtherMessage,
    TradeRecord,
)
from load.replay.book import RecordedBook
from load.replay.grid import Grid
from load.replay.mirror import BookMirror, Sent

REORDER_MS = 1_000
"""How far back in event time a capture's records are put back in order."""
RESET_AFTER_RECORDS = 1_000
"""Least records between two resets of the mirror, so that a cause that persists (someone
else's orders in the book) cannot make it start over at every record."""

KINDS: dict[type, str] = {
    Kline: "kline",
    TradeRecord: "trade",
    DepthSnapshot: "depth_snapshot",
    DepthUpdate: "depth_update",
    BookTicker: "book_ticker",
    OtherMessage: "other",
}


class Step(NamedTuple):
    time: int
    """Event time, ms."""
    tick: int | None
    """An index price to publish (ticks), if any."""
    orders: list[Sent]
    record: MarketRecord | None = None
    """The record the step comes from."""


class Plan:
    """The steps of one replay of ``records`` (module docstring). ``mirror`` is None when no
    orders are sent (``--no-orders``, and always for klines)."""

    def __init__(
        self,
        records: Iterable[MarketRecord],
        fmt: str,
        spec: MarketSpec,
        *,
        symbol: str,
        mirror: BookMirror | None,
        book: RecordedBook | None = None,
        start: int | None = None,
        end: int | None = None,
        limit: int | None = None,
        reorder_ms: int = REORDER_MS,
    ) -> None:
        self.records = records
        self.format = fmt
        self.spec = spec
        self.symbol = symbol.upper()
        self.grid = Grid(spec)
        self.book = book if book is not None else RecordedBook(self.grid)
        self.mirror = mirror if fmt not in ("klines", "ohlcv") else None
        if self.mirror is not None and self.mirror.book is not self.book:
            raise ValueError("the mirror must follow the plan's book")
        self.start = start
        self.end = end
        self.limit = limit
        self.reorder_ms = reorder_ms
        self.counts: Counter[str] = Counter()
        self.first_time: int | None = None
        self.last_time: int | None = None
        self._clock = 0
        self._tick: int | None = None
        self._ticker_seen = False
        self._live = False
        self._since_reset = RESET_AFTER_RECORDS
        if fmt in ("aggtrades", "trades"):
            self.book.synced = True  # no depth: the book is what the trades imply

    @property
    def replayed(self) -> int:
        return self.counts["events_replayed"]

    def steps(self) -> Iterator[Step]:
        records = self._in_order(self.records) if self.format == "ws" else self.records
        for record in records:
            counts = self.counts
            counts["events_read"] += 1
            symbol = getattr(record, "symbol", None)
            if symbol is not None and symbol != self.symbol:
                counts["events_other_symbol"] += 1
                continue
            time = record.time if not isinstance(record, Kline) else record.open_time
            if self.end is not None and time > self.end:
                break
            if self.start is not None and time < self.start:
                counts["events_before_start"] += 1
                self._apply_silently(record)
                continue
            if self.limit is not None and counts["events_replayed"] >= self.limit:
                break
            counts["events_replayed"] += 1
            counts[f"events.{KINDS[type(record)]}"] += 1
            if self.first_time is None:
                self.first_time = time
            opening: list[Sent] = []
            if not self._live:
                self._live = True
                if self.mirror is not None and self.book.synced:
                    opening = self.mirror.rebuild()
            yield from self._steps(record, opening)

    # ----------------------------------------------------------------------- ordering

    def _in_order(self, records: Iterable[MarketRecord]) -> Iterator[MarketRecord]:
        """Records in event-time order (ties in file order), through a buffer of
        ``reorder_ms``; one later than that is taken at the time of the last one released."""
        heap: list[tuple[int, int, MarketRecord]] = []
        newest: int | None = None
        released: int | None = None
        for sequence, record in enumerate(records):
            if isinstance(record, Kline):  # not in a capture; taken as it comes
                yield record
                continue
            time = record.time
            if released is not None and time < released:
                self.counts["events_late"] += 1
                time = released
                record = record._replace(time=time)
            heapq.heappush(heap, (time, sequence, record))
            newest = time if newest is None else max(newest, time)
            while heap[0][0] <= newest - self.reorder_ms:
                released, _, out = heapq.heappop(heap)
                yield out
        while heap:
            yield heapq.heappop(heap)[2]

    def _time(self, time: int) -> int:
        if time < self._clock:
            self.counts["times_held_back"] += 1
            return self._clock
        self._clock = time
        self.last_time = time
        return time

    # -------------------------------------------------------------------------- steps

    def _steps(self, record: MarketRecord, opening: list[Sent]) -> Iterator[Step]:
        if isinstance(record, Kline):
            yield from self._kline(record)
            return
        time = self._time(record.time)
        orders = opening
        mirror = self.mirror
        if mirror is not None and mirror.needs_reset and self._since_reset >= RESET_AFTER_RECORDS:
            self._since_reset = 0
            orders = orders + mirror.reset()
        self._since_reset += 1
        tick: int | None = None
        book = self.book
        if isinstance(record, DepthSnapshot):
            changed = book.on_snapshot(record)
            if mirror is not None:
                orders = orders + mirror.sync(changed)
        elif isinstance(record, DepthUpdate):
            changed = book.on_update(record)
            if mirror is not None:
                orders = orders + mirror.sync(changed)
        elif isinstance(record, TradeRecord):
            self.counts["trades"] += 1
            if not self._ticker_seen:
                tick = self._index(self.grid.nearest_tick(record.price))
            orders = orders + self._trade(record)
        elif isinstance(record, BookTicker):
            self._ticker_seen = True
            tick = self._index(self.grid.mid_tick(record.bid, record.ask))
        if tick is not None or orders:
            yield Step(time, tick, orders, record)

    def _index(self, tick: int) -> int | None:
        """``tick`` if it differs from the last index published."""
        if tick == self._tick or tick <= 0:
            return None
        self._tick = tick
        return tick

    def _trade(self, trade: TradeRecord) -> list[Sent]:
        mirror = self.mirror
        if mirror is None:
            return []
        book = self.book
        if not book.synced:
            self.counts["trades_before_book"] += 1
            return []
        buys = not trade.buyer_is_maker
        orders = mirror.sync(book.expect_trade(buys, trade.price, trade.qty))
        lots = self.grid.lots(trade.qty)
        if lots > 0:
            orders += mirror.taker(buys, lots)
        else:
            self.counts["trades_below_lot"] += 1
        orders += mirror.sync(book.take(buys, trade.price, trade.qty))
        return orders

    def _kline(self, kline: Kline) -> Iterator[Step]:
        length = kline.close_time - kline.open_time + 1
        first, second = (
            (kline.low, kline.high) if kline.close >= kline.open else (kline.high, kline.low)
        )
        path: tuple[tuple[int, Decimal], ...] = (
            (kline.open_time, kline.open),
            (kline.open_time + length // 3, first),
            (kline.open_time + 2 * length // 3, second),
            (kline.close_time, kline.close),
        )
        for at, price in path:
            tick = self.grid.nearest_tick(price)
            if tick > 0:
                yield Step(self._time(at), tick, [], kline)

    def _apply_silently(self, record: MarketRecord) -> None:
        """A record before the start: it builds the book, sends nothing."""
        book = self.book
        if isinstance(record, DepthSnapshot):
            book.on_snapshot(record)
        elif isinstance(record, DepthUpdate):
            book.on_update(record)
        elif isinstance(record, TradeRecord) and book.synced and self.format == "ws":
            buys = not record.buyer_is_maker
            book.expect_trade(buys, record.price, record.qty)
            book.take(buys, record.price, record.qty)
