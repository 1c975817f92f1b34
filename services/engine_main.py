"""``exchange engine``: the engine service as a process, configured by ``services.settings``."""

import asyncio
import signal
from pathlib import Path

import structlog

from exchange.default_markets import DEFAULT_MARKETS
from services.broker import create_topics
from services.engine_service import EngineService
from services.settings import Settings

log = structlog.get_logger("engine")


async def run_engine(settings: Settings) -> None:
    """Create the topics if needed, then run until SIGTERM or SIGINT (graceful: the batch in
    hand is finished and a snapshot written before the process exits)."""
    await create_topics(settings.bootstrap_servers, settings)
    service = EngineService(
        bootstrap=settings.bootstrap_servers,
        commands_topic=settings.commands_topic,
        events_topic=settings.events_topic,
        snapshot_path=Path(settings.snapshot_dir) / "engine.snap",
        specs=DEFAULT_MARKETS,
        faucet_cap=settings.faucet_cap,
        snapshot_every=settings.snapshot_every_commands or 2**62,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log.info("engine starting", bootstrap=settings.bootstrap_servers)
    await service.run(stop)
