"""The gateway's command batching and per-connection send queue, with fakes for the producer
and the socket.

Why with fakes: how requests are grouped into records, that each gets exactly one outcome
(result, timeout or failed write), and that a full queue cuts off only its own client are
properties of these two classes alone; the end-to-end tests show them with the real broker.
"""

import asyncio
import json
from typing import Any

import msgspec
import pytest

from exchange.engine_commands import Deposit
from services.gateway.command_sender import CommandSender
from services.gateway.connection import Connection
from services.gateway.protocol import ErrorCode, Failure
from services.gateway.rate_limit import TokenBucket
from services.gateway.server import text_frames
from services.wire import COMMAND_DECODER, CommandBatch, CommandResult


class FakeProducer:
    """Records every record sent; ``refuse`` makes sends fail, ``lose`` makes deliveries fail."""

    def __init__(self) -> None:
        self.records: list[CommandBatch] = []
        self.refuse = False
        self.lose = False

    async def send(self, topic: str, value: bytes, *, partition: int) -> "asyncio.Future[Any]":
        assert (topic, partition) == ("commands", 0)
        if self.refuse:
            raise ConnectionError("broker down")
        self.records.append(COMMAND_DECODER.decode(value))
        delivery: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if self.lose:
            delivery.set_exception(TimeoutError("no ack"))
        else:
            delivery.set_result(None)
        return delivery


def sender(producer: FakeProducer, **options: int) -> CommandSender:
    settings = {"max_commands_per_record": 3, "flush_interval_ms": 0, "timeout_ms": 5_000}
    return CommandSender(producer, "commands", **(settings | options))


async def stop(task: "asyncio.Task[None]") -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def settle(until: Any) -> None:
    async def poll() -> None:
        while not until():
            await asyncio.sleep(0.001)

    await asyncio.wait_for(poll(), 5)


async def test_requests_of_one_moment_share_records_in_order() -> None:
    producer = FakeProducer()
    commands = sender(producer)
    running = asyncio.create_task(commands.run())
    outcomes: list[object] = []
    ids = [commands.submit(Deposit(account=n, amount=1), outcomes.append) for n in range(5)]
    await settle(lambda: len(producer.records) == 2)
    assert [[e.id for e in r.commands] for r in producer.records] == [ids[:3], ids[3:]]
    assert len(set(ids)) == 5 and all(i.startswith(commands.prefix) for i in ids)
    assert producer.records[0].time > 1_700_000_000_000  # the gateway's wall clock, in ms

    first = CommandResult(ids[0], [])
    commands.resolve(first)
    commands.resolve(first)  # a duplicate result of a retried record: answered once only
    commands.resolve(CommandResult("someone-else-1", []))
    assert outcomes == [first] and commands.pending == 4
    await stop(running)


async def test_a_command_without_a_result_times_out_once() -> None:
    producer = FakeProducer()
    commands = sender(producer, timeout_ms=20)
    running = asyncio.create_task(commands.run())
    outcomes: list[object] = []
    command_id = commands.submit(Deposit(account=1, amount=1), outcomes.append)
    await settle(lambda: outcomes)
    commands.resolve(CommandResult(command_id, []))  # too late: already answered
    assert len(outcomes) == 1 and isinstance(outcomes[0], Failure)
    assert outcomes[0].body.code == ErrorCode.TIMEOUT
    await stop(running)


async def test_commands_time_out_in_turn_and_answered_ones_never_do() -> None:
    """One timer serves every waiting command: each one still times out on its own deadline,
    once, and a command submitted after the others expired gets a timer again."""
    producer = FakeProducer()
    commands = sender(producer, timeout_ms=40)
    running = asyncio.create_task(commands.run())
    outcomes: dict[str, list[object]] = {}

    def submit() -> str:
        box: list[object] = []
        command_id = commands.submit(Deposit(account=1, amount=1), box.append)
        outcomes[command_id] = box
        return command_id

    answered = submit()
    await asyncio.sleep(0.01)
    late = [submit(), submit()]
    commands.resolve(CommandResult(answered, []))
    await settle(lambda: all(outcomes[c] for c in late))
    again = submit()
    await settle(lambda: outcomes[again])
    assert [type(o) for o in outcomes[answered]] == [CommandResult]
    for command_id in [*late, again]:
        [failure] = outcomes[command_id]
        assert isinstance(failure, Failure) and failure.body.code == ErrorCode.TIMEOUT
    assert commands.pending == 0
    await stop(running)


