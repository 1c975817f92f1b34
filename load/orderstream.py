"""The order-stream file format (docs/order-stream.md): CSV rows of orders, cancels and amends.

Reading turns every well-formed row into an exchange command; a malformed row is counted and
skipped, never fatal, because a replay of a million rows should not die on row 700,000. Only a
file that is not an order stream at all (no header) raises ``OrderStreamError``.
"""

import gzip
import io
from array import array
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Literal, NoReturn, TextIO

from exchange.commands import AmendOrder, CancelOrder, PlaceOrder
from exchange.market import MarketSpec
from exchange.orders import OrderType, Side, TimeInForce
from exchange.units import MAX_UNITS, UnitError

HEADER = "ts_ns,op,order_id,account,side,type,price,qty,tif"
COLUMNS = len(HEADER.split(","))
MAX_ID = 2**64 - 1
"""Order and account ids are unsigned 64-bit integers."""
KEPT_ERRORS = 20
"""Malformed rows kept with their line number and reason; the rest are only counted."""

StreamCommand = PlaceOrder | CancelOrder | AmendOrder
"""The commands a row can express."""

_SIDES = {"buy": Side.BUY, "sell": Side.SELL}
_TYPES = {"limit": OrderType.LIMIT, "market": OrderType.MARKET}
_TIFS = {tif.value: tif for tif in TimeInForce}


class OrderStreamError(ValueError):
    """The file as a whole is not an order stream (for example, its header is wrong)."""


@dataclass(frozen=True, slots=True)
class RowError:
    line: int
    """1-based line number in the file; the header is line 1."""
    reason: str
    """A short code such as ``column_count`` or ``price_off_grid``."""
    detail: str


@dataclass(slots=True)
class OrderStream:
    """A fully parsed stream: ``commands[i]`` came from a row stamped ``timestamps[i]``."""

    commands: list[StreamCommand] = field(default_factory=list)
    timestamps: "array[int]" = field(default_factory=lambda: array("q"))
    malformed_rows: int = 0
    errors: list[RowError] = field(default_factory=list)
    """The first ``KEPT_ERRORS`` malformed rows."""


