"""The gateway as a service: aiohttp (``/ws``, ``/health/live``, ``/health/ready``) and the loop
that folds the engine's logs into the read model, answers commands and pushes streams.

One event loop does everything, and nothing in the request or push path waits: a request is
handled in one step (``session``), a command's answer and its pushes come in the step that
applies its result, and each connection drains its own bounded queue (``connection``). So the
order of everything a client sees follows the command log, and no client can hold up another.

The price topic (the oracle's index and mark, the funding service's estimates) is read by a
task of its own, with its own consumer (``topic_follower``): a wait for prices never delays an
answer, and what it takes is pushed in the step that reads it (``Streams.publish_price``).

Start: the logs and the price topic are read from their beginning; until both have caught up,
``/ws`` answers 503 and ``/health/ready`` says not ready, because answers from a partial model
would be wrong. Stop (``stop`` set): every websocket is closed with 1001 (going away), then
the clients.
"""

import asyncio
import gc
import struct
from collections.abc import Sequence

import msgspec
import structlog
from aiohttp import WSCloseCode, WSMsgType, web
from aiokafka import AIOKafkaProducer

from exchange.market import MarketSpec
from services.broker import create_topics
from services.engine_main import load_markets
from services.gateway.command_sender import CommandSender
from services.gateway.config import GatewayConfig, gateway_config
from services.gateway.connection import Connection
from services.gateway.convert import Markets
from services.gateway.log_follower import LogFollower
from services.gateway.price_board import PriceBoard, PriceKind
from services.gateway.read_model import Changes, ReadModel
from services.gateway.session import Session
from services.gateway.streams import Streams
from services.gateway.topic_follower import TopicFollower
from services.gateway.views import Views
from services.health import health_routes
from services.prices import PRICE_DECODER
from services.risk_messages import RISK_DECODER, RiskMessage
from services.settings import Settings
from services.wire import EventBatch

log = structlog.get_logger("gateway")

_POLL_MS = 50
"""Longest a poll of the logs waits when nothing arrives (it returns as soon as records do)."""
_CLOSE_TIMEOUT_S = 2.0
"""How long closing a websocket waits for the client's close frame."""


async def run_gateway(settings: Settings, stop: asyncio.Event) -> None:
    """Serve the engine's markets (``Settings.markets_file``) until ``stop`` is set; a
    ``ValueError`` at once if the settings cannot run a gateway (no master key)."""
    config = gateway_config(settings)
    specs = load_markets(settings.markets_file)
    await create_topics(settings.bootstrap_servers, settings)
    await serve(Gateway(config, settings, specs), stop)


async def serve(gateway: "Gateway", stop: asyncio.Event) -> None:
    """Run ``gateway`` (or a front built on it) until ``stop`` is set."""
    # As the engine does (engine_main): a request makes many short-lived objects and the read
    # model keeps many long-lived ones, so the young generation is collected less often, and
    # what the catch-up built is frozen once read, never rescanned. With the defaults, under
    # load, full collections of the growing read model stopped the loop for 100-200 ms.
    gc.set_threshold(50_000, 20, 100)
    running = asyncio.create_task(gateway.run(stop))
    caught_up = asyncio.create_task(gateway.caught_up.wait())
    await asyncio.wait([running, caught_up], return_when=asyncio.FIRST_COMPLETED)
    caught_up.cancel()
    if gateway.ready:
        gc.collect()
        gc.freeze()
    await running


class GatewayStatus(msgspec.Struct, frozen=True):
    """What ``/health/ready`` shows. ``offset``: the command offset of the last event record
    folded in; ``pending``: commands sent and not yet answered."""

    ready: bool
    offset: int
    time: int
    connections: int
    pending: int
    slow_disconnects: int


