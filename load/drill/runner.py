"""One drill, start to end, against the real system (docs/drills.md).

1. **A clean start.** A new embedded broker and the services as processes, through
   ``services.up.running_exchange`` (the machinery of ``exchange up``), without the live feed,
   the default maker and the Binance front, configured for the scenario: the funding interval,
   the faucet cap the drill's deposits need, the oracle taking the drill's ticks (source
   ``drill``) and keeping a silent source live for ``oracle_stale_after_s``, no periodic
   snapshot. A recorder follows the event, command and price topics from their beginning
   (``recorder.py``).
2. **Warm-up.** Ticks at the start price before the path's first time, until the engine has the
   oracle's mark: the population opens at the mark, and the oracle has a book-less index to
   start from.
3. **Setup.** The maker's and the traders' deposits, leverage and margin modes, the positions
   (``population.py``), the fund's starting balance: commands in records of ``RECORD_COMMANDS``
   on the command topic, at most ``RECORDS_IN_FLIGHT`` unanswered. Its balances are the
   conservation check's "before".
4. **The path.** Each tick on the price topic at its event time (keyed by symbol, as the feed
   sends them), never more than ``ticks_ahead`` beyond the oracle's latest mark, and the maker's
   ladder afresh every ``requote_s`` (``liquidity.py``). The liquidation service does the
   liquidating; the drill sends no ``Liquidate``.
5. **Drain.** The last mark awaited, then until the liquidation service has read the whole
   event log and has nothing in flight (its ``/health/ready`` status). Then every service gets
   SIGTERM (a clean stop is part of the check), and the result is built (``result.py``).

A service that exits during the drill aborts it: the result says so and the checks fail.
"""

import asyncio
import os
import signal
import time
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import structlog
from aiokafka import AIOKafkaProducer

from exchange.default_markets import USDT
from exchange.engine_commands import Deposit, EngineCommand, SetLeverage
from load.drill.liquidity import flow_order, ladder, ladder_notional
from load.drill.path import PricePath, build_path, depth_factor_bps
from load.drill.population import (
    MAKER,
    TAKER,
    draw_population,
    faucet_cap,
    maker_leverage,
    setup_commands,
)
from load.drill.recorder import Recorder
from load.drill.replica import read_snapshot, replica_check
from load.drill.result import build_result, usdt
from load.drill.scenario import DataPath, LoadedScenario, usdt_units
from load.replay.summary import iso
from services.engine_main import load_markets
from services.prices import PRICE_ENCODER, IndexTick
from services.settings import Settings, env_var
from services.up import Service, ServiceExited, running_exchange
from services.wire import ENCODER, CommandBatch, CommandEnvelope

log = structlog.get_logger("drill")

SOURCE = "drill"
"""The index source of the drill's ticks (the only one the oracle takes during a drill)."""
PREFIX = "drill-"
RECORD_COMMANDS = 250
"""Commands per command record: the results of 250 opening orders stay far below the 1 MB
the engine's producer may write in one event record."""
RECORDS_IN_FLIGHT = 16
WARM_UP_TICKS = 5
TAKER_DEPOSIT_USDT = 1_000_000
TAKER_LEVERAGE = 10
"""The flow's wallet and leverage: a minimum order per requote never comes near them."""
WAIT_S = 120.0
"""The longest wait without progress (the engine's answers, the oracle's marks, the drain)."""
DRILL_SERVICES = ("engine", "gateway", "oracle", "funding", "liquidator")
LEFT_OUT = {"feed", "market-maker", "binance"}


class DrillAborted(RuntimeError):
    """The drill could not go on; the result still reports what happened until then."""


