"""The load test's pure parts: windows from the load generator's steps, each process's figures
between samples, the growth check on start / middle / end memory, and the report's shape."""

from typing import Any

from load.loadtest.procstat import MIB, ProcessReading, Sample
from load.loadtest.report import (
    EXPECTED_GROWTH,
    build_report,
    latency_over_time,
    memory_check,
    middle_of,
    process_figures,
    table,
    window_of,
)


def step(
    errors: dict[str, int] | None = None, kinds: dict[str, int] | None = None
) -> dict[str, Any]:
    """What ``bench_gateway.step_result`` returns, the parts a window reads."""
    return {
        "offered_rate": 100,
        "requests": 100,
        "answered": 100,
        "measured_commands": 94,
        "latency_ms": {"p50": 2.0, "p90": 3.0, "p99": 9.0, "p99_9": 12.0, "max": 15.0},
        "errors_by_code": errors or {},
        "errors_by_kind": kinds or {},
        "lost_races": 1,
        "pushes_by_channel": {"orders": 80, "fills": 10},
        "problems": [],
    }


def sample(at_s: float, **rss_mb: float | None) -> Sample:
    """Every named process with ``rss_mb`` MB resident and ``at_s`` CPU seconds (100 %); the
    machine's CPU unknown (0)."""
    return Sample(
        at_s,
        {
            name: ProcessReading(
                None if mb is None else int(mb * MIB), None if mb is None else at_s
            )
            for name, mb in rss_mb.items()
        },
    )


def test_a_window_counts_acks_without_the_order_errors_and_lost_races() -> None:
    window = window_of(
        step(
            {"insufficient_margin": 3, "unknown_order": 2},
            {
                "passive_gtc:insufficient_margin": 3,
                "query_balances:unknown_order": 2,
            },
        ),
        index=4,
        start_s=40.0,
        seconds=10.0,
        index_ticks=500,
        marks=120,
        reference_price="104000.0",
        tick_to_mark_ms=[float(ms) for ms in range(1, 101)],
    )
    assert window.acked == 94 - 3 - 1  # a query's error is not an order's
    assert window.tick_to_mark_ms["count"] == 100 and window.tick_to_mark_ms["p99"] == 99.0
    assert window.latency_ms == {"p50": 2.0, "p99": 9.0, "p99_9": 12.0, "max": 15.0}
    assert latency_over_time([window]) == [
        {
            "window": 4,
            "at_s": 40.0,
            "acked_per_s": 9.0,
            "p50": 2.0,
            "p99": 9.0,
            "p99_9": 12.0,
            "max": 15.0,
            "errors": 5,
            "tick_to_mark_p50": 50.0,
            "tick_to_mark_p99": 99.0,
            "others_cpu_percent": None,
        }
    ]


def test_process_figures_are_rss_at_the_end_and_cpu_over_the_window() -> None:
    before, after = sample(10.0, engine=50.0), sample(12.0, engine=60.0)
    assert process_figures(before, after) == {"engine": {"rss_mb": 60.0, "cpu_percent": 100.0}}
    gone = process_figures(before, sample(12.0, engine=None))
    assert gone == {"engine": {"rss_mb": None, "cpu_percent": None}}
    busy = Sample(12.0, after.processes, machine_cpu_s=before.machine_cpu_s + 3.0)
    others = process_figures(before, busy)["others"]
    assert others == {"rss_mb": None, "cpu_percent": 50.0}  # 150 % busy, 100 % ours


def test_the_middle_is_by_time_not_by_count() -> None:
    samples = [sample(t, engine=1.0) for t in (0.0, 1.0, 2.0, 9.0, 10.0)]
    assert middle_of(samples).at_s == 2.0  # nearest to 5 s; the third of five would be too


def test_growth_is_judged_from_middle_to_end_beyond_the_tolerance_and_the_slack() -> None:
    samples = [
        sample(0.0, engine=50, gateway=50, oracle=20, broker=20),
        sample(5.0, engine=100, gateway=100, oracle=40, broker=100),  # the start is not judged
        sample(10.0, engine=110, gateway=200, oracle=100, broker=400),
    ]
    check = memory_check(samples, tolerance=0.2, slack_mb=32)
    engine = check["processes"]["engine"]
    assert engine["rss_mb"] == {"start": 50.0, "middle": 100.0, "end": 110.0, "peak": 110.0}
    assert engine["growing"] is False  # 10 % and 10 MB
    assert check["processes"]["gateway"]["growing"] is True  # 100 % and 100 MB
    assert check["processes"]["oracle"]["growing"] is True  # 150 % and 60 MB
    assert check["processes"]["broker"]["expected"] == EXPECTED_GROWTH["broker"]
    assert check["growing"] == ["gateway", "oracle", "broker"]
    assert check["unexpected_growth"] == ["gateway", "oracle"]
    assert check["ok"] is False
    small = memory_check(samples, tolerance=0.2, slack_mb=200)
    assert small["unexpected_growth"] == [] and small["ok"] is True


def test_a_process_that_ended_is_judged_on_its_own_lifetime() -> None:
    samples = [
        sample(0.0, replay=40, engine=50),
        sample(5.0, replay=41, engine=50),
        sample(10.0, replay=None, engine=50),
    ]
    replay = memory_check(samples)["processes"]["replay"]
    assert replay["rss_mb"]["end"] == 41.0 and replay["growing"] is False
    assert replay["note"] == "ended at 5.0 s: judged until then"


def report(errors: dict[str, int], samples: list[Sample]) -> dict[str, Any]:
    window = window_of(
        step(errors, {f"passive_gtc:{code}": n for code, n in errors.items()}),
        index=0,
        start_s=0.0,
        seconds=10.0,
        index_ticks=50,
        marks=20,
        reference_price="104000.0",
    )
    return build_report(
        parameters={"clients": 200, "rate": 100, "file": "f.csv", "speed": "max"},
        setup={"clients": 200},
        windows=[window],
        samples=samples,
        replay={"file": "f.csv", "index_ticks": 50, "latency_ms": {"tick_to_mark": {"count": 0}}},
        conditions={"cpus": 2},
        max_error_rate=0.01,
    )


def test_the_report_fails_on_errors_beyond_the_rate_and_on_growth() -> None:
    flat = [sample(0.0, engine=50), sample(10.0, engine=50)]
    passed = report({"post_only_would_take": 5}, flat)
    assert passed["ok"] is True and passed["problems"] == []
    assert passed["errors"]["count"] == 5 and passed["errors"]["counted"] == 0
    assert set(passed["errors"]["not_counted"]) == {"post_only_would_take"}
    assert set(passed) >= {
        "throughput",
        "latency_ms",
        "latency_over_time",
        "errors",
        "pushes",
        "replay",
        "memory",
        "windows",
        "parameters",
        "conditions",
    }
    assert passed["throughput"]["orders_acked_per_s"] == 8.8  # (94 - 5 - 1) / 10 s
    assert passed["pushes"] == {
        "count": 90,
        "per_s": 9.0,
        "by_channel": {"fills": 10, "orders": 80},
    }
    assert passed["latency_ms"]["p99"] == {"median_window": 9.0, "worst_window": 9.0}
    assert "ok" in table(passed)
    failed = report(
        {"insufficient_margin": 2}, [sample(0.0, gateway=50), sample(10.0, gateway=200)]
    )
    assert failed["ok"] is False
    assert failed["problems"] == [
        "error rate 2.0000% above 1.0000%",
        "memory grew (end vs middle): gateway",
    ]
    assert "FAILED" in table(failed)
