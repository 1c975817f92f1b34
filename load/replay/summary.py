"""The replay's figures: latency percentiles and the short table people read. Pure."""

import math
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

PERCENTILES = (("p50", 0.50), ("p90", 0.90), ("p99", 0.99), ("p99_9", 0.999))


def percentiles(samples_ms: Sequence[float]) -> dict[str, Any]:
    """Count, nearest-rank percentiles and the maximum of latencies in ms (3 decimals)."""
    if not samples_ms:
        return {"count": 0}
    ordered = sorted(samples_ms)
    out: dict[str, Any] = {"count": len(ordered)}
    for name, fraction in PERCENTILES:
        rank = max(1, math.ceil(fraction * len(ordered)))
        out[name] = round(ordered[rank - 1], 3)
    out["max"] = round(ordered[-1], 3)
    return out


def iso(time_ms: int | None) -> str | None:
    """A time in ms as ISO 8601 UTC with milliseconds."""
    if time_ms is None:
        return None
    moment = datetime.fromtimestamp(time_ms / 1000, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def table(summary: dict[str, Any]) -> str:
    """A few lines for stderr: what was read and sent, how fast, how late, what went wrong."""
    rates = summary["rates"]
    latency = summary["latency_ms"]
    commands = summary["commands"]
    lines = [
        f"replay of {summary['file']} ({summary['format']}, {summary['symbol']}, "
        f"speed {summary['speed']}): {summary['data']['first_time']} → "
        f"{summary['data']['last_time']} in {summary['wall_s']} s",
        f"  {'':<22}{'count':>12}{'per second':>14}",
        f"  {'events read':<22}{summary['events']['read']:>12,}{rates['events_per_s']:>14,.0f}",
        f"  {'index ticks':<22}{summary['index_ticks']:>12,}{rates['ticks_per_s']:>14,.0f}",
        f"  {'commands':<22}{commands['sent']:>12,}{rates['commands_per_s']:>14,.0f}",
        f"  {'command records':<22}{commands['records']:>12,}{rates['records_per_s']:>14,.0f}",
        f"  {'engine trades':<22}{summary['trades']['engine_trades']:>12,}",
        f"  {'latency ms':<22}{'count':>12}{'p50':>9}{'p99':>9}{'max':>9}",
    ]
    for name, key in (("tick → mark", "tick_to_mark"), ("command → event", "command_to_event")):
        figures = latency[key]
        if figures["count"]:
            lines.append(
                f"  {name:<22}{figures['count']:>12,}{figures['p50']:>9.1f}"
                f"{figures['p99']:>9.1f}{figures['max']:>9.1f}"
            )
        else:
            lines.append(f"  {name:<22}{0:>12}")
    book = summary.get("book")
    if book:
        lines.append(
            f"  book at the end: engine {book['engine_best_bid']} / {book['engine_best_ask']}, "
            f"recording {book['recorded_best_bid']} / {book['recorded_best_ask']}"
        )
    errors = summary["errors"]
    lines.append(f"  errors: {errors['count']}")
    for kind, count in sorted(errors["by_kind"].items()):
        lines.append(f"    {kind}: {count}")
    return "\n".join(lines)
