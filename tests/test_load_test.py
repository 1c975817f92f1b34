"""``exchange load`` end to end, short and bounded: the real command starts the embedded broker
and every service, replays half an hour of real minutes into them while a few websocket
clients trade, and reports. A correctness test of the report, not of the figures: no timing is
asserted (the machine is shared and noisy)."""

import json
import os
import subprocess
import sys
from pathlib import Path

DATA = Path(__file__).parent / "data"
EXCHANGE = Path(sys.executable).parent / "exchange"
SERVICES = {"engine", "gateway", "oracle", "funding", "liquidator", "broker"}


def test_a_short_load_run_reports_acks_replay_events_and_every_process_memory(
    tmp_path: Path,
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXCHANGE_")}
    report_path = tmp_path / "report.json"
    completed = subprocess.run(
        [
            str(EXCHANGE),
            "load",
            str(DATA / "btcusdt-ohlcv-20250601-head.csv"),
            "--speed=600",  # its 30 minutes in about 3 s, within the run
            "--clients=3",
            "--workers=1",
            "--rate=40",
            "--duration=4",
            "--sample-every=1",
            f"--keep={tmp_path}",
            f"--json={report_path}",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert report_path.exists(), completed.stderr[-3_000:]
    report = json.loads(report_path.read_text())
    assert completed.returncode == (0 if report["ok"] else 1), report["problems"]
    assert "load test:" in completed.stderr and "memory rule:" in completed.stderr
    assert report["test"] == "load" and report["setup"]["clients"] == 3
    windows = report["windows"]
    assert 2 <= len(windows) <= 5  # 4 s in windows of 1 s, each with its answers awaited
    assert [row["window"] for row in report["latency_over_time"]] == list(range(len(windows)))
    # Orders were acked in every window, each with its latency percentiles.
    for window in windows:
        assert window["answered"] == window["requests"] > 0
        assert window["acked"] > 0 and window["problems"] == []
        assert window["latency_ms"]["p50"] is not None
    assert report["throughput"]["orders_acked"] == sum(w["acked"] for w in windows)
    # The replay ran beside them: its ticks reached the price topic, the oracle marked them.
    replay = report["replay"]
    assert replay["format"] == "ohlcv" and replay["index_ticks"] > 0
    assert replay["feed_to_mark_ms"]["count"] > 0
    assert sum(w["index_ticks"] for w in windows) > 0 and sum(w["marks"] for w in windows) > 0
    assert sum(w["tick_to_mark_ms"]["count"] for w in windows) > 0
    assert report["pushes"]["count"] > 0
    assert report["errors"]["counted"] == 0, report["errors"]
    # Memory was sampled for every service, the broker and the load's own processes.
    memory = report["memory"]["processes"]
    assert set(memory) == SERVICES | {"replay", "client-0", "load"}
    for name in SERVICES | {"replay", "client-0", "load"}:
        rss = memory[name]["rss_mb"]
        assert rss["start"] and rss["middle"] and rss["end"], (name, rss)
    for window in windows:
        assert set(window["processes"]) == set(memory) | {"others"}
    assert (tmp_path / next(tmp_path.glob("load-run-*")).name / "engine.log").exists()