class _BadRow(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@contextmanager
def open_text(path: str | Path, mode: Literal["r", "w"]) -> Iterator[TextIO]:
    """Open an order-stream file for text ``"r"`` or ``"w"``, gzip when the name ends in .gz.

    Undecodable bytes become U+FFFD so that they make their row malformed instead of aborting
    the read. Written gzip files carry no name or time, so equal content gives equal bytes.
    """
    if not str(path).endswith(".gz"):
        with open(path, mode, encoding="utf-8", errors="replace", newline="") as plain:
            yield plain
        return
    with (
        open(path, mode + "b") as raw,
        gzip.GzipFile(fileobj=raw, mode=mode + "b", filename="", mtime=0) as packed,
        io.TextIOWrapper(packed, encoding="utf-8", errors="replace", newline="") as text,
    ):
        yield text


def read_order_stream(path: str | Path, spec: MarketSpec) -> OrderStream:
    """Parse the whole file at ``path`` on the grid of ``spec``."""
    with open_text(path, "r") as lines:
        return parse_lines(lines, spec)


def parse_lines(lines: Iterable[str], spec: MarketSpec) -> OrderStream:
    """Parse an order stream given as lines (header first); blank lines are ignored."""
    rows = iter(lines)
    header = next(rows, "").lstrip("\ufeff").strip()
    if header != HEADER:
        raise OrderStreamError(f"expected the header {HEADER!r}, found {header[:100]!r}")
    stream = OrderStream()
    parser = _RowParser(spec)
    commands = stream.commands
    timestamps = stream.timestamps
    for line_no, line in enumerate(rows, start=2):
        text = line.rstrip("\r\n")
        if not text.strip():
            continue
        try:
            ts_ns, command = parser.parse(text.split(","))
        except _BadRow as bad:
            stream.malformed_rows += 1
            if len(stream.errors) < KEPT_ERRORS:
                stream.errors.append(RowError(line_no, bad.reason, bad.detail))
            continue
        commands.append(command)
        timestamps.append(ts_ns)
    return stream


def _integer(text: str, what: str, limit: int) -> int:
    # int() alone would accept signs, spaces, underscores and non-ASCII digits.
    if text.isdigit() and text.isascii():
        value = int(text)
        if value <= limit:
            return value
    raise _BadRow(f"bad_{what}", f"{what} {text!r} is not an integer in 0..{limit}")


class _RowParser:
    """Row-to-command conversion with caches: a stream repeats few distinct prices and sizes."""

    def __init__(self, spec: MarketSpec) -> None:
        self._spec = spec
        self._prices: dict[str, int] = {}
        self._qtys: dict[str, int] = {}

    def parse(self, fields: list[str]) -> tuple[int, StreamCommand]:
        if len(fields) != COLUMNS:
            raise _BadRow("column_count", f"{len(fields)} columns, expected {COLUMNS}")
        ts_text, op, id_text, account_text, side, type_, price, qty, tif = fields
        ts_ns = _integer(ts_text, "ts_ns", MAX_UNITS)
        order_id = _integer(id_text, "order_id", MAX_ID)
        account = _integer(account_text, "account", MAX_ID)
        if op == "new":
            return ts_ns, self._place(order_id, account, side, type_, price, qty, tif)
        if op == "cancel":
            if side or type_ or price or qty or tif:
                _unexpected(side=side, type=type_, price=price, qty=qty, tif=tif)
            return ts_ns, CancelOrder(order_id=order_id, account=account)
        if op == "amend":
            if side or type_ or tif:
                _unexpected(side=side, type=type_, tif=tif)
            return ts_ns, AmendOrder(
                order_id=order_id,
                account=account,
                price=self._price(price) if price else None,
                qty=self._amend_qty(qty) if qty else None,
            )
        raise _BadRow("unknown_op", f"op {op!r} is not new, cancel or amend")

    def _place(
        self, order_id: int, account: int, side: str, type_: str, price: str, qty: str, tif: str
    ) -> PlaceOrder:
        side_value = _SIDES.get(side)
        if side_value is None:
            raise _BadRow("unknown_side", f"side {side!r} is not buy or sell")
        order_type = _TYPES.get(type_)
        if order_type is None:
            raise _BadRow("unknown_type", f"type {type_!r} is not limit or market")
        tif_value = _TIFS.get(tif)
        if tif_value is None and (tif or order_type is OrderType.LIMIT):
            raise _BadRow("unknown_tif", f"tif {tif!r} is not GTC, IOC, FOK or GTX")
        if order_type is OrderType.LIMIT and not price:
            raise _BadRow("missing_price", "a limit order needs a price")
        if order_type is OrderType.MARKET and price:
            raise _BadRow("unexpected_price", "a market order has no price")
        if not qty:
            raise _BadRow("missing_qty", "a new order needs a quantity")
        return PlaceOrder(
            order_id=order_id,
            account=account,
            side=side_value,
            qty=self._qty(qty),
            type=order_type,
            price=self._price(price) if price else None,
            tif=tif_value or TimeInForce.GTC,
        )

    def _price(self, text: str) -> int:
        ticks = self._prices.get(text)
        if ticks is None:
            ticks = self._prices[text] = _units(self._spec.price_to_ticks, text, "price")
        return ticks

    def _qty(self, text: str) -> int:
        lots = self._qtys.get(text)
        if lots is None:
            lots = self._qtys[text] = _units(self._spec.qty_to_lots, text, "qty")
        return lots

    def _amend_qty(self, text: str) -> int:
        """Like ``_qty`` but zero is allowed: an amend to zero open quantity cancels."""
        try:
            return self._qty(text)
        except _BadRow as bad:
            if bad.reason == "qty_not_positive" and _is_zero(text):
                return 0
            raise


def _units(convert: Callable[[str], int], text: str, what: str) -> int:
    try:
        return convert(text)
    except UnitError as error:
        raise _BadRow(f"{what}_{error.reason}", str(error)) from None
    except ArithmeticError:
        # Decimal division overflows its precision for huge values that pass the size check.
        raise _BadRow(f"{what}_too_large", f"{what} {text!r} is too large") from None


def _is_zero(text: str) -> bool:
    try:
        return Decimal(text) == 0
    except InvalidOperation:
        return False


def _unexpected(**fields: str) -> NoReturn:
    """Raise for the first of ``fields`` that is not empty (the caller knows one is)."""
    name, value = next((name, value) for name, value in fields.items() if value)
    raise _BadRow("unexpected_field", f"{name} {value!r} must be empty for this op")


class OrderStreamWriter:
    """Writes commands as rows: the inverse of ``parse_lines`` (used by the generator).

    An order the format cannot express (another type, reduce-only, another STP mode, a market
    order with a tif) raises ``ValueError`` rather than being written as a row that would read
    back as a different command.
    """

    def __init__(self, out: TextIO, spec: MarketSpec) -> None:
        self._out = out
        self._spec = spec
        self._prices: dict[int, str] = {}
        self._qtys: dict[int, str] = {}
        out.write(HEADER + "\n")

    def write(self, ts_ns: int, command: StreamCommand) -> None:
        if isinstance(command, PlaceOrder):
            self._out.write(
                f"{ts_ns},new,{command.order_id},{command.account},{self._new(command)}\n"
            )
        elif isinstance(command, CancelOrder):
            self._out.write(f"{ts_ns},cancel,{command.order_id},{command.account},,,,,\n")
        else:
            price = "" if command.price is None else self._price(command.price)
            qty = "" if command.qty is None else self._qty(command.qty)
            self._out.write(
                f"{ts_ns},amend,{command.order_id},{command.account},,,{price},{qty},\n"
            )

    def _new(self, order: PlaceOrder) -> str:
        """The side..tif columns of a new order."""
        if order != _representable(order) or order.qty <= 0:
            raise ValueError(f"order {order.order_id} has fields the order stream cannot express")
        qty = self._qty(order.qty)
        if order.price is None:
            return f"{order.side.value},market,,{qty},"
        return f"{order.side.value},limit,{self._price(order.price)},{qty},{order.tif.value}"

    def _price(self, ticks: int) -> str:
        text = self._prices.get(ticks)
        if text is None:
            text = self._prices[ticks] = self._spec.ticks_to_str(ticks)
        return text

    def _qty(self, lots: int) -> str:
        text = self._qtys.get(lots)
        if text is None:
            text = self._qtys[lots] = self._spec.lots_to_str(lots)
        return text


def _representable(order: PlaceOrder) -> PlaceOrder:
    """``order`` reduced to the fields a row carries, as parsing would rebuild it: a market
    order without price or tif, or a limit order with a price."""
    market = order.type is OrderType.MARKET or order.price is None
    return PlaceOrder(
        order_id=order.order_id,
        account=order.account,
        side=order.side,
        qty=order.qty,
        type=OrderType.MARKET if market else OrderType.LIMIT,
        price=None if market else order.price,
        tif=TimeInForce.GTC if market else order.tif,
    )
