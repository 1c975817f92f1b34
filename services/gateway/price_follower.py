"""Every partition of the price topic, read from its beginning, decoded.

Why from the beginning, as the event log is: the gateway holds the latest index, mark and
estimate per market (``price_board``), and the beginning is the one place it can start from and
know it has them all; seeking near the end would need ``end_offsets``, which is wrong on the
embedded broker (kafka-broker-notes.md). The topic is cheap to read (a few messages per market
per second of event time, each a small struct), and the gateway is not ready until it has read
what was there when it started, so its first values are the current ones.

Its own consumer, read by its own task (``server``): a wait for prices never delays the event
log's answers.
"""

import msgspec
import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition

from services.log_reader import at_ends
from services.prices import PRICE_DECODER, PriceMessage
from services.settings import Settings

log = structlog.get_logger("gateway")


class PriceFollower:
    def __init__(self, settings: Settings) -> None:
        self.consumer = AIOKafkaConsumer(**settings.consumer_config())
        self.partitions = tuple(
            TopicPartition(settings.prices_topic, p) for p in range(settings.prices_partitions)
        )
        self.caught_up = False
        """Everything there was at the first fetch has been returned by ``poll``."""
        self._ends: dict[TopicPartition, int | None] = dict.fromkeys(self.partitions)

    async def start(self) -> None:
        await self.consumer.start()
        self.consumer.assign(list(self.partitions))
        await self.consumer.seek_to_beginning(*self.partitions)

    async def stop(self) -> None:
        await self.consumer.stop()

    async def poll(self, timeout_ms: int) -> list[PriceMessage]:
        """The next messages, each partition's in order; records that do not decode are
        logged and skipped."""
        fetched = await self.consumer.getmany(timeout_ms=timeout_ms)
        messages: list[PriceMessage] = []
        for partition, records in fetched.items():
            for record in records:
                try:
                    messages.append(PRICE_DECODER.decode(record.value or b""))
                except (msgspec.DecodeError, msgspec.ValidationError) as error:
                    log.warning(
                        "bad_price_record",
                        partition=partition.partition,
                        offset=record.offset,
                        error=str(error),
                    )
        if not self.caught_up:
            self.caught_up = await at_ends(self.consumer, self._ends)
        return messages
