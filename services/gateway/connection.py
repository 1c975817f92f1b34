"""One client connection: who it is, what it subscribed, and a bounded queue of frames to send.

Why a queue of its own: everything that produces frames for a connection (its responses,
pushes from the event log) runs in the gateway's one loop and must never wait for a client.
``send`` only appends; the connection's own writer task drains the queue into the socket at
whatever pace the client reads. A client that reads slower than its frames arrive lets its
queue grow, and when the queue would exceed ``send_buffer_bytes`` it is disconnected (its
socket aborted, nothing more queued): a slow consumer costs the others nothing, and its memory
is bounded. A client disconnected so can reconnect and resubscribe (a book snapshot again).
"""

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable

import msgspec
import structlog

from services.gateway.protocol import ENCODER, Push
from services.gateway.rate_limit import TokenBucket

log = structlog.get_logger("gateway")


class Connection:
    """``write`` sends one frame to the client (awaiting the socket); ``abort`` drops it.

    ``write_many``, if given, sends several frames at once, in order: the writer then hands it
    everything queued when it wakes, so that the frames one step of the loop produced for a
    client (a response and its pushes, a batch of book deltas) cost one write to the socket
    instead of one each (a system call per frame was a quarter of the gateway's time under
    load)."""

    def __init__(
        self,
        write: Callable[[bytes], Awaitable[None]],
        abort: Callable[[], None],
        *,
        send_buffer_bytes: int,
        limiter: TokenBucket,
        peer: str = "",
        write_many: Callable[[list[bytes]], Awaitable[None]] | None = None,
    ) -> None:
        self._write = write
        self._write_many = write_many
        self._abort = abort
        self._limit = send_buffer_bytes
        self.limiter = limiter
        """The connection's request weight (``protocol.REQUEST_WEIGHT``)."""
        self.peer = peer
        self.account: int | None = None
        """The account logged in on this connection, None before ``login``."""
        self.logging_in = False
        """A login is waiting for the engine's answer: another is refused meanwhile."""
        self.channels: dict[str, int] = {}
        """Subscribed channels and the ``seq`` of the last push on each."""
        self.closed = False
        self.slow = False
        """Disconnected because its send buffer overflowed."""
        self._queue: deque[bytes] = deque()
        self._queued = 0
        self._ready = asyncio.Event()

    def send(self, frame: bytes) -> None:
        """Queue ``frame``; never waits. Overflow disconnects the client."""
        if self.closed:
            return
        if self._queued + len(frame) > self._limit:
            self.slow = True
            log.warning(
                "slow_consumer_disconnected",
                peer=self.peer,
                account=self.account,
                queued_bytes=self._queued,
            )
            self.abort()
            return
        self._queue.append(frame)
        self._queued += len(frame)
        self._ready.set()

    def push(self, channel: str, data: msgspec.Raw) -> None:
        """A push on ``channel`` if subscribed, with the channel's next ``seq``."""
        seq = self.channels.get(channel)
        if seq is None:
            return
        self.channels[channel] = seq + 1
        self.send(ENCODER.encode(Push(channel, seq + 1, data)))

    def abort(self) -> None:
        """Drop the client now, without a close handshake it may never answer."""
        self.close()
        self._abort()

    def close(self) -> None:
        """Stop queuing and drop what is queued; the writer ends."""
        self.closed = True
        self._queue.clear()
        self._queued = 0
        self._ready.set()

    async def run_writer(self) -> None:
        """Drain the queue into the socket, in order, until ``close`` or the socket fails."""
        queue = self._queue
        write_many = self._write_many
        try:
            while not self.closed:
                if not queue:
                    self._ready.clear()
                    await self._ready.wait()
                    continue
                if write_many is not None and len(queue) > 1:
                    frames = list(queue)
                    queue.clear()
                    await write_many(frames)
                    self._queued -= sum(map(len, frames))
                    continue
                frame = queue.popleft()
                await self._write(frame)
                self._queued -= len(frame)
        except ConnectionError:  # the client went away: nothing more can reach it
            self.close()
