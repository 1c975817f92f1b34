"""Binance's websocket market streams over the read model: diff and partial depth with
``U``/``u``/``pu``, trades, aggregate trades, book ticker, mini and full 24 h tickers, mark
price and klines; ``SUBSCRIBE``/``UNSUBSCRIBE``/``LIST_SUBSCRIPTIONS``; raw or combined frames.

Depth continuity: the engine numbers its book deltas one by one (``update_id``), and the REST
``depth`` answers ``lastUpdateId`` on that same sequence, so Binance's rules hold exactly: an
event carries the first and last update ids it covers (``U``, ``u``) and the one before it
(``pu = U − 1``, which is the previous event's ``u`` for every subscriber). ``@depth@0ms``
sends each delta at once; ``@100ms``, ``@250ms`` (plain ``@depth``) and ``@500ms`` gather a
market's deltas for that long (the last quantity of a level wins) and send one event to every
subscriber of the interval. Partial depth (``@depth5|10|20``) sends the book's top levels at
the same moments.

Frames are encoded once per event whatever the number of subscribers, and go through each
client's bounded queue (``services.gateway.connection``): a slow client is dropped, never
waited for.
"""

import asyncio

import msgspec

from exchange.events import BookDelta
from exchange.market import MarketSpec
from services.binance.context import Context
from services.binance.formats import Json
from services.binance.market_history import INTERVALS_MS, Candle, PublicTrade
from services.gateway.connection import Connection
from services.gateway.read_model import Changes
from services.l2_book import MergedDeltas

DEPTH_INTERVALS = {"0ms": 0, "100ms": 100, "250ms": 250, "500ms": 500}
PARTIAL_LEVELS = (5, 10, 20)
SIMPLE_KINDS = ("trade", "aggTrade", "bookTicker", "miniTicker", "ticker", "markPrice")


class StreamError(ValueError):
    """A stream name that is none of Binance's (answered with error code 2)."""


class WsClient:
    """One websocket: its queue, its framing, its streams; ``account`` for a user stream."""

    def __init__(self, connection: Connection, *, combined: bool) -> None:
        self.connection = connection
        self.combined = combined
        self.streams: set[str] = set()
        self.account: int | None = None
        self.listen_key: str | None = None

    def send(self, frame: bytes) -> None:
        self.connection.send(frame)

    def event(self, stream: str, payload: bytes) -> None:
        """``payload`` raw, or wrapped as ``{"stream", "data"}`` on a combined connection."""
        if self.combined:
            self.connection.send(b'{"stream":"' + stream.encode() + b'","data":' + payload + b"}")
        else:
            self.connection.send(payload)


