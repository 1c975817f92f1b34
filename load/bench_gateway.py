"""The websocket gateway's benchmark: many clients trading through the real gateway and engine.

What it runs, on loopback: its own embedded broker (``services.broker``), the real engine
(``exchange engine``) and ``--gateways`` instances (1) of the real gateway (``exchange
gateway``) as processes, as ``exchange up`` starts them, and ``--workers`` client processes (the
load generator, kept out of the gateways' processes and event loops) holding ``--clients``
websocket connections between them, each with an account of its own, created, logged in,
funded and subscribed through the protocol before anything is measured. Several gateway
instances run side by side on the same logs, as the design allows (each folds the whole event
log, so each pays the fold), each on a port of its own; client ``i`` uses instance ``i % N``.
The gateways' CPU is reported summed (``gateway``) and per instance
(``gateway_cpu_percent``).

What it measures:

* **Open-loop latency.** Every request has a scheduled send time (``t0 + i / rate`` over all
  clients); a client process sends what is due every millisecond, and a request's latency runs
  from its *scheduled* time to the arrival of the gateway's response (which, for a command, the
  gateway sends only after the engine's event came back through the broker). A stall anywhere
  (the client process, the gateway, the broker, the engine) shows as latency instead of quietly
  lowering the offered rate (no coordinated omission). The first ``--warmup`` seconds of a step
  are sent but not counted. The headline figures are the order commands' (``latency_ms``); the
  queries, answered from the gateway's read model without the engine, are apart
  (``query_latency_ms``). The offered rate counts every request, queries included (6 %).
* **The floor**, in the same run: the same rate through a bare echo service and a broker of the
  same build and settings (``load.echo_service`` via ``load.bench_engine_service.Bench``: two
  hops, command → service → event, no websocket, no engine), before the gateway starts, so the
  two never share the machine.
* **A rate sweep**: the headline rate (``--rate``), then ``--sweep`` rates in turn, each step
  bounded in time, until a step's p99 passes ``--p99-limit-ms`` (100) or it loses answers; the
  highest rate before that is the sustained rate.

The mix (``MIX``), per client and drawn in advance from ``--seed``: limit orders near a fixed
reference price (passive GTC and post-only behind it; IOC limits through it that trade), market
orders, cancels and amends of the client's own resting orders (it learns them from its acks and
its ``orders`` push), and queries. Every client subscribes to ``orders`` and ``fills``; the first
``--trades-subscribers`` also to ``trades.BTCUSDT`` and the next ``--book-subscribers`` to
``book.BTCUSDT``; pushes are counted by channel. Errors are counted by code, a ``rate_limited``
included; the gateway's rate limits are raised for the run (``GATEWAY_LIMITS``), and the report
says so. A cancel or amend answered ``unknown_order`` for an order whose end (a fill by another
client's taker) the client had already been pushed is the exchange answering a lost race
correctly: it is counted as ``lost_races``, apart from the errors.

Every request must get exactly one response; a step whose requests are not all answered
within ``engine_timeout`` + ``STEP_GRACE_S`` fails. The result is one JSON object on stdout, a
short table on stderr; logs go to stderr. The machine is shared and noisy: compare the ratios
within one run, not absolute figures across runs.

Run: ``python -m load.bench_gateway [--rate 2000 --clients 200 ...]``, ``--quick`` for a tiny
run (a few clients at a low rate, seconds).
"""

import argparse
import asyncio
import math
import multiprocessing
import os
import random
import secrets
import signal
import time
import uuid
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from contextlib import suppress
from dataclasses import asdict, dataclass, field, replace
from enum import IntEnum
from multiprocessing.connection import Connection as Pipe
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import structlog

from load.bench_engine_service import (
    Bench,
    Service,
    StreamGenerator,
    engine_command,
    percentiles_ms,
    process_cpu_seconds,
    service_env,
    versions,
)
from load.bench_engine_service import Options as EngineBenchOptions
from load.bench_run import BenchError, bench_main, cancel_on_sigterm, ratio_of, workdir
from load.echo_service import configure_logging
from services.broker import EmbeddedBroker, create_topics, free_port, free_ports, start_broker
from services.gateway.auth import sign_login
from services.settings import Settings, env_var, load_settings

log = structlog.get_logger("bench")

TARGET_P99_RATIO = 2.0
"""The issue's latency target: the gateway's p99 ack latency at 2,000 orders/s within 2x the
floor's p99."""
TARGET_SUSTAINED_RATE = 10_000
"""The issue's throughput target: the highest offered rate whose p99 stays within the limit."""
P99_LIMIT_MS = 100.0
"""The sweep's limit: a step whose p99 passes it is not sustained."""

SYMBOL = "BTCUSDT"
REFERENCE = 600_000
"""The reference price in BTCUSDT ticks (0.1): 60,000.0 USDT. Orders are placed around it."""
TICK_DIVISOR = 10
LOT_DIVISOR = 1_000
"""BTCUSDT's grid: a tick is 0.1, a lot 0.001 (``exchange.default_markets``)."""
MIN_LOTS, MAX_LOTS = 2, 20
"""Order sizes: 0.002 BTC (120 USDT, above the 100 USDT minimum notional) to 0.020 BTC."""
MEAN_DEPTH_TICKS = 6.0
"""Mean distance of a passive order behind the reference (geometric), at least one tick."""
CROSS_TICKS = 3
"""An IOC limit that trades is priced this many ticks through the reference."""
MAX_RESTING = 25
"""A client with this many resting orders cancels one instead of placing another, so the book
stays bounded (clients × this) however long the run."""
DEPOSIT_USDT = 50_000
"""Each account's paper money (the faucet's default cap is 100,000): far above the margin its
orders need at the default 20x leverage, so a margin refusal would mean a bug."""

GATEWAY_LIMITS = {
    "gateway_connection_request_limit": 1_000_000,
    "gateway_account_order_limit": 1_000_000,
    "gateway_nonces_per_key": 1_000_000,
}
"""The gateway's rate limits for the run (defaults: 600 request weight per connection and 300
orders per account per 10 s, far below what 200 clients at 10,000/s send): raised through the
``EXCHANGE_GATEWAY_*`` variables so that the benchmark measures the gateway, not its limiter.
A ``rate_limited`` answer would still be counted as an error."""

STEP_GRACE_S = 5.0
"""How long after a step's last send, beyond the gateway's engine timeout, a step waits for the
last answers before it counts the rest as lost."""
SETUP_TIMEOUT_S = 120.0
START_TIMEOUT_S = 60.0
SETUP_CONCURRENCY = 32
"""Clients set up at once (each sends four requests in turn)."""


class Kind(IntEnum):
    """The kinds of request in the mix, as counted in the report."""

    PASSIVE_GTC = 0
    PASSIVE_POST_ONLY = 1
    CROSS_IOC = 2
    MARKET = 3
    CANCEL = 4
    AMEND_PRICE = 5
    AMEND_QTY = 6
    QUERY_OPEN_ORDERS = 7
    QUERY_BALANCES = 8
    QUERY_POSITIONS = 9


KINDS = tuple(kind.name.lower() for kind in Kind)

