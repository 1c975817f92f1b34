"""``exchange replay`` against the real embedded broker, with the engine service and the oracle
in process: the capture's book rebuilt in our engine at checkpoints and its trades printed, a
crash's klines followed by the oracle's index and mark on event time, a trades file through the
real command line, and the refusals (a bad file, an exchange already past the data's time).

Every wait is bounded; the replays run at full speed on the data's own event time.
"""

import asyncio
import json
import os
import sys
from pathlib import Path

import msgspec
import pytest
from price_services import Logs, start_engine, start_oracle
from replay_data import AGG_TRADES, CAPTURE, KLINES, depth_reference, records

from exchange.default_markets import BTCUSDT
from load.marketdata import DepthUpdate, Kline, TradeRecord
from load.replay.driver import ReplayOptions, run_replay
from load.replay.grid import Grid
from load.replay.summary import table
from services.cli import main
from services.settings import Settings, env_var

WAIT_S = 60


def checkpoints() -> list[int]:
    """Event times right after a depth update at about a third and two thirds of the capture
    fixture: no other record shares the time, so the book there is the depth stream's."""
    _, items = records(CAPTURE)
    times = [r.time for r in items]  # type: ignore[union-attr]
    first, last = min(times), max(times)
    out = []
    for fraction in (1 / 3, 2 / 3):
        target = first + (last - first) * fraction
        out.append(
            next(
                r.time
                for r in items
                if isinstance(r, DepthUpdate) and r.time >= target and times.count(r.time) == 1
            )
        )
    return out


async def replay(settings: Settings, path: Path, **options: object) -> dict[str, object]:
    summary = await asyncio.wait_for(
        run_replay(settings, ReplayOptions(path=str(path), progress=False, **options)),  # type: ignore[arg-type]
        WAIT_S,
    )
    print(table(summary), file=sys.stderr)
    return summary


