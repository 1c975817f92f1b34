"""The one settings object of the services: broker address, topics, partitions and every tunable.

Why one object built from the environment: the embedded default (one Tansu broker, one engine)
and the multi-broker Apache Kafka deployment (``docker-compose.yml``) run the same code and
differ only in configuration, so nothing about the deployment may hide in a constant elsewhere.
Every field ``name`` is read from the variable ``EXCHANGE_<NAME>`` (``env_var``); an unset
variable takes the field's default. ``load_settings`` refuses a bad value, and an ``EXCHANGE_``
variable that names no field (a typo would otherwise be ignored silently), with a message that
names the variable.

The consumer and producer defaults are the ones ``shared/reference/kafka-broker-notes.md``
measured to work on the embedded broker; they are also valid on Apache Kafka, except that
Kafka's default ``group.min.session.timeout.ms`` (6 s) is above our 2 s session timeout, which is
why ``docker-compose.yml`` sets the session timeout for its services.
"""

import difflib
import os
import re
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any, TypeVar

import msgspec

from exchange.default_markets import USDT
from exchange.funding_rate import DEFAULT_SAMPLE_MS
from exchange.funding_schedule import FundingSchedule
from exchange.index_price import IndexConfig, IndexMethod, IndexSource
from exchange.units import RATE_ONE, UnitError, to_units

ENV_PREFIX = "EXCHANGE_"
T = TypeVar("T")


