"""The market-data readers on fixtures cut from the real files (tests/data/README.md): what
they read, the variants users have (header or not, ``.gz``, ``.zip``, microseconds, spot's
extra column, combined-stream or bare messages), and that anything they cannot read is a
``MarketDataError`` naming the file, line, column and field, never another exception.
"""

import gzip
import json
import zipfile
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from load.marketdata import (
    BookTicker,
    DepthSnapshot,
    DepthUpdate,
    Kline,
    MarketDataError,
    MarketDataFile,
    OtherMessage,
    TradeRecord,
    detect_format,
)
from load.marketdata.binance_csv import read_agg_trades, read_klines, read_ohlcv, read_trades
from load.marketdata.binance_ws import read_ws_capture

DATA = Path(__file__).parent / "data"
KLINES = DATA / "btcusdt-1m-20200312-crash.csv"
OHLCV = DATA / "btcusdt-ohlcv-20250601-head.csv"
TRADES = DATA / "btcusdt-trades-20240808-head.csv"
AGG_TRADES = DATA / "btcusdt-aggtrades-20240808-head.csv"
CAPTURE = DATA / "btcusdt-ws-20240808-head.gz"


def read(path: Path, fmt: str | None = None) -> list[object]:
    with MarketDataFile(path, fmt) as data:
        return list(data.records())


def kline_lines() -> list[str]:
    return KLINES.read_text().splitlines()


def capture_lines() -> list[str]:
    with gzip.open(CAPTURE, "rt") as capture:
        return capture.read().splitlines()


def numbered(lines: list[str]) -> list[tuple[int, str]]:
    return list(enumerate(lines, start=1))


# ------------------------------------------------------------------------------- klines


def test_a_binance_kline_file_is_read_exactly() -> None:
    klines = read(KLINES)
    assert len(klines) == 60
    first, last = klines[0], klines[-1]
    assert first == Kline(
        line=2,
        open_time=1_584_053_280_000,
        close_time=1_584_053_339_999,
        open=Decimal("5794.00"),
        high=Decimal("5798.86"),
        low=Decimal("5768.73"),
        close=Decimal("5771.16"),
        volume=Decimal("165.357"),
    )
    assert isinstance(last, Kline)
    assert (last.line, last.open_time, last.close) == (61, 1_584_056_820_000, Decimal("4440.03"))


@pytest.mark.parametrize("variant", ["no_header", "gz", "zip", "zip_no_header", "crlf"])
def test_kline_variants_read_the_same(variant: str, tmp_path: Path) -> None:
    lines = kline_lines()
    body = lines[1:] if variant.endswith("no_header") else lines
    text = ("\r\n" if variant == "crlf" else "\n").join(body) + "\n"
    path = tmp_path / "BTCUSDT-1m-2020-03.csv"
    if variant == "gz":
        path = path.with_suffix(".csv.gz")
        path.write_bytes(gzip.compress(text.encode()))
    elif variant.startswith("zip"):
        path = path.with_suffix(".zip")
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("BTCUSDT-1m-2020-03.csv", text)
    else:
        path.write_text(text)
    expected = [k._replace(line=0) for k in read(KLINES)]  # type: ignore[attr-defined]
    got = read(path)
    assert [k._replace(line=0) for k in got] == expected  # type: ignore[attr-defined]


def test_microsecond_times_are_told_by_their_size(tmp_path: Path) -> None:
    """Binance's spot files from 2025 on give times in µs: the same klines in ms."""
    lines = kline_lines()
    rows = []
    for line in lines[1:]:
        fields = line.split(",")
        fields[0] = str(int(fields[0]) * 1000)
        fields[6] = str(int(fields[6]) * 1000 + 999)
        rows.append(",".join(fields))
    path = tmp_path / "us.csv"
    path.write_text("\n".join(rows) + "\n")
    assert read(path) == [k._replace(line=k.line - 1) for k in read(KLINES)]  # type: ignore[attr-defined]


def test_an_ohlcv_file_with_dates_gives_minute_bars() -> None:
    bars = read(OHLCV)
    assert len(bars) == 30
    assert all(isinstance(bar, Kline) for bar in bars)
    first = bars[0]
    assert isinstance(first, Kline)
    assert (first.open_time, first.close_time) == (1_748_736_000_000, 1_748_736_059_999)
    assert (first.open, first.high, first.low, first.close) == tuple(
        Decimal(v) for v in ("104544.6", "104599.6", "104544.6", "104599.5")
    )
    last = bars[-1]
    assert isinstance(last, Kline)
    assert last.close_time - last.open_time == 59_999  # as long as the bar before it


# ------------------------------------------------------------------------------- trades