class MarketStreams:
    def __init__(self, context: Context) -> None:
        self.c = context
        self._subscribers: dict[str, set[WsClient]] = {}
        self._buffers: dict[tuple[str, int], MergedDeltas] = {}

    # ---------------------------------------------------------------------- subscriptions

    def check(self, name: str) -> str:
        """``name`` if it is a stream of a market served here, else ``StreamError``."""
        symbol, _, kind = name.partition("@")
        if symbol.upper() not in self.c.markets.specs or symbol != symbol.lower():
            raise StreamError(f"no market for stream {name!r}")
        if kind in SIMPLE_KINDS or kind == "markPrice@1s":
            return name
        if kind.startswith("kline_") and kind[6:] in INTERVALS_MS:
            return name
        if kind.startswith("depth"):
            levels, _, rate = kind[5:].partition("@")
            levels_ok = not levels or (levels.isdigit() and int(levels) in PARTIAL_LEVELS)
            if levels_ok and (not rate or rate in DEPTH_INTERVALS):
                return name
        raise StreamError(f"invalid stream {name!r}")

    def subscribe(self, client: WsClient, names: list[str]) -> None:
        checked = [self.check(name) for name in names]  # all or none
        for name in checked:
            client.streams.add(name)
            self._subscribers.setdefault(name, set()).add(client)

    def unsubscribe(self, client: WsClient, names: list[str]) -> None:
        for name in names:
            client.streams.discard(name)
            subscribers = self._subscribers.get(name)
            if subscribers is not None:
                subscribers.discard(client)
                if not subscribers:
                    del self._subscribers[name]

    def drop(self, client: WsClient) -> None:
        self.unsubscribe(client, list(client.streams))

    def subscribers(self, stream: str) -> int:
        """How many clients receive ``stream`` (for readiness checks and tests)."""
        return len(self._subscribers.get(stream, ()))

    def _to(self, stream: str, payload: Json | bytes) -> None:
        subscribers = self._subscribers.get(stream)
        if not subscribers:
            return
        data = payload if isinstance(payload, bytes) else msgspec.json.encode(payload)
        for client in list(subscribers):
            client.event(stream, data)

    def _wanted(self, stream: str) -> bool:
        return bool(self._subscribers.get(stream))

    # ------------------------------------------------------------------------------ pushes

    def publish(self, changes: Changes) -> None:
        time = self.c.model.time
        for symbol, delta in changes.book:
            self._depth(symbol, delta)
        for symbol, trade in changes.trades:
            lower = symbol.lower()
            spec = self.c.markets.specs[symbol]
            public = PublicTrade(trade.trade_id, trade.price, trade.qty, trade.taker_side, time)
            if self._wanted(f"{lower}@trade"):
                self._to(f"{lower}@trade", self._trade(spec, public))
            if self._wanted(f"{lower}@aggTrade"):
                agg = self.c.formats.agg_trade(spec, public)
                self._to(f"{lower}@aggTrade", {"e": "aggTrade", "E": time, "s": symbol, **agg})
            for interval, interval_ms in INTERVALS_MS.items():
                stream = f"{lower}@kline_{interval}"
                if self._wanted(stream):
                    self._kline(stream, spec, interval, interval_ms)
        for symbol in changes.tickers:
            self._tickers(symbol)

    def publish_mark(self, symbol: str) -> None:
        lower = symbol.lower()
        streams = [s for s in (f"{lower}@markPrice", f"{lower}@markPrice@1s") if self._wanted(s)]
        if not streams:
            return
        mark = self.c.board.mark[symbol]
        spec = self.c.markets.specs[symbol]
        funding = self.c.formats.views.funding(self.c.model, self.c.board, symbol)
        payload = msgspec.json.encode(
            {
                "e": "markPriceUpdate",
                "E": mark.time,
                "s": symbol,
                "p": self.c.formats.price(spec, mark.mark),
                "ap": self.c.formats.price(spec, mark.mark),
                "i": self.c.formats.price(spec, mark.index),
                "P": self.c.formats.price(spec, mark.index),
                "r": funding.predicted_rate or funding.last_rate or "0",
                "T": funding.next_funding_time or 0,
            }
        )
        for stream in streams:
            self._to(stream, payload)

    def _trade(self, spec: MarketSpec, trade: PublicTrade) -> Json:
        public = self.c.formats.public_trade(spec, trade)
        return {
            "e": "trade",
            "E": trade.time,
            "T": trade.time,
            "s": spec.symbol,
            "t": trade.trade_id,
            "p": public["price"],
            "q": public["qty"],
            "X": "MARKET",
            "m": public["isBuyerMaker"],
        }

    def _kline(self, stream: str, spec: MarketSpec, interval: str, interval_ms: int) -> None:
        candles = self.c.history[spec.symbol].candles.query(interval_ms, None, None, 1)
        if not candles:
            return
        candle: Candle = candles[-1]
        row = self.c.formats.kline(spec, candle, interval_ms)
        self._to(
            stream,
            {
                "e": "kline",
                "E": self.c.model.time,
                "s": spec.symbol,
                "k": {
                    "t": row[0],
                    "T": row[6],
                    "s": spec.symbol,
                    "i": interval,
                    "f": -1,
                    "L": -1,
                    "o": row[1],
                    "c": row[4],
                    "h": row[2],
                    "l": row[3],
                    "v": row[5],
                    "n": row[8],
                    "x": False,
                    "q": row[7],
                    "V": row[9],
                    "Q": row[10],
                    "B": "0",
                },
            },
        )

    def _tickers(self, symbol: str) -> None:
        lower = symbol.lower()
        model, formats = self.c.model, self.c.formats
        if self._wanted(f"{lower}@bookTicker"):
            book = formats.book_ticker(model, symbol)
            self._to(
                f"{lower}@bookTicker",
                {
                    "e": "bookTicker",
                    "u": book["lastUpdateId"],
                    "E": model.time,
                    "T": model.time,
                    "s": symbol,
                    "b": book["bidPrice"],
                    "B": book["bidQty"],
                    "a": book["askPrice"],
                    "A": book["askQty"],
                },
            )
        mini, full = f"{lower}@miniTicker", f"{lower}@ticker"
        if not (self._wanted(mini) or self._wanted(full)):
            return
        day = formats.ticker_24h(model, symbol)
        figures = {
            "E": model.time,
            "s": symbol,
            "c": day["lastPrice"],
            "o": day["openPrice"],
            "h": day["highPrice"],
            "l": day["lowPrice"],
            "v": day["volume"],
            "q": day["quoteVolume"],
        }
        self._to(mini, {"e": "24hrMiniTicker", **figures})
        self._to(
            full,
            {
                "e": "24hrTicker",
                **figures,
                "p": day["priceChange"],
                "P": day["priceChangePercent"],
                "w": day["weightedAvgPrice"],
                "Q": day["lastQty"],
                "O": day["openTime"],
                "C": day["closeTime"],
                "F": day["firstId"],
                "L": day["lastId"],
                "n": day["count"],
            },
        )

    # ------------------------------------------------------------------------------- depth

    def _depth(self, symbol: str, delta: BookDelta) -> None:
        lower = symbol.lower()
        for rate, interval_ms in DEPTH_INTERVALS.items():
            streams = self._depth_streams(lower, rate)
            if not any(self._wanted(s) for s in streams):
                continue
            key = (symbol, interval_ms)
            buffer = self._buffers.get(key)
            if buffer is None:
                self._buffers[key] = MergedDeltas(delta)
                if interval_ms:
                    loop = asyncio.get_running_loop()
                    loop.call_later(interval_ms / 1000, self._flush, symbol, interval_ms)
            else:
                buffer.add(delta)
            if not interval_ms:
                self._flush(symbol, 0)

    def _depth_streams(self, lower: str, rate: str) -> list[str]:
        suffixes = [f"@{rate}"] + ([""] if rate == "250ms" else [])
        return [
            f"{lower}@depth{levels}{suffix}"
            for levels in ("", *map(str, PARTIAL_LEVELS))
            for suffix in suffixes
        ]

    def _flush(self, symbol: str, interval_ms: int) -> None:
        buffer = self._buffers.pop((symbol, interval_ms), None)
        if buffer is None:
            return
        spec = self.c.markets.specs[symbol]
        lower = symbol.lower()
        rate = next(r for r, ms in DEPTH_INTERVALS.items() if ms == interval_ms)
        time = self.c.model.time
        head = {
            "e": "depthUpdate",
            "E": time,
            "T": time,
            "s": symbol,
            "U": buffer.first,
            "u": buffer.last,
            "pu": buffer.first - 1,
        }
        diff = msgspec.json.encode(
            {
                **head,
                "b": _levels(spec, sorted(buffer.bids.items(), reverse=True)),
                "a": _levels(spec, sorted(buffer.asks.items())),
            }
        )
        book = self.c.model.books[symbol]
        for stream in self._depth_streams(lower, rate):
            if not self._wanted(stream):
                continue
            levels = stream.split("@")[1][5:]
            if not levels:
                self._to(stream, diff)
                continue
            top = int(levels)
            bids = list(reversed(book.bids.items()))[:top]
            asks = list(book.asks.items())[:top]
            self._to(stream, {**head, "b": _levels(spec, bids), "a": _levels(spec, asks)})


def _levels(spec: MarketSpec, levels: list[tuple[int, int]]) -> list[list[str]]:
    return [[spec.ticks_to_str(price), spec.lots_to_str(qty)] for price, qty in levels]