class Drill:
    """One run of one scenario (module docstring)."""

    def __init__(self, loaded: LoadedScenario, settings: Settings, *, gateway: bool) -> None:
        self.loaded = loaded
        self.scenario = loaded.scenario
        self.spec = loaded.spec
        self.base_settings = settings
        self.gateway = gateway
        self.path: PricePath = build_path(loaded)
        start = self.path.start_price
        self.traders = draw_population(
            self.scenario.population, self.spec, start, self.scenario.seed
        )
        population_notional = sum(t.lots for t in self.traders) * start * self.spec.multiplier
        ladder_side = ladder_notional(self.spec, self.scenario.liquidity, start)
        self.maker_notional = 2 * population_notional + 2 * ladder_side
        self.maker_leverage = maker_leverage(self.spec, self.maker_notional)
        self.maker_deposit = self.maker_notional + 1
        self.taker_deposit = TAKER_DEPOSIT_USDT * USDT
        self.cap = faucet_cap(
            self.traders, self.spec, start, max(self.maker_deposit, self.taker_deposit)
        )
        self.services: list[Service] = []
        self.count = 0
        self.in_flight: list[str] = []
        self.records = 0
        self.commands = 0
        self.ticks = 0
        self.timings: dict[str, float] = {}
        self.service_errors: list[str] = []
        self.liquidator_status: dict[str, Any] | None = None
        self.closed_point = 0
        """The last oracle point the ticks sent have closed."""
        self.replica: dict[str, Any] = {"checked": False, "reason": "the drill did not start"}

    def env(self) -> dict[str, str]:
        """The services' configuration for this scenario (module docstring)."""
        timing = self.scenario.time
        minutes = timing.funding_every_minutes
        schedule = str(minutes * 60_000) if minutes else "28800000"
        return {
            env_var("faucet_cap"): usdt(self.cap),
            env_var("funding_schedule"): schedule,
            env_var("oracle_sources"): SOURCE,
            env_var("oracle_stale_after_ms"): str(timing.oracle_stale_after_s * 1000),
            env_var("snapshot_every_ms"): "0",
            env_var("liquidator_adl_interval_ms"): str(timing.adl_indicators_every_s * 1000),
            env_var("snapshot_every_commands"): "0",
        }

    async def run(self) -> dict[str, Any]:
        started = time.monotonic()
        aborted: str | None = None
        statuses: dict[str, int | None] = {}
        left_out = LEFT_OUT | (set() if self.gateway else {"gateway"})
        env = {**os.environ, **self.env()}
        async with running_exchange(self.base_settings, env=env, left_out=left_out) as exchange:
            self.services = exchange.services
            self.settings = exchange.settings
            assert exchange.liquidator_url is not None  # the liquidation service is never left out
            self.liquidator_url = exchange.liquidator_url
            self.recorder = Recorder(self.settings, self.spec, PREFIX)
            await self.recorder.start()
            self.producer = AIOKafkaProducer(**self.settings.producer_config())
            await self.producer.start()
            self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5))
            try:
                await self._until_done_or_signalled()
            except (DrillAborted, ServiceExited, TimeoutError) as error:
                aborted = str(error)
                log.error("drill_aborted", error=aborted)
            finally:
                await self.session.close()
                await self.producer.stop()
                statuses = await self._stop_services()
                await self._check_replica(exchange.run_dir / "snapshots")
                await self.recorder.stop()
        self.timings["total_s"] = time.monotonic() - started
        return self._result(statuses, aborted)

    async def _until_done_or_signalled(self) -> None:
        """Run the drill; SIGINT or SIGTERM ends it early (``DrillAborted``), so that the
        services it started are still stopped, never left running."""
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        signals = (signal.SIGINT, signal.SIGTERM)
        for sig in signals:
            loop.add_signal_handler(sig, stop.set)
        drill = asyncio.create_task(self._drill())
        stopped = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait({drill, stopped}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for sig in signals:
                loop.remove_signal_handler(sig)
            stopped.cancel()
            if not drill.done():
                drill.cancel()
                await asyncio.gather(drill, return_exceptions=True)
        if not drill.cancelled():
            drill.result()
        if stop.is_set():
            raise DrillAborted("stopped by a signal")

    async def _drill(self) -> None:
        path = self.path
        first = path.first_time
        tick_ms = self.scenario.time.tick_ms
        phase = time.monotonic()
        for k in range(WARM_UP_TICKS, 0, -1):
            await self._tick(first - k * tick_ms, path.start_price)
        await self._until(lambda: self.recorder.engine_marks > 0, "the oracle's first mark")
        self.timings["warm_up_s"] = time.monotonic() - phase
        phase = time.monotonic()
        symbol = self.spec.symbol
        setup: list[EngineCommand] = [
            Deposit(account=MAKER, amount=self.maker_deposit),
            SetLeverage(account=MAKER, symbol=symbol, leverage=self.maker_leverage),
            Deposit(account=TAKER, amount=self.taker_deposit),
            SetLeverage(account=TAKER, symbol=symbol, leverage=TAKER_LEVERAGE),
        ]
        fund = usdt_units(self.scenario.insurance_fund)
        setup += setup_commands(self.traders, self.spec, path.start_price, fund)
        await self._send(setup, first - 1)
        await self._all_answered()
        self.recorder.take_baseline()
        self.timings["setup_s"] = time.monotonic() - phase
        log.info("drill_setup_done", commands=len(setup), seconds=round(self.timings["setup_s"], 1))
        phase = time.monotonic()
        liquidity = self.scenario.liquidity
        next_quote, quoted = first, path.start_price
        for moment, price in path.ticks:
            moved = abs(price - quoted) * 10_000 >= quoted * liquidity.step_bps
            if moment >= next_quote or moved:
                factor = depth_factor_bps(path, price, liquidity.crash_depth_pct)
                quote = ladder(self.spec, liquidity, price, factor)
                quote.append(flow_order(self.spec, liquidity, price, sell=price < quoted))
                await self._send(quote, moment)
                next_quote, quoted = moment + liquidity.requote_s * 1000, price
            await self._tick(moment, price)
        last_point = (
            path.last_time // self.settings.oracle_publish_ms * self.settings.oracle_publish_ms
        )
        await self._until(
            lambda: (self.recorder.last_mark_time or 0) >= last_point, "the oracle's last mark"
        )
        self.timings["path_s"] = time.monotonic() - phase
        phase = time.monotonic()
        await self._all_answered()
        await self._drain()
        self.timings["drain_s"] = time.monotonic() - phase

    # ----------------------------------------------------------------------- sending

    async def _tick(self, moment: int, price: int) -> None:
        """One index tick, once the system has caught up with the previous ones (``lockstep``)
        or the oracle is within ``ticks_ahead`` of it (scenario.py, ``Timing``)."""
        timing = self.scenario.time
        recorder = self.recorder
        if self.ticks >= WARM_UP_TICKS:
            if timing.lockstep:
                await self._lockstep()
            else:
                ahead = timing.ticks_ahead * timing.tick_ms
                await self._until(
                    lambda: (recorder.last_mark_time or 0) >= moment - ahead, "the oracle's marks"
                )
        tick = IndexTick(symbol=self.spec.symbol, source=SOURCE, price=price, time=moment)
        await self.producer.send(
            self.settings.prices_topic, PRICE_ENCODER.encode(tick), key=self.spec.symbol.encode()
        )
        publish = self.settings.oracle_publish_ms
        self.closed_point = moment // publish * publish
        self.ticks += 1

    async def _lockstep(self) -> None:
        """Until the oracle has published the last point the ticks closed, the engine has
        answered every command record, and the liquidation service has read every event record
        and has no ``Liquidate`` unanswered."""
        recorder = self.recorder
        point = self.closed_point

        def engine_caught_up() -> bool:
            return (
                recorder.last_mark_time or 0
            ) >= point and recorder.last_offset >= recorder.last_command_offset

        progress: tuple[int, int | None] | None = None
        since = time.monotonic()
        while True:
            await self._until(engine_caught_up, "the oracle and the engine")
            asked = time.monotonic()
            status = await self._liquidator_status()
            took = time.monotonic() - asked
            if (
                status is not None
                and status["offset"] >= recorder.last_offset
                and not status["in_flight"]
                and engine_caught_up()
            ):
                return
            now = (recorder.event_records, status["offset"] if status else None)
            if now != progress:
                progress, since = now, time.monotonic()
            elif time.monotonic() - since > WAIT_S:
                raise DrillAborted(f"the liquidation service did not catch up in {WAIT_S:.0f} s")
            self._check_alive()
            # The status values every scope's level (O(accounts)): never ask more than half
            # the time, or the drill itself would slow the service it waits for.
            await asyncio.sleep(max(0.002, took))

    async def _send(self, commands: list[EngineCommand], moment: int) -> None:
        """``commands`` in records of ``RECORD_COMMANDS``, each once fewer than
        ``RECORDS_IN_FLIGHT`` are unanswered."""
        for start in range(0, len(commands), RECORD_COMMANDS):
            chunk = commands[start : start + RECORD_COMMANDS]
            envelopes = []
            for command in chunk:
                self.count += 1
                envelopes.append(CommandEnvelope(f"{PREFIX}{self.count}", command))
            await self._room_in_flight()
            batch = CommandBatch(envelopes, time=moment)
            await self.producer.send(
                self.settings.commands_topic, ENCODER.encode(batch), partition=0
            )
            self.in_flight.append(envelopes[0].id)
            self.records += 1
            self.commands += len(chunk)

    async def _room_in_flight(self) -> None:
        """Until fewer than ``RECORDS_IN_FLIGHT`` of our records are unanswered."""
        answered = self.recorder.answered
        self.in_flight = [i for i in self.in_flight if i not in answered]
        if len(self.in_flight) >= RECORDS_IN_FLIGHT:
            oldest = self.in_flight[0]
            await self._until(lambda: oldest in answered, "the engine's answers")

    async def _all_answered(self) -> None:
        await self.producer.flush()
        answered = self.recorder.answered
        await self._until(
            lambda: all(i in answered for i in self.in_flight), "the engine's answers"
        )
        self.in_flight = []

    async def _until(self, condition: Any, what: str) -> None:
        """Wait for ``condition()``, checking the services; give up after ``WAIT_S`` without
        the event log or the oracle moving."""
        recorder = self.recorder
        progress = (recorder.event_records, recorder.last_mark_time)
        since = time.monotonic()
        while not condition():
            self._check_alive()
            await asyncio.sleep(0.005)
            now = (recorder.event_records, recorder.last_mark_time)
            if now != progress:
                progress, since = now, time.monotonic()
            elif time.monotonic() - since > WAIT_S:
                raise DrillAborted(f"nothing moved for {WAIT_S:.0f} s waiting for {what}")

    def _check_alive(self) -> None:
        """Raise if the recorder or a service has ended."""
        self.recorder.check()
        for service in self.services:
            service.check()

    async def _drain(self) -> None:
        """Until the liquidation service has read the whole event log, with nothing in flight,
        twice in a row half a second apart (a trigger it sends moves the log on)."""
        settled = 0
        since = time.monotonic()
        while settled < 2:
            self._check_alive()
            await asyncio.sleep(0.5)
            status = await self._liquidator_status()
            if status is None:
                settled = 0
            elif status["offset"] >= self.recorder.last_offset and not status["in_flight"]:
                settled += 1
                self.liquidator_status = status
            else:
                settled = 0
            if time.monotonic() - since > WAIT_S:
                raise DrillAborted(f"the liquidation service did not settle in {WAIT_S:.0f} s")

    async def _liquidator_status(self) -> dict[str, Any] | None:
        try:
            async with self.session.get(self.liquidator_url) as response:
                if response.status != 200:
                    return None
                status: dict[str, Any] = await response.json()
                return status
        except (aiohttp.ClientError, TimeoutError):
            return None

    async def _check_replica(self, snapshot_dir: Path) -> None:
        """The engine's final snapshot against a replay of the command log (``replica.py``),
        once the recorder has read every command record the snapshot covers."""
        snapshot = read_snapshot(snapshot_dir)
        if snapshot is None:
            self.replica = {"checked": False, "reason": "the engine wrote no final snapshot"}
            return
        deadline = time.monotonic() + 30
        while self.recorder.last_command_offset < snapshot.offset:
            if time.monotonic() > deadline:
                self.replica = {"checked": False, "reason": "command records missing"}
                return
            await asyncio.sleep(0.05)
        settings = msgspec.structs.replace(
            self.settings,
            faucet_cap=self.cap,
            funding_schedule=self.env()[env_var("funding_schedule")],
        )
        specs = load_markets(settings.markets_file)
        self.replica = await asyncio.to_thread(
            replica_check, snapshot, self.recorder.command_records, specs, settings
        )

    async def _stop_services(self) -> dict[str, int | None]:
        """SIGTERM each, in reverse order; a service that had already exited is an error."""
        statuses: dict[str, int | None] = {}
        for service in reversed(self.services):
            if service.process.poll() is not None:
                self.service_errors.append(
                    f"{service.name} exited during the drill with status "
                    f"{service.process.returncode}"
                )
            statuses[service.name] = await asyncio.to_thread(service.stop, 30.0)
        return statuses

    # ------------------------------------------------------------------------ result

    def _result(self, statuses: dict[str, int | None], aborted: str | None) -> dict[str, Any]:
        scenario = self.scenario
        path = self.path
        traders = self.traders
        data = scenario.path.file if isinstance(scenario.path, DataPath) else None
        described = {
            "name": scenario.name,
            "description": scenario.description,
            "file": str(self.loaded.source),
            "symbol": scenario.symbol,
            "seed": scenario.seed,
            "path": "data" if data else "scripted",
            "data_file": data,
            "accounts": len(traders),
            "longs": sum(t.long for t in traders),
            "isolated": sum(t.isolated for t in traders),
            "population_lots": sum(t.lots for t in traders),
            "population_deposits_usdt": usdt(sum(t.deposit for t in traders)),
            "insurance_fund_usdt": str(scenario.insurance_fund),
            "funding_every_minutes": scenario.time.funding_every_minutes,
            "tick_ms": scenario.time.tick_ms,
            "maker_leverage": self.maker_leverage,
        }
        run = {
            "path_first_time": path.first_time,
            "path_last_time": path.last_time,
            "path_first": iso(path.first_time),
            "path_last": iso(path.last_time),
            "path_start_price": path.start_price,
            "path_low": path.low,
            "ticks": self.ticks,
            "commands": self.commands,
            "command_records": self.records,
            "timings_s": {k: round(v, 2) for k, v in self.timings.items()},
            "services": statuses,
            "service_errors": self.service_errors,
            "liquidator_status": self.liquidator_status,
            "aborted": aborted,
            "replica": self.replica,
        }
        return build_result(self.recorder, run, described)


async def run_drill(
    loaded: LoadedScenario, settings: Settings, *, gateway: bool = True
) -> dict[str, Any]:
    """Run ``loaded`` on a fresh embedded broker; return its result (``result.py``)."""
    embedded = msgspec.structs.replace(settings, embedded_port=0, gateway_port=0)
    return await Drill(loaded, embedded, gateway=gateway).run()
