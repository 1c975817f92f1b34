"""``exchange engine``: the engine service as a process, configured by ``services.settings``."""

import asyncio
import gc
from pathlib import Path

import msgspec
import structlog

from exchange.default_markets import DEFAULT_MARKETS
from exchange.market import MarketSpec
from services.broker import create_topics
from services.engine_service import EngineService
from services.health import HealthServer
from services.settings import Settings

log = structlog.get_logger("engine")


def load_markets(path: str) -> tuple[MarketSpec, ...]:
    """The markets to trade: the JSON list of specs at ``path``, or the defaults for ""."""
    if not path:
        return DEFAULT_MARKETS
    specs = msgspec.json.decode(Path(path).read_bytes(), type=tuple[MarketSpec, ...])
    for spec in specs:
        spec.validate()
    return specs


def engine_service(settings: Settings) -> EngineService:
    specs = load_markets(settings.markets_file)
    return EngineService(
        bootstrap=settings.bootstrap_servers,
        commands_topic=settings.commands_topic,
        events_topic=settings.events_topic,
        snapshot_path=Path(settings.snapshot_dir) / "engine.snap",
        specs=specs,
        faucet_cap=settings.faucet_cap,
        default_leverage=settings.default_leverage,
        funding_schedules={
            spec.symbol: settings.funding_schedule_of(spec.symbol) for spec in specs
        },
        login_window_ms=settings.gateway_login_window_ms,
        snapshot_every=settings.snapshot_every_commands,
        snapshot_every_ms=settings.snapshot_every_ms,
    )


async def run_engine(settings: Settings, stop: asyncio.Event) -> None:
    """Create the topics if needed, serve health, then run until ``stop`` is set (graceful:
    the batch in hand is finished and a snapshot written before it returns)."""
    service = engine_service(settings)
    # Per command the engine makes a few short-lived objects and keeps few: collect the young
    # generation less often, and never rescan what startup (modules, restored state) left.
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    await create_topics(settings.bootstrap_servers, settings)
    health = HealthServer(
        lambda: (service.ready.is_set(), service.status()),
        host=settings.health_host,
        port=settings.health_port,
    )
    await health.start()
    log.info(
        "engine_starting",
        bootstrap=settings.bootstrap_servers,
        health=f"http://{settings.health_host}:{health.port}/health/ready",
    )
    try:
        await service.run(stop)
    finally:
        await health.stop()
