"""``exchange up``: the whole exchange on one machine, on the embedded broker, with one command.

It starts the embedded broker, creates the topics, then every service as its own process
(``python -m services NAME``, the same entry points the compose file runs), waits until the
engine says it is ready, and prints where to connect. Ctrl-C (or SIGTERM) stops the services
in the reverse order, each with SIGTERM so that it finishes its batch, then the broker.

The embedded broker keeps its log in memory only, so each ``up`` is a new exchange: the engine
gets a fresh snapshot directory, as an old snapshot would describe a log that no longer exists.
The children run in their own sessions, so a Ctrl-C in the terminal reaches ``up`` alone and
the services stop in order instead of all at once.
"""

import asyncio
import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

import aiohttp
import msgspec
import structlog

from services.broker import EmbeddedBroker, create_topics, start_broker
from services.engine_main import load_markets
from services.settings import Settings, env_var

log = structlog.get_logger("up")

SERVICES = (
    "engine",
    "gateway",
    "binance",
    "oracle",
    "funding",
    "liquidator",
    "feed",
    "market-maker",
)
"""Started in this order, stopped in the reverse one: the engine first, as everything else
sends it commands; the gateway and the Binance front, so that clients can connect once the
banner says so; the
oracle, then the funding service (which samples the oracle's points) and the liquidation
service, before the feed, so that they follow its ticks from the first; the maker last. Stopped
the other way round, no service is left sending to one that has stopped."""


class ServiceExited(RuntimeError):
    """A service ended on its own: the exchange is not whole, so ``up`` stops it all."""


class Service:
    """One child process of ``up``."""

    def __init__(self, name: str, env: Mapping[str, str]) -> None:
        self.name = name
        self.process = subprocess.Popen(
            [sys.executable, "-m", "services", name],
            env=dict(env),
            start_new_session=True,
        )

    def check(self) -> None:
        code = self.process.poll()
        if code is not None:
            raise ServiceExited(f"{self.name} exited with status {code}")

    def stop(self, timeout_s: float) -> int:
        """SIGTERM, then SIGKILL if it has not finished within ``timeout_s``."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                log.warning("service_killed", service=self.name, after_s=timeout_s)
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def free_port() -> int:
    """A loopback port free now (for a service's health endpoint)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def wait_ready(url: str, service: Service, timeout_s: float) -> None:
    """Poll a service's readiness endpoint until it answers 200."""
    deadline = time.monotonic() + timeout_s
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1)) as session:
        while time.monotonic() < deadline:
            service.check()
            try:
                async with session.get(url) as response:
                    if response.status == 200:
                        return
            except (aiohttp.ClientError, TimeoutError):
                pass
            await asyncio.sleep(0.1)
    raise TimeoutError(f"the {service.name} was not ready within {timeout_s:.0f} s ({url})")


def _banner(
    settings: Settings, health_url: str, liquidator_url: str | None, left_out: set[str]
) -> str:
    markets = ", ".join(spec.symbol for spec in load_markets(settings.markets_file))
    websocket = f"ws://{settings.gateway_host}:{settings.gateway_port}/ws"
    binance = f"http://{settings.gateway_host}:{settings.binance_port}"
    return "\n".join(
        [
            "The exchange is up.",
            f"  websocket API:           {websocket if 'gateway' not in left_out else '-'}",
            "                           (docs/gateway-protocol.md)",
            f"  Binance USDⓈ-M API:      {binance if 'binance' not in left_out else '-'}",
            "                           (/fapi REST and websockets, docs/binance-api.md)",
            f"  broker (Kafka protocol): {settings.bootstrap_servers}",
            f"  commands topic:          {settings.commands_topic}",
            f"  events topic:            {settings.events_topic}",
            f"  prices topic:            {settings.prices_topic}",
            f"  risk topic:              {settings.risk_topic}",
            f"  markets:                 {markets}",
            f"  market maker account:    {settings.maker_account}",
            f"  engine readiness:        {health_url}",
            *([f"  liquidation service:     {liquidator_url}"] if liquidator_url else []),
            *([f"  left out:                {', '.join(sorted(left_out))}"] if left_out else []),
            "Ctrl-C stops everything.",
        ]
    )


