"""Start the exchange, the replay and the clients; drive the windows; sample every process.

Everything runs as its own process, on loopback: the embedded broker and the services as
``exchange up`` starts them (``services.up.running_exchange``, with the feed and the market
maker left out, as a replay needs), the replay as ``exchange replay`` (its summary read from the
file it writes), the clients as the gateway benchmark's client processes
(``load.bench_gateway.ClientPool``). This process only follows the price topic (the replay's
ticks, the oracle's index and marks: the clients place their orders around the latest index, so
that they follow the replayed market and stay inside the price band as it moves), tells the
clients when to send, and reads ``/proc``.

The run lasts ``duration_s`` if given (the replay is stopped there if it has not finished, and
the clients go on alone if it finished first), else as long as the replay. Every wait is
bounded; a service that dies ends the run with an error.
"""

import asyncio
import json
import os
import signal
import subprocess
import time
from collections import deque
from contextlib import suppress
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import msgspec
import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition

from load.bench_engine_service import engine_command, versions
from load.bench_gateway import (
    GATEWAY_LIMITS,
    REFERENCE,
    SETUP_TIMEOUT_S,
    STEP_GRACE_S,
    SYMBOL,
    ClientPool,
    Step,
    lot_factor_at,
    machine_cpu_seconds,
    price_text,
    step_result,
)
from load.bench_gateway import Options as ClientOptions
from load.bench_run import BenchError, workdir
from load.loadtest.procstat import ProcessSampler, Sample
from load.loadtest.report import (
    GROWTH_SLACK_MB,
    GROWTH_TOLERANCE,
    MAX_ERROR_RATE,
    Window,
    build_report,
    process_figures,
    window_of,
)
from services.prices import PRICE_DECODER, IndexPrice, IndexTick, MarkTick
from services.settings import Settings, env_var
from services.up import Exchange, ServiceExited, running_exchange

log = structlog.get_logger("load")

LEFT_OUT = "feed,market-maker,binance"
"""Services a replay must run without (docs/replay.md): the feed's live ticks would mix with the
replay's, and the maker would quote around them; and the Binance front, which the load does not
use (it would only follow the logs, on the same two cores)."""
ORACLE_STALE_AFTER_MS = 30_000
"""Minute klines tick every 20 s of event time, beyond the oracle's default staleness (10 s):
raised, unless set, so that the index follows the data (docs/replay.md)."""
FIRST_INDEX_TIMEOUT_S = 120.0
REPLAY_STOP_TIMEOUT_S = 90.0
"""How long the replay may take, after SIGINT, to await its last results and write its summary."""
BAND_PERCENT = 4
"""How far from the mark the clients' reference may be: inside the market's 5 % price band."""
TICKS_KEPT = 100_000
"""Ticks awaiting a mark, at most (the oracle may ignore a source: the rest are forgotten)."""
MAX_WINDOWS = 100_000
"""A bound on the windows of one run, whatever the options."""
WINDOW_START_NS = 50_000_000
"""A window's schedule starts this long after it is sent to the clients."""


@dataclass(frozen=True)
class LoadOptions:
    """What ``exchange load`` was asked to do."""

    path: str
    speed: float | None = None
    """The replay's speed: event time per wall time; None as fast as the exchange takes it."""
    limit: int | None = None
    """Replay at most this many events."""
    clients: int = 200
    workers: int = 2
    rate: int = 1_000
    """Requests per second offered by all the clients (94 % order commands)."""
    duration_s: float | None = None
    sample_every_s: float = 10.0
    max_error_rate: float = MAX_ERROR_RATE
    growth_tolerance: float = GROWTH_TOLERANCE
    growth_slack_mb: float = GROWTH_SLACK_MB
    trades_subscribers: int = 20
    book_subscribers: int = 4
    engine_timeout_s: float = 10.0
    seed: int = 1
    keep: str = ""
    """Keep the services' and the replay's logs under this directory."""