class SettingsError(ValueError):
    """A setting that cannot be used; the message names the environment variable."""


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """Everything a service needs to know about its deployment. Build it with ``load_settings``.

    Constructing it directly (tests, tools) skips validation; ``load_settings`` is the checked
    path that every service entry point uses.
    """

    # The broker.
    bootstrap_servers: str = "127.0.0.1:9092"
    """Comma-separated ``host:port`` list of the Kafka brokers the services connect to."""
    embedded_port: int = 0
    """Loopback port of the embedded broker (``exchange up``, test fixtures); 0 picks a free one."""
    broker_start_timeout_ms: int = 10_000
    """How long to wait for the embedded broker to accept Kafka requests before giving up."""
    replication_factor: int = 1
    """Replicas per partition of the topics we create: 1 embedded, 3 in the compose deployment."""

    # Topics: few, named for what flows (ARCHITECTURE.md). Keys put a market on one partition.
    commands_topic: str = "exchange.commands"
    """The engine's command log, its journal: every state change enters here."""
    events_topic: str = "exchange.events"
    """The engine's event log: every effect of every command, in order."""
    prices_topic: str = "exchange.prices"
    """Index and mark prices, from the feeds and the oracle."""
    risk_topic: str = "exchange.risk"
    """The liquidation service's margin calls and ADL queue indicators
    (``services/risk_messages.py``)."""
    commands_partitions: int = 1
    """Partitions of the command topic. One engine is the single writer of the whole ledger
    (cross margin spans markets), so it reads one partition, partition 0, in order."""
    events_partitions: int = 1
    """Partitions of the event topic; the engine writes partition 0."""
    prices_partitions: int = 4
    """Partitions of the price topic."""
    risk_partitions: int = 4
    """Partitions of the risk topic (margin calls keyed by account, ADL by symbol)."""

    # The engine. Snapshots go to disk, not to a compacted topic: the embedded broker never
    # enforces compaction and forgets everything on restart (kafka-broker-notes.md).
    snapshot_every_commands: int = 1_000_000
    """Snapshot after this many commands since the last one; 0 turns this trigger off. A
    snapshot holds the dedupe window too (tens of MB), so this is the long-haul bound on replay
    after a restart (about 20 s of work), and event time is the usual trigger."""
    snapshot_every_ms: int = 60_000
    """Snapshot after this much event time (ms) since the last one; 0 turns this trigger off."""
    snapshot_dir: str = "out/snapshots"
    """Where the engine writes its snapshots (atomically) and reads the newest on start."""
    faucet_cap: int = 100_000 * USDT
    """A deposit may not take a cross wallet above this, in minor units of the settlement asset
    (USDT at 8 decimals). Its variable is written in USDT: ``EXCHANGE_FAUCET_CAP=100000``."""
    default_leverage: int = 20
    """Leverage of an account in a market it has not set one for (Binance's default, 20x)."""

    markets_file: str = ""
    """A JSON list of market specs (``exchange.market.MarketSpec`` fields) to trade instead of
    the default BTCUSDT and ETHUSDT perpetuals (``exchange.default_markets``); "" = those."""
    health_port: int = 8080
    """Loopback port of the service's HTTP health endpoint (``/health/live``,
    ``/health/ready``); 0 picks a free one and logs it."""
    health_host: str = "127.0.0.1"
    """Interface the health endpoint binds; ``0.0.0.0`` in a container."""

    # The market feed and the market maker (docs/market-feed-and-maker.md): until the oracle
    # exists, the feed replays a real BTCUSDT recording as index ticks and the maker quotes
    # around the latest index, so that a user has prices and someone to trade with.
    feed_sample: str = ""
    """Index sample the feed replays (``services/feed_sample.py`` format, ``.gz`` allowed), as
    BTCUSDT; empty for the bundled recording."""
    feed_speed: int = 1
    """Replay pace: the recording's own time between ticks divided by this."""
    maker_account: int = 1_000_000
    """The market maker's account, reserved for it; its order ids are ``account << 32 | n``,
    so it must stay below 2**31."""
    maker_deposit: int = 100_000 * USDT
    """The maker tops its wallet up to this (at most the faucet cap) on start, in minor units;
    written in USDT like the faucet cap."""
    maker_leverage: int = 10
    """Leverage the maker sets in every market on start."""
    maker_levels: int = 5
    """Orders per side of the maker's ladder."""
    maker_spread_bps: int = 10
    """Distance between the maker's best bid and best ask, in basis points of the index."""
    maker_step_bps: int = 5
    """Distance between two levels of one side, in basis points of the index."""
    maker_level_qty: int = 20
    """Quantity of one level, in lots (20 lots = 0.02 BTC on BTCUSDT)."""
    maker_max_position: int = 500
    """Largest position the maker may reach, in lots, even if every order of one side fills:
    each side quotes at most the room left (0.5 BTC on BTCUSDT)."""
    maker_requote_bps: int = 2
    """The maker requotes when the index moves this far from the one it quoted around."""
    maker_min_requote_ms: int = 500
    """Least time between two requotes: bounds the maker's command rate (one record each)."""

    up_without: str = ""
    """Services ``exchange up`` leaves out, comma-separated: any of ``gateway``, ``binance``,
    ``oracle``, ``funding``, ``feed``, ``market-maker`` (the engine always runs).
    ``feed,market-maker`` leaves the market to ``exchange replay`` (docs/replay.md): the feed's
    live-clock ticks and the maker's quotes would mix with the replayed data."""

    # The oracle and the funding service (docs/oracle-and-funding.md): index and mark from the
    # index ticks and the engine's book, funding from the premium the oracle publishes, all on
    # event time (the ticks' times, never the machine's clock), so a replayed day runs in seconds.
    oracle_sources: str = "binance-capture"
    """Index sources with their weights: ``name[:weight],...`` (weight 1 if left out) for every
    market, or ``;``-separated entries, each for every market or ``SYMBOL=`` one market (an
    entry for a market replaces the one for every market). A tick from a source not listed is
    ignored. The feed's source is ``binance-capture``; with one source the index is its price."""
    oracle_stale_after_ms: int = 10_000
    """A source with no tick for longer than this (event time) leaves the index until its next
    tick (Binance: 10 s); when every source is out, index and mark freeze."""
    oracle_max_deviation_bps: int = 500
    """A source further than this from the median of the live sources leaves the index until it
    is back within it (Binance: 5 %)."""
    oracle_index_method: str = "weighted_average"
    """How the sources in make the index: ``weighted_average`` (Binance) or ``weighted_median``."""
    oracle_publish_ms: int = 1_000
    """The oracle publishes index and mark (and sends the engine a changed mark) at every
    multiple of this many ms of event time."""
    oracle_basis_window: int = 30
    """One-second points of event time the mark's moving average of the basis covers
    (Binance: 30 s; Bybit's five minutes is 300)."""
    funding_schedule: str = "28800000"
    """Funding boundaries ``interval_ms[:phase_ms]``: every market, or ``;``-separated entries,
    each for every market or ``SYMBOL=`` one market. The default, 8 h from the epoch, is
    00:00, 08:00 and 16:00 UTC; a drill settles every minute with ``60000``. The interval must
    be a multiple of the 5 s premium sampling."""

    # The liquidation service (docs/liquidation.md): it watches every account's margin from the
    # event log, sends the engine ``Liquidate`` commands and publishes the risk topic.
    margin_call_bps: int = 8_000
    """Margin ratio, in basis points, from which a scope is at the warning level and gets a
    margin call (Binance advises keeping the ratio below 80 %); the engine's default too."""
    liquidator_resend_ms: int = 5_000
    """A ``Liquidate`` the event log has not answered within this (wall clock) is sent again,
    under the same id (the engine applies an id once)."""
    liquidator_adl_interval_ms: int = 1_000
    """Least event time between two ADL indicator messages of one market: the ranking of a
    market's positions is recomputed at most this often."""
    liquidator_health_port: int = 8081
    """Loopback port of the liquidation service's ``/health/live`` and ``/health/ready`` (its
    counters and latencies as JSON); 0 picks a free one and logs it. Host: ``health_host``."""

    # The websocket gateway (docs/gateway-protocol.md): its endpoint, the key its API secrets
    # derive from, and the limits that keep one client from hurting the others.
    gateway_host: str = "127.0.0.1"
    """Interface the websocket and health endpoints bind; ``0.0.0.0`` in a container."""
    gateway_port: int = 8765
    """Port of ``/ws`` and ``/health/*``; 0 picks a free one (the server logs it)."""
    gateway_master_key: str = ""
    """Every API secret derives from it (``services/gateway/auth.py``): secret, the same on
    every gateway instance, at least 32 characters; changing it invalidates every API key.
    Empty where no gateway runs; ``exchange up`` makes one per run."""
    gateway_login_window_ms: int = 10_000
    """A login's timestamp may be this far from the gateway's clock, either way."""
    gateway_nonces_per_key: int = 1_000
    """Most logins of one API key per login window (the bound on remembered nonces)."""
    gateway_max_frame_bytes: int = 16_384
    """A larger request frame is answered with ``frame_too_large`` (the connection stays)."""
    gateway_max_message_bytes: int = 1_048_576
    """A larger frame closes the connection (1009): the bound on what a client makes the
    gateway read into memory before it can look at it."""
    gateway_send_buffer_bytes: int = 4_194_304
    """Unsent bytes a connection may have queued; a client that reads slower than its streams
    arrive is disconnected when it would exceed this, so it never slows anybody else."""
    gateway_connection_request_limit: int = 600
    """Request weight a connection may spend per ``gateway_connection_request_window_ms`` (a token
    bucket: bursts up to the limit); every request counts, valid or not."""
    gateway_connection_request_window_ms: int = 10_000
    gateway_account_order_limit: int = 300
    """Order requests (place, amend, cancel, cancel-all) an account may make per
    ``gateway_account_order_window_ms`` on this gateway instance, across its connections."""
    gateway_account_order_window_ms: int = 10_000
    gateway_max_commands_per_record: int = 500
    """Most commands per command record (a record stays far below the broker's 1 MB)."""
    gateway_flush_interval_ms: int = 4
    """How long the first command of a record waits for others before the record is sent:
    requests arriving together ride in one record, the broker's unit of cost. 0: send at once.
    Measured with ``load.bench_gateway`` at 2,000–3,000 requests/s: 4 ms instead of 1 ms took
    the embedded broker from 43–63 % to 34–52 % of a core with the same or lower p99 (the
    engine writes one event record per command record, so both logs get fewer records)."""
    gateway_engine_timeout_ms: int = 10_000
    """A command the engine has not answered within this gets ``timeout``."""
    gateway_recent_fills: int = 1_000
    """Fills kept per account for the ``fills`` query."""
    gateway_finished_orders: int = 1_000
    """Finished (filled, cancelled, expired) orders kept per account for the ``order`` query."""
    gateway_heartbeat_ms: int = 20_000
    """Websocket ping interval: a peer that stops answering is closed."""
    binance_port: int = 8766
    """Port of the Binance USDⓈ-M compatible API (``exchange binance``, docs/binance-api.md:
    REST ``/fapi``, websockets, ``/health/*``), on ``gateway_host``; 0 picks a free one. It
    shares the gateway's master key (API keys work on both) and its limits."""

    # Clients. acks="all", no idempotence and no transactions are fixed, not tunable: they are
    # what the exactly-once design rests on and what the embedded broker supports.
    request_timeout_ms: int = 30_000
    """Client request timeout; must exceed the consumer session timeout."""
    producer_linger_ms: int = 5
    """How long a producer waits to fill a batch (the notes' measured sweet spot: 5–10 ms)."""
    producer_max_batch_bytes: int = 262_144
    """Largest batch per partition (256 KB); at most 1 MiB, the client's request size."""
    consumer_fetch_max_wait_ms: int = 10
    """Longest a fetch waits for data. The embedded broker does not wake a waiting fetch when
    data arrives, so this bounds latency there; 0 or 1 starves the consumer; 50–100 for
    consumers that mostly idle."""
    consumer_idle_fetch_max_wait_ms: int = 50
    """The fetch wait of consumers of the small topics whose news is not on the order path:
    the gateway's readers of the price and risk topics (a few messages a second). Each fetch
    costs the broker and the reader CPU even when it brings nothing; at 10 ms these two
    readers alone made 200 empty fetches a second. 50 ms adds at most that to an index, mark
    or margin-call push."""
    consumer_session_timeout_ms: int = 2_000
    """A consumer-group member silent this long is evicted and its partitions reassigned."""
    consumer_heartbeat_interval_ms: int = 200
    """Heartbeat period of a group member; below the session timeout."""

    def topic_partitions(self) -> dict[str, int]:
        """Every topic the exchange uses, with the partition count it must be created with."""
        return {
            self.commands_topic: self.commands_partitions,
            self.events_topic: self.events_partitions,
            self.prices_topic: self.prices_partitions,
            self.risk_topic: self.risk_partitions,
        }

    def index_config(self, symbol: str) -> IndexConfig | None:
        """The oracle's index of ``symbol``, or None if no source is configured for it."""
        sources = per_market(self.oracle_sources, _index_sources)
        chosen = sources.get(symbol, sources.get(""))
        if chosen is None:
            return None
        return IndexConfig(
            sources=chosen,
            stale_after_ms=self.oracle_stale_after_ms,
            max_deviation=self.oracle_max_deviation_bps * RATE_ONE // 10_000,
            method=IndexMethod(self.oracle_index_method),
        )

    def funding_schedule_of(self, symbol: str) -> FundingSchedule:
        """The funding boundaries of ``symbol`` (Binance's 8 h if no entry applies)."""
        schedules = per_market(self.funding_schedule, _schedule)
        return schedules.get(symbol, schedules.get("", FundingSchedule()))

    def check_markets(self, symbols: Iterable[str]) -> None:
        """Refuse a per-market entry for a market not traded: a misspelt symbol would otherwise
        leave that market on the default silently."""
        known = set(symbols)
        for field, parse in (("oracle_sources", _index_sources), ("funding_schedule", _schedule)):
            unknown = sorted(set(per_market(getattr(self, field), parse)) - known - {""})
            if unknown:
                raise SettingsError(
                    f"{env_var(field)}: no market {unknown[0]!r} (markets: {sorted(known)})"
                )

    def producer_config(self) -> dict[str, Any]:
        """Keyword arguments for ``aiokafka.AIOKafkaProducer``.

        ``acks="all"``: a command is in the log once acknowledged (free on one node, and what
        ``min.insync.replicas=2`` needs on three). Idempotence stays off because the embedded
        broker rejects it; duplicates are dropped by command id instead (ARCHITECTURE.md).
        """
        return {
            "bootstrap_servers": self.bootstrap_servers,
            "acks": "all",
            "enable_idempotence": False,
            "linger_ms": self.producer_linger_ms,
            "max_batch_size": self.producer_max_batch_bytes,
            "request_timeout_ms": self.request_timeout_ms,
        }

    def consumer_config(self, group_id: str | None = None) -> dict[str, Any]:
        """Keyword arguments for ``aiokafka.AIOKafkaConsumer``.

        Offsets are committed by the application, after the work they cover is done, never
        automatically. ``auto_offset_reset="earliest"`` because "latest" gives wrong answers on
        the embedded broker (kafka-broker-notes.md).
        """
        return {
            "bootstrap_servers": self.bootstrap_servers,
            "group_id": group_id,
            "enable_auto_commit": False,
            "auto_offset_reset": "earliest",
            "fetch_max_wait_ms": self.consumer_fetch_max_wait_ms,
            "session_timeout_ms": self.consumer_session_timeout_ms,
            "heartbeat_interval_ms": self.consumer_heartbeat_interval_ms,
            "request_timeout_ms": self.request_timeout_ms,
        }