MIX: tuple[tuple[Kind, float], ...] = (
    (Kind.PASSIVE_GTC, 0.36),
    (Kind.PASSIVE_POST_ONLY, 0.14),
    (Kind.CROSS_IOC, 0.08),
    (Kind.MARKET, 0.04),
    (Kind.CANCEL, 0.24),
    (Kind.AMEND_PRICE, 0.05),
    (Kind.AMEND_QTY, 0.03),
    (Kind.QUERY_OPEN_ORDERS, 0.02),
    (Kind.QUERY_BALANCES, 0.02),
    (Kind.QUERY_POSITIONS, 0.02),
)
"""What a request is, by share of all requests (94 % order commands, 6 % queries). A cancel or
amend drawn for a client with no resting order becomes a passive placement, and a placement
drawn for a client at ``MAX_RESTING`` becomes a cancel: the report counts what was sent."""

ORDER_KINDS = frozenset(
    {
        Kind.PASSIVE_GTC,
        Kind.PASSIVE_POST_ONLY,
        Kind.CROSS_IOC,
        Kind.MARKET,
        Kind.CANCEL,
        Kind.AMEND_PRICE,
        Kind.AMEND_QTY,
    }
)
ENDED = frozenset({"filled", "cancelled", "expired"})


# ------------------------------------------------------------------------ the frames


class _Place(msgspec.Struct, omit_defaults=True):
    id: int
    op: str
    symbol: str
    side: str
    qty: str
    type: str = "limit"
    price: str | None = None
    tif: str = "GTC"


class _Target(msgspec.Struct, omit_defaults=True):
    """``cancel_order`` and ``amend_order``."""

    id: int
    op: str
    symbol: str
    order_id: int
    price: str | None = None
    qty: str | None = None


class _Query(msgspec.Struct, omit_defaults=True):
    id: int
    op: str
    symbol: str | None = None


class _ErrorBody(msgspec.Struct):
    code: str


_NONE = msgspec.Raw(b"")
"""An absent payload (``msgspec.Raw`` cannot be in a union with None)."""


class _Frame(msgspec.Struct):
    """Any frame from the gateway: a response (``id`` with ``result`` or ``error``) or a push
    (``channel`` with ``data``). The payloads stay raw until someone needs them."""

    id: int | str | None = None
    result: msgspec.Raw = _NONE
    error: _ErrorBody | None = None
    channel: str | None = None
    data: msgspec.Raw = _NONE


class _OrderState(msgspec.Struct):
    """The part of an order view (an ack or an ``orders`` push) a client tracks."""

    order_id: int
    status: str


class _OrderPush(msgspec.Struct):
    data: _OrderState


_PUSH = b'{"channel":"'
"""How the gateway writes a push (``protocol.Push``: channel first): the channel is read from
the frame's first bytes, so counting a push costs no JSON decoding."""
_PUSH_AT = len(_PUSH)
_PUSHED_ORDER = msgspec.json.Decoder(_OrderPush).decode
_ENCODE = msgspec.json.Encoder().encode
_FRAME = msgspec.json.Decoder(_Frame).decode
_ORDER = msgspec.json.Decoder(_OrderState).decode
_JSON = msgspec.json.Decoder().decode


def price_text(ticks: int) -> str:
    return f"{ticks // TICK_DIVISOR}.{ticks % TICK_DIVISOR}"


def qty_text(lots: int) -> str:
    return f"{lots // LOT_DIVISOR}.{lots % LOT_DIVISOR:03d}"


# ------------------------------------------------------------------------ the schedule


@dataclass(frozen=True)
class Step:
    """One measured step: ``count`` requests over all workers at ``rate`` per second from
    ``t0_ns`` (``time.monotonic_ns``, the same clock in every process on Linux); the first
    ``warmup`` of them are not counted. Orders are placed around ``reference`` (ticks): the
    benchmark's fixed price, or the mark of a replay that moves it (``exchange load``); their
    sizes are the mix's times ``lot_factor``, which keeps them above the minimum notional at a
    lower price (``lot_factor_at``)."""

    index: int
    rate: int
    count: int
    warmup: int
    t0_ns: int
    reference: int = REFERENCE
    lot_factor: int = 1

    def scheduled(self, i: int) -> int:
        return self.t0_ns + i * 1_000_000_000 // self.rate


