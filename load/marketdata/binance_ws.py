"""Reader of raw Binance websocket captures: one message per line, as received.

A line is ``<local receive time in ns> <JSON message>`` (the layout of the project's bundled
capture and of hftbacktest's collector) or the JSON message alone. A message is either wrapped
as a combined stream sends it, ``{"stream": "btcusdt@depth@0ms", "data": {…}}``, or bare. Kinds:

* a REST depth snapshot (``{"lastUpdateId", "bids", "asks", …}``) → ``DepthSnapshot``;
* ``depthUpdate`` → ``DepthUpdate`` (``U``, ``u`` and, on USDⓈ-M, ``pu``);
* ``trade`` and ``aggTrade`` → ``TradeRecord``;
* ``bookTicker`` (USDⓈ-M has ``"e": "bookTicker"``; spot's has no ``e`` but ``u, b, B, a, A``)
  → ``BookTicker``;
* any other event (``markPriceUpdate``, ``kline``, …) → ``OtherMessage``, to be counted.

**Event time** of a message is its ``T`` (transaction time: when Binance's matching engine did
it), else its ``E`` (when Binance sent it), else the time of the message before it (spot's
``bookTicker`` and snapshot carry neither), else the line's local receive time. Binance gives
times in ms; larger ones are brought to ms by magnitude like every time here.

Prices and quantities must be JSON strings of decimals (as Binance sends them: a JSON number
would have gone through a float), ids and times JSON integers. A line that is not JSON, not an
object, or a message of a known kind with a missing or wrong field raises ``MarketDataError``
with the line, the column where the JSON (or the field's key) starts, and the field's path.
"""

import re
from collections.abc import Iterable, Iterator
from decimal import Decimal
from typing import Any

import msgspec

from load.marketdata.fields import Where, decimal, time_ms
from load.marketdata.records import (
    BookTicker,
    DepthSnapshot,
    DepthUpdate,
    Level,
    MarketRecord,
    OtherMessage,
    TradeRecord,
)

_PREFIX = re.compile(r"([0-9]{1,20}) ")
_BYTE = re.compile(r"\(byte ([0-9]+)\)")
_MAX_ID = 2**63 - 1
_KNOWN: dict[str, Decimal] = {}
"""Level strings already parsed (a depth stream repeats the same few thousand prices and
quantities): each valid, zero or above. Bounded by ``_KNOWN_MAX``."""
_KNOWN_MAX = 200_000


def _remember(text: str, value: Decimal) -> Decimal:
    if len(_KNOWN) >= _KNOWN_MAX:
        _KNOWN.clear()
    _KNOWN[text] = value
    return value


class _Message:
    """One decoded message and where it came from, to read fields with located errors."""

    def __init__(self, where: Where, text: str, start: int, data: dict[str, Any], path: str):
        self.where = where
        self.text = text
        self.start = start
        """0-based index in ``text`` where the message's JSON begins."""
        self.data = data
        self.path = path
        """The JSON path of ``data``: ``""`` or ``"data."`` for a combined stream."""

    def column(self, key: str) -> int:
        """Where the key's name starts in the line (1-based), or the message if not found."""
        found = self.text.find(f'"{key}"', self.start)
        return (found if found >= 0 else self.start) + 1

    def error(self, key: str, reason: str, field: str | None = None) -> Exception:
        return self.where.error(reason, self.column(key), field or f"{self.path}{key}")

    def raw(self, key: str) -> Any:
        if key not in self.data:
            raise self.error(key, f"the message has no {key!r}")
        return self.data[key]

    def integer(self, key: str) -> int:
        value = self.raw(key)
        if type(value) is not int or not 0 <= value <= _MAX_ID:
            raise self.error(key, f"expected a whole number, got {value!r}")
        return value

    def optional_integer(self, key: str) -> int | None:
        return self.integer(key) if key in self.data else None

    def decimal(self, key: str, *, zero: bool = False) -> Decimal:
        value = self.raw(key)
        if type(value) is not str:
            raise self.error(key, f"expected a decimal string, got {value!r}")
        known = _KNOWN.get(value)
        if known is not None and (known or zero):
            return known
        parsed = decimal(value, self.where, self.column(key), self.path + key, zero=zero)
        return _remember(value, parsed)

    def flag(self, key: str) -> bool:
        value = self.raw(key)
        if type(value) is not bool:
            raise self.error(key, f"expected true or false, got {value!r}")
        return value

    def symbol(self) -> str | None:
        value = self.data.get("s")
        if value is None:
            return None
        if type(value) is not str:
            raise self.error("s", f"expected the symbol as a string, got {value!r}")
        return value.upper()

    def levels(self, key: str) -> tuple[Level, ...]:
        value = self.raw(key)
        if type(value) is not list:
            raise self.error(key, f"expected a list of [price, quantity], got {value!r}")
        out = []
        column = self.column(key)
        for index, level in enumerate(value):
            if type(level) is not list or len(level) < 2:
                raise self.error(
                    key, f"expected [price, quantity], got {level!r}", f"{self.path}{key}[{index}]"
                )
            price, qty = level[0], level[1]
            for position, item in ((0, price), (1, qty)):
                if type(item) is not str:
                    raise self.error(
                        key,
                        f"expected a decimal string, got {item!r}",
                        f"{self.path}{key}[{index}][{position}]",
                    )
            price_value = _KNOWN.get(price)
            if price_value is None or not price_value:
                field = f"{self.path}{key}[{index}][0]"
                price_value = _remember(price, decimal(price, self.where, column, field))
            qty_value = _KNOWN.get(qty)
            if qty_value is None:
                field = f"{self.path}{key}[{index}][1]"
                qty_value = _remember(qty, decimal(qty, self.where, column, field, zero=True))
            out.append((price_value, qty_value))
        return tuple(out)