def env_var(field: str) -> str:
    """The environment variable a field is read from: ``EXCHANGE_`` and the name in capitals."""
    return ENV_PREFIX + field.upper()


def _integer(low: int, high: int) -> Callable[[str], int]:
    """A parser of a decimal integer within ``[low, high]``."""

    def parse(text: str) -> int:
        if not re.fullmatch(r"[+-]?[0-9]+", text):
            raise ValueError("expected a whole number")
        value = int(text)
        if not low <= value <= high:
            raise ValueError(f"expected a whole number from {low} to {high}")
        return value

    return parse


_TOPIC_NAME = re.compile(r"[A-Za-z0-9._-]{1,249}")
"""Kafka's own rule for a legal topic name."""


def _topic(text: str) -> str:
    if not _TOPIC_NAME.fullmatch(text) or text in (".", ".."):
        raise ValueError("expected a Kafka topic name: 1-249 of A-Z a-z 0-9 . _ -")
    return text


def _bootstrap(text: str) -> str:
    """``host:port[,host:port...]``; an IPv6 host is written in brackets, as Kafka does."""
    servers = [part.strip() for part in text.split(",")]
    for server in servers:
        host, colon, port = server.rpartition(":")
        if not colon or not host or not port.isdigit() or not 1 <= int(port) <= 65_535:
            raise ValueError(f"expected host:port[,host:port...], {server!r} is not host:port")
    return ",".join(servers)


