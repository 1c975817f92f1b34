"""The engine's event log, read from its beginning: what the gateway folds (``read_model``).

The event log says everything a gateway shows, the terms of orders included (``OrderPlaced``),
so the command log is not read. A record split in parts for its size is joined first.
*Caught up* means every event record that existed at the first fetch has been returned; the end
is learned from that fetch's high watermark (``end_offsets`` is wrong on the embedded broker).
"""

import msgspec
import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition

from services.settings import Settings
from services.wire import EVENT_DECODER, EventBatch, EventJoiner

log = structlog.get_logger("gateway")


class LogFollower:
    """Partition 0 of the event topic: the engine's."""

    def __init__(self, settings: Settings) -> None:
        self.consumer = AIOKafkaConsumer(
            **settings.consumer_config(), max_partition_fetch_bytes=4 * 1024 * 1024
        )
        self.events = TopicPartition(settings.events_topic, 0)
        self.caught_up = False
        self._end: int | None = None
        self._joiner = EventJoiner()
        """Joins the parts of a split event record."""

    async def start(self) -> None:
        await self.consumer.start()
        self.consumer.assign([self.events])
        await self.consumer.seek_to_beginning(self.events)

    async def stop(self) -> None:
        await self.consumer.stop()

    async def poll(self, timeout_ms: int) -> list[EventBatch]:
        """The next event records, in offset order."""
        fetched = await self.consumer.getmany(timeout_ms=timeout_ms)
        batches: list[EventBatch] = []
        for record in fetched.get(self.events, ()):
            batch = _decode(record.value, record.offset)
            if batch is not None and (whole := self._joiner.join(batch)) is not None:
                batches.append(whole)
        if not self.caught_up:
            self.caught_up = await self._at_end()
        return batches

    async def _at_end(self) -> bool:
        if self._end is None:
            self._end = self.consumer.highwater(self.events)
            if self._end is None:
                return False
        position: int = await self.consumer.position(self.events)
        return position >= self._end


def _decode(value: bytes | None, offset: int) -> EventBatch | None:
    try:
        return EVENT_DECODER.decode(value or b"")
    except (msgspec.DecodeError, msgspec.ValidationError) as error:
        log.warning("bad_log_record", offset=offset, error=str(error))
        return None
