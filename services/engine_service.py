"""The engine as a Kafka service: one command log in, one event log out, exactly-once effects.

Exactly-once comes from the design, not from Kafka transactions (the embedded broker has none):

* The command topic is the journal. The engine applies command records in offset order; its
  state is a pure function of them (``exchange.engine``).
* Each command carries a producer-assigned id; an id seen among the last ``dedupe_window``
  commands is answered with its original events and applied no second time.
* For every command record the engine writes exactly one event record carrying that offset
  (or, when the record would pass the broker's size limit, that record in numbered parts).
* A snapshot (engine state, the offset it covers, the dedupe window) is written to disk,
  atomically, only after every event up to that offset has been acknowledged by the broker.
* On start the engine loads the newest snapshot, reads the event topic to find the last offset
  it had published (and which part), and replays the command records after the snapshot,
  publishing only what comes after that. So a kill at any point loses nothing and repeats nothing.
"""

import asyncio
import os
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import msgspec
import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from exchange.engine import Engine, EngineState
from exchange.engine_events import EngineEvent
from exchange.funding_schedule import FundingSchedule
from exchange.market import MarketSpec
from services.wire import (
    COMMAND_DECODER,
    ENCODER,
    EVENT_DECODER,
    CommandResult,
    EventBatch,
    split_events,
)

log = structlog.get_logger("engine")
_EVENTS_DECODER = msgspec.msgpack.Decoder(list[EngineEvent])


class ServiceSnapshot(msgspec.Struct, frozen=True):
    """What a snapshot file holds: the state after the command record at ``offset``."""

    offset: int
    engine: EngineState
    recent: list[tuple[str, msgspec.Raw]]
    """Each command's events as msgpack (``list[EngineEvent]``): the same bytes on disk."""


class SnapshotAheadOfLog(RuntimeError):
    """The snapshot covers commands the command topic no longer has: the broker lost its log
    (the embedded broker forgets everything when it restarts). Replaying would mix two
    histories, so the engine refuses to start."""


class CommandLog:
    """The engine plus the dedupe window: applies command records, no I/O."""

    def __init__(self, engine: Engine, *, dedupe_window: int, offset: int = -1) -> None:
        self.engine = engine
        self.dedupe_window = dedupe_window
        self.offset = offset
        self.recent: OrderedDict[str, msgspec.Raw] = OrderedDict()
        """The dedupe window: each id's events kept encoded, one untracked object per command
        instead of a list of structs that every full garbage collection would walk."""

    def apply(self, offset: int, payload: bytes) -> EventBatch:
        """Apply the command record at ``offset``; return the one event record for it."""
        self.offset = offset
        try:
            batch = COMMAND_DECODER.decode(payload)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            log.warning("bad_command_record", offset=offset, error=str(exc))
            return EventBatch(offset, [], error=str(exc))
        self.engine.advance_time(batch.time)
        results: list[CommandResult] = []
        recent = self.recent
        for envelope in batch.commands:
            original = recent.get(envelope.id)
            if original is not None:
                log.info("duplicate_command", command_id=envelope.id, offset=offset)
                events = _EVENTS_DECODER.decode(original)
                results.append(CommandResult(envelope.id, events, duplicate=True))
                continue
            events = self.engine.process(envelope.command)
            recent[envelope.id] = msgspec.Raw(ENCODER.encode(events))
            if len(recent) > self.dedupe_window:
                recent.popitem(last=False)
            results.append(CommandResult(envelope.id, events))
        return EventBatch(offset, results, time=batch.time)

    def snapshot(self) -> bytes:
        state = ServiceSnapshot(self.offset, self.engine.snapshot(), list(self.recent.items()))
        return ENCODER.encode(state)

    @classmethod
    def restore(
        cls,
        data: bytes,
        specs: Sequence[MarketSpec],
        *,
        dedupe_window: int,
        **engine_settings: Any,
    ) -> "CommandLog":
        """The log a snapshot was taken of; ``engine_settings`` as ``Engine`` takes them."""
        state = msgspec.msgpack.decode(data, type=ServiceSnapshot)
        engine = Engine.restore(specs, state.engine, **engine_settings)
        restored = cls(engine, dedupe_window=dedupe_window, offset=state.offset)
        restored.recent.update((id_, events.copy()) for id_, events in state.recent)
        return restored


