"""A market's 24-hour ticker statistics over a rolling window of event time. Pure, no I/O.

Why per-minute buckets: the window must move with time and forget what leaves it, and keeping
every trade of a day would let a busy market grow the gateway without bound. A bucket per minute
of event time holds that minute's open, high, low, close, volume, notional and count, so a
market costs at most 1,440 buckets however much it trades, and the figures stay exact integers
(ticks, lots, tick·lots). The price is granularity: a trade leaves the window with its minute,
so the window at time ``T`` holds the trades of ``T``'s minute and of the 1,439 minutes before
it, between 23 h 59 min and 24 h of them, never one older than 24 h. Binance's rolling-window
statistics make the same trade ("no more than 59999 ms from the requested window size").

Why event time: the read model's clock is the event time of the command log (the gateway's
wall clock live, the data's own time in a replay), so a replayed day shows the day's figures,
and two gateways folding the same log show the same numbers.
"""

from collections import deque

import msgspec

BUCKET_MS = 60_000
WINDOW_MS = 86_400_000


class WindowStats(msgspec.Struct, frozen=True, kw_only=True):
    """What the window holds: prices in ticks, ``volume`` in lots, ``notional`` in tick·lots
    (Σ price × qty: × the market's multiplier it is minor units of the settlement asset)."""

    open: int
    """The first trade's price in the window."""
    high: int
    low: int
    close: int
    """The last trade's price in the window."""
    volume: int
    notional: int
    count: int
    """Trades in the window."""


class _Bucket:
    __slots__ = ("close", "count", "high", "low", "minute", "notional", "open", "volume")

    def __init__(self, minute: int, price: int) -> None:
        self.minute = minute
        self.open = self.high = self.low = self.close = price
        self.volume = self.notional = self.count = 0


class RollingStats:
    """The trades of the last ``window_ms`` of event time, in buckets of ``bucket_ms``.

    ``add`` a trade, ``expire`` at a new time (True if some trades left the window, so the
    ticker changed without a trade), ``stats`` for the figures. Time is expected never to go
    back (the read model's does not); a trade stamped before the newest bucket is counted in it.
    """

    def __init__(self, window_ms: int = WINDOW_MS, bucket_ms: int = BUCKET_MS) -> None:
        if bucket_ms <= 0 or window_ms <= 0 or window_ms % bucket_ms:
            raise ValueError("the window must be a positive whole number of buckets")
        self._bucket_ms = bucket_ms
        self._buckets_per_window = window_ms // bucket_ms
        self._buckets: deque[_Bucket] = deque()
        self._volume = self._notional = self._count = 0
        self._high = self._low = 0

    def add(self, time: int, price: int, qty: int) -> None:
        minute = time // self._bucket_ms
        self.expire(time)
        buckets = self._buckets
        if buckets and buckets[-1].minute >= minute:
            bucket = buckets[-1]
        else:
            bucket = _Bucket(minute, price)
            buckets.append(bucket)
        bucket.high = max(bucket.high, price)
        bucket.low = min(bucket.low, price)
        bucket.close = price
        bucket.volume += qty
        bucket.notional += price * qty
        bucket.count += 1
        self._volume += qty
        self._notional += price * qty
        self._count += 1
        if len(buckets) == 1 and bucket.count == 1:
            self._high = self._low = price
        else:
            self._high = max(self._high, price)
            self._low = min(self._low, price)

    def expire(self, now: int) -> bool:
        """Drop the buckets that are out of the window at ``now``; True if any was."""
        buckets = self._buckets
        first = now // self._bucket_ms - self._buckets_per_window + 1  # the oldest minute kept
        if not buckets or buckets[0].minute >= first:
            return False
        extreme = False
        while buckets and buckets[0].minute < first:
            gone = buckets.popleft()
            self._volume -= gone.volume
            self._notional -= gone.notional
            self._count -= gone.count
            extreme = extreme or gone.high >= self._high or gone.low <= self._low
        if extreme and buckets:  # at most once per minute: a scan of at most a day's buckets
            self._high = max(bucket.high for bucket in buckets)
            self._low = min(bucket.low for bucket in buckets)
        return True

    def stats(self) -> WindowStats | None:
        """The window's figures; None when no trade is in it."""
        if not self._buckets:
            return None
        return WindowStats(
            open=self._buckets[0].open,
            high=self._high,
            low=self._low,
            close=self._buckets[-1].close,
            volume=self._volume,
            notional=self._notional,
            count=self._count,
        )
