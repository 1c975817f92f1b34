"""``exchange drill`` end to end: a fresh embedded broker and every service as processes, a
small scripted crash with funding every minute, through the real command line. Liquidations
happen, the money is conserved to the minor unit, the funding is in the report, the files are
written, the services stop cleanly, the engine service's final state equals the command log
replayed in process, and the same result with money created fails the drill.

Nothing here is timed: the drill waits (bounded) for the system at every tick.
"""

import json
from pathlib import Path

from load.drill.checks import exit_status
from services.cli import main

SCENARIO = """
name = "end-to-end"
seed = 2
insurance_fund = 1000

[path]
kind = "scripted"
start = "2025-06-01T00:00:00Z"
start_price = 60000
segments = [
  { kind = "hold", minutes = 0.5 },
  { kind = "move", change_pct = -20, minutes = 2 },
  { kind = "gap", change_pct = -3 },
  { kind = "hold", minutes = 0.5 },
]

[population]
accounts = 40
leverage = { 10 = 1, 50 = 1, 100 = 1 }
size_min = "0.002"
size_max = "0.02"
long_pct = 75
isolated_pct = 50

[liquidity]
levels = 5
level_size = "0.05"
crash_depth_pct = 20

[time]
funding_every_minutes = 1
tick_ms = 2000
"""


def test_a_small_drill_runs_end_to_end(tmp_path: Path, capsys: object) -> None:
    scenario = tmp_path / "drill.toml"
    scenario.write_text(SCENARIO, encoding="utf-8")
    out = tmp_path / "out"
    assert main(["drill", str(scenario), "--out", str(out)]) == 0
    result = json.loads((out / "result.json").read_text(encoding="utf-8"))
    assert result["run"]["aborted"] is None
    assert set(result["run"]["services"].values()) == {0}
    assert set(result["run"]["services"]) == {
        "engine",
        "gateway",
        "oracle",
        "funding",
        "liquidator",
    }
    assert result["engine"]["drill_command_rejections"] == {}
    liquidations = result["liquidations"]
    assert liquidations["count"] > 0 and liquidations["notional"] > 0
    latency = result["latency"]["mark_crossing_to_liquidate_ms"]
    assert latency["count"] > 0 and latency["p99"] >= latency["p50"] >= 0
    conservation = result["conservation"]
    assert conservation["difference"] == 0 and conservation["ledger_total"] == 0
    assert conservation["inside_before"] == conservation["inside_after"]
    assert conservation["fund_change"] == conservation["fund_change_explained"]
    assert len(result["funding"]["settlements"]) >= 2
    assert result["bad_debt"]["uncovered"] == 0 and result["insurance"]["low"] >= 0
    replica = result["run"]["replica"]  # the engine's final snapshot = the log replayed
    assert replica["checked"] and replica["equal"], replica
    assert (out / "cascade.png").read_bytes().startswith(b"\x89PNG")
    assert "Every invariant held." in (out / "report.html").read_text(encoding="utf-8")
    assert exit_status(result) == 0
    result["conservation"]["difference"] = 1  # one minor unit created
    assert exit_status(result) == 1
