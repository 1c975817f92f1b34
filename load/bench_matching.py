"""The matching benchmark: the engine against the simplest sensible Python book, same stream.

One run generates a synthetic stream, replays it through the engine exactly as
``exchange replay-orders`` does, then through ``BaselineBook``, and prints one JSON object. The
ratio says what the engine's events, validation and bookkeeping cost over bare matching; the
two must agree on the trades, or they did not do the same work and the ratio means nothing.
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from load.baseline_book import BaselineBook, BaselineOp, to_baseline
from load.generate_orders import DEFAULT_LOT_SIZE, DEFAULT_TICK_SIZE, generate
from load.replay_orders import replay_file, replay_spec


def _time_baseline(book: BaselineBook, ops: list[BaselineOp]) -> int:
    """Nanoseconds for ``book.run(ops)``."""
    start = time.perf_counter_ns()
    book.run(ops)
    return time.perf_counter_ns() - start


def bench(rows: int, seed: int) -> dict[str, Any]:
    spec = replay_spec(DEFAULT_TICK_SIZE, DEFAULT_LOT_SIZE)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "orders.csv"
        start = time.perf_counter_ns()
        generate(path, rows, seed)
        generate_ns = time.perf_counter_ns() - start
        engine = replay_file(path, spec)
    commands = engine.stream.commands
    book = BaselineBook()
    baseline_ns = _time_baseline(book, to_baseline(commands))
    summary = engine.summary
    engine_cps = summary["commands_per_second"] or 0.0
    baseline_cps = len(commands) / (baseline_ns / 1e9) if baseline_ns else 0.0
    differences = {
        name: {"engine": ours, "baseline": theirs}
        for name, ours, theirs in (
            ("trades", engine.result.trades, book.trades),
            ("traded_qty", engine.result.traded_qty, book.traded_qty),
        )
        if ours != theirs
    }
    return {
        "rows": rows,
        "seed": seed,
        "commands": len(commands),
        "generate_seconds": round(generate_ns / 1e9, 3),
        "parse_seconds": summary["parse_seconds"],
        "baseline": {
            "commands_per_second": round(baseline_cps, 1),
            "wall_seconds": round(baseline_ns / 1e9, 6),
            "trades": book.trades,
            "traded_qty": spec.lots_to_str(book.traded_qty),
        },
        "engine": {
            "commands_per_second": engine_cps,
            "wall_seconds": summary["wall_seconds"],
            "process_seconds": round(sum(engine.result.latencies_ns) / 1e9, 6),
            "events": summary["events"],
            "trades": summary["trades"],
            "traded_qty": summary["traded_qty"],
            "rejected": summary["rejected"],
            "latency_us": summary["latency_us"],
        },
        "ratio_engine_to_baseline": round(engine_cps / baseline_cps, 3) if baseline_cps else None,
        "agree": not differences,
        "differences": differences,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    report = bench(args.rows, args.seed)
    print(json.dumps(report, indent=2))
    return 0 if report["agree"] else 1


if __name__ == "__main__":
    sys.exit(main())
