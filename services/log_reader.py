"""The engine's event log and the price topic, read from their beginning by one consumer.

Why from the beginning: every service other than the engine rebuilds its state from the logs
(docs/oracle-and-funding.md, "Services"), so a restarted oracle or funding service is the same
as one that never stopped. Why know when it has *caught up*: what it reads before then has
already been acted on by its previous run, so it publishes and sends nothing until it has read
everything that was there when it started. The end of a partition is learned from a fetch's
high watermark, not ``end_offsets`` (wrong on the embedded broker: kafka-broker-notes.md).
"""

import asyncio
from typing import Any, Protocol

import msgspec
import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from services.settings import Settings
from services.wire import EventBatch, EventJoiner

log = structlog.get_logger("log_reader")

POLL_MS = 50
"""Longest a poll waits for records before the follower may emit again."""


class LogReader:
    """Partition 0 of the event topic (the engine's) and every partition of the price topic."""

    def __init__(self, settings: Settings) -> None:
        self.consumer = AIOKafkaConsumer(**settings.consumer_config())
        self.events = TopicPartition(settings.events_topic, 0)
        self.prices = tuple(
            TopicPartition(settings.prices_topic, p) for p in range(settings.prices_partitions)
        )
        self.caught_up = False
        """Everything there was when the reader started has been returned by ``poll``."""
        self._ends: dict[TopicPartition, int | None] = dict.fromkeys((self.events, *self.prices))
        self._joiner = EventJoiner()

    async def start(self) -> None:
        await self.consumer.start()
        partitions = [self.events, *self.prices]
        self.consumer.assign(partitions)
        await self.consumer.seek_to_beginning(*partitions)

    async def stop(self) -> None:
        await self.consumer.stop()

    async def poll(self, timeout_ms: int) -> tuple[list[EventBatch], list[bytes]]:
        """The next records: the engine's event records, decoded and with split ones joined
        (one that does not decode is logged and skipped), then the price records (each
        partition in order)."""
        batches = await self.consumer.getmany(timeout_ms=timeout_ms)
        events = []
        for record in batches.get(self.events, ()):
            try:
                batch = self._joiner.decode(record.value or b"")
            except (msgspec.DecodeError, msgspec.ValidationError) as error:
                log.warning("bad_event_record", offset=record.offset, error=str(error))
                continue
            if batch is not None:
                events.append(batch)
        prices = [
            record.value or b""
            for partition in self.prices
            for record in batches.get(partition, ())
        ]
        if not self.caught_up:
            self.caught_up = await at_ends(self.consumer, self._ends)
        return events, prices


async def at_ends(consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int | None]) -> bool:
    """Whether ``consumer`` has read each partition of ``ends`` up to where it ended at its
    first fetch. ``ends`` starts with every partition at None and learns each end from the
    fetch's high watermark, the one end the embedded broker reports right."""
    for partition, end in ends.items():
        if end is None:
            end = ends[partition] = consumer.highwater(partition)
            if end is None:
                return False
        if await consumer.position(partition) < end:
            return False
    return True


class LogFollower(Protocol):
    """A service that rebuilds its state from both logs and emits only once caught up."""

    def on_event_batch(self, batch: EventBatch) -> None: ...

    def on_price_record(self, value: bytes) -> None: ...

    def caught_up(self) -> None:
        """Everything there was at start has been read: from now on, act."""

    async def emit(self, producer: AIOKafkaProducer) -> None:
        """Send what the records read so far call for (called after every poll, once live)."""

    def progress(self) -> dict[str, Any]:
        """What the start-up and stop log lines show."""


async def follow(settings: Settings, stop: asyncio.Event, follower: LogFollower, name: str) -> None:
    """Feed ``follower`` both logs from their beginning until ``stop`` is set; let it emit
    once caught up, never before (what it reads before then its previous run acted on)."""
    producer = AIOKafkaProducer(**settings.producer_config())
    reader = LogReader(settings)
    await producer.start()
    try:
        await reader.start()
        live = False
        while not stop.is_set():
            events, prices = await reader.poll(POLL_MS)
            for batch in events:
                follower.on_event_batch(batch)
            for value in prices:
                follower.on_price_record(value)
            if reader.caught_up:
                if not live:
                    live = True
                    follower.caught_up()
                    log.info(f"{name}_caught_up", **follower.progress())
                await follower.emit(producer)
    finally:
        await reader.stop()
        await producer.stop()
        log.info(f"{name}_stopped", **follower.progress())
