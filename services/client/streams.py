"""Subscriptions: a channel's pushes as an async iterator or to a callback, and a local order
book kept from the book channel. The client's reader hands each push to its channel's stream
as the frame arrives (``ExchangeClient._frame``), in the order of the socket.

Why ``seq`` is checked here: the gateway numbers each channel's pushes from 1 per subscription
and never drops one silently (it disconnects a slow client instead), so a number skipped means
something is broken between the two, and code reading a stream must not carry on as if
nothing were missing. A stream either ends with ``SequenceGapError`` or, if made to, subscribes
again and starts afresh (a book from a new snapshot).
"""

import asyncio
import inspect
from collections import deque
from collections.abc import AsyncIterator, Callable, Generator
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

import msgspec
import structlog

from services.client.book import Level, OrderBook
from services.client.errors import (
    ClientError,
    ConnectionClosedError,
    SequenceGapError,
    SlowConsumerError,
)
from services.client.views import CHANNEL_DATA, BookUpdate

if TYPE_CHECKING:
    from services.client.client import ExchangeClient

log = structlog.get_logger("client")

T = TypeVar("T")

_DECODERS: dict[Any, msgspec.json.Decoder[Any]] = {}


def decode_as(raw: msgspec.Raw, kind: Any) -> Any:
    decoder = _DECODERS.get(kind)
    if decoder is None:
        decoder = _DECODERS[kind] = msgspec.json.Decoder(kind)
    return decoder.decode(raw)


@dataclass(frozen=True)
class Push(Generic[T]):
    """One push of a subscription: its channel, ``seq`` (1 for the first after subscribing)
    and its data, decoded."""

    channel: str
    seq: int
    data: T


class Stream:
    """What the reader delivers a channel's pushes to, in order: a ``Subscription`` or a
    ``LiveOrderBook``. Checks ``seq``; on a gap either ends (``SequenceGapError``) or, with
    ``resubscribe_on_gap``, subscribes again and drops pushes until the new answer."""

    def __init__(self, client: "ExchangeClient", channel: str, resubscribe_on_gap: bool) -> None:
        self.client = client
        self.channel = channel
        kind = channel.partition(".")[0]
        self.data_type: Any = CHANNEL_DATA.get(kind, Any)
        """The push data's type (plain JSON for a channel this client does not know)."""
        self.resubscribe_on_gap = resubscribe_on_gap
        self.gaps = 0
        """Gaps seen (each one a resubscription with ``resubscribe_on_gap``)."""
        self._expected = 1
        self._resyncing = True
        """Before the answer to (re)subscribing: pushes now are of the old subscription."""
        self.closed = False

    # called by the reader, in the order of the socket

    def _answered(self) -> None:
        self._expected = 1
        self._resyncing = False

    def _push(self, seq: int, raw: msgspec.Raw) -> None:
        if self._resyncing or self.closed:
            return
        if seq != self._expected:
            self.gaps += 1
            gap = SequenceGapError(self.channel, self._expected, seq)
            log.warning("push_gap", channel=self.channel, expected=self._expected, got=seq)
            self.resync(gap)
            return
        self._expected += 1
        try:
            data = decode_as(raw, self.data_type)
        except msgspec.ValidationError as error:
            self._end(ClientError(f"{self.channel}: push not understood: {error}"))
            self.client._forget(self, unsubscribe=True)
            return
        self._data(Push(self.channel, seq, data))

    def resync(self, cause: ClientError) -> None:
        """Subscribe again (a fresh start: ``seq`` 1, a book's snapshot), or end with
        ``cause`` if this stream does not resubscribe."""
        if not self.resubscribe_on_gap:
            self._end(cause)
            self.client._forget(self, unsubscribe=True)
            return
        self._resyncing = True
        self.client._spawn(self._resubscribe())

    async def _resubscribe(self) -> None:
        if self.closed:  # closed by its owner meanwhile: nothing to resume
            return
        try:
            await self.client._subscribe(self)
        except ClientError as error:
            self._end(error)
            self.client._forget(self, unsubscribe=False)

    def _data(self, push: Push[Any]) -> None:
        raise NotImplementedError

    def _end(self, error: BaseException | None) -> None:
        """No more pushes: closed by its owner (None), the connection, or an error."""
        self.closed = True


