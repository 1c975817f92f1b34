"""The drill's JSON result, from the recorder's figures. Pure.

Money is in minor units (integers: USDT × 10⁸) with a ``*_usdt`` decimal string beside the
figures a person reads; prices in the market's decimal strings; times ISO 8601 UTC (event time)
in the tables and ms in the series the charts draw. Series are bucketed in event time
(``bucket_ms``: the smallest of 1 s … 1 h that gives at most ``MAX_BUCKETS`` buckets), and the
price points thinned to at most ``MAX_POINTS`` (every k-th, the lowest mark always kept), so a
100,000-account result stays a few hundred kB; ``liquidation_list`` holds every step when there
are at most ``MAX_LISTED`` of them.
"""

from collections import Counter
from decimal import Decimal
from typing import Any

from exchange.default_markets import USDT
from exchange.ledger import INSURANCE
from exchange.units import from_units
from load.drill.recorder import Recorder
from load.replay.summary import iso

MAX_BUCKETS = 300
MAX_POINTS = 3_000
MAX_LISTED = 5_000
BUCKETS_MS = (1_000, 5_000, 10_000, 30_000, 60_000, 300_000, 900_000, 3_600_000)


def usdt(amount: int) -> str:
    return from_units(amount, Decimal(1) / USDT)


def bucket_ms(first: int, last: int) -> int:
    span = max(1, last - first)
    for size in BUCKETS_MS:
        if span // size < MAX_BUCKETS:
            return size
    return BUCKETS_MS[-1]