def test_a_trades_file_is_read() -> None:
    trades = read(TRADES)
    assert len(trades) == 400
    assert trades[0] == TradeRecord(
        2, 1_723_161_256_322, Decimal("61800.30"), Decimal("0.006"), False, 5_266_583_935
    )
    assert sum(1 for t in trades if isinstance(t, TradeRecord) and t.buyer_is_maker) > 0


def test_an_agg_trades_file_without_header_holds_the_same_quantity() -> None:
    aggregated = read(AGG_TRADES)
    trades = read(TRADES)
    assert len(aggregated) == 192
    total = sum(t.qty for t in aggregated if isinstance(t, TradeRecord))
    assert total == sum(t.qty for t in trades if isinstance(t, TradeRecord))
    assert aggregated[0] == TradeRecord(
        1, 1_723_161_256_322, Decimal("61800.30"), Decimal("0.006"), False, 1
    )


def test_spot_layouts_with_is_best_match_are_read(tmp_path: Path) -> None:
    agg = tmp_path / "agg.csv"
    agg.write_text("26129,0.01633102,4.70443515,27781,27781,1498793709153,true,true\n")
    trade = tmp_path / "trade.csv"
    trade.write_text("27781,0.01633102,4.70443515,0.07682,1735689600123456,true,true\n")
    (agg_record,) = read(agg)
    (trade_record,) = read(trade)
    assert isinstance(agg_record, TradeRecord) and agg_record.time == 1_498_793_709_153
    assert isinstance(trade_record, TradeRecord)
    assert trade_record.time == 1_735_689_600_123  # µs → ms
    assert trade_record.buyer_is_maker


# --------------------------------------------------------------------- websocket capture


def test_a_capture_is_read_message_by_message() -> None:
    records = read(CAPTURE)
    kinds = [type(r) for r in records]
    assert kinds.count(DepthSnapshot) == 1
    assert kinds.count(DepthUpdate) == 120
    assert kinds.count(TradeRecord) == 197
    assert kinds.count(BookTicker) == 882
    first = records[0]
    assert isinstance(first, DepthUpdate)
    assert (first.time, first.first_id, first.last_id, first.previous_id) == (
        1_723_161_256_298,  # T, the transaction time
        5_123_107_832_006,
        5_123_107_837_557,
        5_123_107_831_937,
    )
    assert first.bids[0] == (Decimal("58710.20"), Decimal("0.014"))
    snapshot = next(r for r in records if isinstance(r, DepthSnapshot))
    assert (snapshot.line, snapshot.last_update_id) == (55, 5_123_107_852_948)
    assert len(snapshot.bids) == len(snapshot.asks) == 1000
    trade = records[2]
    assert trade == TradeRecord(
        3, 1_723_161_256_322, Decimal("61800.30"), Decimal("0.006"), False, 5_266_583_935, "BTCUSDT"
    )


def test_bare_messages_and_lines_without_receive_time_read_the_same() -> None:
    lines = capture_lines()[:60]
    bare = []
    for line in lines:
        stamp, text = line.split(" ", 1)
        message = json.loads(text)
        message = message.get("data", message)
        bare.append(json.dumps(message) if len(bare) % 2 else f"{stamp} {json.dumps(message)}")
    assert list(read_ws_capture(numbered(bare), "bare")) == list(
        read_ws_capture(numbered(lines), "wrapped")
    )


def test_spot_book_ticker_and_other_events() -> None:
    lines = [
        '{"e":"trade","E":1723161256322,"T":1723161256322,"s":"BTCUSDT","t":1,"p":"1.5",'
        '"q":"2","m":true}',
        '{"u":400900217,"s":"BNBUSDT","b":"25.35190000","B":"31.21000000","a":"25.36520000",'
        '"A":"40.66000000"}',
        '{"stream":"btcusdt@markPrice","data":{"e":"markPriceUpdate","E":1723161256999,'
        '"s":"BTCUSDT","p":"61800.1"}}',
    ]
    trade, ticker, other = read_ws_capture(numbered(lines), "spot")
    assert isinstance(trade, TradeRecord) and trade.buyer_is_maker
    assert isinstance(ticker, BookTicker)
    assert ticker.time == 1_723_161_256_322  # no time of its own: the message before's
    assert ticker.symbol == "BNBUSDT" and ticker.ask == Decimal("25.36520000")
    assert other == OtherMessage(3, 1_723_161_256_999, "markPriceUpdate")


# -------------------------------------------------------------------------- detection


