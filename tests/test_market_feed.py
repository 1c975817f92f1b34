"""The market feed against the real embedded broker: what it publishes, and that it stops.

Why: ``exchange up`` runs the feed as a process whose only output is the price topic, so the
records themselves (key, shape, units, order, the turn of the loop) are its contract.
"""

import asyncio
import itertools
import time
from pathlib import Path

import msgspec
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from exchange.default_markets import BTCUSDT
from services.cli import main
from services.feed_sample import BUNDLED_SAMPLE, HEADER, FeedSampleError, read_sample, replay_path
from services.market_feed import SOURCE, run_feed
from services.prices import PRICE_DECODER, IndexTick
from services.settings import Settings


async def read_ticks(settings: Settings, count: int) -> list[tuple[bytes | None, IndexTick]]:
    """The first ``count`` records of the price topic (every partition), with their keys,
    in the order of the partition that holds them."""
    consumer = AIOKafkaConsumer(**settings.consumer_config())
    await consumer.start()
    out: list[tuple[bytes | None, IndexTick]] = []
    try:
        topic = settings.prices_topic
        consumer.assign([TopicPartition(topic, p) for p in range(settings.prices_partitions)])
        while len(out) < count:
            for records in (await consumer.getmany(timeout_ms=100)).values():
                out += [(r.key, PRICE_DECODER.decode(r.value or b"")) for r in records]
    finally:
        await consumer.stop()
    return out[:count]


async def run_until(settings: Settings, count: int) -> list[tuple[bytes | None, IndexTick]]:
    """Run the feed until ``count`` ticks are on the topic, then stop it; all bounded."""
    stop = asyncio.Event()
    feed = asyncio.create_task(run_feed(settings, stop))
    try:
        ticks = await asyncio.wait_for(read_ticks(settings, count), 20)
    finally:
        stop.set()
    await asyncio.wait_for(feed, 10)
    return ticks


async def test_the_bundled_recording_is_published_as_live_index_ticks(
    kafka_settings: Settings,
) -> None:
    settings = msgspec.structs.replace(kafka_settings, feed_speed=1_000)
    before = time.time_ns() // 1_000_000
    ticks = await run_until(settings, 40)
    after = time.time_ns() // 1_000_000

    expected = [
        price
        for _, price in itertools.islice(replay_path(read_sample(BUNDLED_SAMPLE, BTCUSDT)), 40)
    ]
    assert [tick.price for _, tick in ticks] == expected
    assert all(key == b"BTCUSDT" for key, _ in ticks)
    assert all(tick.symbol == "BTCUSDT" and tick.source == SOURCE for _, tick in ticks)
    times = [tick.time for _, tick in ticks]
    assert before <= times[0] and times[-1] <= after  # the wall clock, not the recording's
    assert times == sorted(times)


async def test_a_sample_file_is_looped_forward_then_backward(
    kafka_settings: Settings, tmp_path: Path
) -> None:
    sample = tmp_path / "sample.csv"
    sample.write_text(f"{HEADER}\n0,100.0,100.2\n10,100.2,100.4\n20,100.1,100.3\n")
    settings = msgspec.structs.replace(kafka_settings, feed_sample=str(sample), feed_speed=100)
    ticks = await run_until(settings, 9)
    assert [tick.price for _, tick in ticks] == [
        1001,
        1003,
        1002,
        1003,
        1001,
        1003,
        1002,
        1003,
        1001,
    ]


async def test_a_bad_sample_fails_before_connecting(tmp_path: Path) -> None:
    sample = tmp_path / "bad.csv"
    sample.write_text(f"{HEADER}\n0,100.0,100.2\n10,100.25,100.4\n")
    settings = Settings(bootstrap_servers="127.0.0.1:1", feed_sample=str(sample))  # no broker
    with pytest.raises(FeedSampleError, match=r"bad\.csv: line 3: price '100\.25'"):
        await asyncio.wait_for(run_feed(settings, asyncio.Event()), 5)


def test_the_feed_command_reports_a_bad_sample(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("EXCHANGE_FEED_SAMPLE", str(tmp_path / "missing.csv"))
    assert main(["feed"]) == 1
    logged = capsys.readouterr().err
    assert "service_failed" in logged and '"service": "feed"' in logged
