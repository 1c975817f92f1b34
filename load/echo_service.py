"""A bare echo service: the floor the engine service's benchmark compares the engine against.

It sits exactly where the engine sits (command topic partition 0 in, event topic partition 0
out, one event record per command record, the same consumer and producer settings, started the
same way from ``EXCHANGE_*`` variables) but does no engine work: for every command record it
answers an ``EventBatch`` with that record's offset and one empty ``CommandResult`` per command
id. So a benchmark that sends the same messages through it measures what the broker, aiokafka and
two hops cost, and the difference to the engine is what the engine service itself costs.

It reads only the ids of the commands (a struct that declares ``id`` alone; msgspec skips the
rest), because decoding the commands is part of the engine's work, not of the transport.

``--await-acks`` makes its loop wait for the broker's acknowledgement of every batch's events
before fetching the next, as ``services.engine_service.EngineService.run`` does; without it the
echo pipelines, which is the floor proper. Comparing the two isolates the cost of that wait.

Run: ``python -m load.echo_service [--await-acks]`` with ``EXCHANGE_BOOTSTRAP_SERVERS``,
``EXCHANGE_COMMANDS_TOPIC`` and ``EXCHANGE_EVENTS_TOPIC`` set; SIGTERM or SIGINT stops it.
"""

import argparse
import asyncio
import signal
import sys
from typing import Any

import msgspec
import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from services.broker import create_topics
from services.settings import Settings, load_settings
from services.wire import ENCODER, CommandResult, EventBatch

log = structlog.get_logger("echo")

MAX_PARTITION_FETCH_BYTES = 4 * 1024 * 1024
"""As the engine's consumer: a fetch may carry 4 MiB of one partition."""
MAX_RECORDS = 1_000
"""Records per ``getmany``, as the engine."""
GETMANY_TIMEOUT_MS = 50
"""How long one ``getmany`` waits when there is nothing, as the engine (bounds stop latency)."""


class _IdOnly(msgspec.Struct):
    """A ``CommandEnvelope`` seen through a keyhole: its id; the command is skipped, not built."""

    id: str


class _IdsOnly(msgspec.Struct):
    """A ``CommandBatch`` with only the ids of its commands (its ``time`` is ignored)."""

    commands: list[_IdOnly]


_IDS_DECODER = msgspec.msgpack.Decoder(_IdsOnly)


def echo(offset: int, payload: bytes) -> EventBatch:
    """The event record for the command record at ``offset``: one empty result per command id,
    in order; a record that does not decode is answered with its error, as the engine does."""
    try:
        batch = _IDS_DECODER.decode(payload)
    except (msgspec.DecodeError, msgspec.ValidationError) as error:
        return EventBatch(offset, [], error=str(error))
    return EventBatch(offset, [CommandResult(envelope.id, []) for envelope in batch.commands])


class EchoService:
    """Consumes the command topic's partition 0 from offset 0 and echoes every record.

    ``ready`` is set once both clients are started and the partition is assigned. A failed
    send (the broker refused or timed out) ends ``run`` with that error rather than being lost.
    """

    def __init__(self, settings: Settings, *, await_acks: bool = False) -> None:
        self.settings = settings
        self.await_acks = await_acks
        self.ready = asyncio.Event()
        self.records = 0
        """Command records echoed so far."""
        self._in_flight: set[asyncio.Future[Any]] = set()
        self._failure: BaseException | None = None

    def _sent(self, future: "asyncio.Future[Any]") -> None:
        """Done-callback of a send: forget it, and keep the first failure to raise in ``run``."""
        self._in_flight.discard(future)
        if not future.cancelled() and future.exception() is not None and self._failure is None:
            self._failure = future.exception()

    async def run(self, stop: asyncio.Event) -> None:
        """Echo until ``stop`` is set; then wait for the last acknowledgements and close."""
        settings = self.settings
        partition = TopicPartition(settings.commands_topic, 0)
        consumer = AIOKafkaConsumer(
            **{
                **settings.consumer_config(),
                "max_partition_fetch_bytes": MAX_PARTITION_FETCH_BYTES,
            }
        )
        producer = AIOKafkaProducer(**settings.producer_config())
        await consumer.start()
        try:
            await producer.start()
            try:
                consumer.assign([partition])
                consumer.seek(partition, 0)
                log.info("echo started", commands=settings.commands_topic)
                self.ready.set()
                await self._loop(stop, consumer, producer, partition)
                if self._in_flight:
                    await asyncio.gather(*self._in_flight)
            finally:
                await producer.stop()
        finally:
            await consumer.stop()
            log.info("echo stopped", records=self.records)

    async def _loop(
        self,
        stop: asyncio.Event,
        consumer: AIOKafkaConsumer,
        producer: AIOKafkaProducer,
        partition: TopicPartition,
    ) -> None:
        events_topic = self.settings.events_topic
        while not stop.is_set():
            if self._failure is not None:
                raise self._failure
            batches = await consumer.getmany(
                partition, timeout_ms=GETMANY_TIMEOUT_MS, max_records=MAX_RECORDS
            )
            pending = []
            for record in batches.get(partition, []):
                assert record.value is not None
                payload = ENCODER.encode(echo(record.offset, record.value))
                pending.append(await producer.send(events_topic, payload, partition=0))
                self.records += 1
            if self.await_acks:
                if pending:
                    await asyncio.gather(*pending)
                continue
            for future in pending:
                self._in_flight.add(future)
                future.add_done_callback(self._sent)


async def run_echo(settings: Settings, *, await_acks: bool = False) -> None:
    """Create the topics if needed (as ``exchange engine`` does), then echo until SIGTERM or
    SIGINT."""
    await create_topics(settings.bootstrap_servers, settings)
    service = EchoService(settings, await_acks=await_acks)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await service.run(stop)


def configure_logging() -> None:
    """Log lines to stderr, as ``exchange`` does (stdout stays free for results)."""
    structlog.configure(logger_factory=lambda *_args: structlog.PrintLogger(sys.stderr))


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m load.echo_service``; logs go to stderr."""
    configure_logging()
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--await-acks",
        action="store_true",
        help="wait for each batch's acknowledgements before the next fetch, as the engine does",
    )
    args = parser.parse_args(argv)
    asyncio.run(run_echo(load_settings(), await_acks=args.await_acks))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
