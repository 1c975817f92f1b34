"""``exchange feed``: replays a real BTCUSDT recording as live index ticks on the price topic.

Why a replay: the exchange has no venue connection and no oracle yet, and a paper exchange
needs moving prices; a real recording moves like the market does. The ticks are live: each
carries the wall clock (ms) at publish as its event time, and they are paced at the
recording's own pace times ``feed_speed``, forward then backward forever
(``feed_sample.replay_path``), until ``stop`` is set. Only BTCUSDT has a recording.
"""

import asyncio
import time
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path

import structlog
from aiokafka import AIOKafkaProducer

from exchange.default_markets import BTCUSDT
from services.broker import create_topics
from services.feed_sample import BUNDLED_SAMPLE, read_sample, replay_path
from services.prices import PRICE_ENCODER, IndexTick
from services.settings import Settings

log = structlog.get_logger("feed")

SOURCE = "binance-capture"
"""The ``IndexTick.source`` of every tick of this feed."""
_RESYNC_S = 1.0
"""A feed this far behind its schedule (a stalled process) starts a new schedule from now
rather than publishing the missed ticks in a burst."""


async def run_feed(settings: Settings, stop: asyncio.Event) -> None:
    """Publish index ticks until ``stop`` is set; then close the producer.

    The sample is read first, so a bad file fails before anything connects. The producer does
    not linger: a feed sends one tick at a time, and an index that waits for a batch is late.
    """
    path = Path(settings.feed_sample) if settings.feed_sample else BUNDLED_SAMPLE
    points = read_sample(path, BTCUSDT)
    await create_topics(settings.bootstrap_servers, settings)
    producer = AIOKafkaProducer(**{**settings.producer_config(), "linger_ms": 0})
    await producer.start()
    log.info("feed_started", file=str(path), rows=len(points), speed=settings.feed_speed)
    try:
        sent = await _publish(producer, settings, replay_path(points), stop)
    finally:
        await producer.stop()
    log.info("feed_stopped", ticks=sent)


async def _publish(
    producer: AIOKafkaProducer,
    settings: Settings,
    path: Iterator[tuple[int, int]],
    stop: asyncio.Event,
) -> int:
    """Send the path's ticks on schedule; return how many were sent.

    The schedule is kept on the monotonic clock, each step ``wait_ms / speed`` after the
    previous one's due time, so that send latency does not accumulate into drift. The event time
    is the wall clock, never earlier than the previous tick's (the wall clock can step back).
    """
    loop = asyncio.get_running_loop()
    symbol = BTCUSDT.symbol
    key = symbol.encode()
    due = loop.time()
    last_time = sent = 0
    for wait_ms, price in path:
        due += wait_ms / 1000 / settings.feed_speed
        delay = due - loop.time()
        if delay > 0:
            with suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
        elif delay < -_RESYNC_S:
            log.warning("feed_behind_schedule", behind_s=round(-delay, 3))
            due = loop.time()
        if stop.is_set():
            break
        last_time = max(last_time, time.time_ns() // 1_000_000)
        tick = IndexTick(symbol=symbol, source=SOURCE, price=price, time=last_time)
        await producer.send_and_wait(settings.prices_topic, PRICE_ENCODER.encode(tick), key=key)
        sent += 1
    return sent
