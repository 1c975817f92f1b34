"""The engine rebuilt in process from the drill's command log, against the engine service's own
final snapshot: the strongest check a drill makes that the running system computed what the
state machine says it should.

The engine service writes a snapshot when it stops (``services/engine_service.py``): its state
after the last command record it applied. The drill kept every command record it read (the
recorder), so after the services stop it replays them through a ``CommandLog`` over a fresh
``Engine`` built with the services' settings, up to the snapshot's offset, and compares the two
states' ``state_hash``. Equal hashes: the engine service applied exactly the log, and the log
alone determines the state (no wall clock, no lost or doubled command). The cost is one more
pass of the engine over the log, a few seconds for the 100,000-account setup.
"""

from pathlib import Path
from typing import Any

import msgspec

from exchange.engine import Engine
from exchange.market import MarketSpec
from services.engine_service import CommandLog, ServiceSnapshot
from services.settings import Settings

SNAPSHOT = "engine.snap"
"""The engine service's snapshot file in its snapshot directory (``services/engine_main.py``)."""
DEDUPE_WINDOW = 100_000
"""The engine service's default dedupe window: ids repeat only in a liquidation service's
resend, well inside it."""


def read_snapshot(snapshot_dir: Path) -> ServiceSnapshot | None:
    """The engine service's final snapshot, if it wrote one."""
    path = snapshot_dir / SNAPSHOT
    if not path.is_file():
        return None
    return msgspec.msgpack.decode(path.read_bytes(), type=ServiceSnapshot)


def replica_check(
    snapshot: ServiceSnapshot,
    commands: list[tuple[int, bytes]],
    specs: tuple[MarketSpec, ...],
    settings: Settings,
) -> dict[str, Any]:
    """Compare ``snapshot`` with a replay of ``commands`` ((offset, record), in order)."""
    engine_settings: dict[str, Any] = {
        "faucet_cap": settings.faucet_cap,
        "default_leverage": settings.default_leverage,
        "funding_schedules": {s.symbol: settings.funding_schedule_of(s.symbol) for s in specs},
    }
    service = Engine.restore(specs, snapshot.engine, **engine_settings)
    replica = CommandLog(Engine(specs, **engine_settings), dedupe_window=DEDUPE_WINDOW)
    replayed = 0
    for offset, record in commands:
        if offset > snapshot.offset:
            break
        replica.apply(offset, record)
        replayed += 1
    ours, theirs = replica.engine.state_hash(), service.state_hash()
    return {
        "checked": True,
        "snapshot_offset": snapshot.offset,
        "records_replayed": replayed,
        "service_state_hash": theirs,
        "replica_state_hash": ours,
        "equal": ours == theirs and replica.offset == snapshot.offset,
    }