def _host(text: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9.:_-]+", text):
        raise ValueError("expected a host name or an IP address")
    return text


def _master_key(text: str) -> str:
    """Empty (no gateway runs), or at least 32 characters: every API secret derives from it."""
    if text and len(text) < 32:
        raise ValueError("expected at least 32 characters (or none, where no gateway runs)")
    return text


def _path(text: str) -> str:
    if not text.strip():
        raise ValueError("expected a directory path")
    return text


def _usdt(text: str) -> int:
    """USDT as a decimal string, to minor units; the grid error of ``to_units`` if off it."""
    try:
        return to_units(text, Decimal(1) / USDT, "amount")
    except UnitError as error:
        raise ValueError(str(error)) from None


_SOURCE_NAME = re.compile(r"[A-Za-z0-9._-]+")


def per_market(text: str, parse: Callable[[str], T]) -> dict[str, T]:
    """``;``-separated entries ``value`` (key "": every market) or ``SYMBOL=value``."""
    entries: dict[str, T] = {}
    for entry in text.split(";"):
        symbol, equals, value = entry.rpartition("=")
        symbol = symbol.strip()
        if equals and not symbol:
            raise ValueError(f"expected SYMBOL=... in {entry.strip()!r}")
        if symbol in entries:
            raise ValueError(f"{symbol or 'the entry for every market'} is given twice")
        entries[symbol] = parse(value.strip())
    return entries