class PriceFollower:
    """Counts the replay's index ticks and the oracle's marks of the symbol on the price topic,
    and keeps the oracle's latest index and mark.

    The clients trade around the index (``reference``), not the mark: the mark is a median with
    the last price and a moving basis, so clients trading around the mark would pin it where
    they trade (their trades are the last price) instead of following the replayed market. The
    index is held within ``BAND_PERCENT`` of the mark, as a trader must stay inside the price
    band: in a fast replay of a crash the mark lags the index.

    It also times each mark from the tick that closed its point (the first tick at or after the
    point's time, as the replay measures it) as seen on the topic: the mark's latency per
    window, beside the replay's figure for the whole run (which also counts its producer)."""

    def __init__(self, settings: Settings, symbol: str) -> None:
        self.settings = settings
        self.symbol = symbol
        self.ticks = 0
        self.marks = 0
        self.index: int | None = None
        self.mark: int | None = None
        self.got_index = asyncio.Event()
        self.tick_to_mark_ms: list[float] = []
        """Since the window began (``take_latencies``)."""
        self._ticks: deque[tuple[int, float]] = deque(maxlen=TICKS_KEPT)
        """(event time, seen at) of the ticks no mark has passed yet."""

    def take_latencies(self) -> list[float]:
        """The tick-to-mark latencies gathered since the last call."""
        taken, self.tick_to_mark_ms = self.tick_to_mark_ms, []
        return taken

    @property
    def reference(self) -> int:
        """Where the clients place their orders now (class docstring)."""
        if self.index is None:
            return REFERENCE
        if self.mark is None:
            return self.index
        low = self.mark * (100 - BAND_PERCENT) // 100
        high = self.mark * (100 + BAND_PERCENT) // 100
        return min(max(self.index, low), high)

    async def run(self, stop: asyncio.Event) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.settings.bootstrap_servers,
            enable_auto_commit=False,
            fetch_max_wait_ms=50,
        )
        await consumer.start()
        try:
            topic, count = self.settings.prices_topic, self.settings.prices_partitions
            partitions = [TopicPartition(topic, p) for p in range(count)]
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            while not stop.is_set():
                batches = await consumer.getmany(timeout_ms=100, max_records=10_000)
                for records in batches.values():
                    for record in records:
                        if record.value is not None:
                            self._take(record.value)
        finally:
            await consumer.stop()

    def _take(self, value: bytes) -> None:
        message = PRICE_DECODER.decode(value)
        if isinstance(message, IndexTick) and message.symbol == self.symbol:
            self.ticks += 1
            self._ticks.append((message.time, time.monotonic()))
        elif isinstance(message, MarkTick) and message.symbol == self.symbol:
            self.marks += 1
            self.mark = message.mark or self.mark
            ticks = self._ticks
            while ticks and ticks[0][0] < message.time:
                ticks.popleft()
            if ticks:  # the first tick at or after the point closed it
                self.tick_to_mark_ms.append((time.monotonic() - ticks[0][1]) * 1000)
        elif isinstance(message, IndexPrice) and message.symbol == self.symbol and message.price:
            self.index = message.price
            self.got_index.set()


