"""The load test's figures, from its windows and process samples: pure, so it is tested apart.

A *window* is one step of the load generator (``--sample-every`` seconds of open-loop
requests, every answer awaited), with the replay's ticks and the oracle's marks seen meanwhile.
A *sample* is every process's RSS and CPU time, taken before the first window and after each.

**Growth check.** Memory is judged on the second half of the run: a process whose RSS at the
end exceeds its RSS at the middle by more than ``tolerance`` (a fraction) *and* by more than
``slack_mb`` is growing; the start is reported but not judged, as caches, connections and
books fill during the first windows. A process in ``EXPECTED_GROWTH`` is reported as growing
with the reason, without failing the run: its growth is what it was built to do.
"""

from collections import Counter
from collections.abc import Sequence
from typing import Any

import msgspec

from load.bench_gateway import KINDS, ORDER_KINDS
from load.loadtest.procstat import MIB, Sample
from load.replay.summary import percentiles

GROWTH_TOLERANCE = 0.20
"""End RSS above middle RSS by more than this fraction (and ``GROWTH_SLACK_MB``) is growth."""
GROWTH_SLACK_MB = 32.0
"""Growth below this many MB is never flagged: a Python process's arenas move by that much."""
MAX_ERROR_RATE = 0.001
"""Errors per request above which the run fails (lost races and ``EXPECTED_REFUSALS`` aside)."""
EXPECTED_REFUSALS = {
    "post_only_would_take": "a post-only order priced where it would take: the clients place "
    "around the latest index, so once the replayed market has moved past a client's older "
    "resting orders, some of its new post-only orders cross them and are refused, as they must",
}
"""Error codes that are the exchange's right answer to a moving market, not a failure: counted
and reported by code all the same, but not in the error rate the run is judged on."""
EXPECTED_GROWTH = {
    "broker": "the embedded broker keeps every record in memory until it stops "
    "(docs/kafka-broker-notes: ~1 GB per 1.3 M records); Apache Kafka keeps them on disk",
}
ORDER_KIND_NAMES = frozenset(KINDS[kind] for kind in ORDER_KINDS)
LATENCY_KEYS = ("p50", "p99", "p99_9", "max")


class Window(msgspec.Struct, kw_only=True):
    """One sampling window: what the clients sent and got, and what the replay published."""

    index: int
    start_s: float
    """Since the first window began."""
    seconds: float
    """Wall seconds from this window's start to the next one's (sending, answers, sampling)."""
    offered_rate: int
    requests: int
    answered: int
    order_commands: int
    acked: int
    """Order commands answered without an error."""
    latency_ms: dict[str, float | None]
    """Order commands, from scheduled send to response."""
    errors_by_code: dict[str, int]
    lost_races: int
    pushes_by_channel: dict[str, int]
    index_ticks: int
    """Index ticks on the price topic in the window: the replay's events."""
    marks: int
    tick_to_mark_ms: dict[str, Any]
    """The oracle's marks, each from the tick that closed its point as seen on the price topic:
    count, p50, p90, p99, p99.9, max."""
    reference_price: str
    """Where the clients placed their orders: the oracle's latest index before the window."""
    problems: list[str]
    processes: dict[str, dict[str, float | None]] = {}
    """Each process's RSS (MB) at the window's end and CPU (% of one core) over it."""


def window_of(
    step: dict[str, Any],
    *,
    index: int,
    start_s: float,
    seconds: float,
    index_ticks: int,
    marks: int,
    reference_price: str,
    tick_to_mark_ms: Sequence[float] = (),
) -> Window:
    """A window from one step of the gateway load generator (``bench_gateway.step_result``)."""
    order_errors = sum(
        count
        for kind_code, count in step["errors_by_kind"].items()
        if kind_code.split(":", 1)[0] in ORDER_KIND_NAMES
    )
    return Window(
        index=index,
        start_s=round(start_s, 3),
        seconds=round(seconds, 3),
        offered_rate=step["offered_rate"],
        requests=step["requests"],
        answered=step["answered"],
        order_commands=step["measured_commands"],
        acked=step["measured_commands"] - order_errors - step["lost_races"],
        latency_ms={key: step["latency_ms"][key] for key in LATENCY_KEYS},
        errors_by_code=step["errors_by_code"],
        lost_races=step["lost_races"],
        pushes_by_channel=step["pushes_by_channel"],
        index_ticks=index_ticks,
        marks=marks,
        tick_to_mark_ms=percentiles(tick_to_mark_ms),
        reference_price=reference_price,
        problems=step["problems"],
    )


