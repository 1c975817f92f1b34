"""``exchange up`` end to end: the real command starts the broker and every service, prints
where to connect, lets a user trade with the market maker, and stops everything on Ctrl-C."""

import asyncio
import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from exchange.commands import PlaceOrder
from exchange.default_markets import BTCUSDT, USDT
from exchange.engine_commands import Deposit, OrderCommand
from exchange.engine_events import MarketEvent
from exchange.events import Accepted, Trade
from exchange.orders import OrderType, Side
from services.settings import Settings
from services.wire import ENCODER, EVENT_DECODER, CommandBatch, CommandEnvelope, EventBatch

EXCHANGE = Path(sys.executable).parent / "exchange"
TRADER = 42
MAKER = Settings().maker_account


def start_up(tmp_path: Path) -> tuple[subprocess.Popen[str], str]:
    """Run ``exchange up`` and wait (bounded) for its banner; return it and the broker."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXCHANGE_")}
    env["EXCHANGE_FEED_SPEED"] = "20"
    up = subprocess.Popen(
        [str(EXCHANGE), "up"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=open(tmp_path / "up.log", "wb"),  # noqa: SIM115 - closed with the process
        text=True,
    )
    assert up.stdout is not None
    banner = ""
    deadline = time.monotonic() + 90
    while "Ctrl-C stops everything." not in banner:
        assert time.monotonic() < deadline and up.poll() is None, (tmp_path / "up.log").read_text()
        banner += up.stdout.readline()
    match = re.search(r"broker \(Kafka protocol\): (\S+)", banner)
    assert match, banner
    return up, match.group(1)


class EventLog:
    """Reads the event topic from the start into ``batches``, in the background."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self.batches: list[EventBatch] = []

    async def run(self) -> None:
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, fetch_max_wait_ms=10)
        await consumer.start()
        try:
            partition = TopicPartition(Settings().events_topic, 0)
            consumer.assign([partition])
            await consumer.seek_to_beginning(partition)
            while True:
                got = await consumer.getmany(partition, timeout_ms=50)
                self.batches += [EVENT_DECODER.decode(r.value) for r in got.get(partition, [])]
        finally:
            await consumer.stop()

    def events(self, command_id: str | None = None) -> list[object]:
        return [
            event.event if isinstance(event, MarketEvent) else event
            for batch in self.batches
            for result in batch.results
            if command_id is None or result.id == command_id
            for event in result.events
        ]

    async def until(self, seen: Callable[[], bool]) -> None:
        deadline = time.monotonic() + 60
        while not seen():
            assert time.monotonic() < deadline, self.events()[-20:]
            await asyncio.sleep(0.05)


def maker_is_quoting(log: EventLog) -> bool:
    return any(isinstance(e, Accepted) and e.account == MAKER for e in log.events())


async def test_up_runs_an_exchange_a_user_can_trade_on(tmp_path: Path) -> None:
    up, bootstrap = start_up(tmp_path)
    log = EventLog(bootstrap)
    reading = asyncio.create_task(log.run())
    try:
        await log.until(lambda: maker_is_quoting(log))
        taker = uuid.uuid4().hex
        buy = PlaceOrder(
            order_id=TRADER << 32 | 1, account=TRADER, side=Side.BUY, qty=1, type=OrderType.MARKET
        )
        batch = CommandBatch(
            [
                CommandEnvelope(f"{taker}-deposit", Deposit(account=TRADER, amount=1_000 * USDT)),
                CommandEnvelope(f"{taker}-buy", OrderCommand(symbol=BTCUSDT.symbol, order=buy)),
            ]
        )
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
        await producer.start()
        try:
            await producer.send_and_wait(Settings().commands_topic, ENCODER.encode(batch))
        finally:
            await producer.stop()
        await log.until(lambda: bool(log.events(f"{taker}-buy")))
        trades = [e for e in log.events(f"{taker}-buy") if isinstance(e, Trade)]
        assert trades and all(t.maker_account == MAKER for t in trades), log.events(f"{taker}-buy")
    finally:
        reading.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reading
        up.send_signal(signal.SIGINT)
        assert await asyncio.to_thread(up.wait, 60) == 0, (tmp_path / "up.log").read_text()
    host, port = bootstrap.rsplit(":", 1)
    with socket.socket() as sock:  # the broker is gone with the rest
        assert sock.connect_ex((host, int(port))) != 0
