"""Readers of Binance's public-data CSV files (data.binance.vision) and of plain OHLCV CSVs.

Each reader takes the file's lines as ``(number, text)`` pairs (``load.marketdata.files``
opens plain, ``.gz`` and ``.zip`` files) and yields records (``records.py``); a line it cannot
read raises ``MarketDataError`` naming the line, the column (1-based field number) and the
field. Blank lines are skipped. A header row is optional where Binance's files have one in
some months and not in others; when present it must name the columns expected, so that a file
of another layout is refused rather than misread.

* **Klines** (``BTCUSDT-1m-2024-08.csv``): ``open_time, open, high, low, close, volume,
  close_time, quote_volume, count, taker_buy_volume, taker_buy_quote_volume, ignore``. Times in
  milliseconds, except Binance's spot files from 2025-01-01 on, which are in **microseconds**:
  every time is brought to milliseconds by its magnitude (``fields.time_ms``: below 10^14 it is
  ms, below 10^17 µs, else ns). Rows need the first seven columns; the rest are not used. A row
  must hold ``low <= open, close <= high`` and ``close_time >= open_time``.
* **aggTrades**: ``agg_trade_id, price, quantity, first_trade_id, last_trade_id,
  transact_time, is_buyer_maker`` (USDⓈ-M), plus ``is_best_match`` on spot.
* **trades**: ``id, price, qty, quote_qty, time, is_buyer_maker`` (USDⓈ-M), plus
  ``is_best_match`` on spot.
* **OHLCV** (what freqtrade and many tools export, like the project's month of BTCUSDT
  minutes): a header ``date, open, high, low, close[, volume, …]`` (``date`` may be called
  ``time``, ``timestamp`` or ``open_time``), the date ISO 8601 (``2025-05-25T10:33:00Z``) or a
  number (ms, µs or ns). Such a file does not say how long a bar is: each bar lasts until the
  next row's time, the last one as long as the one before it (a minute if the file has one row).
"""

from collections.abc import Iterable, Iterator
from decimal import Decimal

from load.marketdata.fields import Where, boolean, decimal, integer, timestamp
from load.marketdata.records import Kline, TradeRecord

KLINE_COLUMNS = (
    "open_time",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "close_time",
    "quote_volume",
    "count",
    "taker_buy_volume",
    "taker_buy_quote_volume",
    "ignore",
)
AGG_TRADE_COLUMNS = (
    "agg_trade_id",
    "price",
    "quantity",
    "first_trade_id",
    "last_trade_id",
    "transact_time",
    "is_buyer_maker",
    "is_best_match",
)
TRADE_COLUMNS = ("id", "price", "qty", "quote_qty", "time", "is_buyer_maker", "is_best_match")
OHLCV_TIME_NAMES = ("date", "time", "timestamp", "open_time")
OHLCV_COLUMNS = ("date", "open", "high", "low", "close", "volume")
DEFAULT_BAR_MS = 60_000
"""The length of the bar of an OHLCV file with a single row."""

Lines = Iterable[tuple[int, str]]


def is_header(text: str) -> bool:
    """Whether a CSV line is a header: its first field is not a number."""
    first = text.split(",", 1)[0].strip()
    return not first.isdigit()


def _rows(
    lines: Lines, path: str, columns: tuple[str, ...], least: int
) -> Iterator[tuple[Where, list[str]]]:
    """The data rows (header checked and skipped) split into fields, with at least ``least``
    and at most ``len(columns)`` fields each."""
    first = True
    for number, text in lines:
        if not text.strip():
            continue
        where = Where(path, number)
        fields = text.split(",")
        if first:
            first = False
            if is_header(text):
                _check_header(fields, columns, where)
                continue
        if not least <= len(fields) <= len(columns):
            expected = f"{least}" if least == len(columns) else f"{least} to {len(columns)}"
            # the column of the first field missing, or of the first one too many
            column = len(fields) + 1 if len(fields) < least else len(columns) + 1
            raise where.error(
                f"expected {expected} comma-separated fields ({', '.join(columns[:least])}…), "
                f"found {len(fields)}",
                column,
            )
        yield where, fields


def _check_header(fields: list[str], columns: tuple[str, ...], where: Where) -> None:
    if len(fields) > len(columns):
        raise where.error(
            f"header has {len(fields)} columns, expected at most {len(columns)}: "
            f"{', '.join(columns)}",
            len(columns) + 1,
        )
    for index, name in enumerate(fields):
        if name.strip().lower() != columns[index]:
            raise where.error(
                f"header names {name.strip()!r} where {columns[index]!r} is expected",
                index + 1,
                columns[index],
            )


