"""The feed's sample file and replay path: parsing, every kind of bad input, and the looping.

Pure: no broker. Why it matters: the feed is the only moving price the exchange has until the
oracle exists; a row misread or a jump at the loop would move every user's margin.
"""

import gzip
import itertools
from pathlib import Path

import pytest

from exchange.default_markets import BTCUSDT
from services.feed_sample import (
    BUNDLED_SAMPLE,
    HEADER,
    FeedSampleError,
    SamplePoint,
    parse_sample,
    read_sample,
    replay_path,
)


def parse(*rows: str) -> list[SamplePoint]:
    return parse_sample([HEADER, *rows], BTCUSDT)


def test_rows_become_mid_prices_in_ticks() -> None:
    points = parse("1000,61800.20,61800.30", "", "1250,61800.1,61800.1", "1500,61801.00,61802.00")
    # mids 61800.25 (rounded down to the tick), 61800.1 (a locked book), 61801.5
    assert points == [(1000, 618_002), (1250, 618_001), (1500, 618_015)]


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ([], "empty"),
        (["", "1,1.0,1.1"], "line 1: expected the header"),
        (["time,bid,ask", "1,1.0,1.1", "2,1.0,1.1"], "line 1: expected the header"),
        ([HEADER, "1,1.0,1.1", "2,1.0"], "line 3: expected 3 fields"),
        ([HEADER, "1,1.0,1.1", "2,1.0,1.1,x"], "line 3: expected 3 fields"),
        ([HEADER, "1,1.0,1.1", "-2,1.0,1.1"], "line 3: time '-2'"),
        ([HEADER, "1,1.0,1.1", "2.5,1.0,1.1"], "line 3: time '2.5'"),
        ([HEADER, "1,1.0,1.1", "2,1.05,1.1"], "line 3: price '1.05' is not a multiple of 0.1"),
        ([HEADER, "1,1.0,1.1", "2,abc,1.1"], "line 3: price 'abc' is not a decimal number"),
        ([HEADER, "1,1.0,1.1", "2,0,1.1"], "line 3: price '0' must be positive"),
        ([HEADER, "1,1.0,1.1", "2,1.2,1.1"], "line 3: bid 1.2 is above ask 1.1"),
        ([HEADER, "5,1.0,1.1", "5,1.0,1.1"], "line 3: time 5 does not increase"),
        ([HEADER, "5,1.0,1.1", "4,1.0,1.1"], "line 3: time 4 does not increase"),
        ([HEADER], "0 rows: a replay needs at least two"),
        ([HEADER, "1,1.0,1.1", ""], "1 rows: a replay needs at least two"),
    ],
)
def test_bad_input_is_refused_with_the_line(lines: list[str], message: str) -> None:
    with pytest.raises(FeedSampleError, match=message):
        parse_sample(lines, BTCUSDT)


def test_a_file_is_read_plain_or_gzipped_and_errors_name_it(tmp_path: Path) -> None:
    text = f"{HEADER}\n1,1.0,1.2\n2,1.1,1.3\n"
    plain, packed = tmp_path / "s.csv", tmp_path / "s.csv.gz"
    plain.write_text(text)
    packed.write_bytes(gzip.compress(text.encode()))
    assert read_sample(plain, BTCUSDT) == read_sample(packed, BTCUSDT) == [(1, 11), (2, 12)]

    empty = tmp_path / "empty.csv.gz"
    empty.write_bytes(gzip.compress(b""))
    with pytest.raises(FeedSampleError, match=r"empty\.csv\.gz: empty"):
        read_sample(empty, BTCUSDT)
    not_gzip = tmp_path / "bad.csv.gz"
    not_gzip.write_text(text)
    with pytest.raises(FeedSampleError, match=r"bad\.csv\.gz: "):
        read_sample(not_gzip, BTCUSDT)
    with pytest.raises(FeedSampleError, match=r"missing\.csv: "):
        read_sample(tmp_path / "missing.csv", BTCUSDT)


def test_the_bundled_sample_is_the_recording() -> None:
    """The 250 ms sample of 2024-08-08 23:54:16 → 08-09 00:00:00 UTC (services/data/README.md)."""
    points = read_sample(BUNDLED_SAMPLE, BTCUSDT)
    assert len(points) == 1_375
    assert points[0].time_ms == 1_723_161_256_477
    assert points[-1].time_ms - points[0].time_ms == 344_232
    prices = [point.price for point in points]
    assert (min(prices), max(prices)) == (615_915, 618_398)
    assert BUNDLED_SAMPLE.stat().st_size < 50_000


def test_the_path_goes_forward_then_backward_forever() -> None:
    points = [SamplePoint(100, 10), SamplePoint(130, 11), SamplePoint(200, 12)]
    steps = list(itertools.islice(replay_path(points), 10))
    assert steps == [
        (0, 10),
        (30, 11),
        (70, 12),
        (70, 11),  # the turn: back to the neighbour, after the recorded gap
        (30, 10),
        (30, 11),
        (70, 12),
        (70, 11),
        (30, 10),
        (30, 11),
    ]


def test_a_two_point_path_alternates_and_a_shorter_one_is_refused() -> None:
    steps = list(itertools.islice(replay_path([SamplePoint(0, 5), SamplePoint(9, 6)]), 5))
    assert steps == [(0, 5), (9, 6), (9, 5), (9, 6), (9, 5)]
    with pytest.raises(FeedSampleError, match="at least two"):
        next(replay_path([SamplePoint(0, 5)]))


def test_the_path_never_jumps() -> None:
    """Every step of the bundled path, across both turns, is a step the recording took."""
    points = read_sample(BUNDLED_SAMPLE, BTCUSDT)
    recorded = {abs(b.price - a.price) for a, b in itertools.pairwise(points)}
    lap = 2 * (len(points) - 1)
    steps = list(itertools.islice(replay_path(points), 2 * lap + 1))
    prices = [price for _, price in steps]
    assert {abs(b - a) for a, b in itertools.pairwise(prices)} <= recorded
    assert prices[lap] == prices[0] and prices[lap // 2] == points[-1].price
