"""One request: decoded, limited, checked, then answered from the read model or sent to the
engine as a command whose result answers it (``results``).

Everything here is synchronous: a request is handled completely in one step of the loop,
so a connection's commands reach the engine in the order it sent them, and a query sees the
read model between two commands, never in the middle of one. A command's answer comes later,
from the event log, through the callback given to ``CommandSender.submit``.

Exactly one response per frame: every path below ends in one ``send`` of a result or of an
error, or in one command whose callback sends one.
"""

import time
from collections.abc import Callable

import structlog

from exchange.engine_commands import CreateAccount, EngineCommand, Login
from services.gateway import convert, protocol, results
from services.gateway.auth import Authenticator, key_hash
from services.gateway.command_sender import CommandSender, wall_clock_ms
from services.gateway.config import GatewayConfig
from services.gateway.connection import Connection
from services.gateway.convert import Markets
from services.gateway.protocol import (
    ORDER_OPS,
    PUBLIC_OPS,
    REQUEST_WEIGHT,
    ErrorCode,
    Failure,
    RequestFailure,
    RequestId,
    encode_error,
    encode_result,
)
from services.gateway.rate_limit import TokenBucket, TokenBuckets
from services.gateway.read_model import ReadModel
from services.gateway.streams import Streams
from services.wire import CommandResult

log = structlog.get_logger("gateway")

_INTERNAL = protocol.ErrorBody(ErrorCode.INTERNAL, "the gateway failed to answer; see its log")

Build = Callable[[CommandResult], object]
"""Turns the engine's result for a command into the request's result (or ``Failure``)."""


def monotonic_ms() -> int:
    return time.monotonic_ns() // 1_000_000


