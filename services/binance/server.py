"""The Binance front as a service: the native gateway's loop (``services.gateway.server``: the
logs folded into the read model, the command sender, the price and risk topics, readiness)
serving Binance's REST routes and websockets instead of the native ``/ws``.

Every HTTP request goes through ``_http``: the IP's request weight (``-1003`` with
``Retry-After``), then the endpoint's security (none, the API key header, or a signature over
the raw query and body), then its handler, whose answer or Binance error is written as JSON.
Before the front has read the logs to their ends, it answers 503, as the native gateway does.
"""

import asyncio
import json
from collections.abc import Sequence

import msgspec
import structlog
from aiohttp import WSMsgType, web

from exchange.engine_commands import CreateAccount, Deposit
from exchange.market import MarketSpec
from services.binance import errors, signing, ws_api
from services.binance.algo_orders import AlgoOrders
from services.binance.context import Call, Context, Endpoint, Security
from services.binance.errors import BinanceError
from services.binance.formats import Formats
from services.binance.income import IncomeBook
from services.binance.market_history import MarketHistory, PublicTrade
from services.binance.params import Params, parse
from services.binance.rest_private import PrivateApi
from services.binance.rest_public import PublicApi
from services.binance.user_stream import UserStreams
from services.binance.ws_streams import MarketStreams, StreamError, WsClient
from services.broker import create_topics
from services.engine_main import load_markets
from services.gateway import results
from services.gateway.auth import derive_secret, key_hash
from services.gateway.command_sender import wall_clock_ms
from services.gateway.config import GatewayConfig, gateway_config
from services.gateway.connection import Connection
from services.gateway.price_board import PriceKind
from services.gateway.protocol import Failure
from services.gateway.rate_limit import TokenBuckets
from services.gateway.read_model import Changes
from services.gateway.server import Gateway, serve
from services.gateway.session import monotonic_ms
from services.risk_messages import RiskMessage
from services.settings import Settings
from services.wire import CommandResult

log = structlog.get_logger("binance")

_MAX_BODY = 16_384


async def run_binance(settings: Settings, stop: asyncio.Event) -> None:
    """Serve Binance's API for the engine's markets on ``Settings.binance_port`` until
    ``stop``; a ``ValueError`` at once without the gateways' master key (API secrets derive
    from it, so keys made on the native gateway work here and the other way round)."""
    config = msgspec.structs.replace(gateway_config(settings), port=settings.binance_port)
    specs = load_markets(settings.markets_file)
    await create_topics(settings.bootstrap_servers, settings)
    await serve(BinanceFront(config, settings, specs), stop)