def lot_factor_at(reference: int) -> int:
    """How many times the mix's sizes an order needs at ``reference`` (ticks) to stay as far
    above the minimum notional as at ``REFERENCE``: 1 there and above."""
    return max(1, -(-REFERENCE // max(1, reference)))


def step_draws(seed: int, step: int, worker: int) -> random.Random:
    """The random draws of one worker in one step: reproducible from the seed."""
    return random.Random(f"{seed}-{step}-{worker}")


def draw_kind(rng: random.Random) -> Kind:
    u = rng.random()
    for kind, share in MIX:
        if u < share:
            return kind
        u -= share
    return MIX[0][0]


# ------------------------------------------------------------------------ a client process


@dataclass
class Client:
    """One websocket connection, its account, and the orders it knows are resting."""

    index: int
    ws: "aiohttp.ClientWebSocketResponse[bool]"
    gateway: int = 0
    """Which gateway instance it is connected to (its place in the worker's ``urls``)."""
    account: int = 0
    resting: dict[int, tuple[bool, int, int]] = field(default_factory=dict)
    """order id → (is buy, price ticks, open lots as last known)."""
    ended: set[int] = field(default_factory=set)
    """Orders the client has been told ended (pushed or answered): a cancel of one of these
    answered ``unknown_order`` lost a race, it is not an error."""
    setup_waiting: dict[str, "asyncio.Future[_Frame]"] = field(default_factory=dict)


class Worker:
    """A client process: its share of the connections, one event loop, answers to the
    orchestrator over a pipe. Client ``i`` connects to gateway ``urls[i % len(urls)]``, so the
    clients are spread round-robin over the instances whatever the workers. Requests of all
    steps are numbered from 0 in this process; a request's id is its number. The arrays below
    hold the current step's requests only, indexed by id − ``base`` (the first id of the step),
    so that a long run of many steps keeps its memory bounded."""

    def __init__(
        self,
        urls: Sequence[str],
        clients: Sequence[int],
        worker: int,
        workers: int,
        options: "Options",
    ) -> None:
        self.urls = list(urls)
        self.client_ids = list(clients)
        self.worker = worker
        self.workers = workers
        self.options = options
        self.clients: list[Client] = []
        self.base = 0
        self.reference = REFERENCE
        self.lot_factor = 1
        self.scheduled = array("q")
        self.answered_ns = array("q")
        self.sent_ns = array("q")
        self.kinds = bytearray()
        self.owner = array("i")
        """Which client (index into ``clients``) sent each request."""
        self.target = array("q")
        """The order a cancel or amend was aimed at (0 for other kinds)."""
        self.repeated = 0
        self.unknown = 0
        self.errors: Counter[str] = Counter()
        self.error_kinds: Counter[str] = Counter()
        self.lost_races = 0
        self.pushes: Counter[str] = Counter()
        self.push_gaps = 0
        self._seqs: dict[tuple[int, str], int] = {}
        self._readers: list[asyncio.Task[None]] = []
        self._session: aiohttp.ClientSession | None = None
        self._progress = asyncio.Event()
        self._placed: dict[int, tuple[bool, int, int]] = {}
        """What a placement or amend in flight will leave resting if it rests."""

    # --------------------------------------------------------------------- setup

    async def setup(self, deposit: str) -> dict[str, Any]:
        """Connect, create and log in an account, fund it and subscribe, for every client; how
        many clients each gateway instance got."""
        started = time.monotonic()
        self._session = aiohttp.ClientSession()
        limit = asyncio.Semaphore(SETUP_CONCURRENCY)
        options = self.options

        async def one(position: int, index: int) -> Client:
            async with limit:
                assert self._session is not None
                gateway = index % len(self.urls)
                ws = await self._session.ws_connect(
                    f"{self.urls[gateway]}/ws", max_msg_size=0, decode_text=False, autoping=True
                )
                client = Client(position, ws, gateway)
                self._readers.append(asyncio.create_task(self._read(client)))
                created = await self._setup_call(client, "create_account")
                api_key, secret = created["api_key"], created["api_secret"]
                timestamp = time.time_ns() // 1_000_000
                nonce = uuid.uuid4().hex
                logged = await self._setup_call(
                    client,
                    "login",
                    api_key=api_key,
                    timestamp=timestamp,
                    nonce=nonce,
                    signature=sign_login(secret, timestamp, nonce),
                )
                client.account = logged["account"]
                await self._setup_call(client, "deposit", amount=deposit)
                channels = ["orders", "fills"]
                if index < options.trades_subscribers:
                    channels.append(f"trades.{SYMBOL}")
                elif index < options.trades_subscribers + options.book_subscribers:
                    channels.append(f"book.{SYMBOL}")
                for channel in channels:
                    await self._setup_call(client, "subscribe", channel=channel)
                return client

        made = await asyncio.gather(
            *(one(position, index) for position, index in enumerate(self.client_ids))
        )
        self.clients = list(made)
        return {
            "clients": len(self.clients),
            "clients_by_gateway": self._by_gateway(client.gateway for client in self.clients),
            "seconds": round(time.monotonic() - started, 3),
        }

    def _by_gateway(self, gateways: Iterable[int]) -> list[int]:
        """How many of ``gateways`` (instance numbers) name each instance, in order."""
        counts = Counter(gateways)
        return [counts[gateway] for gateway in range(len(self.urls))]

    async def _setup_call(self, client: Client, op: str, **fields: Any) -> Any:
        request_id = f"setup-{uuid.uuid4().hex[:12]}"
        future: asyncio.Future[_Frame] = asyncio.get_running_loop().create_future()
        client.setup_waiting[request_id] = future
        await client.ws.send_frame(
            _ENCODE({"id": request_id, "op": op, **fields}), aiohttp.WSMsgType.TEXT
        )
        frame = await asyncio.wait_for(future, SETUP_TIMEOUT_S)
        if frame.error is not None or not frame.result:
            raise BenchError(f"setup {op} of client {client.index} failed: {frame.error}")
        return _JSON(frame.result)

    # --------------------------------------------------------------------- reading

    async def _read(self, client: Client) -> None:
        ws = client.ws
        take = self._take
        try:
            while True:
                message = await ws.receive()
                if message.type not in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                    return
                take(client, message.data, time.monotonic_ns())
        except Exception as error:  # a bug here must fail the run, not hang it
            log.exception("client reader failed", client=client.index)
            for waiting in client.setup_waiting.values():
                if not waiting.done():
                    waiting.set_exception(error)
            raise

    def _take(self, client: Client, data: bytes, now: int) -> None:
        if data.startswith(_PUSH):  # counted by channel; only an order's is read further
            channel = data[_PUSH_AT : data.index(b'"', _PUSH_AT)]
            self.pushes[channel.decode()] += 1
            if channel == b"orders":
                order = _PUSHED_ORDER(data).data
                if order.status in ENDED:
                    client.resting.pop(order.order_id, None)
                    client.ended.add(order.order_id)
            return
        frame = _FRAME(data)
        if frame.channel is not None:  # a push written some other way: counted all the same
            self.pushes[frame.channel] += 1
            return
        request_id = frame.id
        if type(request_id) is not int:
            waiting = client.setup_waiting.pop(str(request_id), None)
            if waiting is None:
                self.unknown += 1
                if frame.error is not None:
                    self.errors[frame.error.code] += 1
            else:
                waiting.set_result(frame)
            return
        request = request_id - self.base
        if not 0 <= request < len(self.answered_ns) or self.owner[request] != client.index:
            self.unknown += 1
            return
        if self.answered_ns[request]:
            self.repeated += 1
            return
        self.answered_ns[request] = now
        self._progress.set()
        kind = self.kinds[request]
        if frame.error is not None:
            code = frame.error.code
            target = self.target[request]
            if code == "unknown_order" and target in client.ended:
                self.lost_races += 1
            else:
                self.errors[code] += 1
                self.error_kinds[f"{KINDS[kind]}:{code}"] += 1
            return
        if kind in ORDER_KINDS and kind != Kind.CANCEL and frame.result:
            order = _ORDER(frame.result)
            if order.status in ENDED:
                client.resting.pop(order.order_id, None)
                client.ended.add(order.order_id)
            elif kind <= Kind.PASSIVE_POST_ONLY:
                client.resting[order.order_id] = self._placed.pop(request, (True, 0, 0))
            elif kind == Kind.AMEND_PRICE or kind == Kind.AMEND_QTY:
                amended = self._placed.pop(request, None)
                if amended is not None and order.order_id in client.resting:
                    client.resting[order.order_id] = amended

    # --------------------------------------------------------------------- sending

    async def step(self, step: Step) -> dict[str, Any]:
        """Send this worker's share of ``step`` on schedule; wait for the answers; report."""
        options = self.options
        self._placed = {}
        self.reference = step.reference
        self.lot_factor = step.lot_factor
        # Every request of the steps before has been answered or given up: their arrays go,
        # and so do the orders known to have ended (only a request in flight can race one).
        self.base += len(self.scheduled)
        for column in (self.scheduled, self.answered_ns, self.sent_ns, self.owner, self.target):
            del column[:]
        del self.kinds[:]
        for known in self.clients:
            known.ended.clear()
        rng = step_draws(options.seed, step.index, self.worker)
        mine = range(self.worker, step.count, self.workers)
        n = len(mine)
        clients = self.clients
        count = len(clients)
        # Drawn in advance: the client of each request, its kind and its numbers.
        who = [rng.randrange(count) for _ in range(n)]
        what = [draw_kind(rng) for _ in range(n)]
        numbers = [rng.random() for _ in range(n)]
        sizes = [
            rng.randint(MIN_LOTS, MAX_LOTS) if rng.random() < 0.8 else MIN_LOTS for _ in range(n)
        ]
        depths = [1 + int(rng.expovariate(1.0 / MEAN_DEPTH_TICKS)) for _ in range(n)]
        for k, i in enumerate(mine):
            self.scheduled.append(step.scheduled(i))
            self.answered_ns.append(0)
            self.sent_ns.append(0)
            self.kinds.append(what[k])
            self.owner.append(who[k])
            self.target.append(0)
        cpu0 = time.process_time()
        push0 = Counter(self.pushes)
        errors0, races0, kinds0 = Counter(self.errors), self.lost_races, Counter(self.error_kinds)
        repeated0, unknown0 = self.repeated, self.unknown
        sent = 0
        sleep = asyncio.sleep
        monotonic_ns = time.monotonic_ns
        scheduled = self.scheduled
        while sent < n:
            now = monotonic_ns()
            while sent < n and scheduled[sent] <= now:
                request = sent
                client = clients[who[sent]]
                frame = self._frame(
                    request, client, what[sent], numbers[sent], sizes[sent], depths[sent]
                )
                self.sent_ns[request] = monotonic_ns()
                await client.ws.send_frame(frame, aiohttp.WSMsgType.TEXT)
                sent += 1
            if sent < n:
                await sleep(max(0.0005, (scheduled[sent] - monotonic_ns()) / 1e9))
        deadline = time.monotonic() + options.engine_timeout_s + STEP_GRACE_S
        answered = self.answered_ns
        while time.monotonic() < deadline:
            missing = next((r for r in range(n) if not answered[r]), None)
            if missing is None:
                break
            self._progress.clear()
            with suppress(TimeoutError):
                await asyncio.wait_for(self._progress.wait(), 0.2)
        cpu = time.process_time() - cpu0
        warm = sum(1 for i in mine if i < step.warmup)
        kinds = self.kinds
        commands = [r for r in range(warm, n) if answered[r] and kinds[r] in ORDER_KINDS]
        queries = [r for r in range(warm, n) if answered[r] and kinds[r] not in ORDER_KINDS]
        latencies = array("q", (answered[r] - scheduled[r] for r in commands))
        query_latencies = array("q", (answered[r] - scheduled[r] for r in queries))
        at_ms = array("i", ((scheduled[r] - step.t0_ns) // 1_000_000 for r in commands))
        lags = array("q", (self.sent_ns[r] - scheduled[r] for r in range(n)))
        sent_kinds = Counter(KINDS[self.kinds[r]] for r in range(n))
        owner = self.owner
        by_gateway = self._by_gateway(clients[owner[r]].gateway for r in range(n) if answered[r])
        return {
            "worker": self.worker,
            "sent": n,
            "measured": n - warm,
            "answered": sum(1 for r in range(n) if answered[r]),
            "answered_by_gateway": by_gateway,
            "latencies": latencies.tobytes(),
            "query_latencies": query_latencies.tobytes(),
            "scheduled_ms": at_ms.tobytes(),
            "send_lag": lags.tobytes(),
            "repeated": self.repeated - repeated0,
            "unknown": self.unknown - unknown0,
            "errors": dict(Counter(self.errors) - errors0),
            "error_kinds": dict(Counter(self.error_kinds) - kinds0),
            "lost_races": self.lost_races - races0,
            "pushes": dict(Counter(self.pushes) - push0),
            "kinds": dict(sent_kinds),
            "cpu_seconds": round(cpu, 3),
            "resting": sum(len(c.resting) for c in clients),
        }

    def _frame(
        self, request: int, client: Client, kind: Kind, u: float, lots: int, depth: int
    ) -> bytes:
        """The frame of the step's request number ``request``; a cancel or amend with nothing
        to aim at, and a placement at ``MAX_RESTING``, become the other (the kind recorded is
        the one sent)."""
        request_id = self.base + request
        reference, factor = self.reference, self.lot_factor
        lots *= factor
        least = MIN_LOTS * factor
        resting = client.resting
        if kind in (Kind.CANCEL, Kind.AMEND_PRICE, Kind.AMEND_QTY) and not resting:
            kind = Kind.PASSIVE_GTC
        elif kind <= Kind.PASSIVE_POST_ONLY and len(resting) >= MAX_RESTING:
            kind = Kind.CANCEL
        self.kinds[request] = kind
        buy = u < 0.5
        if kind <= Kind.PASSIVE_POST_ONLY:
            price = reference - depth if buy else reference + depth
            self._placed[request] = (buy, price, lots)
            return _ENCODE(
                _Place(
                    request_id,
                    "place_order",
                    SYMBOL,
                    "buy" if buy else "sell",
                    qty_text(lots),
                    price=price_text(price),
                    tif="GTX" if kind == Kind.PASSIVE_POST_ONLY else "GTC",
                )
            )
        if kind == Kind.CROSS_IOC:
            price = reference + CROSS_TICKS if buy else reference - CROSS_TICKS
            return _ENCODE(
                _Place(
                    request_id,
                    "place_order",
                    SYMBOL,
                    "buy" if buy else "sell",
                    qty_text(lots),
                    price=price_text(price),
                    tif="IOC",
                )
            )
        if kind == Kind.MARKET:
            side = "buy" if buy else "sell"
            return _ENCODE(
                _Place(request_id, "place_order", SYMBOL, side, qty_text(least), "market")
            )
        if kind >= Kind.QUERY_OPEN_ORDERS:
            if kind == Kind.QUERY_OPEN_ORDERS:
                return _ENCODE(_Query(request_id, "open_orders", SYMBOL))
            op = "balances" if kind == Kind.QUERY_BALANCES else "positions"
            return _ENCODE(_Query(request_id, op))
        # A cancel or an amend of one of the client's resting orders, drawn by ``u``.
        order_ids = list(resting)
        order_id = order_ids[int(u * len(order_ids))]
        self.target[request] = order_id
        if kind == Kind.CANCEL:
            del resting[order_id]
            return _ENCODE(_Target(request_id, "cancel_order", SYMBOL, order_id))
        is_buy, price, open_lots = resting[order_id]
        if kind == Kind.AMEND_QTY and open_lots > least:
            new_lots = least + int(u * (open_lots - least))
            self._placed[request] = (is_buy, price, new_lots)
            return _ENCODE(
                _Target(request_id, "amend_order", SYMBOL, order_id, qty=qty_text(new_lots))
            )
        self.kinds[request] = Kind.AMEND_PRICE
        new_price = reference - depth if is_buy else reference + depth
        if new_price == price:
            new_price += -1 if is_buy else 1
        self._placed[request] = (is_buy, new_price, open_lots)
        return _ENCODE(
            _Target(request_id, "amend_order", SYMBOL, order_id, price=price_text(new_price))
        )

    async def close(self) -> None:
        for client in self.clients:
            with suppress(Exception):
                await asyncio.wait_for(client.ws.close(), 2)
        for reader in self._readers:
            reader.cancel()
        await asyncio.gather(*self._readers, return_exceptions=True)
        if self._session is not None:
            await self._session.close()


def worker_main(
    pipe: Pipe,
    urls: list[str],
    clients: list[int],
    worker: int,
    workers: int,
    options: "Options",
) -> None:
    """A client process: obeys the orchestrator's messages until ``stop``."""
    configure_logging()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the orchestrator stops it
    asyncio.run(_serve(pipe, Worker(urls, clients, worker, workers, options)))


async def _serve(pipe: Pipe, worker: Worker) -> None:
    deposit = str(DEPOSIT_USDT)
    try:
        while True:
            message = await asyncio.to_thread(pipe.recv)
            what = message[0]
            try:
                if what == "setup":
                    reply: Any = ("ok", await worker.setup(deposit))
                elif what == "step":
                    reply = ("ok", await worker.step(message[1]))
                else:
                    pipe.send(("ok", None))
                    return
            except Exception as error:  # reported, then the orchestrator stops everything
                reply = ("error", f"worker {worker.worker}: {error!r}")
            pipe.send(reply)
    finally:
        await worker.close()


# ------------------------------------------------------------------------ the orchestrator


@dataclass(frozen=True)
class Options:
    """The benchmark's parameters (``main``'s command line)."""

    clients: int = 200
    workers: int = 2
    gateways: int = 1
    rate: int = 2_000
    duration_s: float = 15.0
    warmup_s: float = 5.0
    sweep: tuple[int, ...] = (3_000, 4_000, 5_000, 6_000, 8_000, 10_000, 12_000, 14_000, 16_000)
    step_duration_s: float = 10.0
    step_warmup_s: float = 2.0
    pause_s: float = 2.0
    p99_limit_ms: float = P99_LIMIT_MS
    trades_subscribers: int = 20
    book_subscribers: int = 4
    floor: bool = True
    seed: int = 1
    engine_timeout_s: float = 10.0
    keep: str = ""
    quick: bool = False


QUICK = {
    "clients": 4,
    "workers": 1,
    "rate": 100,
    "duration_s": 2.0,
    "warmup_s": 0.5,
    "sweep": (200,),
    "step_duration_s": 1.5,
    "step_warmup_s": 0.5,
    "pause_s": 0.5,
    "trades_subscribers": 2,
    "book_subscribers": 1,
}
"""``--quick``: a tiny run to check that everything works (seconds, a few hundred requests)."""


async def _wait_ready(url: str, service: Service, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1)) as session:
        while time.monotonic() < deadline:
            service.check()
            with suppress(aiohttp.ClientError, TimeoutError):
                async with session.get(url) as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(0.1)
    raise BenchError(
        f"the {service.name} was not ready within {timeout_s:.0f} s:\n{service.tail()}"
    )


@dataclass(frozen=True)
class CpuSample:
    """CPU seconds at one moment (``at_s``, ``time.monotonic``): by role, with ``orchestrator``
    (this process) and ``machine`` (all cores), and each process of one role apart (``each``):
    a role's sum says what it costs, its processes one by one whether they share it evenly."""

    at_s: float
    seconds: dict[str, float]
    each: tuple[float, ...] = ()


class Cpu:
    """CPU seconds of the processes of the run by role, sampled at a step's start and end; the
    processes of role ``each`` (the gateway instances) also one by one."""

    def __init__(self, pids: dict[str, list[int]], each: str = "") -> None:
        self.pids = pids
        self.each = each

    def sample(self) -> CpuSample:
        seconds = {
            pid: process_cpu_seconds(pid) or 0.0 for pids in self.pids.values() for pid in pids
        }
        out = {name: sum(seconds[pid] for pid in pids) for name, pids in self.pids.items()}
        out["orchestrator"] = time.process_time()
        out["machine"] = machine_cpu_seconds()
        each = tuple(seconds[pid] for pid in self.pids.get(self.each, ()))
        return CpuSample(time.monotonic(), out, each)

    @staticmethod
    def percent(before: CpuSample, after: CpuSample) -> dict[str, float]:
        """Each role as % of one core over the step: ``machine`` is every process's,
        ``others`` what the machine ran besides this run (other users of a shared machine)."""
        wall = after.at_s - before.at_s
        out = {
            name: _percent(after.seconds[name] - before.seconds[name], wall)
            for name in after.seconds
        }
        ours = sum(value for name, value in out.items() if name != "machine")
        out["others"] = round(max(0.0, out["machine"] - ours), 1)
        return out

    @staticmethod
    def percent_each(before: CpuSample, after: CpuSample) -> list[float]:
        """The processes of role ``each`` one by one, as % of one core over the step."""
        wall = after.at_s - before.at_s
        return [_percent(b - a, wall) for a, b in zip(before.each, after.each, strict=True)]


def _percent(cpu_seconds: float, wall_s: float) -> float:
    return round(100 * cpu_seconds / wall_s, 1) if wall_s > 0 else 0.0


def machine_cpu_seconds() -> float:
    """CPU seconds the whole machine has been busy (all cores; Linux ``/proc/stat``, else 0)."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return 0.0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


class GatewayBench:
    """The broker, the engine, the gateway instances and the client processes for one run."""

    def __init__(self, options: Options, settings: Settings, workdir: Path) -> None:
        self.options = options
        self.settings = settings
        self.workdir = workdir
        self.pool: ClientPool | None = None

    async def run(self) -> dict[str, Any]:
        broker = await asyncio.to_thread(start_broker, self.settings)
        services: list[Service] = []
        try:
            prefix = f"bench-gw-{uuid.uuid4().hex[:8]}"
            settings = msgspec.structs.replace(
                self.settings,
                bootstrap_servers=broker.bootstrap,
                commands_topic=f"{prefix}-commands",
                events_topic=f"{prefix}-events",
                prices_topic=f"{prefix}-prices",
            )
            await create_topics(settings.bootstrap_servers, settings)
            env = service_env(settings, self.workdir / "snapshots")
            engine_health = free_port()
            engine_env = env | {env_var("health_port"): str(engine_health)}
            services.append(
                Service("engine", engine_command(), engine_env, self.workdir / "engine.log")
            )
            await _wait_ready(
                f"http://127.0.0.1:{engine_health}/health/ready", services[-1], START_TIMEOUT_S
            )
            urls = await self._start_gateways(env, services)
            return await self._measure(urls, services, broker)
        finally:
            if self.pool is not None:
                await self.pool.stop()
            for service in reversed(services):
                await asyncio.to_thread(service.stop)
            await asyncio.to_thread(broker.stop)

    async def _start_gateways(self, env: dict[str, str], services: list[Service]) -> list[str]:
        """Start ``options.gateways`` instances on the same logs, each on a port of its own
        (which serves its health checks too), and wait until each is ready; their URLs. They
        share the master key, as instances of one exchange must, so an API key works on any."""
        shared = env | {
            env_var("gateway_master_key"): secrets.token_hex(32),
            env_var("gateway_engine_timeout_ms"): str(int(self.options.engine_timeout_s * 1000)),
            **{env_var(name): str(value) for name, value in GATEWAY_LIMITS.items()},
        }
        command = [*engine_command()[:-1], "gateway"]
        count = self.options.gateways
        urls: list[str] = []
        for instance, port in enumerate(free_ports(count)):
            name = "gateway" if count == 1 else f"gateway-{instance}"
            gateway_env = shared | {env_var("gateway_port"): str(port)}
            services.append(Service(name, command, gateway_env, self.workdir / f"{name}.log"))
            urls.append(f"http://127.0.0.1:{port}")
        for url, service in zip(urls, services[-count:], strict=True):
            await _wait_ready(f"{url}/health/ready", service, START_TIMEOUT_S)
        return urls

    async def _measure(
        self, urls: list[str], services: list[Service], broker: EmbeddedBroker
    ) -> dict[str, Any]:
        options = self.options
        self.pool = pool = ClientPool(urls, options)

        def check() -> None:
            for service in services:
                service.check()

        started = time.monotonic()
        setups = await pool.call(("setup",), check, SETUP_TIMEOUT_S)
        setup = {
            "clients": sum(s["clients"] for s in setups),
            "clients_by_gateway": _columns_summed(s["clients_by_gateway"] for s in setups),
            "seconds": round(time.monotonic() - started, 3),
            "requests_per_client": 6 + (options.trades_subscribers + options.book_subscribers > 0),
        }
        log.info("clients ready", **setup)
        cpu = Cpu(
            {
                "gateway": [service.process.pid for service in services[1:]],
                "engine": [services[0].process.pid],
                "broker": [broker.process.pid],
                "clients": pool.pids,
            },
            each="gateway",
        )
        plan = [(options.rate, options.duration_s, options.warmup_s)]
        plan += [(rate, options.step_duration_s, options.step_warmup_s) for rate in options.sweep]
        steps: list[dict[str, Any]] = []
        for index, (rate, duration_s, warmup_s) in enumerate(plan):
            count = round(rate * (duration_s + warmup_s))
            step = Step(
                index=index,
                rate=rate,
                count=count,
                warmup=round(rate * warmup_s),
                t0_ns=time.monotonic_ns() + 200_000_000,
            )
            log.info("step starting", step=index, rate=rate, requests=count)
            before = cpu.sample()
            seconds = asyncio.create_task(others_by_second(cpu, step))
            try:
                parts = await pool.call(
                    ("step", step),
                    check,
                    duration_s + warmup_s + options.engine_timeout_s + STEP_GRACE_S + 30,
                )
            finally:
                seconds.cancel()
            others: list[float] = []
            with suppress(asyncio.CancelledError):
                others = await seconds
            after = cpu.sample()
            result = step_result(step, parts, Cpu.percent(before, after), options, others)
            result["gateway_cpu_percent"] = Cpu.percent_each(before, after)
            steps.append(result)
            log.info(
                "step done",
                step=index,
                rate=rate,
                p99_ms=result["latency_ms"]["p99"],
                sustained=result["sustained"],
                problems=result["problems"],
            )
            if index and not result["sustained"]:
                break
            await asyncio.sleep(options.pause_s)
        return {"setup": setup, "steps": steps}


class ClientPool:
    """The client processes (``worker_main``) of a run, each with its share of the clients
    (spread over the gateways at ``urls``), and the orchestrator's end of their pipes: what the
    gateway benchmark and ``exchange load`` drive their steps through."""

    def __init__(self, urls: Sequence[str], options: Options) -> None:
        context = multiprocessing.get_context("spawn")
        workers = max(1, min(options.workers, options.clients))
        self.pipes: list[Pipe] = []
        self.processes: list[multiprocessing.process.BaseProcess] = []
        for worker in range(workers):
            mine = list(range(worker, options.clients, workers))
            here, there = context.Pipe()
            process = context.Process(
                target=worker_main,
                args=(there, list(urls), mine, worker, workers, options),
                name=f"bench-client-{worker}",
                daemon=True,
            )
            process.start()
            self.pipes.append(here)
            self.processes.append(process)

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.processes if p.pid is not None]

    async def call(
        self, message: tuple[Any, ...], check: Callable[[], None], timeout_s: float
    ) -> list[Any]:
        """Send every worker ``message``; their answers, or ``BenchError``. ``check`` is called
        while waiting, to fail fast when a service the workers talk to has died."""
        for pipe in self.pipes:
            pipe.send(message)
        deadline = time.monotonic() + timeout_s
        replies: list[Any] = []
        for pipe, process in zip(self.pipes, self.processes, strict=True):
            while not await asyncio.to_thread(pipe.poll, 0.2):
                check()
                if not process.is_alive():
                    raise BenchError(f"client process {process.name} exited ({process.exitcode})")
                if time.monotonic() > deadline:
                    raise BenchError(f"client process {process.name} did not answer {message[0]}")
            status, reply = pipe.recv()
            if status != "ok":
                raise BenchError(str(reply))
            replies.append(reply)
        return replies

    async def stop(self) -> None:
        for pipe in self.pipes:
            with suppress(OSError):
                pipe.send(("stop",))
        for process in self.processes:
            await asyncio.to_thread(process.join, 10)
            if process.is_alive():
                process.kill()
                await asyncio.to_thread(process.join, 5)


async def others_by_second(cpu: Cpu, step: Step) -> list[float]:
    """What the machine ran besides this run in each second of the step's schedule (% of one
    core), until cancelled: the shared machine's load, to read the latency by second against."""
    out: list[float] = []
    await asyncio.sleep(max(0.0, (step.t0_ns - time.monotonic_ns()) / 1e9))
    last = cpu.sample()
    end = step.count / step.rate
    with suppress(asyncio.CancelledError):
        while len(out) < math.ceil(end):
            await asyncio.sleep(max(0.0, step.t0_ns / 1e9 + len(out) + 1 - time.monotonic()))
            now = cpu.sample()
            out.append(Cpu.percent(last, now)["others"])
            last = now
    return out


def step_result(
    step: Step,
    parts: list[dict[str, Any]],
    cpu: dict[str, float],
    options: Options,
    others: Sequence[float] = (),
) -> dict[str, Any]:
    """One step's figures from the workers' parts; ``others``: the machine's other load in
    each second of the schedule."""
    latencies = array("q")
    lags = array("q")
    totals: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    error_kinds: Counter[str] = Counter()
    pushes: Counter[str] = Counter()
    kinds: Counter[str] = Counter()
    at_ms = array("i")
    query_latencies = array("q")
    for part in parts:
        latencies.frombytes(part["latencies"])
        query_latencies.frombytes(part["query_latencies"])
        at_ms.frombytes(part["scheduled_ms"])
        lags.frombytes(part["send_lag"])
        for key in ("sent", "measured", "answered", "repeated", "unknown", "lost_races"):
            totals[key] += part[key]
        errors.update(part["errors"])
        error_kinds.update(part["error_kinds"])
        pushes.update(part["pushes"])
        kinds.update(part["kinds"])
    figures = percentiles_ms(latencies)
    lag = percentiles_ms(lags)
    problems = []
    if totals["answered"] != totals["sent"]:
        problems.append(f"{totals['sent'] - totals['answered']} requests got no response")
    if totals["repeated"]:
        problems.append(f"{totals['repeated']} responses repeated an answered id")
    if totals["unknown"]:
        problems.append(f"{totals['unknown']} responses carried an id never sent")
    p99 = figures["p99"]
    sustained = not problems and p99 is not None and p99 <= options.p99_limit_ms
    measured_s = (step.count - step.warmup) / step.rate
    public = {k: v for k, v in pushes.items() if "." in k}
    return {
        "step": step.index,
        "offered_rate": step.rate,
        "seconds": round(step.count / step.rate, 3),
        "warmup_seconds": round(step.warmup / step.rate, 3),
        "requests": totals["sent"],
        "measured_commands": len(latencies),
        "measured_queries": len(query_latencies),
        "order_requests": sum(kinds[KINDS[k]] for k in ORDER_KINDS),
        "answered": totals["answered"],
        "answered_by_gateway": _columns_summed(part["answered_by_gateway"] for part in parts),
        "latency_ms": figures,
        "latency_of": "order commands (place, cancel, amend), from scheduled send to response",
        "send_lag_ms": {key: lag[key] for key in ("p50", "p99", "max")},
        "query_latency_ms": percentiles_ms(query_latencies),
        "p99_ms_by_second": by_second(at_ms, latencies),
        "others_cpu_percent_by_second": list(others),
        "quiet_seconds": quiet_figures(at_ms, latencies, others, step.warmup / step.rate),
        "errors": sum(errors.values()),
        "errors_by_code": dict(sorted(errors.items())),
        "errors_by_kind": dict(sorted(error_kinds.items())),
        "lost_races": totals["lost_races"],
        "pushes": sum(pushes.values()),
        "pushes_per_second": round(sum(pushes.values()) / (step.count / step.rate), 1),
        "pushes_by_channel": dict(sorted(pushes.items())),
        "public_pushes": sum(public.values()),
        "mix": {name: kinds[name] for name in KINDS if kinds[name]},
        "resting_orders_at_end": sum(part["resting"] for part in parts),
        "cpu_percent": cpu,
        "client_cpu_seconds": [part["cpu_seconds"] for part in parts],
        "measured_seconds": round(measured_s, 3),
        "sustained": sustained,
        "problems": problems,
    }


def _columns_summed(rows: Iterable[Sequence[int]]) -> list[int]:
    """The workers' counts by gateway instance, added up instance by instance."""
    return [sum(column) for column in zip(*rows, strict=True)]


def by_second(at_ms: Sequence[int], latencies: Sequence[int]) -> list[float | None]:
    """The p99 of the requests scheduled in each second of the step (from its start): whether
    the latency was a steady queue or a few stalls."""
    seconds: dict[int, list[int]] = {}
    for at, latency in zip(at_ms, latencies, strict=True):
        seconds.setdefault(at // 1_000, []).append(latency)
    return [percentiles_ms(seconds[second])["p99"] for second in sorted(seconds)]


QUIET_OTHERS_PERCENT = 25.0
"""A second of a step is *quiet* when the machine ran at most this much (% of one core) besides
this run."""


def quiet_figures(
    at_ms: Sequence[int], latencies: Sequence[int], others: Sequence[float], warmup_s: float
) -> dict[str, Any]:
    """The latency of the commands scheduled in the step's quiet seconds, beside the whole
    step's: what the system does when the shared machine leaves it the two cores. Reported
    apart, never instead."""
    quiet = {second for second, load in enumerate(others) if load <= QUIET_OTHERS_PERCENT}
    chosen = [lat for at, lat in zip(at_ms, latencies, strict=True) if at // 1_000 in quiet]
    measured = [s for s in range(len(others)) if s >= int(warmup_s)]
    return {
        "others_at_most_percent": QUIET_OTHERS_PERCENT,
        "seconds": len([s for s in measured if s in quiet]),
        "of_seconds": len(measured),
        "commands": len(chosen),
        "latency_ms": percentiles_ms(chosen),
    }


async def measure_floor(options: Options, settings: Settings, workdir: Path) -> dict[str, Any]:
    """The floor at the headline rate: the engine benchmark's open-loop phase through the echo
    service on a fresh embedded broker (``Bench``), the same seconds and warm-up."""
    floor_options = EngineBenchOptions(
        rate=options.rate,
        duration_s=options.duration_s,
        warmup_s=options.warmup_s,
        accounts=10,
        seed=options.seed,
        phases=("latency",),
        services=("echo",),
    )
    count = floor_options.latency_commands()
    stream = StreamGenerator(
        seed=options.seed, accounts=floor_options.accounts, faucet_cap=settings.faucet_cap
    ).generate(count)
    (workdir / "floor").mkdir()
    bench = Bench(floor_options, settings, stream, workdir / "floor")
    return await bench.phase("echo", "latency")


async def run(options: Options) -> dict[str, Any]:
    """The floor, then the gateway's steps; the report."""
    cancel_on_sigterm()
    settings = load_settings()
    with workdir(options.keep, kept="gateway-run", prefix="bench-gateway-", what=KEPT) as work:
        floor = None
        if options.floor:
            wall, busy = time.monotonic(), machine_cpu_seconds()
            floor = await measure_floor(options, settings, work)
            floor["machine_cpu_percent"] = round(
                100 * (machine_cpu_seconds() - busy) / (time.monotonic() - wall), 1
            )
        if floor is not None:
            log.info("floor done", p99_ms=floor["latency_ms"]["p99"], problems=floor["problems"])
        measured = await GatewayBench(options, settings, work).run()
    return report(options, settings, floor, measured)


KEPT = "service logs"
"""What ``--keep`` keeps."""

LATENCY_HEADLINE = ("p50", "p99", "p99_9", "max")


def report(
    options: Options,
    settings: Settings,
    floor: dict[str, Any] | None,
    measured: dict[str, Any],
) -> dict[str, Any]:
    steps: list[dict[str, Any]] = measured["steps"]
    headline = steps[0]
    summary: dict[str, Any] = {
        "offered_rate": options.rate,
        "gateway_latency_ms": {k: headline["latency_ms"][k] for k in LATENCY_HEADLINE},
    }
    targets: dict[str, Any] = {}
    if floor is not None:
        summary["floor_latency_ms"] = {k: floor["latency_ms"][k] for k in LATENCY_HEADLINE}
        ratio = ratio_of(headline["latency_ms"]["p99"], floor["latency_ms"]["p99"])
        summary["p99_gateway_to_floor"] = ratio
        targets["p99_ratio_max"] = TARGET_P99_RATIO
        targets["p99_ratio_met"] = ratio is not None and ratio <= TARGET_P99_RATIO
    quiet = headline["quiet_seconds"]
    summary["gateway_latency_ms_quiet_seconds"] = {
        **{k: quiet["latency_ms"][k] for k in LATENCY_HEADLINE},
        "seconds": quiet["seconds"],
        "of_seconds": quiet["of_seconds"],
        "others_at_most_percent": quiet["others_at_most_percent"],
    }
    summary["others_cpu_percent"] = headline["cpu_percent"]["others"]
    sustained = 0
    for step in steps:
        if not step["sustained"]:
            break
        sustained = step["offered_rate"]
    summary["sustained_rate"] = sustained
    summary["first_unsustained_rate"] = next(
        (s["offered_rate"] for s in steps if not s["sustained"]), None
    )
    summary["sweep"] = [
        {
            "offered_rate": s["offered_rate"],
            "p50_ms": s["latency_ms"]["p50"],
            "p99_ms": s["latency_ms"]["p99"],
            "p99_9_ms": s["latency_ms"]["p99_9"],
            "errors": s["errors"],
            "pushes_per_second": s["pushes_per_second"],
            "cpu_percent": s["cpu_percent"],
            "gateway_cpu_percent": s["gateway_cpu_percent"],
            "sustained": s["sustained"],
        }
        for s in steps
    ]
    targets["p99_limit_ms"] = options.p99_limit_ms
    targets["sustained_rate_min"] = TARGET_SUSTAINED_RATE
    targets["sustained_rate_met"] = sustained >= TARGET_SUSTAINED_RATE
    problems = [
        f"step {s['step']} ({s['offered_rate']}/s): {p}" for s in steps[:1] for p in s["problems"]
    ]
    if floor is not None:
        problems += [f"floor: {p}" for p in floor["problems"]]
    out: dict[str, Any] = {
        "benchmark": "gateway",
        "summary": summary,
        "targets": targets,
        "ok": not problems,
        "problems": problems,
        "setup": measured["setup"],
        "steps": steps,
        "floor": floor,
        "gateway_settings": {
            **{name: value for name, value in GATEWAY_LIMITS.items()},
            "gateway_engine_timeout_ms": int(options.engine_timeout_s * 1000),
            "gateway_max_commands_per_record": settings.gateway_max_commands_per_record,
            "gateway_flush_interval_ms": settings.gateway_flush_interval_ms,
            "note": "rate limits raised for the benchmark through EXCHANGE_GATEWAY_* variables",
        },
        "parameters": {
            **{
                name: list(value) if isinstance(value, tuple) else value
                for name, value in asdict(options).items()
            },
            "symbol": SYMBOL,
            "reference_price": price_text(REFERENCE),
            "mix": {KINDS[kind]: share for kind, share in MIX},
            "max_resting_per_client": MAX_RESTING,
            "deposit_usdt": DEPOSIT_USDT,
            "producer_linger_ms": settings.producer_linger_ms,
            "consumer_fetch_max_wait_ms": settings.consumer_fetch_max_wait_ms,
        },
        "versions": versions(),
    }
    return out


def table(result: dict[str, Any]) -> str:
    """The short human summary (stderr)."""
    lines = []
    summary, targets = result["summary"], result["targets"]
    floor = summary.get("floor_latency_ms")
    floor_cpu = (result.get("floor") or {}).get("machine_cpu_percent")
    gateways = result["parameters"]["gateways"]
    gateway_cpu = "gateway" if gateways == 1 else f"{gateways} gateways (sum)"
    lines.append(
        f"gateway benchmark: {result['setup']['clients']} clients over {gateways} gateway "
        f"instance{'s' if gateways > 1 else ''}; gateway rate limits raised for the run "
        f"({', '.join(f'{k}={v}' for k, v in GATEWAY_LIMITS.items())})"
    )
    if floor:
        lines.append(
            f"floor (echo, 2 hops) at {summary['offered_rate']}/s: p50 {floor['p50']} / "
            f"p99 {floor['p99']} / p99.9 {floor['p99_9']} ms"
        )
        lines.append(f"  (the machine's CPU in the floor phase: {floor_cpu} % of one core)")
        lines.append(
            f"gateway p99 / floor p99 = {summary['p99_gateway_to_floor']} "
            f"(target <= {targets['p99_ratio_max']}: "
            f"{'met' if targets['p99_ratio_met'] else 'MISSED'})"
        )
    lines.append(
        f"{'rate/s':>7} {'p50 ms':>8} {'p99 ms':>8} {'p99.9 ms':>9} {'errors':>6} {'races':>5} "
        f"{'push/s':>8}  cpu % {gateway_cpu}/engine/broker/clients/others  ok"
    )
    for step in result["steps"]:
        latency, cpu = step["latency_ms"], step["cpu_percent"]
        each = step["gateway_cpu_percent"]
        gateway = f"{cpu['gateway']}" + (f"({'+'.join(map(str, each))})" if gateways > 1 else "")
        lines.append(
            f"{step['offered_rate']:>7} {latency['p50']!s:>8} {latency['p99']!s:>8} "
            f"{latency['p99_9']!s:>9} {step['errors']:>6} {step['lost_races']:>5} "
            f"{step['pushes_per_second']:>8}  "
            f"{gateway}/{cpu['engine']}/{cpu['broker']}/{cpu['clients']}/{cpu['others']}"
            f"  {'yes' if step['sustained'] else 'NO'}"
        )
    for step in result["steps"]:
        quiet = step["quiet_seconds"]
        lines.append(
            f"{step['offered_rate']:>7}/s in its {quiet['seconds']} of {quiet['of_seconds']} "
            f"seconds with others <= {quiet['others_at_most_percent']:g} % of a core: p50 "
            f"{quiet['latency_ms']['p50']} / p99 {quiet['latency_ms']['p99']} ms"
        )
    lines.append(
        f"sustained up to {summary['sustained_rate']}/s with p99 <= {targets['p99_limit_ms']} ms "
        f"(target >= {targets['sustained_rate_min']}: "
        f"{'met' if targets['sustained_rate_met'] else 'MISSED'})"
    )
    lines.append("(a shared 2-core machine: compare ratios within a run, not figures across runs)")
    return "\n".join(lines)


# ------------------------------------------------------------------------ command line


def _parser() -> argparse.ArgumentParser:
    defaults = Options()
    parser = argparse.ArgumentParser(
        prog="python -m load.bench_gateway", description=__doc__.split("\n")[0]
    )
    add = parser.add_argument
    add("--clients", type=int, default=defaults.clients, help="connections (default %(default)s)")
    add(
        "--workers",
        type=int,
        default=defaults.workers,
        help="client processes the connections are spread over (default %(default)s)",
    )
    add(
        "--gateways",
        type=int,
        default=defaults.gateways,
        help="gateway instances on the same logs; client i uses instance i %% N "
        "(default %(default)s)",
    )
    add(
        "--rate",
        type=int,
        default=defaults.rate,
        help="the headline step's offered requests per second (default %(default)s)",
    )
    add("--duration", type=float, default=defaults.duration_s, help="its measured seconds")
    add("--warmup", type=float, default=defaults.warmup_s, help="its uncounted first seconds")
    add(
        "--sweep",
        default=",".join(str(r) for r in defaults.sweep),
        help="rates after the headline, comma-separated, until p99 passes the limit "
        "(default %(default)s; empty for none)",
    )
    add("--step-duration", type=float, default=defaults.step_duration_s)
    add("--step-warmup", type=float, default=defaults.step_warmup_s)
    add("--p99-limit-ms", type=float, default=defaults.p99_limit_ms)
    add("--trades-subscribers", type=int, default=defaults.trades_subscribers)
    add("--book-subscribers", type=int, default=defaults.book_subscribers)
    add("--no-floor", action="store_true", help="skip the echo floor")
    add("--seed", type=int, default=defaults.seed)
    add("--keep", default="", metavar="DIR", help="keep the services' logs under DIR")
    add("--quick", action="store_true", help="a tiny run: a few clients, low rates, seconds")
    return parser


def _options(args: argparse.Namespace) -> Options:
    sweep = tuple(int(part) for part in args.sweep.split(",") if part.strip())
    options = Options(
        clients=args.clients,
        workers=args.workers,
        gateways=args.gateways,
        rate=args.rate,
        duration_s=args.duration,
        warmup_s=args.warmup,
        sweep=sweep,
        step_duration_s=args.step_duration,
        step_warmup_s=args.step_warmup,
        p99_limit_ms=args.p99_limit_ms,
        trades_subscribers=args.trades_subscribers,
        book_subscribers=args.book_subscribers,
        floor=not args.no_floor,
        seed=args.seed,
        keep=args.keep,
    )
    if args.quick:
        options = replace(options, quick=True, **QUICK)  # type: ignore[arg-type]
    for name in ("clients", "workers", "gateways", "rate", "duration_s", "step_duration_s"):
        if getattr(options, name) <= 0:
            raise SystemExit(f"{name} must be positive")
    if any(rate <= 0 for rate in options.sweep):
        raise SystemExit("--sweep: rates must be positive")
    return options


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print the JSON report (stdout) and the table (stderr). Exit 1 when it
    could not measure or answers were wrong, 0 otherwise, targets met or not."""
    options = _options(_parser().parse_args(argv))
    return bench_main(lambda: run(options), table)


if __name__ == "__main__":
    raise SystemExit(main())
