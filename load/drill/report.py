"""The drill's report: one PNG of the cascade and an HTML page around it, from the JSON result.

The figure has four panels on one axis of event time (minutes from the path's start): the
index, mark and last price with a red mark at every moment a liquidation step happened; the
liquidation steps per interval (partial and full, stacked); the insurance fund and the open
interest (Σ of the long positions); the ADL notices per interval. The page adds the headline
figures, the invariants, the conservation table, the crossing → command latency and the table
of funding settlements. Floats appear here only, for drawing; every figure printed comes from
the result's integers.

Rendering needs the result alone (``render_report``), so a stored ``result.json`` can be drawn
again without running the drill.
"""

import base64
import html
import io
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # the backend is chosen before pyplot loads

from load.drill.checks import broken_invariants
from load.drill.result import usdt

MINUTE_MS = 60_000


def render_report(result: dict[str, Any], out_dir: Path) -> tuple[Path, Path]:
    """Write ``cascade.png`` and ``report.html`` into ``out_dir``; return their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    png = out_dir / "cascade.png"
    image = cascade_png(result)
    png.write_bytes(image)
    page = out_dir / "report.html"
    page.write_text(report_html(result, image), encoding="utf-8")
    return png, page


def cascade_png(result: dict[str, Any], dpi: int = 80) -> bytes:
    """The four panels (module docstring) as PNG bytes."""
    start = result["run"]["path_first_time"]
    tick = float(Decimal(result["prices"]["tick"]))
    bucket_min = result["bucket_ms"] / MINUTE_MS

    def minutes(ms: float) -> float:
        return float(ms - start) / MINUTE_MS

    figure, axes = plt.subplots(
        4, 1, figsize=(11, 10), sharex=True, gridspec_kw={"height_ratios": [3, 1.5, 1.5, 1]}
    )
    prices, liquidations, fund, adl = axes
    points = result["prices"]["points"]
    for column, label, style in ((1, "index", "-"), (2, "mark", "-"), (3, "last", ":")):
        xs = [minutes(p[0]) for p in points if p[column] is not None]
        ys = [p[column] * tick for p in points if p[column] is not None]
        prices.plot(xs, ys, style, label=label, linewidth=1)
    markers = result["liquidations"]["markers"]
    if markers:
        prices.scatter(
            [minutes(t) for t, _ in markers],
            [m * tick for _, m in markers],
            s=9,
            color="red",
            label="liquidation",
            zorder=3,
        )
    prices.set_ylabel("price")
    prices.legend(loc="upper right", fontsize=8)
    prices.set_title(_title(result), fontsize=10)
    series = result["liquidations"]["series"]
    xs = [minutes(row["time"]) for row in series]
    partial = [row["partial"] for row in series]
    full = [row["full"] for row in series]
    liquidations.bar(xs, partial, width=bucket_min, align="edge", label="partial", color="orange")
    liquidations.bar(
        xs, full, width=bucket_min, align="edge", bottom=partial, label="full", color="firebrick"
    )
    liquidations.set_ylabel(f"steps / {_interval(result['bucket_ms'])}")
    liquidations.legend(loc="upper left", fontsize=8)
    notional = liquidations.twinx()
    notional.plot(
        [x + bucket_min / 2 for x in xs],
        [row["notional"] / 1e8 for row in series],
        ".",
        color="black",
        markersize=3,
    )
    notional.set_ylabel("notional (USDT, ·)")
    path = result["insurance"]["path"]
    if path:
        fund.step(
            [minutes(t) for t, _ in path] + [minutes(result["run"]["path_last_time"])],
            [b / 1e8 for _, b in path] + [path[-1][1] / 1e8],
            where="post",
            color="green",
        )
    fund.axhline(0, color="grey", linewidth=0.5)
    fund.set_ylabel("insurance fund (USDT, —)")
    interest = result["open_interest"]
    if interest["path"]:
        lot = float(Decimal(interest["lot"]))
        held = fund.twinx()
        held.step(
            [minutes(t) for t, _ in interest["path"]] + [minutes(result["run"]["path_last_time"])],
            [n * lot for _, n in interest["path"]] + [interest["path"][-1][1] * lot],
            where="post",
            color="steelblue",
            linestyle="--",
        )
        held.set_ylim(bottom=0)
        held.set_ylabel("open interest (- -)")
    adl_series = result["adl"]["series"]
    adl.bar(
        [minutes(t) for t, _ in adl_series],
        [n for _, n in adl_series],
        width=bucket_min,
        align="edge",
        color="purple",
    )
    adl.set_ylabel("ADL notices")
    adl.set_xlabel("minutes of event time from the path's start")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    plt.close(figure)
    return buffer.getvalue()


def _title(result: dict[str, Any]) -> str:
    scenario = result["scenario"]
    run = result["run"]
    return (
        f"{scenario['name']}: {scenario['accounts']:,} accounts, {run['path_first']} → "
        f"{run['path_last']}"
    )


def _interval(ms: int) -> str:
    return f"{ms // 1000} s" if ms < MINUTE_MS else f"{ms // MINUTE_MS} min"


def headline(result: dict[str, Any]) -> list[tuple[str, str]]:
    """The figures a person looks at first, as label and text."""
    liquidations = result["liquidations"]
    insurance = result["insurance"]
    interest = result["open_interest"]
    latency = result["latency"]["mark_crossing_to_liquidate_ms"]
    conservation = result["conservation"]
    return [
        (
            "liquidation steps",
            f"{liquidations['count']:,} ({liquidations['partial']:,} partial, "
            f"{liquidations['full']:,} full) over {liquidations['accounts']:,} scopes",
        ),
        ("liquidated notional", f"{liquidations['notional_usdt']} USDT at bankruptcy prices"),
        (
            "insurance fund",
            f"{insurance['before_usdt']} → {insurance['after_usdt']} USDT "
            f"(lowest {usdt(insurance['low'])})",
        ),
        (
            "open interest",
            f"{interest['before_qty']} → {interest['after_qty']} "
            f"(lowest {interest['low_qty']}); Σ of the long positions",
        ),
        (
            "ADL",
            f"{result['adl']['events']:,} notices, {result['adl']['counterparties']:,} "
            f"counterparties, {result['adl']['lots']:,} lots",
        ),
        (
            "bad debt",
            f"uncovered {result['bad_debt']['uncovered_usdt']} USDT; the fund paid "
            f"{result['bad_debt']['fund_paid_shortfalls_usdt']} USDT of shortfalls",
        ),
        (
            "funding",
            f"{len(result['funding']['settlements'])} settlements, "
            f"{usdt(result['funding']['paid'])} USDT paid, "
            f"{usdt(result['funding']['received'])} received",
        ),
        (
            "mark crossing → Liquidate",
            _latency_text(latency),
        ),
        (
            "conservation",
            f"inside the exchange {conservation['inside_before_usdt']} → "
            f"{conservation['inside_after_usdt']} USDT, difference "
            f"{conservation['difference']} minor units",
        ),
        ("engine state", _replica_text(result["run"].get("replica", {}))),
        ("wall time", f"{result['run']['timings_s'].get('total_s', 0)} s"),
    ]


def _replica_text(replica: dict[str, Any]) -> str:
    if not replica.get("checked"):
        return f"not checked ({replica.get('reason', 'no replica')})"
    verdict = "equal to" if replica["equal"] else "DIFFERENT from"
    return (
        f"the engine service's final state {verdict} the replay of its "
        f"{replica['records_replayed']:,} command records ({replica['service_state_hash'][:16]})"
    )


def _latency_text(latency: dict[str, Any]) -> str:
    if not latency.get("count"):
        return "no liquidation triggered by a mark"
    return (
        f"p50 {latency['p50']:.0f} ms, p99 {latency['p99']:.0f} ms, max {latency['max']:.0f} ms "
        f"({latency['count']:,} triggers)"
    )


def report_html(result: dict[str, Any], image: bytes) -> str:
    """The page (module docstring), the PNG embedded."""
    broken = broken_invariants(result)
    verdict = (
        "<p class=ok>Every invariant held.</p>"
        if not broken
        else "<ul class=bad>" + "".join(f"<li>{html.escape(b)}</li>" for b in broken) + "</ul>"
    )
    conservation = result["conservation"]
    kinds = list(conservation["before"])
    conservation_rows = [
        [kind, usdt(conservation["before"][kind]), usdt(conservation["after"][kind])]
        for kind in kinds
    ]
    conservation_rows.append(
        [
            "inside (all but external)",
            conservation["inside_before_usdt"],
            conservation["inside_after_usdt"],
        ]
    )
    funding_rows = [
        [
            row["funding_time"],
            row["symbol"],
            row["rate_pct"] + " %",
            row["mark"],
            str(row["positions"]),
            usdt(row["paid"]),
            usdt(row["received"]),
            usdt(row["remainder"]),
        ]
        for row in result["funding"]["settlements"]
    ]
    latency = result["latency"]
    latency_rows = [
        [name, *_percentile_cells(latency[key])]
        for name, key in (
            ("mark crossing → Liquidate", "mark_crossing_to_liquidate_ms"),
            ("any trigger → Liquidate", "any_trigger_to_liquidate_ms"),
        )
    ]
    encoded = base64.b64encode(image).decode("ascii")
    scenario = result["scenario"]
    parts = [
        "<!doctype html><html><head><meta charset=utf-8>",
        f"<title>Drill: {html.escape(scenario['name'])}</title>",
        "<style>body{font-family:sans-serif;max-width:1000px;margin:2em auto}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;"
        "padding:2px 8px;text-align:right}th{background:#eee}.ok{color:green}"
        ".bad{color:#b00}img{max-width:100%}</style></head><body>",
        f"<h1>Drill: {html.escape(scenario['name'])}</h1>",
        f"<p>{html.escape(scenario.get('description', ''))}</p>",
        verdict,
        _table(["", ""], [list(row) for row in headline(result)]),
        f'<img alt="the cascade" src="data:image/png;base64,{encoded}">',
        "<h2>Conservation (USDT)</h2>",
        _table(["kind", "after setup", "at the end"], conservation_rows),
        f"<p>Deposited during the drill: {usdt(conservation['deposits_during'])} USDT; in all, "
        f"{usdt(conservation['deposits_total'])} USDT entered through deposits. The ledger "
        f"(external included) sums to {conservation['ledger_total']}.</p>",
        "<h2>Crossing → liquidation command (ms)</h2>",
        _table(["", "count", "p50", "p99", "max"], latency_rows),
        "<h2>Funding settlements</h2>",
        _table(
            ["time", "market", "rate", "mark", "positions", "paid", "received", "to the fund"],
            funding_rows,
        )
        if funding_rows
        else "<p>No settlement in the drill's event time.</p>",
        "<h2>Scenario and run</h2>",
        _table(["", ""], [[k, str(v)] for k, v in scenario.items()]),
        _table(
            ["", ""], [[k, str(v)] for k, v in result["run"].items() if k != "liquidator_status"]
        ),
        "</body></html>",
    ]
    return "\n".join(parts)


def _percentile_cells(figures: dict[str, Any]) -> list[str]:
    if not figures.get("count"):
        return ["0", "", "", ""]
    return [
        f"{figures['count']:,}",
        f"{figures['p50']:.0f}",
        f"{figures['p99']:.0f}",
        f"{figures['max']:.0f}",
    ]


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(cell))}</td>" for cell in row) + "</tr>"
        for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"
