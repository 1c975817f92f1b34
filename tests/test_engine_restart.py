"""SIGKILL the engine process at random points under load and restart it: the event log must
hold every command record's result exactly once, equal to a run that was never interrupted,
and the final state must hash the same. Against the real broker, with the real ``exchange
engine`` process; the markets and the random command stream are the invariant tests' own.
"""

import asyncio
import contextlib
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import msgspec
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from engine_streams import FAUCET_CAP, MARKETS, random_engine_commands
from topics import fresh_settings

from exchange.engine import Engine
from services.broker import free_port
from services.engine_service import CommandLog
from services.settings import Settings, env_var
from services.wire import ENCODER, EVENT_DECODER, CommandBatch, CommandEnvelope, EventBatch

RECORDS = 500
PER_RECORD = 20
DEDUPE_WINDOW = 100_000
EXCHANGE = Path(sys.executable).parent / "exchange"


def command_records(rng: random.Random) -> list[bytes]:
    """``RECORDS`` records of ``PER_RECORD`` commands, 100 ms of event time apart; every
    seventh record also carries a producer's retry of an earlier command (same id)."""
    commands = random_engine_commands(rng, RECORDS * PER_RECORD)
    sent: list[CommandEnvelope] = []
    records = []
    for r in range(RECORDS):
        chunk = commands[r * PER_RECORD : (r + 1) * PER_RECORD]
        envelopes = [CommandEnvelope(f"c{r}-{i}", cmd) for i, cmd in enumerate(chunk)]
        if r % 7 == 3:
            envelopes.insert(rng.randrange(len(envelopes)), rng.choice(sent))
        sent += envelopes
        records.append(ENCODER.encode(CommandBatch(envelopes, time=r * 100)))
    return records


def uninterrupted(records: list[bytes]) -> tuple[list[EventBatch], str]:
    log = CommandLog(Engine(MARKETS, faucet_cap=FAUCET_CAP), dedupe_window=DEDUPE_WINDOW)
    results = [log.apply(offset, record) for offset, record in enumerate(records)]
    return results, log.engine.state_hash()


def engine_env(settings: Settings, tmp_path: Path) -> dict[str, str]:
    markets = tmp_path / "markets.json"
    markets.write_bytes(msgspec.json.encode(MARKETS))
    values = {
        "bootstrap_servers": settings.bootstrap_servers,
        "commands_topic": settings.commands_topic,
        "events_topic": settings.events_topic,
        "prices_topic": settings.prices_topic,
        "snapshot_dir": str(tmp_path / "snapshots"),
        "snapshot_every_commands": "700",
        "snapshot_every_ms": "2500",
        "markets_file": str(markets),
        "faucet_cap": f"{FAUCET_CAP / 10**8:.8f}",
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXCHANGE_")}
    return env | {env_var(name): value for name, value in values.items()}


class EventReader:
    """Reads the event topic from the start, in the background, into ``events``. ``log``: the
    engine's stderr, quoted when the engine exits early."""

    def __init__(self, bootstrap: str, topic: str, log: Path) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.log = log
        self.events: list[EventBatch] = []

    async def run(self) -> None:
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, fetch_max_wait_ms=10)
        await consumer.start()
        try:
            partition = TopicPartition(self.topic, 0)
            consumer.assign([partition])
            await consumer.seek_to_beginning(partition)
            while True:
                got = await consumer.getmany(partition, timeout_ms=50)
                for record in got.get(partition, []):
                    assert record.value is not None
                    self.events.append(EVENT_DECODER.decode(record.value))
        finally:
            await consumer.stop()

    async def until(self, count: int, engine: subprocess.Popen[bytes]) -> None:
        """Wait (at most a minute) for ``count`` events; fail at once if the engine exits."""
        deadline = time.monotonic() + 60
        while len(self.events) < count:
            if engine.poll() is not None:
                tail = self.log.read_text(errors="replace").splitlines()[-15:]
                lines = "\n".join(tail)
                raise AssertionError(f"the engine exited with {engine.returncode}:\n{lines}")
            assert time.monotonic() < deadline, f"{len(self.events)} of {count} events"
            await asyncio.sleep(0.01)


