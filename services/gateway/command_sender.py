"""Commands to the engine: many requests in one record, each answered by the engine's result.

Why batch: the broker's cost is per record (docs/engine-service.md), and at thousands of
orders a second from many connections one record per order would be the bottleneck. Every
command submitted while a record is being gathered (``flush_interval_ms``, or until
``max_commands_per_record``) rides in it; requests that arrive together in one turn of the
event loop share a record even with no interval at all.

Why ids: each command has a unique id, ``gw-<uuid of this instance>-<n>``, so the engine's
deduplication never mistakes a new command for an old one, and the result that comes back on
the event log (``resolve``) finds the request that is waiting for it. A request waits at most
``timeout_ms``; its answer is then ``timeout`` (the command may still be applied).
"""

import asyncio
import time
import uuid
from collections.abc import Callable
from typing import Any, Protocol

import structlog

from exchange.engine_commands import EngineCommand
from services.gateway.protocol import ErrorCode, Failure
from services.wire import ENCODER, CommandBatch, CommandEnvelope, CommandResult

log = structlog.get_logger("gateway")

OnResult = Callable[[CommandResult | Failure], None]
"""Called once per command: with the engine's result, or with why there is none."""


class Producer(Protocol):
    """The part of ``aiokafka.AIOKafkaProducer`` used: a send that returns once the record is
    queued, with a future of its delivery."""

    async def send(self, topic: str, value: bytes, *, partition: int) -> "asyncio.Future[Any]":
        raise NotImplementedError


def wall_clock_ms() -> int:
    """The gateway's clock: the edge of the system, where the event time of commands starts."""
    return time.time_ns() // 1_000_000


class CommandSender:
    """Gathers submitted commands into records and hands each result to its request."""

    def __init__(
        self,
        producer: Producer,
        topic: str,
        *,
        max_commands_per_record: int,
        flush_interval_ms: int,
        timeout_ms: int,
    ) -> None:
        self._producer = producer
        self._topic = topic
        self._max = max_commands_per_record
        self._interval_s = flush_interval_ms / 1000
        self._timeout_s = timeout_ms / 1000
        self.prefix = f"gw-{uuid.uuid4().hex}-"
        self._count = 0
        self._queue: list[CommandEnvelope] = []
        self._pending: dict[str, tuple[OnResult, float]] = {}
        """Commands waiting for their result, in the order submitted, with their deadline
        (``loop.time()``): that order is the order of their deadlines, so one timer, for the
        oldest, expires them all (a timer per command cost a tenth of the gateway's time)."""
        self._expiry: asyncio.TimerHandle | None = None
        self._wake = asyncio.Event()

    @property
    def pending(self) -> int:
        """Commands sent or queued whose result has not arrived."""
        return len(self._pending)

    def submit(self, command: EngineCommand, on_result: OnResult) -> str:
        """Queue ``command`` for the next record; ``on_result`` gets its outcome. Returns its
        id. Commands are sent in the order submitted."""
        self._count += 1
        command_id = f"{self.prefix}{self._count}"
        self._queue.append(CommandEnvelope(command_id, command))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timeout_s
        self._pending[command_id] = (on_result, deadline)
        if self._expiry is None:
            self._expiry = loop.call_at(deadline, self._expire)
        self._wake.set()
        return command_id

    def resolve(self, result: CommandResult) -> None:
        """Hand a result from the event log to its request, if it is one of ours still waiting
        (a duplicate result of a retried record finds none: the first already answered)."""
        pending = self._pending.pop(result.id, None)
        if pending is not None:
            pending[0](result)

    def _expire(self) -> None:
        """Answer every command past its deadline with ``timeout``; then wait for the oldest
        one left."""
        self._expiry = None
        loop = asyncio.get_running_loop()
        now = loop.time()
        pending = self._pending
        expired = []
        for command_id, (_, deadline) in pending.items():
            if deadline > now:
                break
            expired.append(command_id)
        for command_id in expired:
            on_result = pending.pop(command_id)[0]
            log.warning("command_timeout", command_id=command_id)
            on_result(
                Failure(
                    ErrorCode.TIMEOUT,
                    f"the engine did not answer within {self._timeout_s:g} s; the command may "
                    "still be applied: look before you retry",
                )
            )
        if pending and self._expiry is None:
            oldest = pending[next(iter(pending))][1]
            self._expiry = loop.call_at(oldest, self._expire)

    def _fail(self, command_ids: list[str], error: BaseException) -> None:
        log.error("command_record_not_written", commands=len(command_ids), error=repr(error))
        for command_id in command_ids:
            pending = self._pending.pop(command_id, None)
            if pending is not None:
                pending[0](
                    Failure(
                        ErrorCode.UNAVAILABLE,
                        "the command log did not take the command; it is most likely not "
                        "applied: look before you retry",
                    )
                )

    async def run(self) -> None:
        """Send records until cancelled."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            if self._interval_s:
                await asyncio.sleep(self._interval_s)
            while self._queue:
                envelopes = self._queue[: self._max]
                del self._queue[: self._max]
                await self._send(envelopes)

    async def _send(self, envelopes: list[CommandEnvelope]) -> None:
        ids = [envelope.id for envelope in envelopes]
        record = ENCODER.encode(CommandBatch(envelopes, time=wall_clock_ms()))
        try:
            delivery = await self._producer.send(self._topic, record, partition=0)
        except Exception as error:  # any refusal of the producer: these commands are not sent
            self._fail(ids, error)
            return

        def delivered(future: "asyncio.Future[Any]") -> None:
            if future.cancelled():  # the producer stopped with the record unsent
                self._fail(ids, asyncio.CancelledError())
            elif (error := future.exception()) is not None:
                self._fail(ids, error)

        delivery.add_done_callback(delivered)
