"""The typed async client of the gateway's websocket protocol (docs/gateway-protocol.md).

One websocket, one reader task. Every request carries a fresh integer id and waits on a future
that the reader resolves with the response of that id (the gateway answers each request
exactly once), or fails with ``ExchangeError`` for an error response and
``ConnectionClosedError`` if the socket closes first. Pushes go to the subscription of their
channel, which checks that ``seq`` counts up by one.

Requests are the gateway's own structs (``services.gateway.protocol``), encoded by msgspec, so
a request the client builds has exactly the fields and values the gateway accepts; answers are
decoded into the ``Decimal`` views of ``services.client.views``.

Why the reader does some work synchronously: the gateway sends a subscription's answer, then
its first push (a book's snapshot), then the rest, in order on the one socket. Marking a
subscription live, counting its ``seq`` and applying book deltas all happen in the reader as
each frame arrives, so nothing can slip between an answer and the push after it, whatever the
code awaiting the answer does meanwhile.
"""

import asyncio
import itertools
import os
import time
from collections import deque
from collections.abc import Awaitable, Callable
from decimal import Decimal
from types import TracebackType
from typing import Any, TypeVar, cast

import aiohttp
import msgspec
import structlog

from exchange.engine_commands import MarginMode
from exchange.orders import OrderType, PriceMatch, Side, StpMode, TimeInForce, TriggerBy
from services.client.errors import (
    ClientError,
    ConnectError,
    ConnectionClosedError,
    ExchangeError,
)
from services.client.streams import LiveOrderBook, Push, Stream, Subscription, decode_as
from services.client.views import (
    AccountCreated,
    AdlNotice,
    AdlQuantileView,
    Balance,
    BookUpdate,
    CancelledAll,
    ChannelAck,
    Fill,
    Funding,
    FundingSettlement,
    Index,
    InsuranceFund,
    InsuranceMovement,
    LeverageSet,
    Liquidation,
    LiquidationHistory,
    MarginCall,
    MarginInfo,
    MarginModeSet,
    Mark,
    Market,
    Order,
    Pong,
    Position,
    Ticker,
    Trade,
)
from services.gateway import protocol
from services.gateway.auth import sign_login
from services.gateway.protocol import LoggedIn, MarginAction

log = structlog.get_logger("client")

T = TypeVar("T")
Number = Decimal | str | int
"""A price, quantity, amount or rate: a ``Decimal``, a decimal string, or an int. Never a
float, whose binary rounding would move a price; the gateway checks the grid."""

DEFAULT_TIMEOUT_S = 30.0
"""How long a request waits for its answer: above the gateway's own engine timeout (10 s), so a
slow engine is reported by the gateway's ``timeout`` error rather than guessed at here."""

_ENCODER = msgspec.json.Encoder()


class _Frame(msgspec.Struct):
    """Any frame from the gateway, read once: a response (``id`` with ``result`` or ``error``)
    or a push (``channel``, ``seq``, ``data``). Payloads stay raw until their type is known."""

    id: int | str | None = None
    result: msgspec.Raw = msgspec.Raw()
    error: protocol.ErrorBody | None = None
    channel: str | None = None
    seq: int = 0
    data: msgspec.Raw = msgspec.Raw()


_FRAME = msgspec.json.Decoder(_Frame)


def decimal_text(value: Number, name: str = "value") -> str:
    """``value`` as the decimal string the protocol wants; ``TypeError`` for a float (or a
    bool), ``ValueError`` for a NaN or infinite ``Decimal``."""
    if isinstance(value, bool) or not isinstance(value, Decimal | str | int):
        raise TypeError(
            f"{name} must be a Decimal, a decimal string or an int, not {type(value).__name__}"
        )
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"{name} must be finite, not {value}")
        return format(value, "f")
    return str(value)


def _optional(value: Number | None, name: str) -> str | None:
    return None if value is None else decimal_text(value, name)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class _Pending:
    __slots__ = ("answered", "future")

    def __init__(self, future: "asyncio.Future[msgspec.Raw]", answered: Callable[[], None] | None):
        self.future = future
        self.answered = answered
        """Run by the reader on a successful answer, before any later frame is read."""


