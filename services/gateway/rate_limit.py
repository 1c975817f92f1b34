"""Request and order limits: a token bucket per connection and per account. Pure.

Why a token bucket rather than Binance's fixed windows: the same average (``limit`` weight per
``window_ms``) with a burst of at most ``limit``, without a window boundary across which a
client can spend two windows' worth at once; and the exact time until a request fits is known,
which is what ``retry_after_ms`` tells the client. Integer arithmetic: the level is kept in
units of 1/``window_ms`` of a token, so refilling ``limit`` per ``window_ms`` is exact.
"""

from typing import Generic, TypeVar

from exchange.units import ceil_div

K = TypeVar("K")


class TokenBucket:
    """At most ``limit`` weight at once, refilled at ``limit`` per ``window_ms``."""

    def __init__(self, limit: int, window_ms: int, now_ms: int) -> None:
        if limit <= 0 or window_ms <= 0:
            raise ValueError("a rate limit needs a positive limit and window")
        self.limit = limit
        self.window_ms = window_ms
        self._full = limit * window_ms
        self._level = self._full
        self._at = now_ms

    def take(self, weight: int, now_ms: int) -> int:
        """Spend ``weight`` and return 0, or spend nothing and return the ms until it would fit
        (a weight above ``limit`` never fits: it is refused with a whole window to wait)."""
        if now_ms > self._at:
            self._level = min(self._full, self._level + (now_ms - self._at) * self.limit)
            self._at = now_ms
        need = weight * self.window_ms
        if need > self._full:
            return self.window_ms
        if need > self._level:
            return ceil_div(need - self._level, self.limit)
        self._level -= need
        return 0


class TokenBuckets(Generic[K]):
    """One ``TokenBucket`` per key (an account, a peer address), each made full on its key's
    first request."""

    def __init__(self, limit: int, window_ms: int) -> None:
        self.limit = limit
        self.window_ms = window_ms
        self._buckets: dict[K, TokenBucket] = {}

    def take(self, key: K, weight: int, now_ms: int) -> int:
        """``TokenBucket.take`` on ``key``'s bucket."""
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket(self.limit, self.window_ms, now_ms)
        return bucket.take(weight, now_ms)
