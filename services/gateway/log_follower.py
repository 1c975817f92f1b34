"""The engine's command log and event log, read from their beginning and joined by offset.

The engine writes one event record per command record, carrying that record's offset, and one
result per command in the record's order (docs/engine-service.md), so the pair is exact (a
record split in parts for its size is joined first). The
gateway needs the command for the terms of an order (``read_model``) and for the event time.

Both partitions are fetched by one consumer, so an event record can arrive before its command
record: it waits until the command partition has been read past its offset. *Caught up* means
every event record that existed at the first fetch has been returned; the end is learned from
that fetch's high watermark (``end_offsets`` is wrong on the embedded broker).
"""

from collections import deque
from typing import TypeVar

import msgspec
import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition

from services.settings import Settings
from services.wire import COMMAND_DECODER, EVENT_DECODER, CommandBatch, EventBatch, EventJoiner

log = structlog.get_logger("gateway")
T = TypeVar("T")

Pair = tuple[CommandBatch | None, EventBatch]
"""A command record (None if it did not decode here) and the engine's event record for it."""


class LogFollower:
    """Partition 0 of the command topic and of the event topic: the engine's."""

    def __init__(self, settings: Settings) -> None:
        self.consumer = AIOKafkaConsumer(
            **settings.consumer_config(), max_partition_fetch_bytes=4 * 1024 * 1024
        )
        self.commands = TopicPartition(settings.commands_topic, 0)
        self.events = TopicPartition(settings.events_topic, 0)
        self.caught_up = False
        self._end: int | None = None
        self._read_to = -1
        """The offset of the last command record read."""
        self._batches: dict[int, CommandBatch | None] = {}
        self._waiting: deque[EventBatch] = deque()
        self._joiner = EventJoiner()
        """Joins the parts of a split event record."""

    async def start(self) -> None:
        await self.consumer.start()
        self.consumer.assign([self.commands, self.events])
        await self.consumer.seek_to_beginning(self.commands, self.events)

    async def stop(self) -> None:
        await self.consumer.stop()

    async def poll(self, timeout_ms: int) -> list[Pair]:
        """The next pairs, in offset order."""
        fetched = await self.consumer.getmany(timeout_ms=timeout_ms)
        for record in fetched.get(self.commands, ()):
            self._batches[record.offset] = _decode(COMMAND_DECODER, record.value, record.offset)
            self._read_to = record.offset
        for record in fetched.get(self.events, ()):
            batch = _decode(EVENT_DECODER, record.value, record.offset)
            if batch is not None and (whole := self._joiner.join(batch)) is not None:
                self._waiting.append(whole)
        pairs: list[Pair] = []
        while self._waiting and self._waiting[0].offset <= self._read_to:
            events = self._waiting.popleft()
            pairs.append((self._batches.pop(events.offset, None), events))
        if pairs:
            # records that never got an event record (none should) are dropped with them
            first_kept = pairs[-1][1].offset
            for offset in [o for o in self._batches if o < first_kept]:
                del self._batches[offset]
        if not self.caught_up:
            self.caught_up = await self._at_end()
        return pairs

    async def _at_end(self) -> bool:
        if self._end is None:
            self._end = self.consumer.highwater(self.events)
            if self._end is None:
                return False
        return not self._waiting and await self.consumer.position(self.events) >= self._end


def _decode(decoder: msgspec.msgpack.Decoder[T], value: bytes | None, offset: int) -> T | None:
    try:
        return decoder.decode(value or b"")
    except (msgspec.DecodeError, msgspec.ValidationError) as error:
        log.warning("bad_log_record", offset=offset, error=str(error))
        return None