class ExchangeClient:
    """One websocket connection to a gateway: requests, queries and subscriptions.

    ``async with ExchangeClient(url) as client`` connects and closes; or ``await
    client.connect()`` and ``await client.close()``. ``url`` is the websocket's
    (``ws://127.0.0.1:8765/ws``). ``timeout``: how long a request waits for its answer.
    ``session``: an aiohttp session to use (the client makes and closes its own otherwise).
    """

    def __init__(
        self,
        url: str,
        *,
        timeout: float = DEFAULT_TIMEOUT_S,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self.url = url
        self.timeout = timeout
        self.account: int | None = None
        """The account logged in on this connection."""
        self._session = session
        self._own_session = session is None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Task[None] | None = None
        self._ids = itertools.count(1)
        self._pending: dict[int, _Pending] = {}
        self._streams: dict[str, Stream] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.unmatched: deque[protocol.ErrorBody] = deque(maxlen=100)
        """Errors the gateway answered with ``id`` null (a frame it could not read): none
        unless something is wrong with the connection, or a request was over 16 KiB."""

    # -------------------------------------------------------------------------- connection

    async def connect(self) -> "ExchangeClient":
        """Open the websocket; ``ConnectError`` if it cannot be (HTTP 503: the gateway is
        still reading the logs, retry shortly)."""
        if self._ws is not None:
            raise ClientError("already connected")
        if self._session is None:
            self._session = aiohttp.ClientSession()
        try:
            self._ws = await self._session.ws_connect(self.url, max_msg_size=0, autoping=True)
        except aiohttp.WSServerHandshakeError as error:
            await self._close_session()
            raise ConnectError(f"{self.url}: HTTP {error.status} {error.message}") from None
        except (aiohttp.ClientError, OSError) as error:
            await self._close_session()
            raise ConnectError(f"{self.url}: {error}") from None
        self._reader = asyncio.ensure_future(self._read(self._ws))
        return self

    async def close(self) -> None:
        """Close the websocket: pending requests and subscriptions end with
        ``ConnectionClosedError`` (subscriptions closed by their owner end quietly)."""
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._close_session()

    async def _close_session(self) -> None:
        if self._own_session and self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def closed(self) -> bool:
        return self._ws is None or self._ws.closed

    async def __aenter__(self) -> "ExchangeClient":
        if self._ws is None:
            await self.connect()
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        reason = "the gateway closed the connection"
        try:
            async for message in ws:
                if message.type is aiohttp.WSMsgType.TEXT:
                    self._frame(message.data)
                elif message.type is aiohttp.WSMsgType.ERROR:
                    reason = f"websocket error: {ws.exception()}"
        except Exception as error:  # the reader must always fail the waiters below
            log.exception("reader_failed")
            reason = f"reader failed: {error!r}"
        finally:
            if ws.close_code is not None:
                reason += f" (close code {ws.close_code})"
            self._closed(ConnectionClosedError(reason))

    def _frame(self, text: str) -> None:
        try:
            frame = _FRAME.decode(text)
        except msgspec.DecodeError as error:  # not the protocol: nothing to match it to
            log.warning("frame_not_understood", error=str(error), frame=text[:200])
            return
        if frame.channel is not None:
            stream = self._streams.get(frame.channel)
            if stream is not None:
                stream._push(frame.seq, frame.data)
            return
        pending = self._pending.pop(frame.id, None) if isinstance(frame.id, int) else None
        if pending is None:
            if frame.error is not None:
                log.warning("unmatched_error", id=frame.id, code=frame.error.code)
                self.unmatched.append(frame.error)
            return
        if pending.future.done():  # its caller gave up waiting
            return
        if frame.error is not None:
            body = frame.error
            pending.future.set_exception(
                ExchangeError(body.code, body.message, body.retry_after_ms)
            )
            return
        if pending.answered is not None:
            pending.answered()
        pending.future.set_result(frame.result)

    def _closed(self, error: ConnectionClosedError) -> None:
        pending, self._pending = self._pending, {}
        for waiting in pending.values():
            if not waiting.future.done():
                waiting.future.set_exception(error)
        streams, self._streams = self._streams, {}
        for stream in streams.values():
            stream._end(error)

    def _spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ---------------------------------------------------------------------------- requests

    def _next_id(self) -> int:
        return next(self._ids)

    async def _raw(
        self, request: protocol.Request, answered: Callable[[], None] | None = None
    ) -> msgspec.Raw:
        """Send ``request``; its result, still encoded. ``ExchangeError`` for an error answer,
        ``ConnectionClosedError`` if the socket closes first, ``TimeoutError`` after
        ``timeout`` seconds (the request may still have been applied)."""
        ws = self._ws
        if ws is None or ws.closed:
            raise ConnectionClosedError("not connected")
        request_id = request.id
        assert isinstance(request_id, int)
        future: asyncio.Future[msgspec.Raw] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = _Pending(future, answered)
        try:
            await ws.send_str(_ENCODER.encode(request).decode())
            return await asyncio.wait_for(future, self.timeout)
        except (ConnectionError, aiohttp.ClientError) as error:
            raise ConnectionClosedError(f"sending failed: {error}") from None
        finally:
            self._pending.pop(request_id, None)

    async def _call(self, request: protocol.Request, kind: type[T]) -> T:
        return cast(T, decode_as(await self._raw(request), kind))

    # ------------------------------------------------------------------ public, no login

    async def ping(self) -> Pong:
        """The gateway's clock (``time``, ms since the epoch)."""
        return await self._call(protocol.Ping(id=self._next_id()), Pong)

    async def markets(self) -> list[Market]:
        """Every market with its grid (tick and lot sizes), limits and fees."""
        return await self._call(protocol.Markets(id=self._next_id()), list[Market])

    async def create_account(self) -> AccountCreated:
        """A new paper account: its number, API key and API secret. The secret is shown this
        once and cannot be recovered: keep it (``Credentials.save``)."""
        return await self._call(protocol.CreateAccount(id=self._next_id()), AccountCreated)

    async def login(self, api_key: str, api_secret: str) -> int:
        """Sign this connection in; the account number. The signature is HMAC-SHA256 of
        ``timestamp:nonce`` keyed with the secret, which never leaves this process. If the
        gateway finds this machine's clock too far from its own (``stale_timestamp``), the
        login is signed again once with the gateway's clock, from ``ping``."""
        try:
            account = await self._login(api_key, api_secret, _now_ms())
        except ExchangeError as error:
            if error.code != protocol.ErrorCode.STALE_TIMESTAMP:
                raise
            account = await self._login(api_key, api_secret, (await self.ping()).time)
        self.account = account
        return account

    async def _login(self, api_key: str, api_secret: str, timestamp: int) -> int:
        nonce = os.urandom(16).hex()
        request = protocol.Login(
            id=self._next_id(),
            api_key=api_key,
            timestamp=timestamp,
            nonce=nonce,
            signature=sign_login(api_secret, timestamp, nonce),
        )
        return (await self._call(request, LoggedIn)).account

    async def funding_history(self, symbol: str, limit: int = 100) -> list[FundingSettlement]:
        """The market's funding settlements, newest first (at most ``limit``, 1–1,000)."""
        request = protocol.FundingHistory(id=self._next_id(), symbol=symbol, limit=limit)
        return await self._call(request, list[FundingSettlement])

    async def insurance_fund(self, limit: int = 100) -> InsuranceFund:
        """The insurance fund's balance and its latest movements, newest first."""
        request = protocol.InsuranceFund(id=self._next_id(), limit=limit)
        return await self._call(request, InsuranceFund)

    async def liquidations(self, limit: int = 100) -> LiquidationHistory:
        """This account's latest liquidation steps and ADL notices, newest first."""
        request = protocol.Liquidations(id=self._next_id(), limit=limit)
        return await self._call(request, LiquidationHistory)

    async def margin(self) -> MarginInfo:
        """Every margin scope's balance, maintenance and ratio now, and the ADL indicators."""
        return await self._call(protocol.Margin(id=self._next_id()), MarginInfo)

    # -------------------------------------------------------------------------- commands

    async def deposit(self, amount: Number) -> Balance:
        """Paper money from the faucet (up to the exchange's per-account cap); the balance."""
        request = protocol.Deposit(id=self._next_id(), amount=decimal_text(amount, "amount"))
        return await self._call(request, Balance)

    async def place_order(
        self,
        symbol: str,
        side: Side | str,
        qty: Number,
        price: Number | None = None,
        *,
        type: OrderType | str = OrderType.LIMIT,
        tif: TimeInForce | str = TimeInForce.GTC,
        post_only: bool = False,
        reduce_only: bool = False,
        stop_price: Number | None = None,
        activation_price: Number | None = None,
        callback_rate: Number | None = None,
        trigger: TriggerBy | str = TriggerBy.LAST,
        stp: StpMode | str = StpMode.EXPIRE_TAKER,
        client_order_id: str | None = None,
        expire_time: int | None = None,
        price_match: PriceMatch | str | None = None,
    ) -> Order:
        """Place an order; the order as the engine left it (resting, filled, expired…).

        ``type``: ``limit`` (needs ``price``), ``market``, ``stop_market``, ``stop_limit``,
        ``take_profit_market``, ``take_profit_limit`` (``stop_price``, and ``price`` for the
        limit ones), ``trailing_stop_market`` (``callback_rate``, a fraction: ``"0.01"`` is
        1 %). ``post_only`` is ``tif="GTX"``. ``client_order_id``: the bot's own label for the
        order (1–36 of ``A-Z a-z 0-9 . : / _ -``), to find it by later; refused with
        ``duplicate_client_order_id`` while another open order of the account in the market
        has it. ``expire_time`` (ms since the epoch, the exchange's event time): the order
        ends then if still open (good till date). ``price_match`` (``QUEUE``, ``OPPONENT_5``…,
        no ``price``): the engine prices a limit order from the book. A refusal raises
        ``ExchangeError`` with the engine's reason (``insufficient_margin``,
        ``post_only_would_take``…).
        """
        if post_only:
            if TimeInForce(tif) is not TimeInForce.GTC:
                raise ValueError("post_only is tif GTX: give one or the other")
            tif = TimeInForce.GTX
        request = protocol.PlaceOrder(
            id=self._next_id(),
            symbol=symbol,
            side=Side(side),
            qty=decimal_text(qty, "qty"),
            type=OrderType(type),
            price=_optional(price, "price"),
            tif=TimeInForce(tif),
            stop_price=_optional(stop_price, "stop_price"),
            activation_price=_optional(activation_price, "activation_price"),
            callback_rate=_optional(callback_rate, "callback_rate"),
            trigger=TriggerBy(trigger),
            reduce_only=reduce_only,
            stp=StpMode(stp),
            client_order_id=client_order_id,
            expire_time=expire_time,
            price_match=None if price_match is None else PriceMatch(price_match),
        )
        return await self._call(request, Order)

    async def amend_order(
        self,
        symbol: str,
        order_id: int | None = None,
        *,
        client_order_id: str | None = None,
        price: Number | None = None,
        qty: Number | None = None,
    ) -> Order:
        """A new price and/or open quantity for a resting limit order (a decrease keeps its
        place in the queue). The order by its ``order_id`` or its ``client_order_id``, one of
        the two (``ValueError`` otherwise), as for every request about one order."""
        request = protocol.AmendOrder(
            id=self._next_id(),
            symbol=symbol,
            order_id=order_id,
            client_order_id=client_order_id,
            price=_optional(price, "price"),
            qty=_optional(qty, "qty"),
        )
        return await self._call(request, Order)

    async def cancel_order(
        self, symbol: str, order_id: int | None = None, *, client_order_id: str | None = None
    ) -> Order:
        """Cancel one order, by its ``order_id`` or its ``client_order_id``; the order,
        ``cancelled``. ``unknown_order`` if it is not this account's open order."""
        request = protocol.CancelOrder(
            id=self._next_id(), symbol=symbol, order_id=order_id, client_order_id=client_order_id
        )
        return await self._call(request, Order)

    async def cancel_all(self, symbol: str) -> CancelledAll:
        """Cancel every open order of the account in ``symbol``; their ids."""
        request = protocol.CancelAll(id=self._next_id(), symbol=symbol)
        return await self._call(request, CancelledAll)

    async def set_leverage(self, symbol: str, leverage: int) -> LeverageSet:
        request = protocol.SetLeverage(id=self._next_id(), symbol=symbol, leverage=leverage)
        return await self._call(request, LeverageSet)

    async def set_margin_mode(self, symbol: str, mode: MarginMode | str) -> MarginModeSet:
        """``cross`` or ``isolated``; refused while the market has a position or orders."""
        request = protocol.SetMarginMode(id=self._next_id(), symbol=symbol, mode=MarginMode(mode))
        return await self._call(request, MarginModeSet)

    async def adjust_margin(
        self, symbol: str, amount: Number, action: MarginAction | str = MarginAction.ADD
    ) -> Position:
        """Move ``amount`` from the cross wallet into an isolated position (``add``) or back
        (``remove``); the position."""
        request = protocol.AdjustMargin(
            id=self._next_id(),
            symbol=symbol,
            amount=decimal_text(amount, "amount"),
            action=MarginAction(action),
        )
        return await self._call(request, Position)

    # --------------------------------------------------------------------------- queries

    async def open_orders(self, symbol: str | None = None) -> list[Order]:
        request = protocol.OpenOrders(id=self._next_id(), symbol=symbol)
        return await self._call(request, list[Order])

    async def order(
        self, symbol: str, order_id: int | None = None, *, client_order_id: str | None = None
    ) -> Order:
        """One order of the account, open or among its recently finished ones, by its
        ``order_id`` or its ``client_order_id`` (the latest order with that label)."""
        request = protocol.GetOrder(
            id=self._next_id(), symbol=symbol, order_id=order_id, client_order_id=client_order_id
        )
        return await self._call(request, Order)

    async def positions(self, symbol: str | None = None) -> list[Position]:
        """The account's position in every market (or one), flat ones included."""
        request = protocol.Positions(id=self._next_id(), symbol=symbol)
        return await self._call(request, list[Position])

    async def balances(self) -> Balance:
        return await self._call(protocol.Balances(id=self._next_id()), Balance)

    async def fills(self, symbol: str | None = None, limit: int = 100) -> list[Fill]:
        """The account's most recent fills, newest first (``limit`` 1–1,000)."""
        request = protocol.Fills(id=self._next_id(), symbol=symbol, limit=limit)
        return await self._call(request, list[Fill])

    # ----------------------------------------------------------------------- subscriptions

    def subscribe(
        self,
        channel: str,
        callback: Callable[[Push[Any]], object] | None = None,
        *,
        resubscribe_on_gap: bool = False,
        max_queue: int = 100_000,
    ) -> Subscription[Any]:
        """A channel's pushes (docs/gateway-protocol.md, *Streams*): ``book.<SYMBOL>``,
        ``trades.<SYMBOL>``, ``ticker.<SYMBOL>``, ``index.<SYMBOL>``, ``mark.<SYMBOL>``,
        ``funding.<SYMBOL>``, and after login ``orders``, ``fills``, ``positions``,
        ``balances``. Await it to subscribe, iterate it, or give a ``callback``. One
        subscription per channel per connection (subscribing again would restart the
        gateway's stream under the first one). The typed shortcuts (``trades``, ``ticker``,
        ``my_fills``…) say what their pushes carry."""
        if channel in self._streams:
            raise ClientError(f"already subscribed to {channel} on this connection")
        return Subscription(
            self,
            channel,
            callback=callback,
            resubscribe_on_gap=resubscribe_on_gap,
            max_queue=max_queue,
        )

    def trades(
        self, symbol: str, callback: Callable[[Push[list[Trade]]], object] | None = None
    ) -> Subscription[list[Trade]]:
        return self.subscribe(f"trades.{symbol}", callback)

    def ticker(
        self, symbol: str, callback: Callable[[Push[Ticker]], object] | None = None
    ) -> Subscription[Ticker]:
        return self.subscribe(f"ticker.{symbol}", callback)

    def book_updates(
        self, symbol: str, callback: Callable[[Push[BookUpdate]], object] | None = None
    ) -> Subscription[BookUpdate]:
        """The raw snapshot and deltas; ``order_book`` keeps a book from them for you."""
        return self.subscribe(f"book.{symbol}", callback)

    def index(
        self, symbol: str, callback: Callable[[Push[Index]], object] | None = None
    ) -> Subscription[Index]:
        return self.subscribe(f"index.{symbol}", callback)

    def mark(
        self, symbol: str, callback: Callable[[Push[Mark]], object] | None = None
    ) -> Subscription[Mark]:
        return self.subscribe(f"mark.{symbol}", callback)

    def funding(
        self, symbol: str, callback: Callable[[Push[Funding]], object] | None = None
    ) -> Subscription[Funding]:
        return self.subscribe(f"funding.{symbol}", callback)

    def my_orders(
        self, callback: Callable[[Push[Order]], object] | None = None
    ) -> Subscription[Order]:
        return self.subscribe("orders", callback)

    def my_fills(
        self, callback: Callable[[Push[Fill]], object] | None = None
    ) -> Subscription[Fill]:
        return self.subscribe("fills", callback)

    def my_positions(
        self, callback: Callable[[Push[Position]], object] | None = None
    ) -> Subscription[Position]:
        return self.subscribe("positions", callback)

    def my_balances(
        self, callback: Callable[[Push[Balance]], object] | None = None
    ) -> Subscription[Balance]:
        return self.subscribe("balances", callback)

    def my_liquidations(
        self, callback: Callable[[Push[Liquidation]], object] | None = None
    ) -> Subscription[Liquidation]:
        return self.subscribe("liquidations", callback)

    def my_adl_notices(
        self, callback: Callable[[Push[AdlNotice]], object] | None = None
    ) -> Subscription[AdlNotice]:
        return self.subscribe("adl", callback)

    def my_margin_calls(
        self, callback: Callable[[Push[MarginCall]], object] | None = None
    ) -> Subscription[MarginCall]:
        return self.subscribe("margin_calls", callback)

    def my_adl_quantiles(
        self, callback: Callable[[Push[AdlQuantileView]], object] | None = None
    ) -> Subscription[AdlQuantileView]:
        return self.subscribe("adl_quantile", callback)

    def insurance(
        self, callback: Callable[[Push[InsuranceMovement]], object] | None = None
    ) -> Subscription[InsuranceMovement]:
        return self.subscribe("insurance", callback)

    async def order_book(self, symbol: str) -> LiveOrderBook:
        """A local order book of ``symbol``, kept up to date from the book channel and rebuilt
        from a fresh snapshot after any gap; returned once it holds its first snapshot."""
        channel = f"book.{symbol}"
        if channel in self._streams:
            raise ClientError(f"already subscribed to {channel} on this connection")
        book = LiveOrderBook(self, symbol)
        await self._subscribe(book)
        await book.wait_synced()
        return book

    async def _subscribe(self, stream: Stream) -> None:
        """Subscribe (or again, after a gap): the stream is live from the answer on."""
        current = self._streams.get(stream.channel)
        if current is not None and current is not stream:
            raise ClientError(f"already subscribed to {stream.channel} on this connection")
        self._streams[stream.channel] = stream
        request = protocol.Subscribe(id=self._next_id(), channel=stream.channel)
        try:
            decode_as(await self._raw(request, stream._answered), ChannelAck)
        except BaseException:
            if self._streams.get(stream.channel) is stream:
                del self._streams[stream.channel]
            raise

    def _forget(self, stream: Stream, *, unsubscribe: bool) -> None:
        """Stop routing the stream's pushes (and tell the gateway, in the background)."""
        if self._streams.get(stream.channel) is stream:
            del self._streams[stream.channel]
            if unsubscribe and not self.closed:
                self._spawn(self._unsubscribe(stream.channel))

    async def _forget_and_unsubscribe(self, stream: Stream) -> None:
        if self._streams.get(stream.channel) is stream:
            del self._streams[stream.channel]
            if not self.closed:
                await self._unsubscribe(stream.channel)

    async def _unsubscribe(self, channel: str) -> None:
        try:
            await self._raw(protocol.Unsubscribe(id=self._next_id(), channel=channel))
        except ConnectionClosedError:
            pass  # nothing to stop any more
        except ExchangeError as error:  # not subscribed: the gateway had already dropped it
            log.warning("unsubscribe_refused", channel=channel, code=error.code)


async def connect(
    url: str,
    *,
    api_key: str | None = None,
    api_secret: str | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> ExchangeClient:
    """A connected client, logged in if a key and secret are given."""
    client = ExchangeClient(url, timeout=timeout)
    await client.connect()
    if api_key is not None and api_secret is not None:
        try:
            await client.login(api_key, api_secret)
        except BaseException:
            await client.close()
            raise
    return client
