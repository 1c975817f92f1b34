"""The broker guarantees the engine service is built on, checked against a real broker on loopback.

The engine's journal rests on three things (ARCHITECTURE.md, Kafka): an acknowledged command is
in the log and reads back as written; a market's messages, keyed by its symbol, stay on one
partition in the order sent; and a consumer restarted with the same group resumes from the
offset it committed. Each is checked here against the embedded broker, as are the broker's own
start and stop. Every wait is bounded (``within``), so a broker that misbehaves fails a test
instead of hanging the run.
"""

import asyncio
import socket
import stat
import sys
from collections.abc import Awaitable
from pathlib import Path
from typing import Any, TypeVar

import msgspec
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.partitioner import DefaultPartitioner, murmur2

from services.broker import (
    BrokerError,
    create_topics,
    embedded_broker,
    free_ports,
    start_broker,
)
from services.settings import Settings

T = TypeVar("T")
TIMEOUT_S = 10.0


async def within(awaitable: Awaitable[T], seconds: float = TIMEOUT_S) -> T:
    return await asyncio.wait_for(awaitable, seconds)


async def started_producer(settings: Settings) -> AIOKafkaProducer:
    producer = AIOKafkaProducer(**settings.producer_config())
    await within(producer.start())
    return producer


async def started_consumer(settings: Settings, group_id: str | None = None) -> AIOKafkaConsumer:
    consumer = AIOKafkaConsumer(**settings.consumer_config(group_id))
    await within(consumer.start())
    return consumer


async def read(consumer: AIOKafkaConsumer, count: int) -> list[ConsumerRecord[Any, Any]]:
    """Exactly ``count`` records from the consumer's assignment, or fail within ``TIMEOUT_S``."""

    async def collect() -> list[ConsumerRecord[Any, Any]]:
        records: list[ConsumerRecord[Any, Any]] = []
        while len(records) < count:
            batches = await consumer.getmany(timeout_ms=100, max_records=count - len(records))
            for batch in batches.values():
                records.extend(batch)
        return records

    return await within(collect())


async def test_acknowledged_records_read_back_as_written(kafka_settings: Settings) -> None:
    """acks=all, then a consumer with manual assignment, seeked to 0, reads every record back:
    the same partition, offset, key, value, headers and timestamp that the producer was given."""
    topic = kafka_settings.commands_topic
    assert kafka_settings.producer_config()["acks"] == "all"
    producer = await started_producer(kafka_settings)
    try:
        sent = {}
        for i in range(30):
            key, value = f"market-{i % 3}".encode(), msgspec.msgpack.encode({"n": i})
            headers = [("command-id", str(i).encode())]
            meta = await within(
                producer.send_and_wait(
                    topic, value, key=key, headers=headers, timestamp_ms=1_700_000_000_000 + i
                )
            )
            sent[(meta.partition, meta.offset)] = (key, value, headers, 1_700_000_000_000 + i)
    finally:
        await within(producer.stop())

    consumer = await started_consumer(kafka_settings)
    try:
        partitions = [TopicPartition(topic, p) for p in range(kafka_settings.commands_partitions)]
        consumer.assign(partitions)
        for tp in partitions:
            consumer.seek(tp, 0)
        records = await read(consumer, len(sent))
    finally:
        await within(consumer.stop())
    received = {
        (r.partition, r.offset): (r.key, r.value, list(r.headers), r.timestamp) for r in records
    }
    assert received == sent


async def test_a_market_stays_on_one_partition_in_order(kafka_settings: Settings) -> None:
    """Records keyed by a market land on the partition Kafka's murmur2 picks for the key, all of
    them, and read back in the order sent, even when sent pipelined and interleaved."""
    topic, partitions = kafka_settings.commands_topic, kafka_settings.commands_partitions
    markets = [b"BTCUSDT", b"ETHUSDT", b"SOLUSDT", b"XRPUSDT"]
    producer = await started_producer(kafka_settings)
    try:
        futures = [
            (market, seq, await producer.send(topic, str(seq).encode(), key=market))
            for seq in range(50)
            for market in markets
        ]
        metas = [(market, seq, await within(future)) for market, seq, future in futures]
    finally:
        await within(producer.stop())

    placed: dict[bytes, set[int]] = {m: set() for m in markets}
    for market, _seq, meta in metas:
        placed[market].add(meta.partition)
    expected = {m: DefaultPartitioner()(m, list(range(partitions)), []) for m in markets}
    assert placed == {m: {expected[m]} for m in markets}

    consumer = await started_consumer(kafka_settings)
    try:
        assigned = [TopicPartition(topic, p) for p in sorted(set(expected.values()))]
        consumer.assign(assigned)
        for tp in assigned:
            consumer.seek(tp, 0)
        records = await read(consumer, len(metas))
    finally:
        await within(consumer.stop())
    for market in markets:
        mine = [r for r in records if r.key == market]
        assert {r.partition for r in mine} == {expected[market]}
        assert [int(r.value) for r in sorted(mine, key=lambda r: r.offset)] == list(range(50))