def read_klines(lines: Lines, path: str) -> Iterator[Kline]:
    """Binance kline rows as ``Kline`` records (module docstring)."""
    for where, fields in _rows(lines, path, KLINE_COLUMNS, 7):
        open_time = timestamp_digits(fields, 0, where)
        close_time = timestamp_digits(fields, 6, where)
        yield _kline(where, fields, open_time, close_time)


def timestamp_digits(fields: list[str], index: int, where: Where) -> int:
    """A time column of Binance's files: digits only (ms, µs or ns)."""
    name = KLINE_COLUMNS[index]
    integer(fields[index], where, index + 1, name)  # digits only: no ISO dates here
    return timestamp(fields[index], where, index + 1, name)


def _kline(where: Where, fields: list[str], open_time: int, close_time: int) -> Kline:
    names = ("open", "high", "low", "close")
    o, h, low, c = (decimal(fields[i + 1], where, i + 2, name) for i, name in enumerate(names))
    volume = decimal(fields[5], where, 6, "volume", zero=True) if len(fields) > 5 else Decimal(0)
    if h < max(o, c, low):
        raise where.error(f"high {fields[2].strip()} is below the bar's other prices", 3, "high")
    if low > min(o, c):
        raise where.error(f"low {fields[3].strip()} is above the open or close", 4, "low")
    if close_time < open_time:
        raise where.error("close_time is before open_time", 7, "close_time")
    return Kline(where.line, open_time, close_time, o, h, low, c, volume)


def read_ohlcv(lines: Lines, path: str) -> Iterator[Kline]:
    """OHLCV rows as ``Kline`` records; each bar ends where the next begins (module docstring)."""
    first = True
    previous: tuple[Where, list[str], int] | None = None
    length = DEFAULT_BAR_MS
    for number, text in lines:
        if not text.strip():
            continue
        where = Where(path, number)
        fields = text.split(",")
        if first:
            first = False
            _check_ohlcv_header(fields, where)
            continue
        if not 5 <= len(fields) <= 64:
            raise where.error(f"expected date, open, high, low, close…, found {len(fields)} fields")
        time = timestamp(fields[0], where, 1, "date")
        if previous is not None:
            before_where, before_fields, before_time = previous
            if time <= before_time:
                raise where.error("date does not increase", 1, "date")
            length = time - before_time
            yield _kline(before_where, before_fields, before_time, time - 1)
        previous = (where, fields, time)
    if first:
        return
    if previous is not None:
        where, fields, time = previous
        yield _kline(where, fields, time, time + length - 1)


def _check_ohlcv_header(fields: list[str], where: Where) -> None:
    if not is_header(fields[0]):
        raise where.error("an OHLCV file needs a header: date, open, high, low, close[, volume]", 1)
    names = [name.strip().lower() for name in fields]
    if len(names) < 5 or names[0] not in OHLCV_TIME_NAMES:
        raise where.error(
            f"header names {fields[0].strip()!r} where the date is expected", 1, "date"
        )
    for index, expected in enumerate(OHLCV_COLUMNS[1:5], start=1):
        if names[index] != expected:
            raise where.error(
                f"header names {fields[index].strip()!r} where {expected!r} is expected",
                index + 1,
                expected,
            )


def read_agg_trades(lines: Lines, path: str) -> Iterator[TradeRecord]:
    """Binance aggTrades rows as ``TradeRecord`` (its id the aggregate trade's id)."""
    for where, fields in _rows(lines, path, AGG_TRADE_COLUMNS, 7):
        trade_id = integer(fields[0], where, 1, "agg_trade_id")
        price = decimal(fields[1], where, 2, "price")
        qty = decimal(fields[2], where, 3, "quantity")
        integer(fields[3], where, 4, "first_trade_id")
        integer(fields[4], where, 5, "last_trade_id")
        integer(fields[5], where, 6, "transact_time")
        time = timestamp(fields[5], where, 6, "transact_time")
        maker = boolean(fields[6], where, 7, "is_buyer_maker")
        if len(fields) > 7:
            boolean(fields[7], where, 8, "is_best_match")
        yield TradeRecord(where.line, time, price, qty, maker, trade_id)


def read_trades(lines: Lines, path: str) -> Iterator[TradeRecord]:
    """Binance trades rows as ``TradeRecord``."""
    for where, fields in _rows(lines, path, TRADE_COLUMNS, 6):
        trade_id = integer(fields[0], where, 1, "id")
        price = decimal(fields[1], where, 2, "price")
        qty = decimal(fields[2], where, 3, "qty")
        decimal(fields[3], where, 4, "quote_qty", zero=True)
        integer(fields[4], where, 5, "time")
        time = timestamp(fields[4], where, 5, "time")
        maker = boolean(fields[5], where, 6, "is_buyer_maker")
        if len(fields) > 6:
            boolean(fields[6], where, 7, "is_best_match")
        yield TradeRecord(where.line, time, price, qty, maker, trade_id)