class Gateway:
    def __init__(
        self, config: GatewayConfig, settings: Settings, specs: Sequence[MarketSpec]
    ) -> None:
        self.config = config
        self.settings = settings
        markets = Markets(tuple(specs))
        self.model = ReadModel(
            tuple(specs),
            default_leverage=settings.default_leverage,
            finished_orders=config.finished_orders,
            recent_fills=config.recent_fills,
        )
        self.follower = LogFollower(settings)
        self.board = PriceBoard(spec.symbol for spec in specs)
        self.price_follower = TopicFollower(
            settings,
            settings.prices_topic,
            settings.prices_partitions,
            PRICE_DECODER.decode,
            "price",
        )
        self.risk_follower = TopicFollower(
            settings, settings.risk_topic, settings.risk_partitions, RISK_DECODER.decode, "risk"
        )
        self.producer = AIOKafkaProducer(**settings.producer_config())
        self.sender = CommandSender(
            self.producer,
            settings.commands_topic,
            max_commands_per_record=config.max_commands_per_record,
            flush_interval_ms=config.flush_interval_ms,
            timeout_ms=config.engine_timeout_ms,
        )
        self.streams = Streams(self.model, self.board, Views(markets), markets)
        self.session = Session(config, markets, self.model, self.sender, self.streams)
        self.ready = False
        self.port = config.port
        """The port serving, once started (``config.port``, or the one picked for 0)."""
        self.started = asyncio.Event()
        self.caught_up = asyncio.Event()
        """Set once, when the gateway first became ready."""
        self.slow_disconnects = 0
        self._sockets: dict[web.WebSocketResponse, Connection] = {}
        app = web.Application()
        app.add_routes([*self.routes(), *health_routes(self.status)])
        self._runner = web.AppRunner(app, access_log=None)

    def routes(self) -> list[web.RouteDef]:
        """What the port serves beside the health checks: the native websocket. A front that
        speaks another protocol over the same logs and model (``services.binance``) serves its
        own routes instead, and pushes its own frames (``publish``, ``publish_price``,
        ``publish_risk``)."""
        return [web.get("/ws", self._websocket)]

    def publish(self, changes: Changes) -> None:
        """Push what one command changed (called right after the read model applied it)."""
        self.streams.publish(changes)

    def end_step(self) -> None:
        """Push what the step's records changed on the batched public channels (called after
        the records of one poll of the logs were folded in)."""
        self.streams.end_step()

    def publish_price(self, kind: PriceKind, symbol: str) -> None:
        """Push what a price message just taken by the board changed."""
        self.streams.publish_price(kind, symbol)

    def publish_risk(self, message: RiskMessage) -> None:
        """Push what a risk-topic message changed."""
        self.streams.publish_risk(message)

    def status(self) -> tuple[bool, GatewayStatus]:
        status = GatewayStatus(
            ready=self.ready,
            offset=self.model.offset,
            time=self.model.time,
            connections=len(self._sockets),
            pending=self.sender.pending,
            slow_disconnects=self.slow_disconnects,
        )
        return self.ready, status

    async def run(self, stop: asyncio.Event) -> None:
        await self.producer.start()
        sending: asyncio.Task[None] | None = None
        prices: asyncio.Task[None] | None = None
        risk: asyncio.Task[None] | None = None
        try:
            await self.follower.start()
            await self.price_follower.start()
            await self.risk_follower.start()
            await self._runner.setup()
            site = web.TCPSite(self._runner, self.config.host, self.config.port)
            await site.start()
            self.port = int(self._runner.addresses[0][1])
            self.started.set()
            log.info("gateway_started", url=f"ws://{self.config.host}:{self.port}/ws")
            sending = asyncio.create_task(self.sender.run())
            prices = asyncio.create_task(self._follow_prices(stop))
            risk = asyncio.create_task(self._follow_risk(stop))
            while not stop.is_set():
                batches = await self.follower.poll(_POLL_MS)
                for batch in batches:
                    self._apply(batch)
                if batches:
                    self.end_step()
                for task in (prices, risk):
                    if task.done():
                        task.result()  # it ends before ``stop`` only by an error: raised here
                if not self.ready and all(
                    f.caught_up for f in (self.follower, self.price_follower, self.risk_follower)
                ):
                    self.ready = True
                    self.caught_up.set()
                    log.info(
                        "gateway_ready", offset=self.model.offset, accounts=len(self.model.accounts)
                    )
        finally:
            self.ready = False
            await self._close_sockets()
            await self._runner.cleanup()
            for running in (sending, prices, risk):
                if running is not None:
                    running.cancel()
                    await asyncio.gather(running, return_exceptions=True)
            await self.follower.stop()
            await self.price_follower.stop()
            await self.risk_follower.stop()
            await self.producer.stop()
            log.info("gateway_stopped", offset=self.model.offset)

    async def _follow_prices(self, stop: asyncio.Event) -> None:
        """Take every newer index, mark and estimate, and push each at once."""
        while not stop.is_set():
            for message in await self.price_follower.poll(_POLL_MS):
                kind = self.board.apply(message)
                if kind is not None:
                    self.publish_price(kind, message.symbol)

    async def _follow_risk(self, stop: asyncio.Event) -> None:
        """Take every margin call and ADL indicator, and push each to its account at once."""
        while not stop.is_set():
            for message in await self.risk_follower.poll(_POLL_MS):
                self.publish_risk(message)

    def _apply(self, events: EventBatch) -> None:
        """Fold one event record in; after each command's result, answer its request (if it
        is ours) and push what it changed."""
        if events.error:
            log.warning("engine_refused_record", offset=events.offset, error=events.error)
        time = events.time or self.model.time
        for result in events.results:
            changes = self.model.apply(result, time)
            self.sender.resolve(result)
            self.publish(changes)
        self.model.offset = events.offset

    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        if not self.ready:
            return web.json_response(
                {"error": "the gateway is catching up with the event log; retry shortly"},
                status=503,
            )
        config = self.config
        ws = web.WebSocketResponse(
            max_msg_size=config.max_message_bytes,
            heartbeat=config.heartbeat_ms / 1000,
            timeout=_CLOSE_TIMEOUT_S,
            compress=False,
            decode_text=False,
        )
        await ws.prepare(request)
        transport = request.transport

        async def write(frame: bytes) -> None:
            await ws.send_frame(frame, WSMsgType.TEXT)

        async def write_many(frames: list[bytes]) -> None:
            # Several text frames in one write to the socket (aiohttp writes one per frame);
            # then, as aiohttp does, wait while the socket's buffer is above its high mark.
            if ws.closed or transport is None or transport.is_closing():
                raise ConnectionResetError("the websocket is closing")
            transport.write(text_frames(frames))
            await request.writer.drain()

        def abort() -> None:
            if transport is not None:
                transport.abort()

        connection = Connection(
            write,
            abort,
            send_buffer_bytes=config.send_buffer_bytes,
            limiter=self.session.connection_limiter(),
            peer=str(request.remote),
            write_many=write_many,
        )
        self._sockets[ws] = connection
        writer = asyncio.create_task(connection.run_writer())
        try:
            async for message in ws:
                if message.type is WSMsgType.TEXT:
                    self.session.handle(connection, message.data)
                elif message.type is WSMsgType.BINARY:
                    self.session.refuse_binary(connection)
        finally:
            if connection.slow:
                self.slow_disconnects += 1
            connection.close()
            self.streams.drop(connection)
            del self._sockets[ws]
            writer.cancel()
            await asyncio.gather(writer, return_exceptions=True)
        return ws

    async def _close_sockets(self) -> None:
        """Close every websocket (1001); abort those whose client does not answer in time."""
        sockets = list(self._sockets)
        closing = [
            ws.close(code=WSCloseCode.GOING_AWAY, message=b"gateway stopping") for ws in sockets
        ]
        try:
            await asyncio.wait_for(
                asyncio.gather(*closing, return_exceptions=True), _CLOSE_TIMEOUT_S
            )
        except TimeoutError:
            for connection in list(self._sockets.values()):
                connection.abort()


def text_frames(payloads: list[bytes]) -> bytes:
    """Unmasked, uncompressed, final websocket text frames (RFC 6455 5.2), as a server sends
    them, one after another."""
    out = bytearray()
    for payload in payloads:
        n = len(payload)
        if n < 126:
            out += _HEADER_7(0x81, n)
        elif n < 65_536:
            out += _HEADER_16(0x81, 126, n)
        else:
            out += _HEADER_64(0x81, 127, n)
        out += payload
    return bytes(out)


_HEADER_7 = struct.Struct("!BB").pack
_HEADER_16 = struct.Struct("!BBH").pack
_HEADER_64 = struct.Struct("!BBQ").pack
