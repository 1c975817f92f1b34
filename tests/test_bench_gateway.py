"""The gateway benchmark end to end in its ``--quick`` mode: its own broker, the real engine and
gateway processes, a client process, the echo floor, two short steps; and once more with two
gateway instances sharing the clients. A correctness test: the report's shape, every request
answered exactly once, no errors. No timing is asserted: the machine is shared and noisy."""

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from load.bench_gateway import KINDS, Kind, Options, draw_kind, price_text, qty_text, step_draws

ROOT = Path(__file__).resolve().parent.parent


def quick_run(tmp_path: Path, *args: str) -> tuple[dict[str, Any], str]:
    """``--quick`` with ``args``, logs kept in ``tmp_path``: the report and the stderr."""
    completed = subprocess.run(
        [sys.executable, "-m", "load.bench_gateway", "--quick", "--keep", str(tmp_path), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert completed.returncode == 0, completed.stderr[-3_000:]
    result: dict[str, Any] = json.loads(completed.stdout)
    return result, completed.stderr


def test_the_quick_run_answers_every_request_once_without_errors(tmp_path: Path) -> None:
    result, stderr = quick_run(tmp_path)
    assert result["benchmark"] == "gateway"
    assert result["ok"] is True and result["problems"] == []
    summary = result["summary"]
    for key in ("gateway_latency_ms", "floor_latency_ms"):
        assert set(summary[key]) == {"p50", "p99", "p99_9", "max"}
        assert summary[key]["p50"] is not None
    assert summary["p99_gateway_to_floor"] is not None
    assert set(result["targets"]) >= {"p99_ratio_met", "sustained_rate_met", "p99_limit_ms"}
    assert result["floor"]["problems"] == []
    assert result["setup"]["clients"] == 4
    steps = result["steps"]
    assert [step["offered_rate"] for step in steps] == [100, 200]
    for step in steps:
        assert step["problems"] == []
        assert step["requests"] == round(step["offered_rate"] * step["seconds"])
        assert step["answered"] == step["requests"]  # every request answered exactly once
        assert step["errors"] == 0 and step["errors_by_code"] == {}
        assert step["measured_commands"] > 0 and step["measured_queries"] >= 0
        assert sum(step["mix"].values()) == step["requests"]
        assert set(step["mix"]) <= set(KINDS)
        assert step["pushes_by_channel"].get("orders", 0) > 0
        assert set(step["cpu_percent"]) >= {"gateway", "engine", "broker", "clients"}
    # The trades and book subscribers got pushes over the run (trades need a crossing order,
    # which a step of a few hundred requests is all but sure to have).
    channels = {channel for step in steps for channel in step["pushes_by_channel"]}
    assert "book.BTCUSDT" in channels
    assert "rate limits raised" in result["gateway_settings"]["note"]
    assert "gateway p99 / floor p99" in stderr
    assert (next(tmp_path.iterdir()) / "gateway.log").exists()
    assert result["parameters"]["gateways"] == 1 and result["setup"]["clients_by_gateway"] == [4]
    assert all(len(step["gateway_cpu_percent"]) == 1 for step in steps)


def test_two_gateways_share_the_clients_and_answer_every_request_once(tmp_path: Path) -> None:
    """Client i on instance i % 2: both instances hold clients and answer requests, every
    request is answered exactly once (on the instance it was sent to: a response on another
    connection would count as an id never sent), and each instance's CPU is reported."""
    result, stderr = quick_run(tmp_path, "--gateways", "2", "--no-floor")
    assert result["ok"] is True and result["problems"] == []
    assert result["parameters"]["gateways"] == 2
    assert result["setup"]["clients"] == 4 and result["setup"]["clients_by_gateway"] == [2, 2]
    steps = result["steps"]
    assert [step["offered_rate"] for step in steps] == [100, 200]
    for step in steps:
        assert step["problems"] == [] and step["errors"] == 0
        assert step["answered"] == step["requests"]
        by_gateway = step["answered_by_gateway"]
        assert len(by_gateway) == 2 and min(by_gateway) > 0
        assert sum(by_gateway) == step["requests"]
        assert step["pushes_by_channel"].get("orders", 0) > 0
        each = step["gateway_cpu_percent"]
        assert len(each) == 2 and all(cpu > 0 for cpu in each)
    assert "over 2 gateway instances" in stderr and "2 gateways (sum)" in stderr
    logs = next(tmp_path.iterdir())
    assert (logs / "gateway-0.log").exists() and (logs / "gateway-1.log").exists()


def test_the_draws_are_reproducible_and_follow_the_mix() -> None:
    first = [draw_kind(step_draws(1, 0, 0)) for _ in range(1)]
    rng_a, rng_b = step_draws(7, 2, 1), step_draws(7, 2, 1)
    a = [draw_kind(rng_a) for _ in range(5_000)]
    b = [draw_kind(rng_b) for _ in range(5_000)]
    assert a == b and first
    share = a.count(Kind.CANCEL) / len(a)
    assert 0.2 < share < 0.28
    assert set(a) == set(Kind)


def test_decimal_texts_are_on_the_grid() -> None:
    assert price_text(600_000) == "60000.0" and price_text(599_997) == "59999.7"
    assert qty_text(2) == "0.002" and qty_text(1_020) == "1.020"
    assert Options().clients == 200 and Options().rate == 2_000
