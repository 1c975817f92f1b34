"""What a mark costs the liquidation service's account view with many accounts (issue 8's drill
has 100,000 and a mark every second), against re-valuing every account.

One run builds a population from synthetic engine events (deposits, isolated margin, position
updates: no engine, so the build measures the view alone), then moves the BTCUSDT mark:
first ten minutes of one-second marks (random steps of up to 5 basis points), then a crash
(one-percent steps down, 30 of them), timing each ``apply`` of one ``MarkChanged``; a scope a
mark takes to LIQUIDATION is then closed as a liquidation would close it (not timed). It
prints one JSON object: the per-mark cost (percentiles, and the scopes valued exactly per
mark) and the level changes of each phase, with what one ADL ranking of the market costs at
its end, and the cost of a full valuation of every scope (``AccountView.scan``). At the end
the index's levels are checked against a full scan; the run fails if they differ.

``python -m load.bench_account_view --accounts 100000``
"""

import argparse
import json
import random
import sys
import time
from typing import Any

from exchange.account_view import AccountView
from exchange.default_markets import BTCUSDT, ETHUSDT, USDT
from exchange.engine import MarginLevel
from exchange.engine_commands import MarginMode
from exchange.engine_events import (
    EngineEvent,
    MarginModeChanged,
    MarkChanged,
    PositionUpdate,
    Transfer,
    TransferReason,
)

BTC_PRICE = 600_000  # 60,000.0
ETH_PRICE = 300_000  # 3,000.00


def population(rng: random.Random, accounts: int, multi: float) -> list[list[EngineEvent]]:
    """One event list per account: a BTCUSDT position of 0.001 to 2 BTC at 2x to 75x, entered
    within 0.5 % of the price, long or short, with 1 to 1.5 times its initial margin; a third
    of them isolated; a share ``multi`` of the cross ones also holds an ETHUSDT position (the
    cross accounts the index does not cover: re-valued on every mark)."""
    out = []
    for account in range(1, accounts + 1):
        lots = rng.randint(1, 2_000)
        size = lots if rng.random() < 0.5 else -lots
        entry_price = BTC_PRICE * rng.randint(9_950, 10_050) // 10_000
        entry = entry_price * lots * BTCUSDT.multiplier
        leverage = rng.choice((2, 5, 10, 20, 20, 25, 50, 75))
        margin = entry // leverage * rng.randint(100, 150) // 100
        events: list[EngineEvent] = [
            Transfer("external", f"u:{account}", margin + USDT, TransferReason.DEPOSIT)
        ]
        if rng.random() < 1 / 3:
            events.append(MarginModeChanged(account, "BTCUSDT", MarginMode.ISOLATED))
            events.append(
                Transfer(
                    f"u:{account}",
                    f"u:{account}:BTCUSDT",
                    margin,
                    TransferReason.ISOLATED_MARGIN,
                )
            )
            events.append(PositionUpdate(account, "BTCUSDT", size, entry, 0, margin))
        else:
            events.append(PositionUpdate(account, "BTCUSDT", size, entry, 0, 0))
            if rng.random() < multi:
                eth_lots = rng.randint(1, 10_000)
                eth_entry = ETH_PRICE * eth_lots * ETHUSDT.multiplier
                eth_size = eth_lots if rng.random() < 0.5 else -eth_lots
                events.append(PositionUpdate(account, "ETHUSDT", eth_size, eth_entry, 0, 0))
        out.append(events)
    return out