def write_atomically(path: Path, data: bytes) -> None:
    """Write, fsync, rename: a reader sees the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(path.suffix + ".tmp")
    with open(temporary, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


async def _log_end(consumer: AIOKafkaConsumer, partition: TopicPartition) -> int:
    """The end offset of an assigned partition, learned from a fetch's high watermark: the
    embedded broker's ``end_offsets`` is wrong when its newest batch holds several records."""
    await consumer.seek_to_beginning(partition)
    for _ in range(200):  # a fetch answers within fetch_max_wait_ms; 200 tries is ~10 s
        await consumer.getmany(partition, timeout_ms=50, max_records=1)
        end: int | None = consumer.highwater(partition)
        if end is not None:
            return end
    raise TimeoutError(f"no fetch answer from {partition.topic}[{partition.partition}]")


class Published(msgspec.Struct, frozen=True):
    """How far the event topic goes: the command offset of its newest record, and which part
    of that command record's events it is (``split_events``). ``offset`` -1: no record."""

    offset: int = -1
    part: int = 0
    parts: int = 1

    def written(self, offset: int, parts: int) -> int:
        """How many of the ``parts`` of the event record for command ``offset`` are already on
        the topic: all of them before ``offset``, none after it."""
        if offset < self.offset:
            return parts
        return self.part + 1 if offset == self.offset else 0


