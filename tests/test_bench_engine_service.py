"""The engine service benchmark's parts: its command stream, its accounting, and the echo service
(against the real embedded broker). No timing is asserted: the machine is shared and noisy."""

import asyncio
import time

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from exchange.default_markets import DEFAULT_MARKETS
from exchange.engine import Engine
from load.bench_engine_service import (
    KINDS,
    Collector,
    StreamGenerator,
    count_trades,
    percentiles_ms,
    reject_reason,
)
from load.echo_service import EchoService
from services.settings import Settings
from services.wire import (
    ENCODER,
    EVENT_DECODER,
    CommandBatch,
    CommandEnvelope,
    CommandResult,
    EventBatch,
)

CAP = Settings().faucet_cap


def test_the_stream_is_accepted_by_a_fresh_engine_and_trades() -> None:
    """The stream is valid for the engine (no rejects: a benchmark of rejects would not measure
    the engine), really matches, has every kind of command, and is reproducible."""
    stream = StreamGenerator(seed=7, accounts=50, faucet_cap=CAP).generate(5_000)
    engine = Engine(DEFAULT_MARKETS, faucet_cap=CAP)
    rejects = trades = 0
    for envelope in stream.envelopes:
        events = engine.process(envelope.command)
        rejects += reject_reason(events) is not None
        trades += count_trades(events)
    assert rejects == 0
    assert trades > 100
    assert stream.expected(0, len(stream.envelopes)) == {
        "rejects": 0,
        "rejects_by_reason": {},
        "trades": trades,
    }
    assert set(stream.mix(0, len(stream.envelopes))) == set(KINDS)
    again = StreamGenerator(seed=7, accounts=50, faucet_cap=CAP).generate(5_000)
    assert again.envelopes == stream.envelopes


def test_the_collector_counts_each_id_once_and_flags_the_rest() -> None:
    collector = Collector(3)
    first = EventBatch(0, [CommandResult("0", []), CommandResult("1", [])])
    second = EventBatch(1, [CommandResult("1", []), CommandResult("9", []), CommandResult("x", [])])
    collector.take(ENCODER.encode(first), 10)
    collector.take(ENCODER.encode(second), 20)
    assert collector.answered == 2
    assert collector.repeated == 1 and collector.unknown == 2
    assert list(collector.answered_ns) == [10, 10, 0]
    assert len(collector.problems()) == 3  # one unanswered, one repeated, two unknown


def test_percentiles_are_nearest_rank_in_milliseconds() -> None:
    figures = percentiles_ms([i * 1_000_000 for i in range(1, 1_001)])
    assert figures["p50"] == 500.0 and figures["p99"] == 990.0 and figures["p99_9"] == 999.0
    assert figures["max"] == 1_000.0
    assert percentiles_ms([])["p99"] is None


async def test_the_echo_answers_every_command_id_exactly_once(kafka_settings: Settings) -> None:
    """Partition 0 in, partition 0 out (the fixture's topics have four partitions, so a
    service that left the partition to the client would scatter its answers): one event
    record per command record, with its offset, one empty result per id, in order; a record
    that does not decode is answered with its error."""
    settings = kafka_settings
    records = [[f"{r}-{i}" for i in range(20)] for r in range(5)]  # the ids of five records
    command = StreamGenerator(seed=1, accounts=1, faucet_cap=CAP).generate(0).envelopes[0].command
    payloads = [
        ENCODER.encode(CommandBatch([CommandEnvelope(id_, command) for id_ in ids], time=1))
        for ids in records
    ]
    payloads.append(b"\x93not a batch")
    service = EchoService(settings)
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    producer = AIOKafkaProducer(**settings.producer_config())
    consumer = AIOKafkaConsumer(**settings.consumer_config())
    answers: list[EventBatch] = []
    try:
        await asyncio.wait_for(service.ready.wait(), 20)
        await producer.start()
        for payload in payloads:
            await producer.send_and_wait(settings.commands_topic, payload, partition=0)
        await consumer.start()
        partition = TopicPartition(settings.events_topic, 0)
        consumer.assign([partition])
        consumer.seek(partition, 0)
        deadline = time.monotonic() + 20
        while len(answers) < len(payloads) and time.monotonic() < deadline:
            got = await consumer.getmany(partition, timeout_ms=100)
            answers += [EVENT_DECODER.decode(r.value) for r in got.get(partition, []) if r.value]
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)
        await producer.stop()
        await consumer.stop()
    assert [answer.offset for answer in answers] == list(range(len(payloads)))
    for ids, answer in zip(records, answers, strict=False):
        assert [result.id for result in answer.results] == ids
        assert all(not result.events and not result.duplicate for result in answer.results)
        assert not answer.error
    assert answers[-1].error and not answers[-1].results
    assert service.records == len(payloads)