def _percentiles(samples_ms: list[float]) -> dict[str, float]:
    ordered = sorted(samples_ms)

    def rank(percent: float) -> float:
        return round(ordered[max(0, -(-int(len(ordered) * percent) // 100) - 1)], 3)

    return {
        "p50": rank(50),
        "p99": rank(99),
        "max": round(ordered[-1], 3),
        "mean": round(sum(ordered) / len(ordered), 3),
    }


def _marks(view: AccountView, prices: list[int]) -> dict[str, Any]:
    """Apply each mark, timed; then close every scope it took to LIQUIDATION, as the engine's
    liquidation would (its position to 0, its isolated wallet to the fund), not timed."""
    times: list[float] = []
    revalued = view.revalued
    changes = liquidated = 0
    for price in prices:
        start = time.perf_counter()
        changed = view.apply([MarkChanged("BTCUSDT", price)])
        times.append((time.perf_counter() - start) * 1000)
        changes += len(changed)
        revalued_before_closing = view.revalued
        for change in changed:
            if change.after is MarginLevel.LIQUIDATION:
                view.apply(_closed(view, change.account, change.symbol))
                liquidated += 1
        revalued += view.revalued - revalued_before_closing
    return {
        "marks": len(prices),
        "ms_per_mark": _percentiles(times),
        "scopes_valued_per_mark": round((view.revalued - revalued) / len(prices), 1),
        "level_changes": changes,
        "liquidated": liquidated,
    }


def _closed(view: AccountView, account: int, symbol: str) -> list[EngineEvent]:
    """What a liquidation leaves of a scope, roughly: no position, its wallet in the fund."""
    wallet = f"u:{account}:{symbol}" if symbol else f"u:{account}"
    events: list[EngineEvent] = [
        PositionUpdate(account, market, 0, 0, 0, 0)
        for market, position in view.positions[account].items()
        if position.size and (market == symbol or not symbol)
    ]
    held = view.balance(wallet)
    if held:
        events.append(Transfer(wallet, "insurance", held, TransferReason.LIQUIDATION_SURPLUS))
    return events


def _adl_ms(view: AccountView) -> float:
    """One ranking of BTCUSDT's positions (both sides) into ADL indicators."""
    start = time.perf_counter()
    view.adl_quantiles("BTCUSDT")
    return round((time.perf_counter() - start) * 1000, 1)


def bench(accounts: int, seed: int, quiet_marks: int, multi: float) -> dict[str, Any]:
    rng = random.Random(seed)
    view = AccountView([BTCUSDT, ETHUSDT])
    view.apply([MarkChanged("BTCUSDT", BTC_PRICE), MarkChanged("ETHUSDT", ETH_PRICE)])
    built = population(rng, accounts, multi)
    events = sum(len(e) for e in built)
    start = time.perf_counter()
    for account_events in built:
        view.apply(account_events)
    build_s = time.perf_counter() - start
    scopes = len(view.levels())
    unindexed = sum(1 for scope in view.levels() if view.trigger_interval(scope) is None)
    price = BTC_PRICE
    quiet = []
    for _ in range(quiet_marks):
        price += rng.randint(-price // 2_000, price // 2_000)  # up to 5 bp a second
        quiet.append(price)
    crash = [price * (100 - step) // 100 for step in range(1, 31)]
    quiet_result = _marks(view, quiet)
    quiet_result["adl_ranking_ms"] = _adl_ms(view)
    crash_result = _marks(view, crash)
    crash_result["adl_ranking_ms"] = _adl_ms(view)
    start = time.perf_counter()
    scanned = view.scan()
    scan_ms = (time.perf_counter() - start) * 1000
    return {
        "accounts": accounts,
        "scopes": scopes,
        "scopes_not_indexed": unindexed,
        "seed": seed,
        "build": {
            "events": events,
            "seconds": round(build_s, 3),
            "events_per_second": round(events / build_s),
        },
        "quiet_marks": quiet_result,
        "crash_marks": crash_result,
        "full_scan_ms": round(scan_ms, 1),
        "adl_positions": len(view.markets["BTCUSDT"].holders),
        "levels": {
            level.value: sum(1 for v in scanned.values() if v is level)
            for level in set(scanned.values())
        },
        "index_equals_scan": view.levels() == scanned,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--quiet-marks", type=int, default=600)
    parser.add_argument("--multi-market-share", type=float, default=0.01)
    args = parser.parse_args(argv)
    result = bench(args.accounts, args.seed, args.quiet_marks, args.multi_market_share)
    print(json.dumps(result, indent=2))
    return 0 if result["index_equals_scan"] else 1


if __name__ == "__main__":
    sys.exit(main())
