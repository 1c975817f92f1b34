"""Opening a market-data file: compression and format told from its content, lines numbered.

Compression is told by the first bytes, not the name: gzip (``1f 8b``), zip (``PK``, exactly
one file inside, as Binance's downloads are) or plain. The format is told by the first
non-blank line (``detect_format``) unless the caller names it. Lines are read as bytes and
decoded one by one, so a line that is not UTF-8 is reported with its own number and column.
Nothing is read beyond the file; reading is lazy, so a file of any length streams.
"""

import gzip
import itertools
import zipfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Protocol

from load.marketdata.binance_csv import (
    is_header,
    read_agg_trades,
    read_klines,
    read_ohlcv,
    read_trades,
)
from load.marketdata.binance_ws import read_ws_capture
from load.marketdata.records import MarketDataError, MarketRecord

FORMATS = ("klines", "ohlcv", "aggtrades", "trades", "ws")
"""The formats by name: Binance klines, OHLCV with dates, Binance aggTrades and trades CSVs,
and raw Binance websocket captures."""

_READERS: dict[str, Callable[[Iterator[tuple[int, str]], str], Iterator[MarketRecord]]] = {
    "klines": read_klines,
    "ohlcv": read_ohlcv,
    "aggtrades": read_agg_trades,
    "trades": read_trades,
    "ws": read_ws_capture,
}
_SNIFF_LINES = 1_000
"""Blank lines tolerated before the first line that tells the format."""


def detect_format(text: str) -> str | None:
    """The format of a file whose first non-blank line is ``text``, or None if it tells none.

    A JSON object, alone or after a receive time, is a websocket capture. A CSV header names
    its format by its first column; a headerless row by its fields: 11–12 are klines; 6, or 7
    ending in two booleans, are trades (USDⓈ-M, spot); 7 ending in one boolean, or 8, are
    aggTrades (USDⓈ-M, spot).
    """
    stripped = text.strip()
    head = stripped.split(" ", 1)
    if stripped.startswith("{") or (len(head) == 2 and head[0].isdigit() and head[1][:1] == "{"):
        return "ws"
    fields = [field.strip().lower() for field in stripped.split(",")]
    if is_header(stripped):
        first = fields[0]
        if first == "open_time" and len(fields) >= 7 and fields[6] == "close_time":
            return "klines"
        if first in ("date", "time", "timestamp", "open_time") and fields[1:5] == [
            "open",
            "high",
            "low",
            "close",
        ]:
            return "ohlcv"
        if first == "agg_trade_id":
            return "aggtrades"
        if first == "id" and fields[1:3] == ["price", "qty"]:
            return "trades"
        return None
    booleans = [field in ("true", "false") for field in fields]
    if len(fields) in (11, 12):
        return "klines"
    if len(fields) == 6 and booleans[5]:
        return "trades"
    if len(fields) == 7 and booleans[5] and booleans[6]:
        return "trades"
    if (len(fields) == 7 and booleans[6]) or (len(fields) == 8 and booleans[7]):
        return "aggtrades"
    return None


class _ReadsLines(Protocol):
    def readline(self, size: int = -1, /) -> bytes: ...


class MarketDataFile:
    """An open market-data file: ``format``, ``records()`` and how far reading has come.

    Raises ``MarketDataError`` for a file that cannot be opened, a zip that does not hold
    exactly one file, and a format that is neither given nor told by the content.
    """

    def __init__(self, path: str | Path, format: str | None = None) -> None:
        self.path = str(path)
        if format is not None and format not in FORMATS:
            raise MarketDataError(self.path, 0, f"unknown format {format!r} (formats: {FORMATS})")
        try:
            self._raw: IO[bytes] = open(path, "rb")  # noqa: SIM115 (closed by close())
            self.size = Path(path).stat().st_size
        except OSError as error:
            raise MarketDataError(self.path, 0, f"cannot open: {error.strerror}") from None
        try:
            self.compression, self._stream = self._open_stream()
            self._lines = self._numbered()
            first, self._peeked = self._peek()
            self.format = format or detect_format(first)
            if self.format is None:
                number = self._peeked[-1][0] if self._peeked else 1
                raise MarketDataError(
                    self.path,
                    number,
                    f"cannot tell the format from {first.strip()[:80]!r}: "
                    f"give --format ({', '.join(FORMATS)})",
                )
        except BaseException:
            self.close()
            raise

    def records(self) -> Iterator[MarketRecord]:
        """The file's records, in file order; raises ``MarketDataError`` at a bad line."""
        reader = _READERS[self.format or ""]
        lines = itertools.chain(self._peeked, self._lines)
        return reader(lines, self.path)

    def position(self) -> int:
        """Bytes of the file on disk read so far (compressed bytes for a compressed file)."""
        try:
            return self._raw.tell()
        except (OSError, ValueError):
            return self.size

    def close(self) -> None:
        self._raw.close()

    def __enter__(self) -> "MarketDataFile":
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _open_stream(self) -> tuple[str, _ReadsLines]:
        magic = self._raw.read(4)
        self._raw.seek(0)
        if magic[:2] == b"\x1f\x8b":
            return "gzip", gzip.GzipFile(fileobj=self._raw, mode="rb")
        if magic == b"PK\x03\x04":
            try:
                archive = zipfile.ZipFile(self._raw)
                members = [info for info in archive.infolist() if not info.is_dir()]
            except (zipfile.BadZipFile, OSError, EOFError) as error:
                raise MarketDataError(self.path, 0, f"not a readable zip: {error}") from None
            if len(members) != 1:
                names = ", ".join(info.filename for info in members[:5])
                raise MarketDataError(
                    self.path,
                    0,
                    f"a zip must hold exactly one file, this one holds {len(members)}: {names}",
                )
            return "zip", archive.open(members[0])
        return "none", self._raw

    def _numbered(self) -> Iterator[tuple[int, str]]:
        number = 0
        stream = self._stream
        while True:
            try:
                raw = stream.readline()
            except (OSError, EOFError, zlib.error, zipfile.BadZipFile) as error:
                reason = f"cannot read on ({self.compression} data): {error}"
                raise MarketDataError(self.path, number + 1, reason) from None
            if not raw:
                return
            number += 1
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                raise MarketDataError(
                    self.path, number, "not UTF-8 text", column=error.start + 1
                ) from None
            if number == 1 and text.startswith("\ufeff"):
                text = text[1:]
            yield number, text.rstrip("\r\n")

    def _peek(self) -> tuple[str, list[tuple[int, str]]]:
        """The first non-blank line, and the lines read to find it (to be read again)."""
        peeked: list[tuple[int, str]] = []
        for number, text in self._lines:
            peeked.append((number, text))
            if text.strip():
                return text, peeked
            if len(peeked) >= _SNIFF_LINES:
                break
        raise MarketDataError(self.path, 0, "no data: the file is empty or blank")