def process_figures(before: Sample, after: Sample) -> dict[str, dict[str, float | None]]:
    """Each process's RSS in MB at ``after`` and its CPU in % of one core between the two; and
    ``others``: what the machine ran besides these processes (other users of a shared one)."""
    wall = after.at_s - before.at_s
    out: dict[str, dict[str, float | None]] = {}
    for name, reading in after.processes.items():
        earlier = before.processes.get(name)
        cpu = None
        if wall > 0 and earlier and earlier.cpu_s is not None and reading.cpu_s is not None:
            cpu = round(100 * (reading.cpu_s - earlier.cpu_s) / wall, 1)
        rss = None if reading.rss is None else round(reading.rss / MIB, 1)
        out[name] = {"rss_mb": rss, "cpu_percent": cpu}
    if wall > 0 and after.machine_cpu_s:
        ours = sum(figures["cpu_percent"] or 0.0 for figures in out.values())
        machine = 100 * (after.machine_cpu_s - before.machine_cpu_s) / wall
        out["others"] = {"rss_mb": None, "cpu_percent": round(max(0.0, machine - ours), 1)}
    return out


def middle_of(samples: Sequence[Sample]) -> Sample:
    """The sample nearest the middle of the run's time (not of the sample count)."""
    halfway = (samples[0].at_s + samples[-1].at_s) / 2
    return min(samples, key=lambda sample: abs(sample.at_s - halfway))


def memory_check(
    samples: Sequence[Sample],
    *,
    tolerance: float = GROWTH_TOLERANCE,
    slack_mb: float = GROWTH_SLACK_MB,
) -> dict[str, Any]:
    """Start, middle, end and peak RSS of every process, its mean CPU, and the growth verdict
    (module docstring); ``ok`` is False when a process not in ``EXPECTED_GROWTH`` grew."""
    if not samples:
        return {"ok": False, "processes": {}, "growing": [], "unexpected_growth": ["no samples"]}
    first, last = samples[0], samples[-1]
    processes: dict[str, Any] = {}
    growing: list[str] = []
    for name in first.processes:
        alive = [s for s in samples if (r := s.processes.get(name)) and r.rss is not None]
        figures = _memory_of(name, alive, tolerance, slack_mb) if alive else {"note": "never seen"}
        if alive and alive[-1] is not last:
            figures["note"] = f"ended at {alive[-1].at_s - first.at_s:.1f} s: judged until then"
        if figures.get("growing"):
            growing.append(name)
            if name in EXPECTED_GROWTH:
                figures["expected"] = EXPECTED_GROWTH[name]
        processes[name] = figures
    unexpected = [name for name in growing if name not in EXPECTED_GROWTH]
    return {
        "rule": f"end RSS > middle RSS x {1 + tolerance:g} and by more than {slack_mb:g} MB",
        "tolerance": tolerance,
        "slack_mb": slack_mb,
        "start_s": 0.0,
        "middle_s": round(middle_of(samples).at_s - first.at_s, 1),
        "end_s": round(last.at_s - first.at_s, 1),
        "processes": processes,
        "growing": growing,
        "unexpected_growth": unexpected,
        "ok": not unexpected,
    }


def _memory_of(
    name: str, alive: Sequence[Sample], tolerance: float, slack_mb: float
) -> dict[str, Any]:
    """One process's figures over the samples it was alive in (``memory_check``)."""
    first, middle, last = alive[0], middle_of(alive), alive[-1]
    rss = [sample.processes[name].rss or 0 for sample in alive]
    start, mid, end = (rss[alive.index(s)] / MIB for s in (first, middle, last))
    wall = last.at_s - first.at_s
    begin_cpu, end_cpu = first.processes[name].cpu_s, last.processes[name].cpu_s
    cpu = None
    if wall > 0 and begin_cpu is not None and end_cpu is not None:
        cpu = round(100 * (end_cpu - begin_cpu) / wall, 1)
    return {
        "rss_mb": {
            "start": _mb(start),
            "middle": _mb(mid),
            "end": _mb(end),
            "peak": _mb(max(rss) / MIB),
        },
        "end_minus_middle_mb": _mb(end - mid),
        "cpu_percent_mean": cpu,
        "growing": end > mid * (1 + tolerance) and end - mid > slack_mb,
    }