async def test_the_capture_rebuilds_its_book_in_the_engine_at_checkpoints(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    from topics import fresh_settings

    settings = await fresh_settings(kafka_bootstrap)
    engine, running = await start_engine(settings, tmp_path)
    oracle = start_oracle(settings)
    _, items = records(CAPTURE)
    trades = [r for r in items if isinstance(r, TradeRecord)]
    grid = Grid(BTCUSDT)
    market = engine.log.engine.markets["BTCUSDT"].book
    try:
        first, second = checkpoints()
        windows = [(None, first), (first + 1, second), (second + 1, None)]
        engine_trades = 0
        for start, end in windows:
            summary = await replay(settings, CAPTURE, start=start, end=end)
            assert summary["errors"] == {"count": 0, "by_kind": {}, "first": []}
            until = end if end is not None else max(r.time for r in items)  # type: ignore[union-attr]
            # The engine's own book, in process: its best bid and ask are the recording's.
            assert (market.bids.best, market.asks.best) == depth_reference(items, until)
            book = summary["book"]
            assert isinstance(book, dict) and book["best_equal"] is True
            # Trades happened, at the recorded prices: the last price is the recording's.
            done = summary["trades"]
            assert isinstance(done, dict) and done["engine_trades"] > 0
            engine_trades += done["engine_trades"]
            last = [t for t in trades if t.time <= until][-1]
            side_tick = grid.bid_tick if last.buyer_is_maker else grid.ask_tick
            assert market.last == side_tick(last.price)
            latency = summary["latency_ms"]
            assert isinstance(latency, dict) and latency["command_to_event"]["count"] > 0
        assert engine_trades >= 180
    finally:
        await oracle.finish()
        await running.finish()


async def test_a_crash_in_klines_moves_the_oracles_index_and_mark_on_event_time(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    from topics import fresh_settings

    # Four ticks a minute are 20 s apart: the sources must stay live that long.
    settings = await fresh_settings(kafka_bootstrap, oracle_stale_after_ms=30_000)
    engine, running = await start_engine(settings, tmp_path)
    oracle = start_oracle(settings)
    _, bars = records(KLINES)
    try:
        async with Logs(settings) as logs:
            summary = await replay(settings, KLINES)
            assert summary["index_ticks"] == 4 * 60
            assert summary["errors"] == {"count": 0, "by_kind": {}, "first": []}
            last_bar = bars[-1]
            assert isinstance(last_bar, Kline)
            end = last_bar.close_time
            await logs.until(lambda: any(m.time >= end // 1000 * 1000 for m in logs.marks()))
            ticks = [(s.time, s.tick) for s in _plan_ticks()]
            indexes = logs.indexes()
            assert len(indexes) >= 100
            for index in indexes:
                # Each point's index is the latest tick at or before it: the kline path.
                expected = [tick for time, tick in ticks if time <= index.time][-1]
                assert (index.price, index.frozen) == (expected, False)
            first_bar = bars[0]
            assert isinstance(first_bar, Kline)
            assert first_bar.open_time <= indexes[0].time and indexes[-1].time <= end
            marks = logs.marks()
            # No book and no funding yet: the mark is the index (Price1 at a zero rate).
            assert all(m.mark == m.index for m in marks)
            assert min(m.mark or 0 for m in marks) == Grid(BTCUSDT).nearest_tick(
                min(b.low for b in bars if isinstance(b, Kline))
            )
            assert engine.log.engine.markets["BTCUSDT"].book.mark == marks[-1].mark
        latency = summary["latency_ms"]
        assert isinstance(latency, dict) and latency["tick_to_mark"]["count"] > 0
        # A second replay of the same data starts before the exchange's event time: refused.
        again = await replay(settings, KLINES)
        assert "event time never goes back" in str(again["aborted"])
        assert again["index_ticks"] == 0
    finally:
        await oracle.finish()
        await running.finish()


def _plan_ticks() -> list:  # type: ignore[type-arg]
    from load.replay.plan import Plan

    fmt, items = records(KLINES)
    return list(Plan(items, fmt, BTCUSDT, symbol="BTCUSDT", mirror=None).steps())


async def test_the_command_line_replays_a_trades_file(kafka_bootstrap: str, tmp_path: Path) -> None:
    from topics import fresh_settings

    settings = await fresh_settings(kafka_bootstrap)
    _, running = await start_engine(settings, tmp_path)
    oracle = start_oracle(settings)
    out = tmp_path / "summary.json"
    env = dict(os.environ) | {
        env_var("bootstrap_servers"): settings.bootstrap_servers,
        env_var("commands_topic"): settings.commands_topic,
        env_var("events_topic"): settings.events_topic,
        env_var("prices_topic"): settings.prices_topic,
    }
    try:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "services",
            "replay",
            str(AGG_TRADES),
            "--json",
            str(out),
            "--no-progress",
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        stdout, stderr = await asyncio.wait_for(process.communicate(), WAIT_S)
    finally:
        await oracle.finish()
        await running.finish()
    assert process.returncode == 0, stderr.decode()
    assert stdout == b""  # the summary went to --json
    summary = json.loads(out.read_text())
    assert summary["format"] == "aggtrades" and summary["speed"] == "max"
    assert summary["trades"]["recorded"] == summary["trades"]["engine_trades"] == 192
    assert summary["errors"]["count"] == 0
    assert summary["commands"]["by_kind"]["taker"] == 192
    assert "events read" in stderr.decode() and "command → event" in stderr.decode()


def test_a_file_it_cannot_read_is_reported_where(
    kafka_bootstrap: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Lines are read as the replay goes (a file may be a month of trades): the bad one stops
    it where it is, and the command says where that is."""
    from topics import fresh_settings

    settings = asyncio.run(fresh_settings(kafka_bootstrap))
    monkeypatch.setenv(env_var("bootstrap_servers"), settings.bootstrap_servers)
    monkeypatch.setenv(env_var("prices_topic"), settings.prices_topic)
    monkeypatch.setenv(env_var("events_topic"), settings.events_topic)
    monkeypatch.setenv(env_var("commands_topic"), settings.commands_topic)
    lines = KLINES.read_text().splitlines()
    lines[7] = lines[7].replace(",", ",x", 1)
    path = tmp_path / "bad.csv"
    path.write_text("\n".join(lines) + "\n")
    assert main(["replay", str(path), "--no-progress"]) == 1
    logged = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    failure = next(entry for entry in logged if entry["event"] == "replay_failed")
    assert (failure["line"], failure["column"], failure["field"]) == (8, 2, "open")
    assert failure["error"].startswith(f"{path}, line 8, column 2 (open): ")


def test_an_unreachable_broker_is_reported(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(env_var("bootstrap_servers"), "127.0.0.1:1")
    monkeypatch.setenv(env_var("request_timeout_ms"), "3000")
    assert main(["replay", str(KLINES), "--no-progress"]) == 1
    assert "replay_failed" in capsys.readouterr().err


def test_the_options_are_checked(capsys: pytest.CaptureFixture[str]) -> None:
    for bad in (
        ["--speed", "0"],
        ["--speed", "fast"],
        ["--from", "yesterday"],
        ["--limit", "0"],
        ["--accounts", "10001"],
    ):
        with pytest.raises(SystemExit) as exited:
            main(["replay", str(KLINES), *bad])
        assert exited.value.code == 2
    assert "--speed" in capsys.readouterr().err


def test_settings_for_up_leave_services_out() -> None:
    from services.settings import SettingsError, load_settings

    assert load_settings({"EXCHANGE_UP_WITHOUT": " feed , market-maker"}).up_without == (
        "feed,market-maker"
    )
    with pytest.raises(SettingsError, match="'engine' is not one of"):
        load_settings({"EXCHANGE_UP_WITHOUT": "engine"})
    assert msgspec.structs.replace(Settings(), up_without="").up_without == ""
