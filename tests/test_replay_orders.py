"""Replaying order streams: the summary, the trades file, the CLI, and the benchmark's baseline."""

import json
from array import array
from pathlib import Path

import pytest

from load.baseline_book import BaselineBook, to_baseline
from load.bench_matching import bench
from load.generate_orders import GeneratorSpec, generate
from load.orderstream import read_order_stream
from load.replay_orders import latency_percentiles_us, replay, replay_file, replay_spec
from services.cli import main

# Worked out by hand (tick 0.1, lot 0.001):
#  1-3 rest: asks 100.0 x5 (#1, acct 10), 100.1 x3 (#2, acct 11); bid 99.9 x2 (#3, acct 12)
#  4   IOC buy 6 @100.1: trades 5 @100.0 with #1 and 1 @100.1 with #2, nothing left
#  5   cancel of #99: rejected, unknown_order
#  6   amend #2 to 1 open lot: keeps its place
#  7   malformed (off-grid price): skipped
#  8   market sell 3: trades 2 @99.9 with #3, the last lot expires (no bids left)
#  9   cancel of #3, which has filled: rejected, unknown_order
#  10  buy 1 @100.1 by account 11 meets its own #2: self-trade prevention expires it
STREAM = """\
ts_ns,op,order_id,account,side,type,price,qty,tif
1000,new,1,10,sell,limit,100.0,0.005,GTC
1001,new,2,11,sell,limit,100.1,0.003,GTC
1002,new,3,12,buy,limit,99.9,0.002,GTX
1003,new,4,13,buy,limit,100.1,0.006,IOC
1004,cancel,99,13,,,,,
1005,amend,2,11,,,,0.001,
1006,new,6,14,buy,limit,100.05,0.001,GTC
1007,new,5,14,sell,market,,0.003,
1008,cancel,3,12,,,,,
1009,new,7,11,buy,limit,100.1,0.001,GTC
"""
# Events: 2+2+2 (accepted, book) + 4 (accepted, 2 trades, book) + 1 + 2 (amended, book)
# + 4 (accepted, trade, expired, book) + 1 + 2 (accepted, expired) = 20
EXPECTED_TRADES = [
    {"ts_ns": 1003, "taker_order_id": 4, "maker_order_id": 1, "price": "100.0", "qty": "0.005"},
    {"ts_ns": 1003, "taker_order_id": 4, "maker_order_id": 2, "price": "100.1", "qty": "0.001"},
    {"ts_ns": 1007, "taker_order_id": 5, "maker_order_id": 3, "price": "99.9", "qty": "0.002"},
]
SPEC = replay_spec("0.1", "0.001")


@pytest.fixture
def stream_file(tmp_path: Path) -> Path:
    path = tmp_path / "orders.csv"
    path.write_text(STREAM)
    return path


def test_summary_of_a_hand_written_stream(stream_file: Path) -> None:
    summary = replay_file(stream_file, SPEC).summary
    assert summary["file"] == str(stream_file)
    assert summary["commands"] == 9
    assert summary["malformed_rows"] == 1
    assert summary["rejected"] == {"count": 2, "by_reason": {"unknown_order": 2}}
    assert summary["events"] == 20
    assert summary["trades"] == 3
    assert summary["traded_qty"] == "0.008"
    assert summary["parse_seconds"] >= 0
    assert summary["wall_seconds"] > 0
    assert summary["commands_per_second"] > 0
    latency = summary["latency_us"]
    assert set(latency) == {"p50", "p99", "p99_9"}
    assert 0 < latency["p50"] <= latency["p99"] <= latency["p99_9"]