def read_ws_capture(lines: Iterable[tuple[int, str]], path: str) -> Iterator[MarketRecord]:
    """The records of a capture's lines (module docstring)."""
    clock = 0
    for number, text in lines:
        if not text.strip():
            continue
        where = Where(path, number)
        message = _decode(text, where)
        time = _event_time(message)
        if time is None:
            time = clock or _receive_ms(text)
        clock = max(clock, time)
        yield _record(message, time)


def _decode(text: str, where: Where) -> _Message:
    start = len(text) - len(text.lstrip())
    prefix = _PREFIX.match(text, start)
    if prefix is not None:
        start = prefix.end()
    body = text[start:].rstrip()
    if not body.startswith("{"):
        raise where.error(
            "expected a JSON object, optionally after the receive time in ns and a space",
            start + 1,
        )
    try:
        decoded = msgspec.json.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError) as error:
        offset = _BYTE.search(str(error))
        column = start + (int(offset.group(1)) if offset else len(body)) + 1
        raise where.error(f"not JSON: {error}", column) from None
    if type(decoded) is not dict:
        raise where.error("expected a JSON object", start + 1)
    data, field_path = decoded, ""
    if "stream" in decoded and "data" in decoded:
        data, field_path = decoded["data"], "data."
        if type(data) is not dict:
            raise where.error("the combined stream's data is not an object", start + 1, "data")
    return _Message(where, text, start, data, field_path)


def _receive_ms(text: str) -> int:
    prefix = _PREFIX.match(text.lstrip())
    return time_ms(int(prefix.group(1))) if prefix else 0


def _event_time(message: _Message) -> int | None:
    for key in ("T", "E"):
        if key in message.data:
            return time_ms(message.integer(key))
    return None


def _record(message: _Message, time: int) -> MarketRecord:
    data = message.data
    line = message.where.line
    if "lastUpdateId" in data:
        return DepthSnapshot(
            line,
            time,
            message.integer("lastUpdateId"),
            message.levels("bids"),
            message.levels("asks"),
            message.symbol(),
        )
    kind = data.get("e")
    if kind == "depthUpdate":
        return DepthUpdate(
            line,
            time,
            message.integer("U"),
            message.integer("u"),
            message.optional_integer("pu"),
            message.levels("b"),
            message.levels("a"),
            message.symbol(),
        )
    if kind in ("trade", "aggTrade"):
        return TradeRecord(
            line,
            time,
            message.decimal("p"),
            message.decimal("q"),
            message.flag("m"),
            message.integer("t" if kind == "trade" else "a"),
            message.symbol(),
        )
    if kind == "bookTicker" or (kind is None and {"u", "b", "B", "a", "A"} <= data.keys()):
        return BookTicker(
            line,
            time,
            message.decimal("b"),
            message.decimal("B", zero=True),
            message.decimal("a"),
            message.decimal("A", zero=True),
            message.symbol(),
        )
    if type(kind) is not str:
        raise message.error("e", "neither a depth snapshot nor an event with a kind ('e')")
    return OtherMessage(line, time, kind)
