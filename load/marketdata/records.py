"""What the market-data readers yield: one small record per event of a file, and the one error
they raise. Pure data: no I/O.

Prices and quantities stay exact ``Decimal``s as written in the file (the venue's grid, not
ours): converting them to a market's ticks and lots is a choice about rounding that belongs to
the replay (``load.replay.grid``), not to reading. Times are integers in milliseconds since the
epoch, whatever unit the file used. Every record carries the 1-based ``line`` it came from.
"""

from decimal import Decimal
from typing import NamedTuple

Level = tuple[Decimal, Decimal]
"""One book level: price and quantity (a quantity of 0 removes the level)."""


class MarketDataError(ValueError):
    """A file, or a line of one, that cannot be read: where, and why.

    ``line`` is 1-based (0 when the problem is the file as a whole: missing, empty, a zip with
    two members); ``column`` is 1-based: the field's number in a CSV row, or the character
    where the problem starts in a JSON line; ``field`` names it (``high``, ``data.b[3][0]``).
    """

    def __init__(
        self,
        path: str,
        line: int,
        reason: str,
        *,
        column: int | None = None,
        field: str | None = None,
    ) -> None:
        self.path = path
        self.line = line
        self.column = column
        self.field = field
        self.reason = reason
        where = path if not line else f"{path}, line {line}"
        if column is not None:
            where += f", column {column}"
        if field is not None:
            where += f" ({field})"
        super().__init__(f"{where}: {reason}")


class Kline(NamedTuple):
    """One candle: open, high, low and close of ``[open_time, close_time]`` (ms, inclusive)."""

    line: int
    open_time: int
    close_time: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal


class TradeRecord(NamedTuple):
    """One trade (or aggregate trade) at ``time``. ``buyer_is_maker``: the seller took, i.e.
    the aggressor sold (Binance's ``m``)."""

    line: int
    time: int
    price: Decimal
    qty: Decimal
    buyer_is_maker: bool
    trade_id: int
    symbol: str | None = None


class DepthSnapshot(NamedTuple):
    """A full order book (Binance REST ``/depth``) as of update id ``last_update_id``."""

    line: int
    time: int
    last_update_id: int
    bids: tuple[Level, ...]
    asks: tuple[Level, ...]
    symbol: str | None = None


class DepthUpdate(NamedTuple):
    """Binance ``depthUpdate``: the absolute quantity of every level that changed between update
    ids ``first_id`` (``U``) and ``last_id`` (``u``). ``previous_id`` (``pu``, futures only)
    is the ``last_id`` of the update before it; None on spot, where ``U`` follows ``u + 1``."""

    line: int
    time: int
    first_id: int
    last_id: int
    previous_id: int | None
    bids: tuple[Level, ...]
    asks: tuple[Level, ...]
    symbol: str | None = None


class BookTicker(NamedTuple):
    """Binance ``bookTicker``: the best bid and ask with their quantities."""

    line: int
    time: int
    bid: Decimal
    bid_qty: Decimal
    ask: Decimal
    ask_qty: Decimal
    symbol: str | None = None


class OtherMessage(NamedTuple):
    """A well-formed message of a kind a replay has no use for (``markPriceUpdate``, …):
    yielded so that it is counted, not silently dropped."""

    line: int
    time: int
    kind: str


MarketRecord = Kline | TradeRecord | DepthSnapshot | DepthUpdate | BookTicker | OtherMessage
