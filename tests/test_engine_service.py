"""The engine service: the command log without I/O, then against the real embedded broker."""

import asyncio
import time
from pathlib import Path

import aiohttp
import msgspec
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from topics import fresh_settings

from exchange.commands import PlaceOrder
from exchange.default_markets import BTCUSDT, USDT
from exchange.engine import Engine
from exchange.engine_commands import Deposit, EngineCommand, OrderCommand
from exchange.orders import Side
from services.engine_service import (
    CommandLog,
    EngineService,
    EngineStatus,
    Published,
    SnapshotAheadOfLog,
    last_published,
)
from services.health import HealthServer
from services.wire import (
    ENCODER,
    EVENT_DECODER,
    EVENT_RECORD_BYTES,
    CommandBatch,
    CommandEnvelope,
    EventBatch,
    EventJoiner,
    split_events,
)

SPECS = (BTCUSDT,)
CAP = 1_000_000 * USDT


def commands(n: int) -> list[EngineCommand]:
    """Deposits, then alternating resting sells and crossing buys: a trade every other order."""
    out: list[EngineCommand] = [Deposit(account=a, amount=100_000 * USDT) for a in (1, 2)]
    for i in range(n):
        side = Side.SELL if i % 2 == 0 else Side.BUY
        place = PlaceOrder(
            order_id=i + 1, account=1 + i % 2, side=side, qty=10, price=500_000 + i % 7
        )
        out.append(OrderCommand(symbol="BTCUSDT", order=place))
    return out


def batch(items: list[tuple[str, EngineCommand]]) -> bytes:
    return ENCODER.encode(CommandBatch([CommandEnvelope(i, c) for i, c in items]))


def uninterrupted_hash(cmds: list[EngineCommand]) -> str:
    engine = Engine(SPECS, faucet_cap=CAP)
    for cmd in cmds:
        engine.process(cmd)
    return engine.state_hash()


# ------------------------------------------------------------------------ without a broker


def test_results_carry_their_records_event_time() -> None:
    log = CommandLog(Engine(SPECS, faucet_cap=CAP), dedupe_window=10)
    deposit = CommandEnvelope("a", Deposit(account=1, amount=USDT))
    result = log.apply(0, ENCODER.encode(CommandBatch([deposit], time=1_700_000_000_123)))
    assert result.time == log.engine.time == 1_700_000_000_123
    older = log.apply(1, ENCODER.encode(CommandBatch([], time=5)))
    assert older.time == 5 and log.engine.time == 1_700_000_000_123  # the clock never goes back


def test_duplicate_ids_get_the_original_result_and_no_second_effect() -> None:
    log = CommandLog(Engine(SPECS, faucet_cap=CAP), dedupe_window=10)
    deposit = Deposit(account=1, amount=5 * USDT)
    first = log.apply(0, batch([("a", deposit)]))
    again = log.apply(1, batch([("a", deposit), ("b", deposit)]))
    assert again.results[0].duplicate and again.results[0].events == first.results[0].events
    assert not again.results[1].duplicate
    assert log.engine.ledger.balance("u:1") == 10 * USDT  # "a" once, "b" once


def test_a_bad_record_is_answered_with_its_error_and_applies_nothing() -> None:
    log = CommandLog(Engine(SPECS, faucet_cap=CAP), dedupe_window=10)
    before = log.engine.state_hash()
    result = log.apply(0, b"\x93not a batch")
    assert result.error and result.results == []
    assert log.engine.state_hash() == before
    assert log.offset == 0


def test_snapshot_restores_engine_offset_and_dedupe_window() -> None:
    cmds = commands(40)
    log = CommandLog(Engine(SPECS, faucet_cap=CAP), dedupe_window=1_000)
    for offset, cmd in enumerate(cmds):
        log.apply(offset, batch([(f"id-{offset}", cmd)]))
    restored = CommandLog.restore(log.snapshot(), SPECS, dedupe_window=1_000, faucet_cap=CAP)
    assert restored.offset == log.offset
    assert restored.engine.state_hash() == log.engine.state_hash() == uninterrupted_hash(cmds)
    replay = restored.apply(len(cmds), batch([("id-3", cmds[3])]))
    assert replay.results[0].duplicate
    assert restored.engine.state_hash() == log.engine.state_hash()


# --------------------------------------------------------------------- against the broker


async def make_topics(bootstrap: str) -> tuple[str, str]:
    settings = await fresh_settings(bootstrap)
    return settings.commands_topic, settings.events_topic


