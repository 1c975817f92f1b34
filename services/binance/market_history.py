"""What Binance's public history endpoints show that the read model does not keep: each market's
recent trades and its candles of trades and of the mark price. Pure, no I/O.

Why here and bounded: the native gateway streams trades but answers no history, while ccxt's
``fetch_trades`` and ``fetch_ohlcv`` (and freqtrade's start-up) ask for it. The front folds the
same event log from its beginning, so its history after a restart is what it was before.
Candles are kept per minute of event time, the finest interval; a wider one is made from them
on request. A minute without a trade has no candle (Binance repeats the last close instead).
"""

from collections import OrderedDict, deque
from dataclasses import dataclass

from exchange.orders import Side

MINUTE_MS = 60_000
INTERVALS_MS = {
    "1m": MINUTE_MS,
    "3m": 3 * MINUTE_MS,
    "5m": 5 * MINUTE_MS,
    "15m": 15 * MINUTE_MS,
    "30m": 30 * MINUTE_MS,
    "1h": 60 * MINUTE_MS,
    "2h": 120 * MINUTE_MS,
    "4h": 240 * MINUTE_MS,
    "6h": 360 * MINUTE_MS,
    "8h": 480 * MINUTE_MS,
    "12h": 720 * MINUTE_MS,
    "1d": 1_440 * MINUTE_MS,
    "3d": 4_320 * MINUTE_MS,
    "1w": 10_080 * MINUTE_MS,
}
"""Binance's kline intervals but the month (which is not a fixed length)."""


@dataclass(frozen=True)
class PublicTrade:
    trade_id: int
    price: int
    qty: int
    taker_side: Side
    time: int


@dataclass
class Candle:
    """One interval: prices in ticks, ``volume`` and ``taker_buy_volume`` in lots, the
    notionals in tick·lots."""

    open_time: int
    open: int
    high: int
    low: int
    close: int
    volume: int = 0
    notional: int = 0
    count: int = 0
    taker_buy_volume: int = 0
    taker_buy_notional: int = 0

    def add(self, price: int, qty: int, taker_buy: bool) -> None:
        self.high = max(self.high, price)
        self.low = min(self.low, price)
        self.close = price
        self.volume += qty
        self.notional += price * qty
        self.count += 1
        if taker_buy:
            self.taker_buy_volume += qty
            self.taker_buy_notional += price * qty

    def merged(self, later: "Candle") -> "Candle":
        return Candle(
            open_time=self.open_time,
            open=self.open,
            high=max(self.high, later.high),
            low=min(self.low, later.low),
            close=later.close,
            volume=self.volume + later.volume,
            notional=self.notional + later.notional,
            count=self.count + later.count,
            taker_buy_volume=self.taker_buy_volume + later.taker_buy_volume,
            taker_buy_notional=self.taker_buy_notional + later.taker_buy_notional,
        )


class Candles:
    """Per-minute candles, the latest ``minutes`` of them."""

    def __init__(self, minutes: int) -> None:
        self._minutes: OrderedDict[int, Candle] = OrderedDict()
        self._keep = minutes

    def add(self, time: int, price: int, qty: int = 0, taker_buy: bool = False) -> Candle:
        """Count a trade (or, with ``qty`` 0, a price such as a mark) in its minute; the
        minute's candle after it."""
        start = time - time % MINUTE_MS
        candle = self._minutes.get(start)
        if candle is None:
            candle = self._minutes[start] = Candle(start, price, price, price, price)
            while len(self._minutes) > self._keep:
                self._minutes.popitem(last=False)
        if qty:
            candle.add(price, qty, taker_buy)
        else:
            candle.high = max(candle.high, price)
            candle.low = min(candle.low, price)
            candle.close = price
        return candle

    def query(
        self, interval_ms: int, start: int | None, end: int | None, limit: int
    ) -> list[Candle]:
        """Candles of ``interval_ms`` opening within [start, end], oldest first: the latest
        ``limit`` of them, or the first ``limit`` from ``start`` if it is given."""
        merged: OrderedDict[int, Candle] = OrderedDict()
        for minute, candle in self._minutes.items():
            opened = minute - minute % interval_ms
            if (start is not None and opened < start - start % interval_ms) or (
                end is not None and opened > end
            ):
                continue
            held = merged.get(opened)
            if held is None:
                merged[opened] = Candle(**{**candle.__dict__, "open_time": opened})
            else:
                merged[opened] = held.merged(candle)
        candles = list(merged.values())
        return candles[:limit] if start is not None else candles[-limit:]


class MarketHistory:
    """One market's recent trades, trade candles and mark candles."""

    def __init__(self, *, trades: int = 1_000, minutes: int = 10_080) -> None:
        self.trades: deque[PublicTrade] = deque(maxlen=trades)
        self.candles = Candles(minutes)
        self.mark_candles = Candles(minutes)

    def trade(self, trade: PublicTrade) -> Candle:
        self.trades.append(trade)
        return self.candles.add(trade.time, trade.price, trade.qty, trade.taker_side is Side.BUY)

    def mark(self, time: int, price: int) -> Candle:
        return self.mark_candles.add(time, price)

    def recent(
        self,
        limit: int,
        from_id: int | None = None,
        start: int | None = None,
        end: int | None = None,
    ) -> list[PublicTrade]:
        """Trades oldest first: from ``from_id`` on, or within [start, end], else the latest."""
        chosen = [
            t
            for t in self.trades
            if (from_id is None or t.trade_id >= from_id)
            and (start is None or t.time >= start)
            and (end is None or t.time <= end)
        ]
        if from_id is not None or start is not None:
            return chosen[:limit]
        return chosen[-limit:]
