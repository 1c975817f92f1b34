"""Every partition of one topic (the price topic, the risk topic), read from its beginning.

Why from the beginning, as the event log is: the gateway holds the latest index, mark and
estimate per market (``price_board``) and every scope's latest margin call and ADL indicator
(``risk_board``), and the beginning is the one place it can start from and know it has them
all; seeking near the end would need ``end_offsets``, which is wrong on the embedded broker
(kafka-broker-notes.md). Both topics are small (a few messages per market per second of event
time, and one per change of a margin level), and the gateway is not ready until it has read
what was there when it started, so its first values are the current ones.

Each topic has its own consumer, read by its own task (``server``): a wait for prices or risk
never delays the event log's answers. Their fetches wait longer than the event log's
(``Settings.consumer_idle_fetch_max_wait_ms``): the topics are quiet, and every empty fetch
costs the broker and the gateway CPU that the order path needs.
"""

from collections.abc import Callable
from typing import Generic, TypeVar

import msgspec
import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition

from services.log_reader import at_ends
from services.settings import Settings

log = structlog.get_logger("gateway")

M = TypeVar("M")


class TopicFollower(Generic[M]):
    """``decode`` turns a record's value into a message; ``name`` tells the logs which topic."""

    def __init__(
        self,
        settings: Settings,
        topic: str,
        partitions: int,
        decode: Callable[[bytes], M],
        name: str,
    ) -> None:
        self.consumer = AIOKafkaConsumer(
            **settings.consumer_config()
            | {"fetch_max_wait_ms": settings.consumer_idle_fetch_max_wait_ms}
        )
        self.partitions = tuple(TopicPartition(topic, p) for p in range(partitions))
        self.decode = decode
        self.name = name
        self.caught_up = False
        """Everything there was at the first fetch has been returned by ``poll``."""
        self._ends: dict[TopicPartition, int | None] = dict.fromkeys(self.partitions)

    async def start(self) -> None:
        await self.consumer.start()
        self.consumer.assign(list(self.partitions))
        await self.consumer.seek_to_beginning(*self.partitions)

    async def stop(self) -> None:
        await self.consumer.stop()

    async def poll(self, timeout_ms: int) -> list[M]:
        """The next messages, each partition's in order; records that do not decode are
        logged and skipped."""
        fetched = await self.consumer.getmany(timeout_ms=timeout_ms)
        messages: list[M] = []
        for partition, records in fetched.items():
            for record in records:
                try:
                    messages.append(self.decode(record.value or b""))
                except (msgspec.DecodeError, msgspec.ValidationError) as error:
                    log.warning(
                        "bad_record",
                        topic=self.name,
                        partition=partition.partition,
                        offset=record.offset,
                        error=str(error),
                    )
        if not self.caught_up:
            self.caught_up = await at_ends(self.consumer, self._ends)
        return messages