class Subscription(Stream, Generic[T]):
    """A channel's pushes, as an async iterator, or handed to a callback.

    ``await client.subscribe(channel)`` subscribes and returns it (so an ``unknown_channel``
    is raised there); iterating a subscription not yet awaited subscribes first, so
    ``async for push in client.subscribe("trades.BTCUSDT")`` works as written. Iteration ends
    when the subscription is closed, and raises what ended it otherwise
    (``ConnectionClosedError``, ``SequenceGapError``, ``SlowConsumerError``).

    With a ``callback`` the client iterates for you, in a task of its own, awaiting the
    callback if it is a coroutine function, one push at a time in order; an exception in the
    callback ends the subscription (logged, and raised by ``join``).
    """

    def __init__(
        self,
        client: "ExchangeClient",
        channel: str,
        *,
        callback: Callable[[Push[T]], object] | None = None,
        resubscribe_on_gap: bool = False,
        max_queue: int = 100_000,
    ) -> None:
        super().__init__(client, channel, resubscribe_on_gap)
        self._queue: deque[Push[T]] = deque()
        self._max_queue = max_queue
        self._waiters: list[asyncio.Future[None]] = []
        self._subscribed: asyncio.Task[None] | None = None
        self._callback = callback
        self._runner: asyncio.Task[None] | None = None
        self.error: BaseException | None = None
        """What ended the subscription, if not ``close``."""

    # ----------------------------------------------------------------- subscribing, closing

    def _ensure(self) -> "asyncio.Task[None]":
        if self._subscribed is None:
            self._subscribed = asyncio.ensure_future(self._start())
        return self._subscribed

    async def _start(self) -> None:
        await self.client._subscribe(self)
        if self._callback is not None:
            self._runner = asyncio.ensure_future(self._run_callback(self._callback))

    def __await__(self) -> Generator[Any, None, "Subscription[T]"]:
        yield from self._ensure().__await__()
        return self

    async def __aenter__(self) -> "Subscription[T]":
        return await self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Unsubscribe and end the iteration (and the callback's task) cleanly."""
        if self._subscribed is not None and not self._subscribed.done():
            await asyncio.gather(self._subscribed, return_exceptions=True)
        if not self.closed:
            self._end(None)
            await self.client._forget_and_unsubscribe(self)
        runner = self._runner
        if runner is not None and runner is not asyncio.current_task():
            await asyncio.gather(runner, return_exceptions=True)

    async def join(self) -> None:
        """Wait until the subscription ends; raise what ended it, unless it was ``close``
        (for a callback subscription, the callback's own exception too)."""
        await self._ensure()
        if self._runner is not None:
            await self._runner
        else:
            while not self.closed:
                await self._wait()
        if self.error is not None:
            raise self.error

    # ----------------------------------------------------------------------- the reader side

    def _data(self, push: Push[Any]) -> None:
        if len(self._queue) >= self._max_queue:
            self._end(SlowConsumerError(f"{self.channel}: {self._max_queue} pushes unread"))
            self.client._forget(self, unsubscribe=True)
            return
        self._queue.append(push)
        self._wake()

    def _end(self, error: BaseException | None) -> None:
        if self.closed:
            return
        super()._end(error)
        self.error = error
        self._wake()

    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def _wait(self) -> None:
        """Until a push arrives or the subscription ends (any number of waiters)."""
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        await waiter

    # -------------------------------------------------------------------------- iterating

    def __aiter__(self) -> AsyncIterator[Push[T]]:
        return self

    async def __anext__(self) -> Push[T]:
        await self._ensure()
        while not self._queue:
            if self.closed:
                if self.error is not None:
                    raise self.error
                raise StopAsyncIteration
            await self._wait()
        return self._queue.popleft()

    async def _run_callback(self, callback: Callable[[Push[T]], object]) -> None:
        """Hand each push to ``callback``; whatever ends the subscription is kept in
        ``error`` (and raised by ``join``), not raised here where nobody would see it."""
        try:
            async for push in self:
                try:
                    outcome = callback(push)
                    if inspect.isawaitable(outcome):
                        await outcome
                except Exception as error:
                    log.exception("callback_failed", channel=self.channel, seq=push.seq)
                    self._end(error)
                    await self.client._forget_and_unsubscribe(self)
                    return
        except ClientError:
            return  # the subscription's end, already in ``error``


class LiveOrderBook(Stream):
    """A market's order book kept from the ``book.<SYMBOL>`` channel: a snapshot, then each
    delta applied in the reader as it arrives. A gap (in ``seq`` or ``update_id``) resubscribes
    and rebuilds from the fresh snapshot; ``resyncs`` counts them.

    Read it through ``best_bid``, ``best_ask``, ``depth``, or ``book`` (the ``OrderBook``);
    ``await updated()`` waits for the next change. ``client.order_book(symbol)`` makes one and
    waits for its first snapshot.
    """

    def __init__(self, client: "ExchangeClient", symbol: str) -> None:
        super().__init__(client, f"book.{symbol}", resubscribe_on_gap=True)
        self.symbol = symbol
        self.book = OrderBook(symbol)
        self.resyncs = 0
        self._waiters: list[asyncio.Future[None]] = []
        self.error: BaseException | None = None

    def _data(self, push: Push[Any]) -> None:
        update = cast(BookUpdate, push.data)
        if not self.book.apply(update):
            log.warning(
                "book_gap", symbol=self.symbol, update_id=update.update_id, resyncs=self.resyncs
            )
            self.resync(ClientError(f"{self.channel}: update_id gap"))
            return
        self._notify()

    def resync(self, cause: ClientError) -> None:
        self.resyncs += 1
        self.book.reset()
        super().resync(cause)

    def _end(self, error: BaseException | None) -> None:
        if self.closed:
            return
        super()._end(error)
        self.error = error
        self._notify()

    def _notify(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def updated(self) -> OrderBook:
        """Wait for the next change of the book (or its end: then raise what ended it)."""
        if self.closed:
            raise self.error or ConnectionClosedError(f"{self.channel} is closed")
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        await waiter
        if self.closed and self.error is not None:
            raise self.error
        return self.book

    async def wait_synced(self) -> OrderBook:
        """Wait until the book holds a snapshot (the first, or the one after a gap)."""
        while not self.book.synced:
            await self.updated()
        return self.book

    @property
    def update_id(self) -> int | None:
        return self.book.update_id

    @property
    def best_bid(self) -> Level | None:
        return self.book.best_bid

    @property
    def best_ask(self) -> Level | None:
        return self.book.best_ask

    def depth(self, levels: int | None = None) -> tuple[list[Level], list[Level]]:
        return self.book.depth(levels)

    async def close(self) -> None:
        if not self.closed:
            self._end(None)
            await self.client._forget_and_unsubscribe(self)