def _mb(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def latency_over_time(windows: Sequence[Window]) -> list[dict[str, Any]]:
    """p50, p99, p99.9 and max of the order commands of each window, with its time and load,
    and the p50 and p99 of its marks' latency (None in a window without marks)."""
    return [
        {
            "window": w.index,
            "at_s": w.start_s,
            "acked_per_s": round(w.acked / w.seconds, 1) if w.seconds else None,
            **w.latency_ms,
            "errors": sum(w.errors_by_code.values()),
            "tick_to_mark_p50": w.tick_to_mark_ms.get("p50"),
            "tick_to_mark_p99": w.tick_to_mark_ms.get("p99"),
            "others_cpu_percent": w.processes.get("others", {}).get("cpu_percent"),
        }
        for w in windows
    ]


def _spread(values: Sequence[float | None]) -> dict[str, float | None]:
    """Median and worst of a figure over the windows (None where a window had no commands)."""
    known = sorted(v for v in values if v is not None)
    if not known:
        return {"median_window": None, "worst_window": None}
    return {"median_window": known[(len(known) - 1) // 2], "worst_window": known[-1]}


def build_report(
    *,
    parameters: dict[str, Any],
    setup: dict[str, Any],
    windows: Sequence[Window],
    samples: Sequence[Sample],
    replay: dict[str, Any] | None,
    conditions: dict[str, Any],
    max_error_rate: float = MAX_ERROR_RATE,
    tolerance: float = GROWTH_TOLERANCE,
    slack_mb: float = GROWTH_SLACK_MB,
) -> dict[str, Any]:
    """The report: throughput, latency over time, errors, pushes, the replay's own figures and
    memory per process; ``ok`` and ``problems`` say whether the run passed, and why not."""
    seconds = sum(w.seconds for w in windows)
    requests = sum(w.requests for w in windows)
    errors: Counter[str] = Counter()
    pushes: Counter[str] = Counter()
    for window in windows:
        errors.update(window.errors_by_code)
        pushes.update(window.pushes_by_channel)
    error_count = sum(errors.values())
    failures = sum(count for code, count in errors.items() if code not in EXPECTED_REFUSALS)
    error_rate = failures / requests if requests else 0.0
    memory = memory_check(samples, tolerance=tolerance, slack_mb=slack_mb)
    problems = [f"window {w.index}: {problem}" for w in windows for problem in w.problems]
    if not windows:
        problems.append("no window ran")
    if error_rate > max_error_rate:
        problems.append(f"error rate {error_rate:.4%} above {max_error_rate:.4%}")
    if not memory["ok"]:
        problems.append(f"memory grew (end vs middle): {', '.join(memory['unexpected_growth'])}")
    if replay is None:
        problems.append("the replay left no summary")
    elif "aborted" in replay:
        problems.append(f"the replay aborted: {replay['aborted']}")

    def rate(total: float) -> float | None:
        return round(total / seconds, 1) if seconds else None

    replay_figures = _replay_figures(replay)
    return {
        "test": "load",
        "ok": not problems,
        "problems": problems,
        "throughput": {
            "seconds": round(seconds, 1),
            "requests_per_s": rate(requests),
            "orders_acked_per_s": rate(sum(w.acked for w in windows)),
            "orders_acked": sum(w.acked for w in windows),
            "replay_index_ticks_per_s": rate(sum(w.index_ticks for w in windows)),
            "oracle_marks_per_s": rate(sum(w.marks for w in windows)),
            "replay_events_per_s": replay_figures.get("rates", {}).get("events_per_s"),
            "replay_commands_per_s": replay_figures.get("rates", {}).get("commands_per_s"),
        },
        "latency_ms": {
            "of": "order commands through the gateway, from scheduled send to response",
            **{key: _spread([w.latency_ms[key] for w in windows]) for key in LATENCY_KEYS},
        },
        "latency_over_time": latency_over_time(windows),
        "errors": {
            "count": error_count,
            "counted": failures,
            "rate": round(error_rate, 6),
            "max_rate": max_error_rate,
            "by_code": dict(sorted(errors.items())),
            "not_counted": {
                code: reason for code, reason in EXPECTED_REFUSALS.items() if code in errors
            },
            "lost_races": sum(w.lost_races for w in windows),
        },
        "pushes": {
            "count": sum(pushes.values()),
            "per_s": rate(sum(pushes.values())),
            "by_channel": dict(sorted(pushes.items())),
        },
        "replay": replay_figures,
        "memory": memory,
        "setup": setup,
        "parameters": parameters,
        "conditions": conditions,
        "windows": [msgspec.to_builtins(w) for w in windows],
    }


def _replay_figures(summary: dict[str, Any] | None) -> dict[str, Any]:
    """The replay's own summary, trimmed to what a load test reads (docs/replay.md)."""
    if summary is None:
        return {}
    keys = ("file", "format", "speed", "wall_s", "events", "index_ticks", "commands", "rates")
    out = {key: summary[key] for key in keys if key in summary}
    latency = summary.get("latency_ms", {})
    out["feed_to_mark_ms"] = latency.get("tick_to_mark")
    out["command_to_event_ms"] = latency.get("command_to_event")
    out["errors"] = summary.get("errors")
    for key in ("stopped_early", "aborted", "notes"):
        if key in summary:
            out[key] = summary[key]
    return out


def table(report: dict[str, Any]) -> str:
    """The few lines a person reads (stderr): load, latency by window, memory, verdict."""
    throughput, latency = report["throughput"], report["latency_ms"]
    params = report["parameters"]
    lines = [
        f"load test: {params['clients']} clients at {params['rate']}/s offered, replay of "
        f"{params['file']} at speed {params['speed']}, {throughput['seconds']} s in "
        f"{len(report['windows'])} windows",
        f"  orders acked/s {throughput['orders_acked_per_s']}, requests/s "
        f"{throughput['requests_per_s']}, index ticks/s {throughput['replay_index_ticks_per_s']}"
        f", marks/s {throughput['oracle_marks_per_s']}",
        f"  order latency ms (median window / worst window): p50 "
        f"{latency['p50']['median_window']} / {latency['p50']['worst_window']}, p99 "
        f"{latency['p99']['median_window']} / {latency['p99']['worst_window']}, p99.9 "
        f"{latency['p99_9']['median_window']} / {latency['p99_9']['worst_window']}",
        f"  {'window':>6} {'at s':>7} {'acked/s':>8} {'p50':>8} {'p99':>8} {'p99.9':>8} "
        f"{'errors':>6} {'mark p50':>9} {'mark p99':>9} {'others cpu %':>12}",
    ]
    for row in report["latency_over_time"]:
        lines.append(
            f"  {row['window']:>6} {row['at_s']:>7} {row['acked_per_s']!s:>8} {row['p50']!s:>8} "
            f"{row['p99']!s:>8} {row['p99_9']!s:>8} {row['errors']:>6} "
            f"{row['tick_to_mark_p50']!s:>9} {row['tick_to_mark_p99']!s:>9} "
            f"{row['others_cpu_percent']!s:>12}"
        )
    replay = report["replay"]
    if replay:
        mark = replay.get("feed_to_mark_ms") or {}
        event = replay.get("command_to_event_ms") or {}
        lines.append(
            f"  replay: {replay.get('index_ticks')} ticks, feed→mark p50/p99 "
            f"{mark.get('p50')}/{mark.get('p99')} ms, command→event p50/p99 "
            f"{event.get('p50')}/{event.get('p99')} ms, {replay.get('wall_s')} s"
        )
    errors = report["errors"]
    lines.append(
        f"  errors {errors['count']}, {errors['counted']} counted ({errors['rate']:.4%}; limit "
        f"{errors['max_rate']:.4%}) {errors['by_code']}, lost races {errors['lost_races']}, pushes "
        f"{report['pushes']['count']}"
    )
    memory = report["memory"]
    lines.append(
        f"  {'process':<12} {'RSS MB start':>12} {'middle':>8} {'end':>8} {'peak':>8} "
        f"{'cpu %':>6}  growing"
    )
    for name, figures in memory["processes"].items():
        if "rss_mb" not in figures:
            lines.append(f"  {name:<12} {figures.get('note')}")
            continue
        rss = figures["rss_mb"]
        flag = "yes (expected)" if figures.get("expected") else "YES" if figures["growing"] else ""
        lines.append(
            f"  {name:<12} {rss['start']!s:>12} {rss['middle']!s:>8} {rss['end']!s:>8} "
            f"{rss['peak']!s:>8} {figures['cpu_percent_mean']!s:>6}  {flag}"
            + (f"  ({figures['note']})" if "note" in figures else "")
        )
    lines.append(f"  memory rule: {memory.get('rule')}")
    lines.append("  ok" if report["ok"] else f"  FAILED: {'; '.join(report['problems'])}")
    return "\n".join(lines)