async def last_published(bootstrap: str, events_topic: str, *, tail: int = 100) -> Published:
    """Where the event topic ends: the newest record's command offset and part.

    Only the last ``tail`` records are read, however long the log: the engine is the one
    writer of the topic and writes in command order, so the newest is among them. The read
    goes on past the high watermark until a fetch comes back empty, in case the watermark
    lags (as the embedded broker's end offsets do).
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=10
    )
    await consumer.start()
    try:
        partition = TopicPartition(events_topic, 0)
        consumer.assign([partition])
        end = await _log_end(consumer, partition)
        consumer.seek(partition, max(0, end - tail))
        newest = Published()
        while True:
            batches = await consumer.getmany(partition, timeout_ms=200, max_records=10_000)
            records = batches.get(partition, [])
            for record in records:
                assert record.value is not None
                batch = EVENT_DECODER.decode(record.value)
                if (batch.offset, batch.part) >= (newest.offset, newest.part):
                    newest = Published(batch.offset, batch.part, batch.parts)
            if not records and await consumer.position(partition) >= end:
                return newest
    finally:
        await consumer.stop()


class EngineStatus(msgspec.Struct, frozen=True):
    """What the health endpoint reports. ``ready``: the engine has caught up with the events
    it had published before a restart and is now answering new commands."""

    ready: bool
    offset: int
    published: int
    time: int


class EngineService:
    """Runs a ``CommandLog`` between the command topic and the event topic."""

    def __init__(
        self,
        *,
        bootstrap: str,
        commands_topic: str,
        events_topic: str,
        snapshot_path: Path,
        specs: Sequence[MarketSpec],
        faucet_cap: int,
        default_leverage: int = 20,
        funding_schedules: Mapping[str, FundingSchedule] | None = None,
        login_window_ms: int = 10_000,
        snapshot_every: int = 10_000,
        snapshot_every_ms: int = 0,
        dedupe_window: int = 100_000,
    ) -> None:
        """``snapshot_every`` commands or ``snapshot_every_ms`` of event time since the last
        snapshot trigger the next one, whichever comes first; 0 turns a trigger off."""
        self.bootstrap = bootstrap
        self.commands_topic = commands_topic
        self.events_topic = events_topic
        self.snapshot_path = snapshot_path
        self.specs = specs
        self.engine_settings: dict[str, Any] = {
            "faucet_cap": faucet_cap,
            "default_leverage": default_leverage,
            "funding_schedules": funding_schedules,
            "login_window_ms": login_window_ms,
        }
        self.snapshot_every = snapshot_every
        self.snapshot_every_ms = snapshot_every_ms
        self.dedupe_window = dedupe_window
        self.ready = asyncio.Event()
        self.published = -1
        self.log = self._load()

    def status(self) -> EngineStatus:
        log_ = self.log
        return EngineStatus(self.ready.is_set(), log_.offset, self.published, log_.engine.time)

    def _load(self) -> CommandLog:
        if self.snapshot_path.exists():
            restored = CommandLog.restore(
                self.snapshot_path.read_bytes(),
                self.specs,
                dedupe_window=self.dedupe_window,
                **self.engine_settings,
            )
            log.info("snapshot_loaded", offset=restored.offset, path=str(self.snapshot_path))
            return restored
        engine = Engine(self.specs, **self.engine_settings)
        return CommandLog(engine, dedupe_window=self.dedupe_window)

    def _snapshot(self) -> None:
        write_atomically(self.snapshot_path, self.log.snapshot())
        log.info("snapshot_written", offset=self.log.offset, event_time=self.log.engine.time)

    async def _snapshot_behind(
        self, writing: "asyncio.Future[None] | None"
    ) -> "asyncio.Future[None]":
        """Capture the state now, between records (consistent, and after the acks it needs),
        and write and fsync it in a thread while the loop goes on; one write at a time, so the
        newest file on disk is always the newest snapshot."""
        if writing is not None:
            await writing
        data, offset, time = self.log.snapshot(), self.log.offset, self.log.engine.time

        def write() -> None:
            write_atomically(self.snapshot_path, data)
            log.info("snapshot_written", offset=offset, event_time=time)

        return asyncio.ensure_future(asyncio.to_thread(write))

    def _snapshot_due(self, commands: int, since_time: int) -> bool:
        every, every_ms = self.snapshot_every, self.snapshot_every_ms
        return bool(
            (every and commands >= every)
            or (every_ms and self.log.engine.time - since_time >= every_ms)
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set; then finish the batch, snapshot and close."""
        published = await last_published(self.bootstrap, self.events_topic)
        self.published = published.offset
        partition = TopicPartition(self.commands_topic, 0)
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            enable_auto_commit=False,
            fetch_max_wait_ms=10,
            max_partition_fetch_bytes=4 * 1024 * 1024,
        )
        producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap,
            acks="all",
            linger_ms=5,
            max_batch_size=256 * 1024,
        )
        await consumer.start()
        await producer.start()
        try:
            consumer.assign([partition])
            end = await _log_end(consumer, partition)
            if self.log.offset >= end:
                raise SnapshotAheadOfLog(
                    f"the snapshot covers command offset {self.log.offset} but "
                    f"{self.commands_topic} ends at {end}: remove {self.snapshot_path} "
                    "(the broker lost its log) or point the engine at the right broker"
                )
            consumer.seek(partition, self.log.offset + 1)
            log.info(
                "engine_started",
                resume_from=self.log.offset + 1,
                published=published.offset,
                published_part=published.part,
            )
            since_commands, since_time = 0, self.log.engine.time
            writing: asyncio.Future[None] | None = None
            while not stop.is_set():
                if self.log.offset >= published.offset:
                    self.ready.set()
                batches = await consumer.getmany(partition, timeout_ms=50, max_records=1_000)
                pending = []
                for record in batches.get(partition, []):
                    assert record.value is not None
                    result = self.log.apply(record.offset, record.value)
                    since_commands += len(result.results) or 1
                    if record.offset >= published.offset:
                        parts = split_events(result)
                        for part in parts[published.written(record.offset, len(parts)) :]:
                            pending.append(
                                await producer.send(self.events_topic, part, partition=0)
                            )
                if pending:
                    await asyncio.gather(*pending)
                if not since_time:  # event time starts at the first batch that has one
                    since_time = self.log.engine.time
                if self._snapshot_due(since_commands, since_time):
                    writing = await self._snapshot_behind(writing)
                    since_commands, since_time = 0, self.log.engine.time
            if writing is not None:
                await writing
            if since_commands:
                self._snapshot()
        finally:
            self.ready.clear()
            await producer.stop()
            await consumer.stop()
            log.info("engine_stopped", offset=self.log.offset)