async def caught_up(port: int, offset: int, engine: subprocess.Popen[bytes]) -> None:
    """Wait (at most a minute) until the engine's health endpoint says it is ready, having
    applied the command at ``offset``; fail at once if the engine exits."""
    deadline = time.monotonic() + 60
    url = f"http://127.0.0.1:{port}/health/ready"
    async with aiohttp.ClientSession() as session:
        while True:
            assert engine.poll() is None, f"the engine exited with {engine.returncode}"
            assert time.monotonic() < deadline, "the engine never caught up"
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(url) as response:
                    if response.status == 200 and (await response.json())["offset"] == offset:
                        return
            await asyncio.sleep(0.05)


async def produce_under_load(bootstrap: str, topic: str, records: list[bytes]) -> None:
    """About 1,500 commands/s, pipelined: the engine is busy whenever it is killed."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        for start in range(0, len(records), 5):
            sends = [await producer.send(topic, r) for r in records[start : start + 5]]
            await asyncio.gather(*sends)
            await asyncio.sleep(0.06)
    finally:
        await producer.stop()


async def test_sigkill_under_load_loses_and_repeats_nothing(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    settings = await fresh_settings(kafka_bootstrap)
    rng = random.Random(4)
    records = command_records(rng)
    expected, expected_hash = uninterrupted(records)
    env = engine_env(settings, tmp_path)
    stderr = open(tmp_path / "engine.log", "ab")  # noqa: SIM115 - shared by every run

    def spawn(health_port: int = 0) -> subprocess.Popen[bytes]:
        port = {env_var("health_port"): str(health_port)}
        return subprocess.Popen([str(EXCHANGE), "engine"], env=env | port, stderr=stderr)

    reader = EventReader(kafka_bootstrap, settings.events_topic, tmp_path / "engine.log")
    reading = asyncio.create_task(reader.run())
    producing = asyncio.create_task(
        produce_under_load(kafka_bootstrap, settings.commands_topic, records)
    )
    kills: list[int] = []
    try:
        # Kill when the published results pass random points of the log, and twice a random
        # moment after a start (during start-up or the replay after a snapshot).
        for fraction in sorted(rng.uniform(0.05, 0.9) for _ in range(4)):
            engine = spawn()
            if len(kills) % 2:
                await asyncio.sleep(rng.uniform(0.2, 1.5))
            else:
                await reader.until(int(fraction * RECORDS), engine)
            engine.send_signal(signal.SIGKILL)
            engine.wait(10)
            kills.append(len(reader.events))
        health_port = free_port()
        engine = spawn(health_port)
        await asyncio.wait_for(producing, 60)
        await reader.until(RECORDS, engine)
        # The last engine may start after its predecessor published every result: a SIGTERM
        # before it has set its signal handlers would kill it, and one before it has replayed
        # the log would stop it short of the last command. So wait for it to be ready there.
        await caught_up(health_port, RECORDS - 1, engine)
        await asyncio.sleep(0.3)  # anything published twice would arrive by now
        engine.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(engine.wait, 20) == 0
    finally:
        reading.cancel()
        producing.cancel()
        for task in (reading, producing):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        stderr.close()

    assert sum(0 < k < RECORDS for k in kills) >= 2, kills  # killed mid-stream, not only idle
    assert [e.offset for e in reader.events] == list(range(RECORDS))
    assert reader.events == expected
    assert sum(r.duplicate for e in expected for r in e.results) == len(range(3, RECORDS, 7))
    final = CommandLog.restore(
        (tmp_path / "snapshots" / "engine.snap").read_bytes(),
        MARKETS,
        dedupe_window=DEDUPE_WINDOW,
        faucet_cap=FAUCET_CAP,
    )
    assert final.offset == RECORDS - 1
    assert final.engine.state_hash() == expected_hash