class Session:
    """The request handlers of every connection of one gateway instance."""

    def __init__(
        self,
        config: GatewayConfig,
        markets: Markets,
        model: ReadModel,
        sender: CommandSender,
        streams: Streams,
    ) -> None:
        self.config = config
        self.markets = markets
        self.model = model
        self.views = streams.views
        self.sender = sender
        self.streams = streams
        self.auth = Authenticator(
            config.master_key,
            window_ms=config.login_window_ms,
            nonces_per_key=config.nonces_per_key,
        )
        self._order_limits: TokenBuckets[int] = TokenBuckets(
            config.account_order_limit, config.account_order_window_ms
        )
        """Per account, its order weight on this instance."""

    def connection_limiter(self) -> TokenBucket:
        config = self.config
        return TokenBucket(
            config.connection_request_limit, config.connection_request_window_ms, monotonic_ms()
        )

    # -------------------------------------------------------------------------- dispatch

    def handle(self, connection: Connection, frame: bytes) -> None:
        """Answer one text frame (exactly once, now or when the engine has answered)."""
        request_id: RequestId | None = None
        try:
            if len(frame) > self.config.max_frame_bytes:
                self._limit(connection, "")
                raise Failure(
                    ErrorCode.FRAME_TOO_LARGE,
                    f"a request may have at most {self.config.max_frame_bytes} bytes",
                )
            try:
                request = protocol.decode_request(frame)
            except RequestFailure as failure:
                request_id = failure.request_id
                self._limit(connection, "")
                raise
            request_id = request.id
            op = str(type(request).__struct_config__.tag)
            self._limit(connection, op)
            self._dispatch(connection, request, op)
        except Failure as failure:
            connection.send(encode_error(request_id, failure.body))
        except Exception:  # a bug must cost one answer, not the connection or the gateway
            log.exception("request_failed", request_id=request_id)
            connection.send(encode_error(request_id, _INTERNAL))

    def refuse_binary(self, connection: Connection) -> None:
        """Answer a binary frame: requests are JSON in text frames."""
        try:
            self._limit(connection, "")
            raise Failure(ErrorCode.BINARY_FRAME, "requests are JSON text frames")
        except Failure as failure:
            connection.send(encode_error(None, failure.body))

    def _limit(self, connection: Connection, op: str) -> None:
        """Spend the request's weight on its connection, and an order's on its account.

        Frames that are no valid request cost weight 1 too: a flood of garbage is limited
        like any other.
        """
        now = monotonic_ms()
        wait = connection.limiter.take(REQUEST_WEIGHT.get(op, 1), now)
        if wait:
            raise _rate_limited("connection", wait)
        if op in ORDER_OPS and connection.account is not None:
            wait = self._order_limits.take(connection.account, 1, now)
            if wait:
                raise _rate_limited("account order", wait)

    def _dispatch(self, connection: Connection, request: protocol.Request, op: str) -> None:
        account = connection.account
        if op not in PUBLIC_OPS and account is None:
            raise Failure(ErrorCode.UNAUTHENTICATED, f"log in before {op}")
        rid = request.id
        match request:
            case protocol.Ping():
                self._answer(connection, rid, protocol.Pong(wall_clock_ms()))
            case protocol.Markets():
                markets = [self.views.market(spec) for spec in self.markets.specs.values()]
                self._answer(connection, rid, markets)
            case protocol.CreateAccount():
                self._create_account(connection, rid)
            case protocol.Login():
                self._login(connection, request)
            case protocol.FundingHistory():
                symbol = self.markets.spec(request.symbol).symbol
                history = self.model.settlements[symbol][: -request.limit - 1 : -1]
                self._answer(connection, rid, [self.views.settlement(s) for s in history])
            case protocol.InsuranceFund():
                self._answer(connection, rid, self.views.insurance_fund(self.model, request.limit))
            case protocol.Subscribe():
                self.streams.subscribe(connection, request.channel)
                self._answer(connection, rid, protocol.ChannelAck(request.channel))
                self.streams.start(connection, request.channel)
            case protocol.Unsubscribe():
                self.streams.unsubscribe(connection, request.channel)
                self._answer(connection, rid, protocol.ChannelAck(request.channel))
            case _:
                assert account is not None
                self._account_request(connection, account, request)

    def _account_request(
        self, connection: Connection, account: int, request: protocol.Request
    ) -> None:
        """The ops of a logged-in account: commands to the engine, then queries."""
        markets, model, views, rid = self.markets, self.model, self.views, request.id
        match request:
            case protocol.PlaceOrder():
                symbol = request.symbol
                command: EngineCommand = convert.place(request, account, markets)
                self._command(
                    connection,
                    rid,
                    command,
                    lambda result: results.placed(result, model, views, account, symbol),
                )
            case protocol.AmendOrder() | protocol.CancelOrder():
                if isinstance(request, protocol.AmendOrder):
                    command = convert.amend(request, account, markets)
                else:
                    command = convert.cancel(request, account, markets)
                symbol, label = command.symbol, request.client_order_id
                self._command(
                    connection,
                    rid,
                    command,
                    lambda result: results.order_changed(
                        result, model, views, account, symbol, label
                    ),
                )
            case protocol.CancelAll():
                symbol = request.symbol
                command = convert.cancel_all(request, account, markets)
                self._command(
                    connection, rid, command, lambda result: results.cancelled_all(result, symbol)
                )
            case protocol.SetLeverage():
                command = convert.leverage(request, account, markets)
                self._command(connection, rid, command, results.leverage_set)
            case protocol.SetMarginMode():
                command = convert.margin_mode(request, account, markets)
                self._command(connection, rid, command, results.margin_mode_set)
            case protocol.AdjustMargin():
                symbol = request.symbol
                command = convert.adjust_margin(request, account, markets)
                self._command(
                    connection,
                    rid,
                    command,
                    lambda result: results.margin_adjusted(result, model, views, account, symbol),
                )
            case protocol.Deposit():
                command = convert.deposit(request, account, markets)
                self._command(
                    connection,
                    rid,
                    command,
                    lambda result: results.deposited(result, model, views, account),
                )
            case _:
                self._answer(connection, rid, self._query(account, request))

    def _query(self, account: int, request: protocol.Request) -> object:
        """A query's answer from the read model, as of the last command applied."""
        model, views = self.model, self.views
        match request:
            case protocol.OpenOrders():
                symbol = self._symbol(request.symbol)
                return [views.order(order) for order in model.open_orders(account, symbol)]
            case protocol.GetOrder():
                symbol, order_id = self._named_order(account, request)
                order = model.order(account, symbol, order_id)
                if order is None:
                    raise results.unknown_order(symbol, order_id)
                return views.order(order)
            case protocol.Positions():
                symbol = self._symbol(request.symbol)
                symbols = self.markets.specs if symbol is None else [symbol]
                return [views.position(model, account, s) for s in symbols]
            case protocol.Balances():
                return views.balance(model, account)
            case protocol.Fills():
                symbol = self._symbol(request.symbol)
                fills = model.account(account).fills
                chosen = [fill for fill in fills if symbol is None or fill.symbol == symbol]
                return [views.fill(fill) for fill in chosen[: request.limit]]
            case protocol.Liquidations():
                return views.liquidation_history(model, account, request.limit)
            case protocol.Margin():
                return views.margin(model, self.streams.risk, account)
        raise AssertionError(f"no handler for {type(request).__name__}")

    def _named_order(self, account: int, request: protocol.GetOrder) -> tuple[str, int]:
        """The market and engine id of the order a query names: its ``order_id``, or the
        account's latest order in the market with its ``client_order_id`` (open or recently
        finished), as the read model knows it, as of the last result read. (Amends and cancels
        by label are the engine's lookup: ``convert``.)"""
        symbol = self.markets.spec(request.symbol).symbol
        if request.order_id is not None:
            return symbol, request.order_id
        label = request.client_order_id
        assert label is not None  # the schema's rule: one of the two
        order = self.model.order_by_label(account, symbol, label)
        if order is None:
            raise results.unknown_label(symbol, label)
        return symbol, order.order_id

    def _symbol(self, symbol: str | None) -> str | None:
        return None if symbol is None else self.markets.spec(symbol).symbol

    # --------------------------------------------------------------------- auth, accounts

    def _create_account(self, connection: Connection, rid: RequestId) -> None:
        api_key, api_secret = self.auth.issue()
        self._command(
            connection,
            rid,
            CreateAccount(key_hash=key_hash(api_key)),
            lambda result: results.account_created(result, api_key, api_secret),
        )

    def _login(self, connection: Connection, request: protocol.Login) -> None:
        """This gateway's checks (timestamp, key and signature, its own nonces), then the
        engine's: the log orders every instance's logins, so a nonce passes once on all of
        them together (``Login``)."""
        if connection.account is not None:
            raise Failure(ErrorCode.ALREADY_LOGGED_IN, f"logged in as {connection.account}")
        if connection.logging_in:
            raise Failure(ErrorCode.ALREADY_LOGGED_IN, "a login is waiting for its answer")
        self.auth.login(
            api_key=request.api_key,
            timestamp=request.timestamp,
            nonce=request.nonce,
            signature=request.signature,
            now_ms=wall_clock_ms(),
            accounts=self.model.accounts,
        )
        command = Login(
            key_hash=key_hash(request.api_key), nonce=request.nonce, timestamp=request.timestamp
        )
        connection.logging_in = True

        def logged_in(result: CommandResult) -> protocol.LoggedIn:
            view = results.logged_in(result)
            connection.account = view.account
            self.streams.logged_in(connection)
            return view

        def settled() -> None:
            connection.logging_in = False

        self._command(connection, request.id, command, logged_in, settled=settled)

    # ---------------------------------------------------------------------------- answers

    def _answer(self, connection: Connection, rid: RequestId, result: object) -> None:
        connection.send(encode_result(rid, result))

    def _command(
        self,
        connection: Connection,
        rid: RequestId,
        command: EngineCommand,
        build: Build,
        *,
        settled: Callable[[], None] | None = None,
    ) -> None:
        """Send ``command``; answer ``rid`` from its result when the event log brings it.
        ``settled`` runs first, whatever the outcome (a result, a timeout, an unavailable
        engine)."""

        def answer(outcome: CommandResult | Failure) -> None:
            if settled is not None:
                settled()
            if isinstance(outcome, Failure):
                connection.send(encode_error(rid, outcome.body))
                return
            try:
                connection.send(encode_result(rid, build(outcome)))
            except Failure as failure:
                connection.send(encode_error(rid, failure.body))
            except Exception:  # as in ``handle``: never let one answer stop the log's loop
                log.exception("answer_failed", request_id=rid)
                connection.send(encode_error(rid, _INTERNAL))

        self.sender.submit(command, answer)


def _rate_limited(what: str, wait_ms: int) -> Failure:
    return Failure(
        ErrorCode.RATE_LIMITED, f"{what} rate limit reached; retry in {wait_ms} ms", wait_ms
    )