def _index_sources(text: str) -> tuple[IndexSource, ...]:
    """``name[:weight],...``, names unique, weights positive."""
    sources = []
    for part in text.split(","):
        name, colon, weight = (piece.strip() for piece in part.partition(":"))
        if not _SOURCE_NAME.fullmatch(name):
            raise ValueError(f"expected source[:weight], {part.strip()!r} is not")
        sources.append(IndexSource(name, _integer(1, 1_000_000)(weight) if colon else 1))
    if len({source.name for source in sources}) != len(sources):
        raise ValueError("a source is listed twice")
    return tuple(sources)


def _schedule(text: str) -> FundingSchedule:
    """``interval_ms[:phase_ms]``, the interval a multiple of the premium's 5 s sampling."""
    interval, colon, phase = text.partition(":")
    interval_ms = _integer(DEFAULT_SAMPLE_MS, 366 * _MS_DAY)(interval.strip())
    if interval_ms % DEFAULT_SAMPLE_MS:
        raise ValueError(f"the funding interval must be a multiple of {DEFAULT_SAMPLE_MS} ms")
    phase_ms = _integer(0, interval_ms - 1)(phase.strip()) if colon else 0
    return FundingSchedule(interval_ms=interval_ms, phase_ms=phase_ms)


def _checked(parse: Callable[[str], object]) -> Callable[[str], str]:
    """A parser that keeps the text of a structured setting once ``parse`` accepts it."""

    def check(text: str) -> str:
        parse(text)
        return text

    return check