@pytest.mark.parametrize("how", ["refuse", "lose"])
async def test_a_record_the_broker_did_not_take_fails_its_commands(how: str) -> None:
    producer = FakeProducer()
    setattr(producer, how, True)
    commands = sender(producer)
    running = asyncio.create_task(commands.run())
    outcomes: list[object] = []
    for n in range(2):
        commands.submit(Deposit(account=n, amount=1), outcomes.append)
    await settle(lambda: len(outcomes) == 2)
    assert {o.body.code for o in outcomes if isinstance(o, Failure)} == {ErrorCode.UNAVAILABLE}
    assert commands.pending == 0
    await stop(running)


# ---------------------------------------------------------------------------- connection


class FakeSocket:
    """A client that reads only when ``reading`` is set."""

    def __init__(self) -> None:
        self.frames: list[bytes] = []
        self.reading = asyncio.Event()
        self.aborted = False

    async def write(self, frame: bytes) -> None:
        await self.reading.wait()
        self.frames.append(frame)

    def abort(self) -> None:
        self.aborted = True


def connection(socket: FakeSocket, buffer: int = 1_000) -> Connection:
    limiter = TokenBucket(10, 1_000, 0)
    return Connection(socket.write, socket.abort, send_buffer_bytes=buffer, limiter=limiter)


async def test_pushes_are_numbered_per_channel_and_written_in_order() -> None:
    socket = FakeSocket()
    client = connection(socket)
    writer = asyncio.create_task(client.run_writer())
    client.channels = {"trades.BTCUSDT": 0, "orders": 0}
    for channel in ("trades.BTCUSDT", "orders", "trades.BTCUSDT", "fills"):
        client.push(channel, msgspec.Raw(b'{"x":1}'))
    client.send(b'{"id":1,"result":null}')
    socket.reading.set()
    await settle(lambda: len(socket.frames) == 4)
    pushes = [json.loads(frame) for frame in socket.frames[:3]]
    assert [(p["channel"], p["seq"]) for p in pushes] == [
        ("trades.BTCUSDT", 1),
        ("orders", 1),
        ("trades.BTCUSDT", 2),
    ]
    assert pushes[0]["data"] == {"x": 1}
    client.close()
    await asyncio.wait_for(writer, 5)


async def test_a_client_that_does_not_read_is_cut_off_at_its_buffer() -> None:
    socket = FakeSocket()
    client = connection(socket, buffer=100)
    writer = asyncio.create_task(client.run_writer())
    client.send(b"x" * 60)
    await asyncio.sleep(0)  # the writer takes the first frame and waits on the socket
    client.send(b"y" * 40)
    assert not socket.aborted
    client.send(b"z")  # 101 bytes unsent: over the bound
    assert socket.aborted and client.slow and client.closed
    client.send(b"more")  # nothing is queued for a closed connection
    socket.reading.set()
    await asyncio.wait_for(writer, 5)
    assert socket.frames == [b"x" * 60]


async def test_a_writer_with_write_many_sends_what_is_queued_at_once_in_order() -> None:
    socket = FakeSocket()
    batches: list[list[bytes]] = []

    async def write_many(frames: list[bytes]) -> None:
        await socket.reading.wait()
        batches.append(frames)

    limiter = TokenBucket(10, 1_000, 0)
    client = Connection(
        socket.write, socket.abort, send_buffer_bytes=100, limiter=limiter, write_many=write_many
    )
    writer = asyncio.create_task(client.run_writer())
    client.send(b"a")
    await asyncio.sleep(0)  # the writer takes the lone frame and waits on the socket
    for frame in (b"b", b"c", b"d"):
        client.send(frame)
    socket.reading.set()
    await settle(lambda: len(batches) == 1)
    assert socket.frames == [b"a"] and batches == [[b"b", b"c", b"d"]]
    client.send(b"x" * 100)  # everything written was taken off the buffer's count
    assert not client.slow
    client.close()
    await asyncio.wait_for(writer, 5)


def test_text_frames_are_unmasked_final_text_frames_with_their_lengths() -> None:
    short, medium, long = b"x" * 125, b"y" * 126, b"z" * 65_536
    data = text_frames([short, medium, long])
    assert data[:2] == bytes([0x81, 125]) and data[2:127] == short
    rest = data[127:]
    assert rest[:4] == bytes([0x81, 126, 0, 126]) and rest[4:130] == medium
    rest = rest[130:]
    assert rest[:2] == bytes([0x81, 127]) and int.from_bytes(rest[2:10], "big") == 65_536
    assert rest[10:] == long