class ReplayProcess:
    """``exchange replay`` as a child process in its own session (a Ctrl-C in the terminal
    reaches the load test alone, which then stops the replay with SIGINT, as a person would)."""

    def __init__(self, options: LoadOptions, env: dict[str, str], work: Path) -> None:
        self.summary_path = work / "replay.json"
        self.log_path = work / "replay.log"
        speed = "max" if options.speed is None else f"{options.speed:g}"
        command = [*engine_command()[:-1], "replay", options.path, "--speed", speed]
        command += ["--json", str(self.summary_path), "--no-progress"]
        if options.limit is not None:
            command += ["--limit", str(options.limit)]
        with open(self.log_path, "wb") as output:
            self.process = subprocess.Popen(
                command,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def running(self) -> bool:
        return self.process.poll() is None

    async def finish(self) -> dict[str, Any] | None:
        """Stop it if it is still running; its summary, or None if it wrote none."""
        if self.running():
            self.process.send_signal(signal.SIGINT)
        try:
            await asyncio.to_thread(self.process.wait, REPLAY_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            log.warning("replay did not stop; killing it")
            self.process.kill()
            await asyncio.to_thread(self.process.wait)
        try:
            summary: dict[str, Any] = json.loads(self.summary_path.read_text())
        except (OSError, ValueError):
            log.error("the replay wrote no summary", log=self.tail())
            return None
        summary["exit_status"] = self.process.returncode
        return summary

    def tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-3_000:]
        except OSError:
            return "(no output)"


READ_MODEL_HISTORY = 100
"""Finished orders and fills the gateway keeps per account (1,000 by default). Both are bounded
caches, and 200 accounts take most of a 10-minute run to fill 1,000 of each: memory that grows
until the middle sample and on would look like a leak. With 100 they are full within the first
minutes, so growth after the middle is what the check is for."""


def exchange_env(options: LoadOptions) -> dict[str, str]:
    """The services' environment: this process's, with the gateway's rate limits raised as the
    gateway benchmark raises them, its engine timeout, its per-account history bounded lower
    (``READ_MODEL_HISTORY``, unless set), and the oracle's staleness for klines."""
    env = dict(os.environ)
    env[env_var("up_without")] = LEFT_OUT
    env.setdefault(env_var("oracle_stale_after_ms"), str(ORACLE_STALE_AFTER_MS))
    for name in ("gateway_finished_orders", "gateway_recent_fills"):
        env.setdefault(env_var(name), str(READ_MODEL_HISTORY))
    env[env_var("gateway_engine_timeout_ms")] = str(int(options.engine_timeout_s * 1000))
    env.update({env_var(name): str(value) for name, value in GATEWAY_LIMITS.items()})
    return env


async def run_load(options: LoadOptions, settings: Settings, stop: asyncio.Event) -> dict[str, Any]:
    """The whole run (module docstring); the report (``report.build_report``)."""
    settings = msgspec.structs.replace(settings, up_without=LEFT_OUT, gateway_port=0)
    env = exchange_env(options)
    with workdir(options.keep, kept="load-run", prefix="exchange-load-", what="logs") as work:
        wall, busy = time.monotonic(), machine_cpu_seconds()
        async with running_exchange(settings, env=env, log_dir=work) as exchange:
            report = await LoadRun(options, exchange, work, stop).run()
        machine = 100 * (machine_cpu_seconds() - busy) / (time.monotonic() - wall)
    report["conditions"]["machine_cpu_percent_whole_run"] = round(machine, 1)
    return report


class LoadRun:
    """One run against a running exchange."""

    def __init__(self, options: LoadOptions, exchange: Exchange, work: Path, stop: asyncio.Event):
        self.options = options
        self.exchange = exchange
        self.work = work
        self.stop = stop
        self.follower = PriceFollower(exchange.settings, SYMBOL)
        self.client_options = ClientOptions(
            clients=options.clients,
            workers=options.workers,
            rate=options.rate,
            trades_subscribers=options.trades_subscribers,
            book_subscribers=options.book_subscribers,
            seed=options.seed,
            engine_timeout_s=options.engine_timeout_s,
            floor=False,
        )

    def check(self) -> None:
        """Fail the run when a service has died."""
        try:
            self.exchange.check()
        except ServiceExited as error:
            raise BenchError(f"{error} (its log: {self.work})") from error

    async def run(self) -> dict[str, Any]:
        options, exchange = self.options, self.exchange
        following = asyncio.create_task(self.follower.run(self.stop))
        url = f"http://{exchange.settings.gateway_host}:{exchange.settings.gateway_port}"
        pool = ClientPool([url], self.client_options)
        replay: ReplayProcess | None = None
        try:
            # The clients first (accounts, money, subscriptions: no price needed), then the
            # replay, so that the windows start with it whatever the clients took.
            started = time.monotonic()
            setups = await pool.call(("setup",), self.check, SETUP_TIMEOUT_S)
            setup = {
                "clients": sum(part["clients"] for part in setups),
                "seconds": round(time.monotonic() - started, 3),
            }
            log.info("clients ready", **setup)
            replay = ReplayProcess(options, exchange.env, self.work)
            await self._first_index(replay)
            sampler = ProcessSampler(self._pids(replay, pool))
            windows, samples = await self._windows(pool, replay, sampler)
            summary = await replay.finish()
            samples.append(sampler.sample())  # the end: the replay has finished its work
        finally:
            await pool.stop()
            if replay is not None and replay.running():
                await replay.finish()
            following.cancel()
            await asyncio.gather(following, return_exceptions=True)
        return build_report(
            parameters=self._parameters(),
            setup=setup,
            windows=windows,
            samples=samples,
            replay=summary,
            conditions={
                "cpus": os.cpu_count(),
                "versions": versions(),
                "logs": str(self.work) if options.keep else None,
            },
            max_error_rate=options.max_error_rate,
            tolerance=options.growth_tolerance,
            slack_mb=options.growth_slack_mb,
        )

    async def _first_index(self, replay: ReplayProcess) -> None:
        """Wait for the oracle's first index of the replayed market: the clients need a price."""
        deadline = time.monotonic() + FIRST_INDEX_TIMEOUT_S
        while not self.follower.got_index.is_set():
            self.check()
            if time.monotonic() > deadline:
                raise BenchError(f"no index within {FIRST_INDEX_TIMEOUT_S:.0f} s:\n{replay.tail()}")
            if not replay.running() and replay.process.returncode:
                raise BenchError(f"the replay failed:\n{replay.tail()}")
            with suppress(TimeoutError):
                await asyncio.wait_for(self.follower.got_index.wait(), 0.5)

    def _pids(self, replay: ReplayProcess, pool: ClientPool) -> dict[str, int]:
        exchange = self.exchange
        pids = {service.name: service.process.pid for service in exchange.services}
        pids["broker"] = exchange.broker.process.pid
        pids["replay"] = replay.process.pid
        pids.update({f"client-{i}": pid for i, pid in enumerate(pool.pids)})
        pids["load"] = os.getpid()
        return pids

    async def _windows(
        self, pool: ClientPool, replay: ReplayProcess, sampler: ProcessSampler
    ) -> tuple[list[Window], list[Sample]]:
        """Window after window until the duration, the replay's end, or a signal."""
        options, follower = self.options, self.follower
        windows: list[Window] = []
        samples = [sampler.sample()]
        begun = samples[0].at_s
        for index in range(MAX_WINDOWS):
            elapsed = time.monotonic() - begun
            if self.stop.is_set():
                break
            if options.duration_s is not None and elapsed >= options.duration_s:
                break
            if options.duration_s is None and not replay.running():
                break
            length = options.sample_every_s
            if options.duration_s is not None:
                length = min(length, options.duration_s - elapsed)
            reference = follower.reference
            step = Step(
                index=index,
                rate=options.rate,
                count=max(1, round(options.rate * length)),
                warmup=0,
                t0_ns=time.monotonic_ns() + WINDOW_START_NS,
                reference=reference,
                lot_factor=lot_factor_at(reference),
            )
            ticks, marks, started = follower.ticks, follower.marks, time.monotonic()
            follower.take_latencies()
            timeout = length + options.engine_timeout_s + STEP_GRACE_S + 30
            parts = await pool.call(("step", step), self.check, timeout)
            result = step_result(step, parts, {}, self.client_options)
            sample = sampler.sample()
            window = window_of(
                result,
                index=index,
                start_s=started - begun,
                seconds=sample.at_s - started,
                index_ticks=follower.ticks - ticks,
                marks=follower.marks - marks,
                tick_to_mark_ms=follower.take_latencies(),
                reference_price=price_text(reference),
            )
            window.processes = process_figures(samples[-1], sample)
            samples.append(sample)
            windows.append(window)
            log.info(
                "window",
                index=index,
                acked=window.acked,
                p99_ms=window.latency_ms["p99"],
                errors=window.errors_by_code,
                ticks=window.index_ticks,
                price=window.reference_price,
            )
        return windows, samples

    def _parameters(self) -> dict[str, Any]:
        options = self.options
        out = asdict(options)
        out["file"] = out.pop("path")
        out["speed"] = "max" if options.speed is None else options.speed
        out["symbol"] = SYMBOL
        out["left_out"] = LEFT_OUT
        out["gateway_limits"] = dict(GATEWAY_LIMITS)
        out["oracle_stale_after_ms"] = self.exchange.env.get(env_var("oracle_stale_after_ms"))
        return out