def test_key_placement_is_javas_murmur2() -> None:
    """Placement is computed by the client, so it must be the Java client's: the same key goes to
    the same partition from every producer, on Tansu and on Apache Kafka alike. Vectors from
    Kafka's own UtilsTest."""
    vectors = {b"21": -973932308, b"foobar": -790332482, b"abc": 479470107}
    for key, signed in vectors.items():
        assert murmur2(key) == signed & 0xFFFFFFFF


async def test_committed_offset_survives_a_consumer_restart(kafka_settings: Settings) -> None:
    """A consumer commits after the records it has handled, stops, and a new consumer of the same
    group resumes at that offset with nothing skipped or repeated; another group is unaffected.
    This is how a service resumes its input after a restart."""
    topic = kafka_settings.events_topic
    tp = TopicPartition(topic, 0)
    producer = await started_producer(kafka_settings)
    try:
        for i in range(20):
            await within(producer.send_and_wait(topic, str(i).encode(), partition=0))
    finally:
        await within(producer.stop())

    first = await started_consumer(kafka_settings, group_id="resume")
    try:
        first.assign([tp])
        assert await within(first.committed(tp)) is None
        handled = await read(first, 8)
        await within(first.commit({tp: handled[-1].offset + 1}))
    finally:
        await within(first.stop())

    second = await started_consumer(kafka_settings, group_id="resume")
    try:
        second.assign([tp])
        assert await within(second.committed(tp)) == 8
        rest = await read(second, 12)
    finally:
        await within(second.stop())
    assert [r.offset for r in handled + rest] == list(range(20))
    assert [int(r.value) for r in handled + rest] == list(range(20))

    other = await started_consumer(kafka_settings, group_id="another-group")
    try:
        other.assign([tp])
        assert await within(other.committed(tp)) is None
    finally:
        await within(other.stop())


async def test_create_topics_is_idempotent_and_refuses_other_partition_counts(
    kafka_settings: Settings,
) -> None:
    """Every service may call it at start; a topic with other partitions is an error, because
    adding partitions later would move markets to other partitions in the middle of their log."""
    bootstrap = kafka_settings.bootstrap_servers
    await within(create_topics(bootstrap, kafka_settings))
    changed = msgspec.structs.replace(kafka_settings, events_partitions=7)
    with pytest.raises(BrokerError, match=r"exists with 4 partitions, configured 7"):
        await within(create_topics(bootstrap, changed))


async def test_embedded_broker_serves_then_stops() -> None:
    """The context manager's broker takes topics and records, and its port is closed after."""
    async with embedded_broker() as bootstrap:
        settings = msgspec.structs.replace(Settings(), bootstrap_servers=bootstrap)
        await within(create_topics(bootstrap, settings))
        producer = await started_producer(settings)
        try:
            meta = await within(producer.send_and_wait(settings.prices_topic, b"1", key=b"BTC"))
        finally:
            await within(producer.stop())
        assert meta.offset == 0
    host, port = bootstrap.rsplit(":", 1)
    with pytest.raises(OSError), socket.create_connection((host, int(port)), timeout=1):
        pass


def test_a_broker_that_exits_is_reported_with_its_output() -> None:
    """A binary that is no broker exits at once: the error gives its status and what it said."""
    with pytest.raises(BrokerError, match=r"(?s)exited with status 2.*can't open file"):
        start_broker(binary=sys.executable)  # python, asked to run the file "broker"


def test_a_broker_that_never_answers_times_out(tmp_path: Path) -> None:
    """A process that runs but never speaks Kafka is given up on after the configured wait."""
    script = tmp_path / "silent-broker"
    script.write_text("#!/bin/sh\necho 'warming up' >&2\nexec sleep 30\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    settings = msgspec.structs.replace(Settings(), broker_start_timeout_ms=300)
    with pytest.raises(BrokerError, match=r"(?s)did not answer within 0.3 s.*warming up"):
        start_broker(settings, binary=str(script))


def test_a_fixed_port_in_use_is_refused() -> None:
    """With EXCHANGE_EMBEDDED_PORT taken, starting must fail, not talk to whoever holds it."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        settings = msgspec.structs.replace(Settings(), embedded_port=holder.getsockname()[1])
        with pytest.raises(BrokerError, match=r"EXCHANGE_EMBEDDED_PORT.*already in use"):
            start_broker(settings)


def test_free_ports_are_distinct_bindable_and_below_the_ephemeral_range() -> None:
    """A port an outgoing connection could take meanwhile must never be handed to a service."""
    first, second = free_ports(8), free_ports(8)
    ports = first + second
    assert len(set(ports)) == 16, "a port handed out twice"
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    assert all(1024 <= port < min(low, 32_768) for port in ports)
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", first[0]))  # free when handed out