@pytest.mark.parametrize(
    ("line", "fmt"),
    [
        ("open_time,open,high,low,close,volume,close_time,quote_volume,count,x,y,ignore", "klines"),
        ("1584053280000,5794.00,5798.86,5768.73,5771.16,165.357,1584053339999,1,2,3,4,0", "klines"),
        ("date,open,high,low,close,volume", "ohlcv"),
        (
            "agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,is_buyer_maker",
            "aggtrades",
        ),
        ("1,61800.30,0.006,5266583935,5266583935,1723161256322,false", "aggtrades"),
        ("1,0.1,4.7,27781,27781,1498793709153,true,true", "aggtrades"),
        ("id,price,qty,quote_qty,time,is_buyer_maker", "trades"),
        ("5266583935,61800.30,0.006,370.80180,1723161256322,false", "trades"),
        ("27781,0.1,4.7,0.07,1735689600123456,true,true", "trades"),
        ('1723161255030314667 {"stream":"x","data":{}}', "ws"),
        ('{"e":"trade"}', "ws"),
        ("hello,world", None),
        ("1,2,3", None),
    ],
)
def test_the_format_is_told_from_the_first_line(line: str, fmt: str | None) -> None:
    assert detect_format(line) == fmt


def test_an_unknown_format_asks_for_format(tmp_path: Path) -> None:
    path = tmp_path / "mystery.csv"
    path.write_text("\n\nhello,world\n")
    with pytest.raises(MarketDataError, match=r"mystery\.csv, line 3: cannot tell the format"):
        MarketDataFile(path)


# ----------------------------------------------------------------------- located errors


def test_a_bad_kline_names_line_column_and_field(tmp_path: Path) -> None:
    lines = kline_lines()
    fields = lines[5].split(",")
    fields[2] = "5000.00"  # high below the open
    lines[5] = ",".join(fields)
    path = tmp_path / "bad.csv"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(MarketDataError) as caught:
        read(path)
    error = caught.value
    assert (error.path, error.line, error.column, error.field) == (str(path), 6, 3, "high")
    assert str(error).startswith(f"{path}, line 6, column 3 (high): high 5000.00 is below")


@pytest.mark.parametrize(
    ("line", "column", "field", "reason"),
    [
        (
            "1584053280000,5794.00,abc,5768.73,5771.16,1,1584053339999,1,2,3,4,0",
            3,
            "high",
            "not a decimal",
        ),
        (
            "1584053280000,5794.00,5798.86,5768.73,5771.16,1,1584053339999,1,2,3,4,0,9",
            13,
            None,
            "found 13",
        ),
        ("1584053280000,5794.00,5798.86", 4, None, "found 3"),
        (
            "2020-03-12,5794.00,5798.86,5768.73,5771.16,1,1584053339999,1,2,3,4,0",
            1,
            "open_time",
            "not a whole number",
        ),
        (
            "1584053280000,-1,5798.86,5768.73,5771.16,1,1584053339999,1,2,3,4,0",
            2,
            "open",
            "must be positive",
        ),
        (
            "1584053280000,NaN,5798.86,5768.73,5771.16,1,1584053339999,1,2,3,4,0",
            2,
            "open",
            "finite",
        ),
        (
            "1584053280000,1e99,5798.86,5768.73,5771.16,1,1584053339999,1,2,3,4,0",
            2,
            "open",
            "too large",
        ),
        (
            "1584053340000,5794.00,5798.86,5768.73,5771.16,1,1584053280000,1,2,3,4,0",
            7,
            "close_time",
            "before",
        ),
    ],
)
def test_kline_errors(line: str, column: int, field: str | None, reason: str) -> None:
    header = kline_lines()[0]
    with pytest.raises(MarketDataError, match=reason) as caught:
        list(read_klines(numbered([header, line]), "k.csv"))
    assert (caught.value.line, caught.value.column, caught.value.field) == (2, column, field)


def test_a_header_of_another_layout_is_refused() -> None:
    with pytest.raises(MarketDataError) as caught:
        list(read_trades(numbered(["id,price,quantity,quote_qty,time,is_buyer_maker"]), "t"))
    assert (caught.value.line, caught.value.column, caught.value.field) == (1, 3, "qty")


@pytest.mark.parametrize(
    ("line", "column", "field"),
    [
        ('1723161255030314667 {"stream":"x","data":{"e":"trade","p":"1"', 62, None),  # ends early
        ('1723161255030314667 ["not", "an", "object"]', 21, None),
        ('1723161255030314667 {"e":"trade","T":1,"t":1,"p":61800.3,"q":"1","m":false}', 46, "p"),
        (
            '{"stream":"s","data":{"e":"depthUpdate","T":1,"U":1,"u":2,"b":[[1,"2"]],"a":[]}}',
            59,
            "data.b[0][0]",
        ),
        ('{"e":"depthUpdate","T":1,"U":1,"u":2,"b":[["1","2"],["x","1"]],"a":[]}', 38, "b[1][0]"),
        ('{"e":"bookTicker","T":1,"b":"1","B":"1","a":"2"}', 1, "A"),
        ('{"e":"trade","T":-5,"t":1,"p":"1","q":"1","m":false}', 14, "T"),
        ('{"lastUpdateId":1,"bids":[["1","1"]]}', 1, "asks"),
        ('{"no":"kind"}', 1, "e"),
    ],
)
def test_capture_errors(line: str, column: int, field: str | None) -> None:
    """The column is where the field's key starts (or the JSON, or where it broke off)."""
    with pytest.raises(MarketDataError) as caught:
        list(read_ws_capture(numbered(["", line]), "cap"))
    assert (caught.value.line, caught.value.column, caught.value.field) == (2, column, field)