def _choice(values: Iterable[str]) -> Callable[[str], str]:
    allowed = tuple(values)

    def parse(text: str) -> str:
        if text not in allowed:
            raise ValueError(f"expected one of {', '.join(allowed)}")
        return text

    return parse


UP_OPTIONAL_SERVICES = ("gateway", "binance", "oracle", "funding", "feed", "market-maker")
"""The services of ``exchange up`` that ``EXCHANGE_UP_WITHOUT`` may leave out."""


def _services(text: str) -> str:
    """A comma-separated list of ``UP_OPTIONAL_SERVICES``, each once; normalized."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    for name in names:
        if name not in UP_OPTIONAL_SERVICES:
            raise ValueError(f"{name!r} is not one of {', '.join(UP_OPTIONAL_SERVICES)}")
    if len(set(names)) != len(names):
        raise ValueError("a service is listed twice")
    return ",".join(names)


_MS_DAY = 86_400_000
_PARSERS: dict[str, Callable[[str], Any]] = {
    "bootstrap_servers": _bootstrap,
    "embedded_port": _integer(0, 65_535),
    "broker_start_timeout_ms": _integer(100, 600_000),
    "replication_factor": _integer(1, 32),
    "commands_topic": _topic,
    "events_topic": _topic,
    "prices_topic": _topic,
    "risk_topic": _topic,
    "commands_partitions": _integer(1, 10_000),
    "events_partitions": _integer(1, 10_000),
    "prices_partitions": _integer(1, 10_000),
    "risk_partitions": _integer(1, 10_000),
    "snapshot_every_commands": _integer(0, 2**63 - 1),
    "snapshot_every_ms": _integer(0, 2**63 - 1),
    "snapshot_dir": _path,
    "faucet_cap": _usdt,
    "default_leverage": _integer(1, 125),
    "markets_file": str,
    "health_port": _integer(0, 65_535),
    "health_host": _host,
    "feed_sample": str,
    "feed_speed": _integer(1, 10_000),
    # The maker's order ids put its account above 32 bits of sequence: below 2**63 in all.
    "maker_account": _integer(1, 2**31 - 1),
    "maker_deposit": _usdt,
    "maker_leverage": _integer(1, 125),
    "maker_levels": _integer(1, 100),
    "maker_spread_bps": _integer(1, 5_000),
    "maker_step_bps": _integer(0, 1_000),
    "maker_level_qty": _integer(1, 1_000_000),
    "maker_max_position": _integer(1, 1_000_000_000),
    "maker_requote_bps": _integer(1, 1_000),
    # Faster than ten records a second would make the maker the busiest client of the engine.
    "maker_min_requote_ms": _integer(100, 3_600_000),
    "up_without": _services,
    "oracle_sources": _checked(lambda text: per_market(text, _index_sources)),
    "oracle_stale_after_ms": _integer(0, _MS_DAY),
    "oracle_max_deviation_bps": _integer(1, 10_000),
    "oracle_index_method": _choice(IndexMethod),
    "oracle_publish_ms": _integer(1, 3_600_000),
    "oracle_basis_window": _integer(1, 86_400),
    "funding_schedule": _checked(lambda text: per_market(text, _schedule)),
    "margin_call_bps": _integer(1, 10_000),
    "liquidator_resend_ms": _integer(100, 3_600_000),
    "liquidator_adl_interval_ms": _integer(0, _MS_DAY),
    "liquidator_health_port": _integer(0, 65_535),
    "gateway_host": _host,
    "gateway_port": _integer(0, 65_535),
    "gateway_master_key": _master_key,
    "gateway_login_window_ms": _integer(1, 3_600_000),
    "gateway_nonces_per_key": _integer(1, 1_000_000),
    "gateway_max_frame_bytes": _integer(256, 1_048_576),
    "gateway_max_message_bytes": _integer(256, 16_777_216),
    "gateway_send_buffer_bytes": _integer(1_024, 1_073_741_824),
    "gateway_connection_request_limit": _integer(1, 1_000_000),
    "gateway_connection_request_window_ms": _integer(1, _MS_DAY),
    "gateway_account_order_limit": _integer(1, 1_000_000),
    "gateway_account_order_window_ms": _integer(1, _MS_DAY),
    "gateway_max_commands_per_record": _integer(1, 10_000),
    "gateway_flush_interval_ms": _integer(0, 1_000),
    "gateway_engine_timeout_ms": _integer(1, 3_600_000),
    "gateway_recent_fills": _integer(1, 1_000_000),
    "gateway_finished_orders": _integer(1, 1_000_000),
    "gateway_heartbeat_ms": _integer(100, 3_600_000),
    "binance_port": _integer(0, 65_535),
    "request_timeout_ms": _integer(1_000, _MS_DAY),
    "producer_linger_ms": _integer(0, 60_000),
    "producer_max_batch_bytes": _integer(1_024, 1_048_576),
    # 0 or 1 starves a consumer of the embedded broker (kafka-broker-notes.md).
    "consumer_fetch_max_wait_ms": _integer(2, 60_000),
    "consumer_idle_fetch_max_wait_ms": _integer(2, 60_000),
    "consumer_session_timeout_ms": _integer(1_000, _MS_DAY),
    "consumer_heartbeat_interval_ms": _integer(10, _MS_DAY),
}


def load_settings(env: Mapping[str, str] = os.environ) -> Settings:
    """Build the settings from ``EXCHANGE_*`` variables of ``env``; defaults for the unset.

    Raises ``SettingsError`` naming the variable for a value that does not parse or is out of
    range, for an ``EXCHANGE_`` variable that is no setting, and for values that contradict
    each other.
    """
    fields = {env_var(field.name): field.name for field in msgspec.structs.fields(Settings)}
    unknown = sorted(name for name in env if name.startswith(ENV_PREFIX) and name not in fields)
    if unknown:
        name = unknown[0]
        close = difflib.get_close_matches(name, fields, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise SettingsError(f"{name} is not a setting{hint}")
    values: dict[str, Any] = {}
    for name, field in fields.items():
        text = env.get(name)
        if text is None:
            continue
        try:
            values[field] = _PARSERS[field](text.strip())
        except ValueError as error:
            raise SettingsError(f"{name}={text!r}: {error}") from None
    settings = Settings(**values)
    _check_consistent(settings)
    return settings


def _check_consistent(settings: Settings) -> None:
    """The rules that span fields; each message names every variable involved."""
    if settings.consumer_heartbeat_interval_ms >= settings.consumer_session_timeout_ms:
        raise SettingsError(
            f"{env_var('consumer_heartbeat_interval_ms')} "
            f"({settings.consumer_heartbeat_interval_ms}) must be below "
            f"{env_var('consumer_session_timeout_ms')} ({settings.consumer_session_timeout_ms})"
        )
    if settings.request_timeout_ms <= settings.consumer_session_timeout_ms:
        raise SettingsError(
            f"{env_var('request_timeout_ms')} ({settings.request_timeout_ms}) must exceed "
            f"{env_var('consumer_session_timeout_ms')} ({settings.consumer_session_timeout_ms})"
        )
    if settings.gateway_max_message_bytes < settings.gateway_max_frame_bytes:
        raise SettingsError(
            f"{env_var('gateway_max_message_bytes')} ({settings.gateway_max_message_bytes}) "
            f"must be at least {env_var('gateway_max_frame_bytes')} "
            f"({settings.gateway_max_frame_bytes})"
        )
    topics = ("commands_topic", "events_topic", "prices_topic", "risk_topic")
    seen: dict[str, str] = {}
    for field in topics:
        name = getattr(settings, field)
        if name in seen:
            raise SettingsError(
                f"{env_var(field)} and {env_var(seen[name])} name the same topic {name!r}"
            )
        seen[name] = field
