"""Differential tests: the fast engine must emit exactly the reference engine's events.

``ReferenceEngine`` is the contract of ``docs/matching.md`` written naively; any difference in
any event of any command is a bug in one of them (or an ambiguity in the contract).
"""

import random
from collections.abc import Sequence
from fractions import Fraction
from typing import Any

import msgspec
from hypothesis import HealthCheck, given, settings
from strategies import SPECS, random_commands, specs_and_streams

from exchange.commands import MatchingCommand
from exchange.events import MatchingEvent, Rejected
from exchange.market import MarketSpec
from exchange.matching import MatchingEngine
from exchange.orders import Side
from exchange.reference import ReferenceEngine

ACCOUNTS = range(0, 6)
"""Every account the streams use (1..4) and some they never do."""
IMPACT_NOTIONALS = (1, 99, 1_000, 10_000, 1_000_000)


def comparable(events: Sequence[MatchingEvent]) -> list[MatchingEvent]:
    """Events with ``Rejected.message`` blanked: the contract fixes the reason, not the text."""
    return [
        msgspec.structs.replace(e, message="") if isinstance(e, Rejected) else e for e in events
    ]


def snapshot(engine: Any) -> dict[str, Any]:
    """Everything the queries of the contract can tell about an engine's state."""
    impacts: dict[tuple[Side, int], Fraction | None] = {
        (side, notional): engine.impact_price(side, notional)
        for side in Side
        for notional in IMPACT_NOTIONALS
    }
    return {
        "best_bid": engine.best_bid(),
        "best_ask": engine.best_ask(),
        "depth": engine.depth(1_000),
        "depth_3": engine.depth(3),
        "update_id": engine.update_id,
        "positions": {a: engine.position(a) for a in ACCOUNTS},
        "open_orders": {a: engine.open_orders(a) for a in ACCOUNTS},
        "impact": impacts,
    }


def run_differential(spec: MarketSpec, stream: Sequence[MatchingCommand]) -> None:
    fast = MatchingEngine(spec)
    reference = ReferenceEngine(spec)
    for index, cmd in enumerate(stream):
        got = comparable(fast.process(cmd))
        want = comparable(reference.process(cmd))
        assert got == want, f"command #{index} {cmd}\n  fast:      {got}\n  reference: {want}"
    assert snapshot(fast) == snapshot(reference)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=specs_and_streams())
def test_fast_engine_matches_reference(case: tuple[MarketSpec, list[MatchingCommand]]) -> None:
    spec, stream = case
    run_differential(spec, stream)


def test_fast_engine_matches_reference_on_long_streams() -> None:
    """Long seeded runs reach states short hypothesis streams rarely do (deep positions,
    id reuse, long trigger cascades); one seed per spec."""
    for seed, name in enumerate(sorted(SPECS), start=1):
        spec = SPECS[name]
        run_differential(spec, random_commands(random.Random(seed), 20_000, spec))
