"""The engine, the oracle and the funding service in process against the session broker, and a
reader of what they write: shared by tests/test_oracle.py and tests/test_funding.py.

Every wait is bounded (``asyncio.wait_for``); nothing asserts on how long anything took.
"""

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import TracebackType

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from exchange.default_markets import DEFAULT_MARKETS
from exchange.engine_commands import EngineCommand
from exchange.engine_events import MarketEvent
from services.engine_service import EngineService
from services.funding import run_funding
from services.oracle import run_oracle
from services.prices import (
    PRICE_DECODER,
    PRICE_ENCODER,
    FundingRate,
    IndexPrice,
    IndexTick,
    MarkTick,
    PriceMessage,
)
from services.settings import Settings
from services.wire import (
    COMMAND_DECODER,
    ENCODER,
    CommandBatch,
    CommandEnvelope,
    EventBatch,
    EventJoiner,
)

WAIT_S = 30
"""The bound of every wait: far above what a run takes, so only a hang reaches it."""

DAY0 = 1_748_736_000_000
"""2025-06-01 00:00 UTC in ms: a funding boundary of every schedule with phase 0."""


class Running:
    """A service task and its stop event."""

    def __init__(self, service: Callable[[asyncio.Event], Awaitable[None]]) -> None:
        self.stop = asyncio.Event()
        self.task = asyncio.create_task(service(self.stop))

    async def finish(self) -> None:
        """A clean stop: the service finishes what it is doing."""
        self.stop.set()
        await asyncio.wait_for(self.task, WAIT_S)

    async def crash(self) -> None:
        """An abrupt end: the task is cancelled wherever it is, as a killed process would be."""
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


async def start_engine(settings: Settings, path: Path) -> tuple[EngineService, Running]:
    engine = EngineService(
        bootstrap=settings.bootstrap_servers,
        commands_topic=settings.commands_topic,
        events_topic=settings.events_topic,
        snapshot_path=path / "engine.snap",
        specs=DEFAULT_MARKETS,
        faucet_cap=settings.faucet_cap,
    )
    running = Running(engine.run)
    await asyncio.wait_for(engine.ready.wait(), WAIT_S)
    return engine, running


def start_oracle(settings: Settings) -> Running:
    return Running(lambda stop: run_oracle(settings, stop))


def start_funding(settings: Settings) -> Running:
    return Running(lambda stop: run_funding(settings, stop))


async def publish_ticks(settings: Settings, ticks: list[IndexTick]) -> None:
    """Send ``ticks`` in order (pipelined, each keyed by its symbol) and wait for every ack."""
    producer = AIOKafkaProducer(**settings.producer_config())
    await producer.start()
    try:
        sent = [
            await producer.send(
                settings.prices_topic, PRICE_ENCODER.encode(tick), key=tick.symbol.encode()
            )
            for tick in ticks
        ]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()


async def send_commands(
    settings: Settings, commands: list[tuple[str, EngineCommand]], time: int = 0
) -> None:
    """One command record with these ``(id, command)`` pairs."""
    producer = AIOKafkaProducer(**settings.producer_config())
    await producer.start()
    try:
        batch = CommandBatch([CommandEnvelope(i, c) for i, c in commands], time=time)
        await producer.send_and_wait(settings.commands_topic, ENCODER.encode(batch), partition=0)
    finally:
        await producer.stop()


async def read_commands(settings: Settings) -> list[CommandEnvelope]:
    """Every command in the command log, read to its end."""
    consumer = AIOKafkaConsumer(**settings.consumer_config())
    await consumer.start()
    partition = TopicPartition(settings.commands_topic, 0)
    consumer.assign([partition])
    out: list[CommandEnvelope] = []

    async def read() -> None:
        while True:
            got = await consumer.getmany(partition, timeout_ms=100)
            for record in got.get(partition, []):
                out.extend(COMMAND_DECODER.decode(record.value or b"").commands)
            end = consumer.highwater(partition)
            if not got and end is not None and await consumer.position(partition) >= end:
                return

    try:
        await asyncio.wait_for(read(), WAIT_S)
    finally:
        await consumer.stop()
    return out


class Logs:
    """Reads the price topic and the event log from their beginning, in the background, for as
    long as the ``async with`` block lasts."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.prices: list[PriceMessage] = []
        self.batches: list[EventBatch] = []
        self._joiner = EventJoiner()
        self._consumer = AIOKafkaConsumer(**settings.consumer_config())
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> "Logs":
        await self._consumer.start()
        prices = [
            TopicPartition(self.settings.prices_topic, p)
            for p in range(self.settings.prices_partitions)
        ]
        events = TopicPartition(self.settings.events_topic, 0)
        self._consumer.assign([events, *prices])
        self._task = asyncio.create_task(self._read(events))
        return self

    async def __aexit__(
        self,
        _type: type[BaseException] | None,
        _error: BaseException | None,
        _traceback: TracebackType | None,
    ) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        await self._consumer.stop()

    async def _read(self, events: TopicPartition) -> None:
        while True:
            got = await self._consumer.getmany(timeout_ms=50)
            for partition, records in got.items():
                for record in records:
                    if partition == events:
                        whole = self._joiner.decode(record.value or b"")
                        if whole is not None:
                            self.batches.append(whole)
                    else:
                        self.prices.append(PRICE_DECODER.decode(record.value or b""))

    async def until(self, condition: Callable[[], bool]) -> None:
        async def poll() -> None:
            while not condition():
                await asyncio.sleep(0.02)

        await asyncio.wait_for(poll(), WAIT_S)

    def marks(self, symbol: str = "BTCUSDT") -> list[MarkTick]:
        return [m for m in self.prices if isinstance(m, MarkTick) and m.symbol == symbol]

    def indexes(self, symbol: str = "BTCUSDT") -> list[IndexPrice]:
        return [m for m in self.prices if isinstance(m, IndexPrice) and m.symbol == symbol]

    def rates(self, symbol: str = "BTCUSDT") -> list[FundingRate]:
        return [m for m in self.prices if isinstance(m, FundingRate) and m.symbol == symbol]

    def events(self, command_id: str | None = None) -> list[object]:
        """The events of every result that was not a duplicate (of one command id if given);
        market events unwrapped."""
        return [
            event.event if isinstance(event, MarketEvent) else event
            for batch in self.batches
            for result in batch.results
            if not result.duplicate and (command_id is None or result.id == command_id)
            for event in result.events
        ]
