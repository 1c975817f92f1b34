"""Replay an order-stream file through one market's matching engine, in process, and time it.

The file is parsed completely before the clock starts, so the timing is the engine's alone
(plus the few operations per command it takes to time and count); trades are written to their
file only after the last command, for the same reason. Everything the engine rejects (an
unknown order id, say) is counted by reason, because a replay of a captured stream is expected
to contain some.
"""

import functools
import json
import math
import sys
import time
from array import array
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from tqdm import tqdm

from exchange.events import Rejected, Trade
from exchange.market import MarketSpec
from exchange.matching import MatchingEngine
from exchange.units import MAX_UNITS
from load.orderstream import OrderStream, read_order_stream

PROGRESS_CHUNK = 16_384
"""Commands between progress-bar updates: often enough to watch, rare enough to cost nothing."""
PERCENTILES = {"p50": 0.5, "p99": 0.99, "p99_9": 0.999}


def replay_spec(tick_size: str, lot_size: str) -> MarketSpec:
    """A market that is only a grid: no price band, no market protection, no fees, and limits
    as large as the units allow, so that the engine refuses nothing a file could mean.

    The settlement precision is raised when tick × lot needs more than 8 decimals, because the
    spec insists on a whole number of minor units per tick × lot.
    """
    tick = _positive_decimal(tick_size, "tick size")
    lot = _positive_decimal(lot_size, "lot size")
    exponent = (tick * lot).normalize().as_tuple().exponent
    decimals = max(8, -exponent) if isinstance(exponent, int) else 8
    return MarketSpec(
        symbol="REPLAY",
        tick_size=tick_size,
        lot_size=lot_size,
        settle_decimals=decimals,
        max_qty=MAX_UNITS,
        max_price=MAX_UNITS,
    ).validate()


def _positive_decimal(text: str, what: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"{what} {text!r} is not a decimal number") from None
    if not value.is_finite() or value <= 0:
        raise ValueError(f"{what} {text!r} must be a positive number")
    return value


@dataclass(slots=True)
class ReplayResult:
    latencies_ns: "array[int]"
    """The time of each ``engine.process`` call, in command order."""
    wall_ns: int
    """The whole matching loop, including timing and counting, excluding parsing and output."""
    events: int = 0
    trades: int = 0
    traded_qty: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    trade_log: list[tuple[int, int, int, int, int]] = field(default_factory=list)
    """``(ts_ns, taker_order_id, maker_order_id, price, qty)`` per trade, if asked for."""


def replay(stream: OrderStream, spec: MarketSpec, *, keep_trades: bool = False) -> ReplayResult:
    """Run every command of ``stream`` through a fresh engine, timing each one.

    The progress bar shows only on a terminal and moves once per ``PROGRESS_CHUNK`` commands.
    """
    commands = stream.commands
    timestamps = stream.timestamps
    n = len(commands)
    latencies = array("q", bytes(8 * n))
    result = ReplayResult(latencies, 0)
    rejected = result.rejected
    trade_log = result.trade_log
    process = MatchingEngine(spec).process
    clock = time.perf_counter_ns
    events = trades = traded_qty = 0
    with tqdm(total=n, disable=None, file=sys.stderr, unit="cmd", desc="replay") as bar:
        start = clock()
        for chunk_start in range(0, n, PROGRESS_CHUNK):
            chunk_end = min(n, chunk_start + PROGRESS_CHUNK)
            for i in range(chunk_start, chunk_end):
                t0 = clock()
                out = process(commands[i])
                latencies[i] = clock() - t0
                count = len(out)
                events += count
                if count <= 2:  # a rest or a cancel with its delta, or a lone rejection
                    if count == 1 and type(out[0]) is Rejected:
                        rejected[out[0].reason] += 1
                    continue
                for event in out:
                    if type(event) is Trade:
                        trades += 1
                        traded_qty += event.qty
                        if keep_trades:
                            trade_log.append(
                                (
                                    timestamps[i],
                                    event.taker_order_id,
                                    event.maker_order_id,
                                    event.price,
                                    event.qty,
                                )
                            )
            bar.update(chunk_end - chunk_start)
        result.wall_ns = clock() - start
    result.events, result.trades, result.traded_qty = events, trades, traded_qty
    return result


def latency_percentiles_us(latencies_ns: "array[int]") -> dict[str, float | None]:
    """Nearest-rank percentiles in microseconds (None for an empty replay)."""
    ordered = sorted(latencies_ns)
    return {
        name: round(ordered[max(0, math.ceil(p * len(ordered)) - 1)] / 1000, 3) if ordered else None
        for name, p in PERCENTILES.items()
    }


def summarize(
    file: str, stream: OrderStream, result: ReplayResult, spec: MarketSpec, parse_ns: int
) -> dict[str, Any]:
    """The replay's report, as printed by ``exchange replay-orders``."""
    commands = len(stream.commands)
    wall = result.wall_ns / 1e9
    return {
        "file": file,
        "commands": commands,
        "malformed_rows": stream.malformed_rows,
        "rejected": {
            "count": sum(result.rejected.values()),
            "by_reason": {str(reason): n for reason, n in sorted(result.rejected.items())},
        },
        "events": result.events,
        "trades": result.trades,
        "traded_qty": spec.lots_to_str(result.traded_qty),
        "parse_seconds": round(parse_ns / 1e9, 6),
        "wall_seconds": round(wall, 6),
        "commands_per_second": round(commands / wall, 1) if commands and wall > 0 else None,
        "latency_us": latency_percentiles_us(result.latencies_ns),
    }


def write_trades(path: str | Path, result: ReplayResult, spec: MarketSpec) -> None:
    """One JSON object per line and trade, in execution order, amounts as decimal strings."""
    price_text = functools.cache(spec.ticks_to_str)
    qty_text = functools.cache(spec.lots_to_str)
    with open(path, "w", encoding="utf-8") as out:
        for ts_ns, taker, maker, price, qty in result.trade_log:
            record = {
                "ts_ns": ts_ns,
                "taker_order_id": taker,
                "maker_order_id": maker,
                "price": price_text(price),
                "qty": qty_text(qty),
            }
            out.write(json.dumps(record, separators=(",", ":")) + "\n")


@dataclass(frozen=True, slots=True)
class Replay:
    stream: OrderStream
    result: ReplayResult
    summary: dict[str, Any]


def replay_file(
    path: str | Path, spec: MarketSpec, trades_path: str | Path | None = None
) -> Replay:
    """Parse ``path`` completely, replay it, write the trades if asked, and summarize.

    Raises ``OrderStreamError`` or ``OSError`` for a file that cannot be read as a whole.
    """
    parse_start = time.perf_counter_ns()
    stream = read_order_stream(path, spec)
    parse_ns = time.perf_counter_ns() - parse_start
    result = replay(stream, spec, keep_trades=trades_path is not None)
    if trades_path is not None:
        write_trades(trades_path, result, spec)
    return Replay(stream, result, summarize(str(path), stream, result, spec, parse_ns))