async def produce(bootstrap: str, topic: str, records: list[bytes]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for record in records:
            await producer.send_and_wait(topic, record)
    finally:
        await producer.stop()


async def read_events(bootstrap: str, topic: str, expected: int) -> list[EventBatch]:
    """Every event record, waiting (bounded) until at least ``expected`` are there."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, fetch_max_wait_ms=10)
    await consumer.start()
    out: list[EventBatch] = []
    try:
        partition = TopicPartition(topic, 0)
        consumer.assign([partition])
        await consumer.seek_to_beginning(partition)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            got = await consumer.getmany(partition, timeout_ms=100)
            out += [EVENT_DECODER.decode(r.value) for r in got.get(partition, []) if r.value]
            if len(out) >= expected and not got:
                break
    finally:
        await consumer.stop()
    return out


async def start(service: EngineService) -> tuple[asyncio.Event, asyncio.Task[None]]:
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    await asyncio.wait_for(service.ready.wait(), 20)
    return stop, task


def service(bootstrap: str, topics: tuple[str, str], path: Path, every: int) -> EngineService:
    return EngineService(
        bootstrap=bootstrap,
        commands_topic=topics[0],
        events_topic=topics[1],
        snapshot_path=path,
        specs=SPECS,
        faucet_cap=CAP,
        snapshot_every=every,
    )


async def test_restart_publishes_every_result_once_and_keeps_the_state(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    bootstrap = kafka_bootstrap
    topics = await make_topics(bootstrap)
    cmds = commands(60)
    records = [batch([(f"id-{i}", c)]) for i, c in enumerate(cmds)]
    path = tmp_path / "engine.snap"

    # first run: snapshots as it goes; keep an early one, as if the later ones never landed
    first = service(bootstrap, topics, path, every=7)
    stop, task = await start(first)
    await produce(bootstrap, topics[0], records[:20])
    await read_events(bootstrap, topics[1], 20)
    early = path.read_bytes()
    await produce(bootstrap, topics[0], records[20:40])
    await read_events(bootstrap, topics[1], 40)
    task.cancel()  # an abrupt end: no final snapshot
    with pytest.raises(asyncio.CancelledError):
        await task
    path.write_bytes(early)

    # second run: resumes from the early snapshot and re-derives up to offset 39 without
    # publishing those results again
    second = service(bootstrap, topics, path, every=7)
    assert second.log.offset < 20
    stop, task = await start(second)
    retry = batch([("id-5", cmds[5])])  # a producer's retry of an old command
    await produce(bootstrap, topics[0], [*records[40:], retry])
    events = await read_events(bootstrap, topics[1], len(records) + 1)
    stop.set()
    await asyncio.wait_for(task, 20)

    assert [e.offset for e in events] == list(range(len(records) + 1))
    assert events[-1].results[0].duplicate
    assert second.log.engine.state_hash() == uninterrupted_hash(cmds)
    trades = sum(1 for e in events for r in e.results for ev in r.events if "trade" in repr(ev))
    assert trades > 0


def many_deposits(count: int) -> bytes:
    """One command record whose events pass the size at which the engine cuts them in parts."""
    deposits = [(f"d{a}", Deposit(account=a, amount=USDT + a)) for a in range(1, count + 1)]
    return ENCODER.encode(
        CommandBatch([CommandEnvelope(i, c) for i, c in deposits], time=1_700_000_000_000)
    )


async def test_a_record_too_big_for_the_broker_goes_in_parts(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    topics = await make_topics(kafka_bootstrap)
    record = many_deposits(12_000)
    expected = CommandLog(Engine(SPECS, faucet_cap=CAP), dedupe_window=10).apply(0, record)
    assert len(ENCODER.encode(expected)) > EVENT_RECORD_BYTES

    engine = service(kafka_bootstrap, topics, tmp_path / "engine.snap", every=0)
    stop, task = await start(engine)
    small = batch([("after", Deposit(account=1, amount=USDT))])
    await produce(kafka_bootstrap, topics[0], [record, small])
    parts = split_events(expected)
    events = await read_events(kafka_bootstrap, topics[1], len(parts) + 1)
    stop.set()
    await asyncio.wait_for(task, 20)

    assert [(e.offset, e.part, e.parts) for e in events] == [
        *((0, i, len(parts)) for i in range(len(parts))),
        (1, 0, 1),
    ]
    joiner = EventJoiner()
    assert [joiner.join(e) for e in events[:-2]] == [None] * (len(parts) - 1)
    assert joiner.join(events[-2]) == expected


async def test_a_restart_between_parts_writes_only_the_missing_ones(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """The engine died after the broker took the first part of a split record: the restarted
    engine derives the same parts again and writes the rest, each once."""
    topics = await make_topics(kafka_bootstrap)
    record = many_deposits(12_000)
    parts = split_events(
        CommandLog(Engine(SPECS, faucet_cap=CAP), dedupe_window=10).apply(0, record)
    )
    assert len(parts) >= 2
    await produce(kafka_bootstrap, topics[0], [record])
    await produce(kafka_bootstrap, topics[1], parts[:1])

    engine = service(kafka_bootstrap, topics, tmp_path / "engine.snap", every=0)
    stop, task = await start(engine)
    events = await read_events(kafka_bootstrap, topics[1], len(parts))
    stop.set()
    await asyncio.wait_for(task, 20)

    assert [ENCODER.encode(e) for e in events] == parts


async def wait_for_file_offset(path: Path, offset: int) -> None:
    for _ in range(400):
        if path.exists() and msgspec.msgpack.decode(path.read_bytes())["offset"] == offset:
            return
        await asyncio.sleep(0.025)
    raise AssertionError(f"no snapshot at offset {offset}")


async def test_snapshots_follow_event_time(kafka_bootstrap: str, tmp_path: Path) -> None:
    """With the command trigger off, a snapshot is due once the batches' event time has
    moved ``snapshot_every_ms`` past the last one; the machine's clock plays no part."""
    topics = await make_topics(kafka_bootstrap)
    path = tmp_path / "engine.snap"
    engine = service(kafka_bootstrap, topics, path, every=0)
    engine.snapshot_every_ms = 1_000
    stop, task = await start(engine)
    deposit = Deposit(account=1, amount=USDT)
    for offset, at in enumerate([5_000, 5_999, 6_000, 6_500, 7_100]):
        record = ENCODER.encode(CommandBatch([CommandEnvelope(f"d{offset}", deposit)], time=at))
        await produce(kafka_bootstrap, topics[0], [record])
        await read_events(kafka_bootstrap, topics[1], offset + 1)
        if offset == 1:
            assert not path.exists()  # 999 ms of event time: not yet
        if offset == 2:
            await wait_for_file_offset(path, 2)
        if offset == 3:
            assert msgspec.msgpack.decode(path.read_bytes())["offset"] == 2
    await wait_for_file_offset(path, 4)
    stop.set()
    await asyncio.wait_for(task, 20)


async def test_a_snapshot_ahead_of_the_log_is_refused(kafka_bootstrap: str, tmp_path: Path) -> None:
    """An emptied broker (the embedded one forgets all on restart) must not be mistaken for
    a log to resume: replaying it onto a later snapshot would mix two histories."""
    log = CommandLog(Engine(SPECS, faucet_cap=CAP), dedupe_window=10)
    for offset in range(3):
        log.apply(offset, batch([(f"id-{offset}", Deposit(account=1, amount=USDT))]))
    path = tmp_path / "engine.snap"
    path.write_bytes(log.snapshot())
    topics = await make_topics(kafka_bootstrap)
    stale = service(kafka_bootstrap, topics, path, every=10)
    with pytest.raises(SnapshotAheadOfLog, match="covers command offset 2"):
        await asyncio.wait_for(stale.run(asyncio.Event()), 20)


async def test_the_newest_published_offset_is_read_from_the_tail(kafka_bootstrap: str) -> None:
    topics = await make_topics(kafka_bootstrap)
    assert await last_published(kafka_bootstrap, topics[1]) == Published()
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        sends = [
            await producer.send(topics[1], ENCODER.encode(EventBatch(offset, [])))
            for offset in range(3_000)
        ]
        split = [EventBatch(3_000, [], part=part, parts=3) for part in (0, 1)]
        sends += [await producer.send(topics[1], ENCODER.encode(b)) for b in split]
        await asyncio.gather(*sends)
    finally:
        await producer.stop()
    newest = await last_published(kafka_bootstrap, topics[1], tail=10)
    assert newest == Published(3_000, 1, 3)
    assert [newest.written(offset, 3) for offset in (2_999, 3_000, 3_001)] == [3, 2, 0]


async def test_readiness_is_served_over_http(kafka_bootstrap: str, tmp_path: Path) -> None:
    topics = await make_topics(kafka_bootstrap)
    engine = service(kafka_bootstrap, topics, tmp_path / "engine.snap", every=10)
    health = HealthServer(lambda: (engine.ready.is_set(), engine.status()))
    await health.start()
    url = f"http://127.0.0.1:{health.port}/health"
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{url}/ready") as response:
                assert response.status == 503  # not started
            async with session.get(f"{url}/live") as response:
                assert response.status == 200
            stop, task = await start(engine)
            await produce(
                kafka_bootstrap, topics[0], [batch([("a", Deposit(account=1, amount=1))])]
            )
            await read_events(kafka_bootstrap, topics[1], 1)
            async with session.get(f"{url}/ready") as response:
                assert response.status == 200
                body = msgspec.json.decode(await response.read(), type=EngineStatus)
            assert body.ready and body.offset == 0
            stop.set()
            await asyncio.wait_for(task, 20)
    finally:
        await health.stop()