def build_result(
    recorder: Recorder, run: dict[str, Any], scenario: dict[str, Any]
) -> dict[str, Any]:
    """Everything the report and the checks need (module docstring)."""
    spec = recorder.spec
    first = run["path_first_time"]
    last = max(run["path_last_time"], recorder.last_time)
    size = bucket_ms(first, last)
    liquidations = recorder.liquidations
    series: dict[int, Counter[str]] = {}
    for entry in liquidations:
        bucket = series.setdefault(max(0, entry["time"] - first) // size, Counter())
        bucket["count"] += 1
        bucket[entry["step"]] += 1
        bucket["notional"] += entry["notional"]
        bucket["deleveraged_lots"] += entry["deleveraged"]
    adl_buckets: Counter[int] = Counter(max(0, t - first) // size for t, *_ in recorder.adl)
    steps = Counter(entry["step"] for entry in liquidations)
    modes = Counter(entry["mode"] for entry in liquidations)
    notional = sum(entry["notional"] for entry in liquidations)
    uncovered = sum(entry["uncovered"] for entry in liquidations)
    interest_low = recorder.open_interest_low
    if interest_low is None:
        interest_low = recorder.open_interest_baseline
    shortfalls = -recorder.insurance_after_baseline.get("liquidation_shortfall", 0)
    baseline = recorder.baseline or {}
    before = recorder.totals(baseline)
    after = recorder.totals(recorder.balances)
    inside_before = sum(v for k, v in before.items() if k != "external")
    inside_after = sum(v for k, v in after.items() if k != "external")
    net_in = recorder.deposits_after_baseline - recorder.withdrawals_after_baseline
    fund_before = baseline.get(INSURANCE, 0)
    fund_after = recorder.balances.get(INSURANCE, 0)
    fund_moves = dict(recorder.insurance_after_baseline)
    steps_fund = sum(entry["insurance"] for entry in liquidations)
    remainders = recorder.funding_remainders_after_baseline
    injected = fund_moves.get("insurance_funding", 0)
    points = _thin(recorder.points)
    return {
        "scenario": scenario,
        "run": run,
        "bucket_ms": size,
        "liquidations": {
            "count": len(liquidations),
            "partial": steps.get("partial", 0),
            "full": steps.get("full", 0),
            "by_mode": dict(modes),
            "accounts": len({(e["account"], e["symbol"]) for e in liquidations}),
            "notional": notional,
            "notional_usdt": usdt(notional),
            "fees": sum(entry["fee"] for entry in liquidations),
            "series": [
                {
                    "time": first + key * size,
                    "count": c["count"],
                    "partial": c["partial"],
                    "full": c["full"],
                    "notional": c["notional"],
                    "deleveraged_lots": c["deleveraged_lots"],
                }
                for key, c in sorted(series.items())
            ],
            "markers": _markers(liquidations),
        },
        "liquidation_list": liquidations if len(liquidations) <= MAX_LISTED else None,
        "insurance": {
            "before": fund_before,
            "after": fund_after,
            "low": recorder.insurance_low if recorder.insurance_low is not None else fund_before,
            "before_usdt": usdt(fund_before),
            "after_usdt": usdt(fund_after),
            "moves_by_reason": fund_moves,
            "liquidation_steps_sum": steps_fund,
            "funding_remainders": remainders,
            "path": [[t, b] for t, b in _thin_pairs(recorder.insurance_path)],
        },
        "open_interest": {
            "before": recorder.open_interest_baseline,
            "after": recorder.open_interest,
            "low": interest_low,
            "lot": spec.lot_size,
            "before_qty": spec.lots_to_str(recorder.open_interest_baseline),
            "after_qty": spec.lots_to_str(recorder.open_interest),
            "low_qty": spec.lots_to_str(interest_low),
            "path": [[t, lots] for t, lots in _thin_pairs(recorder.open_interest_path)],
        },
        "adl": {
            "events": len(recorder.adl),
            "lots": sum(lots for _, _, _, lots, _ in recorder.adl),
            "counterparties": len({c for _, _, c, _, _ in recorder.adl}),
            "series": [[first + key * size, n] for key, n in sorted(adl_buckets.items())],
        },
        "bad_debt": {
            "uncovered": uncovered,
            "uncovered_usdt": usdt(uncovered),
            "fund_paid_shortfalls": shortfalls,
            "fund_paid_shortfalls_usdt": usdt(shortfalls),
        },
        "funding": {
            "settlements": recorder.funding,
            "paid": sum(row["paid"] for row in recorder.funding),
            "received": sum(row["received"] for row in recorder.funding),
        },
        "prices": {
            "points": [[t, i, m, la] for t, i, m, la in points],
            "marks": len(recorder.points),
            "start": spec.ticks_to_str(run["path_start_price"]),
            "low": spec.ticks_to_str(run["path_low"]),
            "tick": str(spec.tick),
        },
        "latency": recorder.latency_summary(),
        "conservation": {
            "before": before,
            "after": after,
            "inside_before": inside_before,
            "inside_after": inside_after,
            "inside_before_usdt": usdt(inside_before),
            "inside_after_usdt": usdt(inside_after),
            "deposits_during": recorder.deposits_after_baseline,
            "withdrawals_during": recorder.withdrawals_after_baseline,
            "difference": inside_after - inside_before - net_in,
            "ledger_total": sum(recorder.balances.values()),
            "deposits_total": -after["external"],
            "fund_change": fund_after - fund_before,
            "fund_change_explained": steps_fund + remainders + injected,
        },
        "engine": {
            "event_records": recorder.event_records,
            "events": recorder.events,
            "trades": recorder.trades,
            "engine_marks": recorder.engine_marks,
            "largest_event_record_bytes": recorder.largest_event_record,
            "record_errors": recorder.record_errors[:10],
            "drill_command_rejections": dict(recorder.rejections),
            "rejection_examples": recorder.rejection_examples,
            "last_event_time": iso(recorder.last_time),
        },
    }


def _markers(liquidations: list[dict[str, Any]]) -> list[list[int]]:
    """(time, mark) of liquidation steps for the price chart: one per distinct time."""
    seen: dict[int, int] = {}
    for entry in liquidations:
        if entry["mark"] is not None:
            seen.setdefault(entry["time"], entry["mark"])
    return [[t, m] for t, m in sorted(seen.items())]


def _thin(
    points: list[tuple[int, int | None, int | None, int | None]],
) -> list[tuple[int, int | None, int | None, int | None]]:
    if len(points) <= MAX_POINTS:
        return list(points)
    stride = -(-len(points) // MAX_POINTS)
    kept = set(range(0, len(points), stride))
    marks = [(p[2], i) for i, p in enumerate(points) if p[2] is not None]
    if marks:
        kept.add(min(marks)[1])
    kept.add(len(points) - 1)
    return [points[i] for i in sorted(kept)]


def _thin_pairs(pairs: list[tuple[int, int]]) -> list[tuple[int, int]]:
    if len(pairs) <= MAX_POINTS:
        return list(pairs)
    stride = -(-len(pairs) // MAX_POINTS)
    kept = set(range(0, len(pairs), stride))
    kept.add(min((b, i) for i, (_, b) in enumerate(pairs))[1])
    kept.add(len(pairs) - 1)
    return [pairs[i] for i in sorted(kept)]