def test_a_line_that_is_not_utf8_is_located(tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes(b"id,price,qty,quote_qty,time,is_buyer_maker\n1,2\xe9,1,1,1,true\n")
    with pytest.raises(MarketDataError) as caught:
        read(path)
    assert (caught.value.line, caught.value.column) == (2, 4)


def test_a_truncated_gzip_is_located(tmp_path: Path) -> None:
    whole = gzip.compress(("\n".join(capture_lines()[:300]) + "\n").encode())
    path = tmp_path / "cut.gz"
    path.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(MarketDataError, match=r"cut\.gz, line \d+: cannot read on") as caught:
        read(path)
    assert 1 < caught.value.line <= 300


def test_a_zip_must_hold_one_file(tmp_path: Path) -> None:
    path = tmp_path / "two.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("a.csv", "1,2\n")
        archive.writestr("b.csv", "1,2\n")
    with pytest.raises(
        MarketDataError, match=r"exactly one file, this one holds 2: a\.csv, b\.csv"
    ):
        MarketDataFile(path)


def test_missing_and_empty_files(tmp_path: Path) -> None:
    with pytest.raises(MarketDataError, match="cannot open"):
        MarketDataFile(tmp_path / "missing.csv")
    (tmp_path / "empty.csv").write_text("\n\n")
    with pytest.raises(MarketDataError, match="no data"):
        MarketDataFile(tmp_path / "empty.csv")


# ---------------------------------------------------------------- malformed lines, fuzzed

READERS = {
    "klines": (read_klines, kline_lines()[1:4]),
    "ohlcv": (read_ohlcv, OHLCV.read_text().splitlines()[1:4]),
    "trades": (read_trades, TRADES.read_text().splitlines()[1:4]),
    "aggtrades": (read_agg_trades, AGG_TRADES.read_text().splitlines()[0:3]),
    "ws": (read_ws_capture, capture_lines()[1:4]),
}
HEADERS = {"ohlcv": OHLCV.read_text().splitlines()[0]}


@st.composite
def damaged(draw: st.DrawFn) -> tuple[str, list[str], int]:
    """A format, three real lines of it with one of them damaged, and the damaged line's
    number: a slice replaced by arbitrary text, or the whole line arbitrary."""
    fmt = draw(st.sampled_from(sorted(READERS)))
    lines = list(READERS[fmt][1])
    index = draw(st.integers(0, len(lines) - 1))
    line = lines[index]
    if draw(st.booleans()):
        start = draw(st.integers(0, len(line)))
        end = draw(st.integers(start, len(line)))
        junk = draw(st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\r\n")))
        line = line[:start] + junk + line[end:]
    else:
        line = draw(st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\r\n")))
    lines[index] = line
    header = [HEADERS[fmt]] if fmt in HEADERS else []
    return fmt, header + lines, index + 1 + len(header)


@settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(damaged())
def test_a_damaged_line_reads_or_raises_a_located_error(case: tuple[str, list[str], int]) -> None:
    """Whatever the damage, the reader either reads the file or raises ``MarketDataError``
    at the damaged line (never an exception of another kind, never another line)."""
    fmt, lines, damaged_line = case
    reader = READERS[fmt][0]
    try:
        list(reader(numbered(lines), "fuzz"))  # type: ignore[operator]
    except MarketDataError as error:
        assert error.path == "fuzz"
        assert error.line == damaged_line or (fmt == "ohlcv" and error.line == damaged_line + 1)
        assert error.column is None or error.column >= 1


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_in_a_file_raise_only_located_errors(data: bytes) -> None:
    """Bytes of any kind, compressed or not: records or a ``MarketDataError``."""
    import tempfile

    for payload in (data, gzip.compress(data), gzip.compress(data)[:-3]):
        with tempfile.NamedTemporaryFile(suffix=".csv") as handle:
            handle.write(payload)
            handle.flush()
            try:
                with MarketDataFile(handle.name) as market_data:
                    list(market_data.records())
            except MarketDataError as error:
                assert error.path == handle.name