class BinanceFront(Gateway):
    """The gateway's loop and model, Binance's routes and pushes."""

    def __init__(
        self, config: GatewayConfig, settings: Settings, specs: Sequence[MarketSpec]
    ) -> None:
        self._endpoints: dict[tuple[str, str], Endpoint] = {}
        super().__init__(config, settings, specs)
        self.history = {spec.symbol: MarketHistory() for spec in specs}
        self.context = Context(
            model=self.model,
            board=self.board,
            markets=self.streams.markets,
            formats=Formats(self.streams.views),
            sender=self.sender,
            history=self.history,
            algo_orders=AlgoOrders(),
            income=IncomeBook(),
        )
        self.market_streams = MarketStreams(self.context)
        self.user_streams = UserStreams(self.context)
        key = Security.USER_STREAM
        for endpoint in [
            *PublicApi(self.context).endpoints(),
            *PrivateApi(self.context).endpoints(),
            Endpoint("POST", "/fapi/v1/listenKey", key, self._open_listen_key),
            Endpoint("PUT", "/fapi/v1/listenKey", key, self._keep_listen_key),
            Endpoint("DELETE", "/fapi/v1/listenKey", key, self._close_listen_key),
            Endpoint("POST", "/paper/v1/account", Security.NONE, self._create_account, 20),
            Endpoint("POST", "/paper/v1/deposit", Security.SIGNED, self._deposit, 5),
        ]:
            self._endpoints[endpoint.method, endpoint.path] = endpoint
        self._ws_tasks: set[asyncio.Task[None]] = set()
        self._ip_limits: TokenBuckets[str] = TokenBuckets(
            config.connection_request_limit, config.connection_request_window_ms
        )
        self._order_limits: TokenBuckets[int] = TokenBuckets(
            config.account_order_limit, config.account_order_window_ms
        )

    # ------------------------------------------------------------------ the gateway's hooks

    def routes(self) -> list[web.RouteDef]:
        return [web.route("*", "/{tail:(?!health/).*}", self._http)]

    def publish(self, changes: Changes) -> None:
        time = self.model.time
        for symbol, trade in changes.trades:
            public = PublicTrade(trade.trade_id, trade.price, trade.qty, trade.taker_side, time)
            self.history[symbol].trade(public)
        self.context.income.apply(changes, time)
        self.market_streams.publish(changes)
        self.user_streams.publish(changes)
        self.user_streams.expire(wall_clock_ms())

    def publish_price(self, kind: PriceKind, symbol: str) -> None:
        if kind is PriceKind.MARK:
            mark = self.board.mark[symbol]
            if mark.mark is not None:
                self.history[symbol].mark(mark.time, mark.mark)
            self.market_streams.publish_mark(symbol)

    def publish_risk(self, message: RiskMessage) -> None:
        self.user_streams.publish_risk(message)

    # --------------------------------------------------------------------------------- HTTP

    async def _http(self, request: web.Request) -> web.StreamResponse:
        try:
            return await self._answer(request)
        except BinanceError as error:
            return _error(error)
        except Failure as failure:  # a check of the native gateway's parts
            return _error(errors.from_failure(failure))
        except Exception:  # a bug costs one answer, never the front
            log.exception("binance_request_failed", path=request.path)
            return _error(BinanceError(errors.UNKNOWN, "the front failed to answer", status=500))

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        if not self.ready:
            raise BinanceError(
                errors.DISCONNECTED,
                "the front is catching up with the event log; retry shortly",
                status=503,
            )
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await self._websocket_binance(request)
        endpoint = self._endpoints.get((request.method, request.path.rstrip("/")))
        if endpoint is None:
            return web.json_response(
                {"code": -5000, "msg": f"Path {request.path}, Method {request.method} is invalid"},
                status=404,
            )
        now_monotonic = monotonic_ms()
        self._limit_ip(str(request.remote), endpoint.weight, now_monotonic)
        body = ""
        if request.can_read_body:
            if (request.content_length or 0) > _MAX_BODY:
                raise errors.bad_value("body", "too large")
            body = (await request.read()).decode(errors="replace")
        query = request.rel_url.raw_query_string
        call = Call(Params(parse(query, body)), wall_clock_ms())
        if endpoint.security is not Security.NONE:
            self._authenticate(call, request.headers.get("X-MBX-APIKEY"))
            if endpoint.security is Security.SIGNED:
                payload, signature = signing.rest_payload(query, body)
                signing.check_time(
                    call.params.text("timestamp"), call.params.text("recvWindow"), call.now
                )
                secret = derive_secret(self.config.master_key, call.api_key)
                signing.verify(secret, payload, signature)
        if endpoint.orders:
            self._limit_orders(call.account, endpoint.orders, now_monotonic)
        answer = await endpoint.handler(call)
        return web.Response(
            body=msgspec.json.encode(answer), content_type="application/json", status=200
        )

    def _authenticate(self, call: Call, api_key: str | None) -> None:
        """The account of the ``X-MBX-APIKEY`` header: ``-2014`` if it is no key's shape,
        ``-2015`` if no account has it."""
        if not api_key or len(api_key) > 128 or not api_key.isalnum():
            raise BinanceError(errors.BAD_API_KEY_FMT, "API-key format invalid.", status=401)
        account = self.model.accounts.get(key_hash(api_key))
        if account is None:
            raise BinanceError(
                errors.REJECTED_MBX_KEY,
                "Invalid API-key, IP, or permissions for action.",
                status=401,
            )
        call.account, call.api_key = account, api_key

    def _limit_ip(self, peer: str, weight: int, now: int) -> None:
        wait = self._ip_limits.take(peer, weight, now)
        if wait:
            raise errors.rate_limited(
                f"Too many requests; request weight limit reached, retry in {wait} ms.", wait
            )

    def _limit_orders(self, account: int, count: int, now: int) -> None:
        wait = self._order_limits.take(account, count, now)
        if wait:
            error = errors.rate_limited(f"Too many new orders; retry in {wait} ms.", wait)
            error.code = errors.TOO_MANY_ORDERS
            raise error

    # ------------------------------------------------------------------------- listen keys

    async def _open_listen_key(self, call: Call) -> object:
        return {"listenKey": self.user_streams.open(call.account, call.now)}

    async def _keep_listen_key(self, call: Call) -> object:
        key = self.user_streams.keep_alive(call.account, call.now)
        if key is None:
            raise BinanceError(errors.INVALID_LISTEN_KEY, "This listenKey does not exist.")
        return {"listenKey": key}

    async def _close_listen_key(self, call: Call) -> object:
        self.user_streams.close(call.account)
        return {}

    # --------------------------------------------------------------------------- websockets

    def _initial(self, request: web.Request) -> tuple[list[str], int | None, str | None]:
        """What a websocket's URL asks for: streams (``/stream?streams=a/b``, ``/ws/a/b``;
        ccxt's numeric path segments are no stream and are skipped) and a user stream's
        account (``?listenKey=K`` or ``/ws/K``); ``-1125`` for an unknown listen key."""
        now = wall_clock_ms()
        names: list[str] = []
        account = key = None
        wanted = request.query.get("listenKey")
        if "streams" in request.query:
            names = [n for n in request.query["streams"].split("/") if n]
        else:
            _, _, tail = request.path.partition("/ws/")
            for segment in [part for part in tail.split("/") if part]:
                if "@" in segment:
                    names.append(segment)
                elif wanted is None and self.user_streams.account_of(segment, now) is not None:
                    wanted = segment
        if wanted is not None:
            account = self.user_streams.account_of(wanted, now)
            if account is None:
                raise BinanceError(errors.INVALID_LISTEN_KEY, "This listenKey does not exist.")
            key = wanted
        for name in names:
            try:
                self.market_streams.check(name)
            except StreamError as error:
                raise BinanceError(errors.INVALID_PARAMETER, str(error)) from None
        return names, account, key

    async def _websocket_binance(self, request: web.Request) -> web.StreamResponse:
        api = request.path.rstrip("/").startswith("/ws-fapi")
        names, account, key = ([], None, None) if api else self._initial(request)
        config = self.config
        ws = web.WebSocketResponse(
            max_msg_size=config.max_message_bytes,
            heartbeat=config.heartbeat_ms / 1000,
            compress=False,
            decode_text=False,
        )
        await ws.prepare(request)

        async def write(frame: bytes) -> None:
            await ws.send_frame(frame, WSMsgType.TEXT)

        def abort() -> None:
            if request.transport is not None:
                request.transport.abort()

        connection = Connection(
            write,
            abort,
            send_buffer_bytes=config.send_buffer_bytes,
            limiter=self.session.connection_limiter(),
            peer=str(request.remote),
        )
        combined = request.path.rstrip("/").endswith("/stream")
        client = WsClient(connection, combined=combined)
        self.market_streams.subscribe(client, names)
        if account is not None and key is not None:
            self.user_streams.attach(client, key, account)
        self._sockets[ws] = connection
        writer = asyncio.create_task(connection.run_writer())
        try:
            async for message in ws:
                if message.type is not WSMsgType.TEXT:
                    continue
                if api:
                    self._ws_api_request(client, message.data)
                else:
                    self._ws_stream_request(client, message.data)
        finally:
            connection.close()
            self.market_streams.drop(client)
            self.user_streams.drop(client)
            del self._sockets[ws]
            writer.cancel()
            await asyncio.gather(writer, return_exceptions=True)
        return ws

    def _ws_stream_request(self, client: WsClient, frame: bytes) -> None:
        """``SUBSCRIBE``, ``UNSUBSCRIBE``, ``LIST_SUBSCRIPTIONS`` (and the property methods,
        answered and otherwise ignored), each answered with its ``id``."""
        wait = client.connection.limiter.take(1, monotonic_ms())
        request_id: object = None
        try:
            if wait:
                raise StreamError("Too many requests")
            request = _STREAM_DECODER.decode(frame)
            request_id = request.id
            method = request.method.upper()
            result: object = None
            if method == "SUBSCRIBE":
                self.market_streams.subscribe(client, [str(p) for p in request.params])
            elif method == "UNSUBSCRIBE":
                self.market_streams.unsubscribe(client, [str(p) for p in request.params])
            elif method == "LIST_SUBSCRIPTIONS":
                result = sorted(client.streams)
            elif method == "GET_PROPERTY":
                result = False
            elif method != "SET_PROPERTY":
                raise StreamError(f"unknown method {request.method!r}")
            client.send(msgspec.json.encode({"result": result, "id": request_id}))
        except (StreamError, msgspec.DecodeError) as error:
            body = {"code": 2, "msg": f"Invalid request: {error}"}
            client.send(msgspec.json.encode({"error": body, "id": request_id}))

    def _ws_api_request(self, client: WsClient, frame: bytes) -> None:
        """One WebSocket API request: answered when its handler is (a command waits for the
        engine), so it runs as a task; answers carry the request's ``id``."""

        async def run() -> None:
            request_id: object = None
            try:
                request = ws_api.decode(frame)
                request_id = request.id
                wait = client.connection.limiter.take(1, monotonic_ms())
                if wait:
                    raise errors.rate_limited("Too many requests.", wait)
                result = await ws_api.answer(
                    request,
                    self._endpoints,
                    self._authenticate,
                    lambda api_key: derive_secret(self.config.master_key, api_key),
                    wall_clock_ms(),
                )
                answer: object = {"id": request_id, "status": 200, "result": result}
            except BinanceError as error:
                answer = {"id": request_id, "status": error.status, "error": error.body()}
            except Failure as failure:
                refused = errors.from_failure(failure)
                answer = {"id": request_id, "status": refused.status, "error": refused.body()}
            except Exception:
                log.exception("binance_ws_api_failed")
                body = {"code": errors.UNKNOWN, "msg": "the front failed to answer"}
                answer = {"id": request_id, "status": 500, "error": body}
            client.send(msgspec.json.encode(answer))

        task = asyncio.create_task(run())
        self._ws_tasks.add(task)
        task.add_done_callback(self._ws_tasks.discard)

    # --------------------------------------------------------------- paper accounts (ours)

    async def _create_account(self, call: Call) -> object:
        """A new paper account: an API key and its secret, shown once (the native gateway's
        ``create_account``; not a Binance endpoint)."""
        api_key, api_secret = self.session.auth.issue()

        def build(result: CommandResult) -> object:
            created = results.account_created(result, api_key, api_secret)
            return {"account": created.account, "apiKey": api_key, "secretKey": api_secret}

        return await self.context.command(CreateAccount(key_hash=key_hash(api_key)), build)

    async def _deposit(self, call: Call) -> object:
        """Paper money from the faucet into the account (signed; not a Binance endpoint)."""
        amount = self.context.markets.amount(call.params.required("amount"))
        account = call.account

        def build(result: CommandResult) -> object:
            balance = results.deposited(result, self.model, self.streams.views, account)
            return {"asset": balance.asset, "balance": balance.wallet}

        return await self.context.command(Deposit(account=account, amount=amount), build)


class _StreamRequest(msgspec.Struct, frozen=True):
    method: str
    params: list[str | int] = []
    id: int | str | None = None


_STREAM_DECODER = msgspec.json.Decoder(_StreamRequest)


def _error(error: BinanceError) -> web.Response:
    headers = {}
    if error.retry_after_s is not None:
        headers["Retry-After"] = str(error.retry_after_s)
    return web.Response(
        text=json.dumps(error.body()),
        status=error.status,
        content_type="application/json",
        headers=headers,
    )