def test_trades_file(stream_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "trades.jsonl"
    replay_file(stream_file, SPEC, out)
    lines = out.read_text().splitlines()
    assert [json.loads(line) for line in lines] == EXPECTED_TRADES
    assert list(json.loads(lines[0])) == [
        "ts_ns",
        "taker_order_id",
        "maker_order_id",
        "price",
        "qty",
    ]


def test_unknown_orders_are_counted_not_fatal(tmp_path: Path) -> None:
    path = tmp_path / "unknown.csv"
    path.write_text(
        "ts_ns,op,order_id,account,side,type,price,qty,tif\n"
        "1,cancel,5,1,,,,,\n"
        "2,amend,6,1,,,,0.001,\n"
        "3,amend,6,1,,,,,\n"
    )
    summary = replay_file(path, SPEC).summary
    assert summary["rejected"] == {"count": 3, "by_reason": {"unknown_order": 3}}


def test_empty_stream_has_no_rates(tmp_path: Path) -> None:
    path = tmp_path / "orders.csv.gz"
    generate(path, 0, seed=1)  # the header alone, compressed
    summary = replay_file(path, SPEC).summary
    assert summary["commands"] == 0
    assert summary["commands_per_second"] is None
    assert summary["latency_us"] == {"p50": None, "p99": None, "p99_9": None}


def test_latency_percentiles_are_nearest_rank() -> None:
    values = array("q", [(i + 1) * 1000 for i in range(1000)])  # 1..1000 us
    assert latency_percentiles_us(values) == {"p50": 500.0, "p99": 990.0, "p99_9": 999.0}


def test_replay_spec_fits_any_grid() -> None:
    spec = replay_spec("0.00001", "0.0000001")
    assert spec.multiplier >= 1
    for bad in ("0", "-1", "x", "NaN"):
        with pytest.raises(ValueError):
            replay_spec(bad, "0.001")


def test_cli_replay_orders(
    stream_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "trades.jsonl"
    code = main(
        [
            "replay-orders",
            str(stream_file),
            "--tick-size",
            "0.1",
            "--lot-size",
            "0.001",
            "--trades",
            str(out),
        ]
    )
    captured = capsys.readouterr()
    assert code == 0
    summary = json.loads(captured.out)
    assert (summary["commands"], summary["trades"], summary["traded_qty"]) == (9, 3, "0.008")
    assert "malformed_row" in captured.err and "price_off_grid" in captured.err
    assert len(out.read_text().splitlines()) == 3


def test_cli_replays_the_sample(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay-sample"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["commands"] == 20_000
    assert summary["malformed_rows"] == 0
    assert summary["trades"] > 0


@pytest.mark.parametrize(
    ("args", "content"),
    [
        (["--tick-size", "0.1", "--lot-size", "0.001"], None),
        (["--tick-size", "0.1", "--lot-size", "0.001"], "not,an,order,stream\n"),
        (["--tick-size", "zero", "--lot-size", "0.001"], STREAM),
    ],
)
def test_cli_fails_cleanly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], content: str | None
) -> None:
    path = tmp_path / "orders.csv"
    if content is not None:
        path.write_text(content)
    assert main(["replay-orders", str(path), *args]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "replay_failed" in captured.err


def test_baseline_matches_the_engine_on_a_generated_stream(tmp_path: Path) -> None:
    path = tmp_path / "orders.csv"
    generate(path, 5000, seed=11)
    spec = GeneratorSpec().market()
    stream = read_order_stream(path, spec)
    result = replay(stream, replay_spec("0.1", "0.001"))
    book = BaselineBook()
    book.run(to_baseline(stream.commands))
    assert result.trades > 100
    assert (book.trades, book.traded_qty) == (result.trades, result.traded_qty)
    # The generator aims cancels at live orders; only its deliberate stale ones miss.
    assert 0 < result.rejected["unknown_order"] < 0.01 * len(stream.commands)
    assert set(result.rejected) == {"unknown_order"}


def test_bench_reports_agreement() -> None:
    report = bench(rows=3000, seed=2)
    assert report["agree"] is True and report["differences"] == {}
    assert report["commands"] == 3000
    assert report["engine"]["trades"] == report["baseline"]["trades"] > 0
    assert report["ratio_engine_to_baseline"] > 0