async def run_up(settings: Settings) -> int:
    """Run the exchange until SIGINT or SIGTERM (exit 0) or until a service dies (exit 1)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    broker = await asyncio.to_thread(start_broker, settings)
    services: list[Service] = []
    try:
        with tempfile.TemporaryDirectory(prefix="exchange-up-") as run_dir:
            return await _run(settings, broker, run_dir, services, stop)
    finally:
        for service in reversed(services):
            code = await asyncio.to_thread(service.stop, 15.0)
            log.info("service_stopped", service=service.name, status=code)
        broker.stop()
        log.info("broker_stopped")


class Launched(msgspec.Struct, frozen=True):
    """Where the services of one ``launch`` answer: the settings they run with (the broker's
    address, the gateway's port), the engine's and the liquidation service's readiness URLs."""

    settings: Settings
    health_url: str
    liquidator_url: str


async def launch(
    settings: Settings,
    broker: EmbeddedBroker,
    run_dir: str,
    services: list[Service],
    left_out: set[str],
    extra_env: Mapping[str, str] | None = None,
) -> Launched:
    """Create the topics and start every service not ``left_out``, in ``SERVICES`` order, each
    appended to ``services`` as it starts (so the caller stops what did start); wait for the
    engine's, the gateway's and the Binance front's readiness. ``extra_env`` (``EXCHANGE_*``
    variables) configures the services beyond the broker and ports (``exchange drill``: funding
    interval, faucet)."""
    health_port, gateway_port = free_port(), settings.gateway_port or free_port()
    binance_port = settings.binance_port or free_port()
    liquidator_port = free_port()
    overrides = {
        "bootstrap_servers": broker.bootstrap,
        "snapshot_dir": str(Path(run_dir) / "snapshots"),
        "health_port": str(health_port),
        "health_host": "127.0.0.1",
        "liquidator_health_port": str(liquidator_port),
        "gateway_port": str(gateway_port),
        "binance_port": str(binance_port),
        # A key per run unless one is set: this exchange's accounts live as long as its broker.
        "gateway_master_key": settings.gateway_master_key or secrets.token_hex(32),
    }
    env = (
        dict(os.environ)
        | dict(extra_env or {})
        | {env_var(name): value for name, value in overrides.items()}
    )
    settings = msgspec.structs.replace(
        settings,
        bootstrap_servers=broker.bootstrap,
        gateway_port=gateway_port,
        binance_port=binance_port,
    )
    await create_topics(broker.bootstrap, settings)
    health_url = f"http://127.0.0.1:{health_port}/health/ready"
    for name in SERVICES:
        if name in left_out:
            log.info("service_left_out", service=name)
            continue
        services.append(Service(name, env))
        if name == "engine":
            await wait_ready(health_url, services[-1], timeout_s=60)
        if name in ("gateway", "binance"):
            port = gateway_port if name == "gateway" else binance_port
            front_health = f"http://{settings.gateway_host}:{port}/health/ready"
            await wait_ready(front_health, services[-1], timeout_s=60)
    liquidator_url = f"http://127.0.0.1:{liquidator_port}/health/ready"
    return Launched(settings, health_url, liquidator_url)


async def _run(
    settings: Settings,
    broker: EmbeddedBroker,
    run_dir: str,
    services: list[Service],
    stop: asyncio.Event,
) -> int:
    left_out = set(filter(None, settings.up_without.split(",")))
    if left_out:
        log.info("services_left_out", services=sorted(left_out), setting=env_var("up_without"))
    launched = await launch(settings, broker, run_dir, services, left_out)
    settings, health_url = launched.settings, launched.health_url
    liquidator_url = launched.liquidator_url if "liquidator" not in left_out else None
    print(_banner(settings, health_url, liquidator_url, left_out), flush=True)
    while not stop.is_set():
        for service in services:
            try:
                service.check()
            except ServiceExited as error:
                log.error("service_exited", error=str(error))
                return 1
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.5)
    log.info("stopping", reason="signal")
    return 0
