"""The market feed's data: a compact recording of one market's best bid and ask, and the endless
path along which the feed replays it. Pure: no clock, no broker.

Why a file of its own format rather than the raw capture: the raw websocket capture is 3.6 MB of
JSON; a 250 ms sample of the top of book is all an index needs, a few KB that ship inside the
package (``load/make_feed_sample.py`` derives it). Format: CSV, gzip-compressed when the name
ends in ``.gz``, the header ``time_ms,bid,ask``, then one row per sample: the venue's event time
in ms, strictly increasing, and the best bid and ask as decimal strings on the market's tick
grid (converted exactly, never rounded). Blank lines are ignored; any other bad line is an error
that names it, because a feed that silently skipped rows would publish a different path.

The index of a row is the mid price in ticks, rounded down: ``(bid + ask) // 2``, within half a
tick of the true mid, so that it stays on the grid.
"""

import gzip
import itertools
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import NamedTuple

from exchange.market import MarketSpec
from exchange.units import UnitError

HEADER = "time_ms,bid,ask"
BUNDLED_SAMPLE = Path(__file__).parent / "data" / "btcusdt-20240808-index.csv.gz"
"""Binance USDⓈ-M BTCUSDT, 2024-08-08 23:54:16 → 08-09 00:00:00 UTC (``data/README.md``)."""

_TIME = re.compile(r"[0-9]{1,18}")


class FeedSampleError(ValueError):
    """A sample file that cannot be replayed; the message names the file and the line."""


class SamplePoint(NamedTuple):
    """One row: the venue's event time (ms) and the index (mid, in ticks) at that time."""

    time_ms: int
    price: int


def parse_sample(lines: Iterable[str], spec: MarketSpec) -> list[SamplePoint]:
    """The points of a sample file's lines (header first), on ``spec``'s tick grid.

    Raises ``FeedSampleError`` for a missing or wrong header, a malformed row, a price off the
    grid, a crossed book (bid above ask), a time that does not increase, and for fewer than two
    rows: the replay's path needs a step to take.
    """
    rows = iter(lines)
    header = next(rows, None)
    if header is None:
        raise FeedSampleError(f"empty: expected the header {HEADER!r}")
    if header.strip() != HEADER:
        raise FeedSampleError(f"line 1: expected the header {HEADER!r}, found {header.strip()!r}")
    points: list[SamplePoint] = []
    for number, line in enumerate(rows, start=2):
        if line.strip():
            point = _parse_row(line.strip(), spec)
            if isinstance(point, str):
                raise FeedSampleError(f"line {number}: {point}")
            if points and point.time_ms <= points[-1].time_ms:
                raise FeedSampleError(f"line {number}: time {point.time_ms} does not increase")
            points.append(point)
    if len(points) < 2:
        raise FeedSampleError(f"{len(points)} rows: a replay needs at least two")
    return points


def _parse_row(line: str, spec: MarketSpec) -> SamplePoint | str:
    """The row's point, or why it is not one."""
    fields = line.split(",")
    if len(fields) != 3:
        return f"expected 3 fields ({HEADER}), found {len(fields)}: {line!r}"
    time_text, bid_text, ask_text = fields
    if not _TIME.fullmatch(time_text):
        return f"time {time_text!r} is not a whole number of milliseconds"
    try:
        bid = spec.price_to_ticks(bid_text)
        ask = spec.price_to_ticks(ask_text)
    except UnitError as error:
        return str(error)
    if bid > ask:
        return f"bid {bid_text} is above ask {ask_text}"
    return SamplePoint(int(time_text), (bid + ask) // 2)


def read_sample(path: Path, spec: MarketSpec) -> list[SamplePoint]:
    """``parse_sample`` of a file (gzip if its name ends in ``.gz``); errors name the file."""
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rt", encoding="utf-8") as handle:
                return parse_sample(handle, spec)
        with open(path, encoding="utf-8") as handle:
            return parse_sample(handle, spec)
    except (OSError, EOFError, UnicodeDecodeError, FeedSampleError) as error:
        raise FeedSampleError(f"{path}: {error}") from None


def replay_path(points: list[SamplePoint]) -> Iterator[tuple[int, int]]:
    """Endless ``(wait_ms, price)`` steps: the recording forward, then backward, and so on.

    Why back and forth: the path stays continuous at every turn (the next price is a real
    neighbour of the last one, the wait between them the recorded one) and within the recorded
    range forever. Jumping back to the start would be a jump of the whole recording's move;
    shifting each lap by that move would drift without bound. The first step waits 0.
    """
    if len(points) < 2:
        raise FeedSampleError(f"{len(points)} rows: a replay needs at least two")
    lap = [*range(len(points)), *range(len(points) - 2, 0, -1)]
    previous = points[0]
    yield 0, previous.price
    for index in itertools.islice(itertools.cycle(lap), 1, None):
        point = points[index]
        yield abs(point.time_ms - previous.time_ms), point.price
        previous = point
