"""The drill's price path: the index ticks to publish, each an event time and a price in ticks.

A path is made of **runs**: lists of knots ``(time, price)`` joined by straight lines, ticked
every ``tick_ms`` of event time and at every knot (so a bar's high and low are always
published). Between two runs nothing is published: a ``gap`` of the scenario is the feed going
silent. A recorded path is one run through every bar's four points (O, L, H, C for a bar that
closed at or above its open, O, H, L, C for one below it, at its open, a third and two thirds
into it, and its close: the convention of ``exchange replay``, load/replay/plan.py).

Rounding, stated once: a recorded price goes to the nearest tick, half to even (the oracle's
rule, ``load.replay.grid``); a scripted move's target to the nearest tick, half to even; a
point between two knots is ``p0 + (p1 − p0)·(t − t0) // (t1 − t0)``, floored.
"""

import bisect
from decimal import ROUND_HALF_EVEN, Decimal

import msgspec

from exchange.market import MarketSpec
from load.drill.scenario import DataPath, Gap, Hold, LoadedScenario, Move, ScenarioError, parse_time
from load.marketdata import Kline, MarketDataFile
from load.replay.grid import Grid

MINUTE_MS = 60_000


class PricePath(msgspec.Struct, frozen=True):
    """Every tick to publish, in time order, and the figures the liquidity thins by."""

    ticks: list[tuple[int, int]]
    start_price: int
    low: int
    high: int

    @property
    def first_time(self) -> int:
        return self.ticks[0][0]

    @property
    def last_time(self) -> int:
        return self.ticks[-1][0]


def build_path(loaded: LoadedScenario) -> PricePath:
    """The path of a checked scenario."""
    scenario = loaded.scenario
    tick_ms = scenario.time.tick_ms
    path = scenario.path
    if isinstance(path, DataPath):
        assert loaded.data_file is not None
        runs = [_recorded_knots(loaded, path)]
    else:
        runs = scripted_runs(
            loaded.spec,
            parse_time(path.start, _never, "path.start"),
            path.start_price,
            path.segments,
            tick_ms,
        )
    ticks: list[tuple[int, int]] = []
    for run in runs:
        ticks.extend(ticks_of(run, tick_ms))
    if len(ticks) < 2:
        raise ScenarioError(f"{loaded.source}: the path has fewer than two ticks")
    prices = [price for _, price in ticks]
    return PricePath(ticks, prices[0], min(prices), max(prices))


def _never(key: str, message: str) -> ScenarioError:
    return ScenarioError(f"{message} - at `$.{key}`")


def _recorded_knots(loaded: LoadedScenario, path: DataPath) -> list[tuple[int, int]]:
    start = parse_time(path.start, _never, "path.start") if path.start else None
    end = parse_time(path.end, _never, "path.end") if path.end else None
    grid = Grid(loaded.spec)
    knots: list[tuple[int, int]] = []
    with MarketDataFile(str(loaded.data_file)) as data:
        if data.format not in ("klines", "ohlcv"):
            raise ScenarioError(
                f"{loaded.source}: {path.file} holds {data.format}, not klines or OHLCV"
            )
        for record in data.records():
            if not isinstance(record, Kline):
                continue
            if (start is not None and record.open_time < start) or (
                end is not None and record.open_time > end
            ):
                continue
            knots.extend(bar_knots(record, grid))
    if len(knots) < 2:
        raise ScenarioError(f"{loaded.source}: no bar of {path.file} in the window")
    return knots


def bar_knots(bar: Kline, grid: Grid) -> list[tuple[int, int]]:
    """A bar's four points (module docstring)."""
    span = bar.close_time - bar.open_time + 1
    rising = bar.close >= bar.open
    second, third = (bar.low, bar.high) if rising else (bar.high, bar.low)
    times = (
        bar.open_time,
        bar.open_time + span // 3,
        bar.open_time + 2 * span // 3,
        bar.close_time,
    )
    prices = (bar.open, second, third, bar.close)
    return [(t, grid.nearest_tick(p)) for t, p in zip(times, prices, strict=True)]


def scripted_runs(
    spec: MarketSpec,
    start: int,
    start_price: Decimal,
    segments: list[Move | Hold | Gap],
    tick_ms: int,
) -> list[list[tuple[int, int]]]:
    """The runs of a scripted path (module docstring)."""
    price = Grid(spec).nearest_tick(start_price)
    now = start
    run = [(now, price)]
    runs = [run]
    for segment in segments:
        duration = int(segment.minutes * MINUTE_MS)
        if isinstance(segment, Hold):
            now += duration
            run.append((now, price))
            continue
        target = int(
            (Decimal(price) * (100 + segment.change_pct) / 100).to_integral_value(ROUND_HALF_EVEN)
        )
        if isinstance(segment, Move):
            now += duration
            price = target
            run.append((now, price))
        else:
            now += max(duration, tick_ms)
            price = target
            run = [(now, price)]
            runs.append(run)
    return runs


def ticks_of(knots: list[tuple[int, int]], tick_ms: int) -> list[tuple[int, int]]:
    """The run's ticks: every ``tick_ms`` from its first knot, and every knot."""
    first, last = knots[0][0], knots[-1][0]
    knot_times = [t for t, _ in knots]
    out: list[tuple[int, int]] = []
    for moment in sorted(set(range(first, last + 1, tick_ms)) | set(knot_times)):
        i = bisect.bisect_right(knot_times, moment) - 1
        t0, p0 = knots[i]
        if i + 1 == len(knots):
            out.append((moment, p0))
            continue
        t1, p1 = knots[i + 1]
        out.append((moment, p0 + (p1 - p0) * (moment - t0) // (t1 - t0)))
    return out


def depth_factor_bps(path: PricePath, price: int, crash_depth_pct: Decimal) -> int:
    """The share of full depth quoted at ``price``, in basis points: 10,000 at or above the
    start, falling linearly to ``crash_depth_pct`` at the path's low (floored)."""
    floor_bps = int(crash_depth_pct * 100)
    fall = max(0, path.start_price - price)
    span = max(1, path.start_price - path.low)
    return 10_000 - (10_000 - floor_bps) * min(fall, span) // span
