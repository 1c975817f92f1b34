"""The ``exchange`` command: one entry point, one subcommand per job.

Results go to stdout as one JSON object, so that they can be piped into ``jq``; log lines go to
stderr through structlog, so that they never corrupt that JSON. (``exchange trade`` is for a
person at a terminal: tables, and JSON with ``--json``; ``services/trade_cli.py``.)
"""

import argparse
import asyncio
import importlib
import json
import signal
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import structlog

import load
from load.generate_orders import DEFAULT_LOT_SIZE, DEFAULT_TICK_SIZE
from load.marketdata import FORMATS, MarketDataError
from load.marketdata.fields import time_ms
from load.orderstream import KEPT_ERRORS, OrderStreamError
from load.replay_orders import Replay, replay_file, replay_spec
from services.logs import configure_logging
from services.settings import Settings, SettingsError, load_settings
from services.trade_cli import add_trade_parser

SAMPLE_STREAM = Path(load.__file__).parent / "samples" / "orders-sample.csv.gz"
"""A 20,000-row synthetic stream (``load.generate_orders``, seed 1, default grid)."""

log = structlog.get_logger()

SERVICES = {
    "engine": (
        "services.engine_main:run_engine",
        "consume the command topic and publish the event topic: the engine service",
    ),
    "gateway": (
        "services.gateway.server:run_gateway",
        "serve the websocket API (docs/gateway-protocol.md) on EXCHANGE_GATEWAY_PORT",
    ),
    "binance": (
        "services.binance.server:run_binance",
        "serve a Binance USDⓈ-M compatible API (docs/binance-api.md) on EXCHANGE_BINANCE_PORT",
    ),
    "oracle": (
        "services.oracle:run_oracle",
        "publish index and mark prices and send the engine the mark, on event time",
    ),
    "funding": (
        "services.funding:run_funding",
        "publish the predicted funding rate and settle funding at each boundary",
    ),
    "liquidator": (
        "services.liquidator:run_liquidator",
        "watch every account's margin, send liquidations and publish margin calls and ADL",
    ),
    "feed": (
        "services.market_feed:run_feed",
        "replay the bundled BTCUSDT recording as live index ticks on the price topic",
    ),
    "market-maker": (
        "services.market_maker:run_market_maker",
        "quote post-only ladders around the index from the maker's own account",
    ),
}
"""The long-running services: each a subcommand, ``module:function`` taking the settings and
a stop event, imported only when run (so ``exchange --help`` stays fast)."""


def main(argv: list[str] | None = None) -> int:
    configure_logging()
    args = _parser().parse_args(argv)
    try:
        code: int = args.handler(args)
    except SettingsError as error:
        log.error("bad_settings", error=str(error))
        return 2
    return code


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="exchange", description="Paper-trading exchange")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    replay = commands.add_parser(
        "replay-orders",
        help="match an order-stream file in process and report throughput and latency",
        description="Replay an order-stream file (docs/order-stream.md) through one market.",
    )
    replay.add_argument("file", help="order-stream CSV, optionally .gz")
    replay.add_argument("--tick-size", required=True, help="price step, e.g. 0.1")
    replay.add_argument("--lot-size", required=True, help="quantity step, e.g. 0.001")
    replay.add_argument("--trades", metavar="OUT.jsonl", help="write every trade to this file")
    replay.set_defaults(handler=_replay_orders)

    sample = commands.add_parser("replay-sample", help="replay the bundled sample order stream")
    sample.set_defaults(handler=_replay_sample)

    _add_replay(commands)
    _add_drill(commands)
    _add_load(commands)

    up = commands.add_parser(
        "up",
        help="run the whole exchange on the embedded broker until Ctrl-C",
        description="Start the embedded broker and every service; print where to connect.",
    )
    up.set_defaults(handler=_up)

    add_trade_parser(commands)

    for name, (target, help_text) in SERVICES.items():
        service = commands.add_parser(
            name,
            help=help_text,
            description=f"{help_text[0].upper()}{help_text[1:]}, until SIGTERM or SIGINT "
            "(configured by the EXCHANGE_* variables of services/settings.py).",
        )
        service.set_defaults(handler=_service, name=name, target=target)
    return parser


def _add_replay(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    replay = commands.add_parser(
        "replay",
        help="replay market data into the running exchange on the data's own event time",
        description="Replay a market-data file (Binance klines, aggTrades, trades, OHLCV CSVs, "
        "plain, .gz or .zip, or a raw Binance websocket capture) into the running exchange "
        "(the broker and topics of the EXCHANGE_* settings): index ticks for the oracle, and "
        "for order-book data the orders that rebuild the recorded book in the engine and "
        "replay its trades. Prints a JSON summary (docs/replay.md).",
    )
    replay.add_argument("file", help="the market-data file")
    replay.add_argument("--symbol", default="BTCUSDT", help="our market to drive (BTCUSDT)")
    replay.add_argument(
        "--speed",
        default="max",
        type=_speed,
        help="1 real time, N N times faster, max as fast as the exchange takes it (max)",
    )
    replay.add_argument(
        "--format",
        choices=["auto", *FORMATS],
        default="auto",
        help="the file's format (auto: told from its content)",
    )
    replay.add_argument(
        "--from", dest="start", type=_moment, help="first event time (ISO 8601 UTC or ms)"
    )
    replay.add_argument("--to", dest="end", type=_moment, help="last event time (inclusive)")
    replay.add_argument("--limit", type=_positive, help="replay at most N events")
    replay.add_argument("--json", metavar="PATH", help="write the summary here, not to stdout")
    replay.add_argument(
        "--no-orders",
        dest="orders",
        action="store_false",
        help="index ticks only: no book, no trades",
    )
    replay.add_argument(
        "--depth",
        type=_positive_or_zero,
        default=100,
        help="levels of each side of a recorded book kept in the engine (0: all; 100)",
    )
    replay.add_argument(
        "--accounts",
        type=_accounts,
        default=32,
        help="book accounts, and as many taker accounts, the orders are spread over (32)",
    )
    replay.add_argument(
        "--source",
        default="binance-capture",
        help="the index source the ticks are published as (binance-capture)",
    )
    replay.add_argument("--no-progress", dest="progress", action="store_false")
    replay.set_defaults(handler=_replay_market)


def _add_drill(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    drill = commands.add_parser(
        "drill",
        help="run a liquidation-cascade drill on a fresh exchange and report it",
        description="Start a fresh embedded broker and the services, set the scenario's "
        "accounts up, drive its price path, and write result.json, cascade.png and "
        "report.html (docs/drills.md). Prints the headline as JSON; exits 1 if an invariant "
        "broke (conservation, the insurance fund, bad debt, a service), 2 for a bad scenario.",
    )
    drill.add_argument("scenario", help="the scenario file (TOML), e.g. load/drills/*.toml")
    drill.add_argument(
        "--out", help="directory for the result and the report (out/drills/<scenario name>)"
    )
    drill.add_argument(
        "--no-gateway",
        dest="gateway",
        action="store_false",
        help="leave the websocket gateway out (it only reads the logs during a drill)",
    )
    drill.set_defaults(handler=_drill)


def _drill(args: argparse.Namespace) -> int:
    """``exchange drill``: the headline on stdout, the files in ``--out``; 1 if an invariant
    broke, 2 for a scenario that cannot run."""
    from load.drill.checks import broken_invariants
    from load.drill.report import headline, render_report
    from load.drill.runner import run_drill
    from load.drill.scenario import ScenarioError, load_scenario
    from load.marketdata import MarketDataError

    try:
        loaded = load_scenario(args.scenario)
        out = Path(args.out or Path("out") / "drills" / Path(args.scenario).stem)
        result = asyncio.run(run_drill(loaded, load_settings(), gateway=args.gateway))
    except (ScenarioError, MarketDataError) as error:
        log.error("bad_scenario", error=str(error))
        return 2
    out.mkdir(parents=True, exist_ok=True)
    (out / "result.json").write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    png, page = render_report(result, out)
    broken = broken_invariants(result)
    summary = {
        "scenario": result["scenario"]["name"],
        "headline": dict(headline(result)),
        "latency": result["latency"],
        "broken_invariants": broken,
        "files": {"result": str(out / "result.json"), "png": str(png), "report": str(page)},
    }
    print(json.dumps(summary, indent=2), flush=True)
    return 1 if broken else 0


def _add_load(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    from load.loadtest.report import GROWTH_SLACK_MB, GROWTH_TOLERANCE, MAX_ERROR_RATE

    load = commands.add_parser(
        "load",
        help="sustained load test: the whole exchange under a replay and 200 websocket clients",
        description="Start the exchange from a clean start on the embedded broker (without the "
        "feed and the market maker), replay a market-data file into it and, at the same time, "
        "trade through the websocket gateway from --clients accounts at --rate requests/s "
        "(open loop). Reports throughput, latency percentiles per window, errors, pushes and "
        "the memory and CPU of every process, with a check for memory growth "
        "(docs/load-test.md). Exit 1 when the error rate or the growth check fails.",
    )
    load.add_argument("file", help="the market-data file to replay (exchange replay)")
    load.add_argument("--speed", default="max", type=_speed, help="the replay's speed (max)")
    load.add_argument("--limit", type=_positive, help="replay at most N events")
    load.add_argument("--clients", type=_positive, default=200, help="websocket clients (200)")
    load.add_argument(
        "--workers", type=_positive, default=2, help="client processes they are spread over (2)"
    )
    load.add_argument(
        "--rate", type=_positive, default=1_000, help="requests per second, all clients (1000)"
    )
    load.add_argument(
        "--duration",
        type=_seconds,
        help="seconds to run (default: as long as the replay); the replay is stopped there",
    )
    load.add_argument(
        "--sample-every",
        type=_seconds,
        default=10.0,
        help="seconds per window: latency percentiles and process samples (10)",
    )
    load.add_argument(
        "--max-error-rate",
        type=float,
        default=MAX_ERROR_RATE,
        help=f"errors per request above which the run fails ({MAX_ERROR_RATE:g})",
    )
    load.add_argument(
        "--growth-tolerance",
        type=float,
        default=GROWTH_TOLERANCE,
        help=f"end RSS above middle RSS by this fraction is growth ({GROWTH_TOLERANCE:g})",
    )
    load.add_argument(
        "--growth-slack-mb",
        type=float,
        default=GROWTH_SLACK_MB,
        help=f"... and by more than this many MB ({GROWTH_SLACK_MB:g})",
    )
    load.add_argument("--seed", type=int, default=1, help="the clients' draws (1)")
    load.add_argument("--keep", default="", metavar="DIR", help="keep the logs under DIR")
    load.add_argument("--json", metavar="PATH", help="write the report here, not to stdout")
    load.set_defaults(handler=_load)


def _seconds(text: str) -> float:
    try:
        value = float(Decimal(text))
    except (InvalidOperation, ValueError):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError("must be positive")
    return value


def _speed(text: str) -> float | None:
    if text.strip().lower() == "max":
        return None
    try:
        value = float(Decimal(text))
    except (InvalidOperation, ValueError):
        raise argparse.ArgumentTypeError(f"{text!r} is neither a number nor max") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError("the speed must be positive")
    return value


def _moment(text: str) -> int:
    stripped = text.strip()
    if stripped.isdigit():
        return time_ms(int(stripped))
    try:
        moment = datetime.fromisoformat(stripped)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is neither ISO 8601 (2024-08-08T23:55:00Z) nor a time in ms"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def _positive(text: str) -> int:
    value = _positive_or_zero(text)
    if not value:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _accounts(text: str) -> int:
    from load.replay.mirror import MAX_ACCOUNTS

    value = _positive(text)
    if value > MAX_ACCOUNTS:
        raise argparse.ArgumentTypeError(f"at most {MAX_ACCOUNTS:,}")
    return value


def _positive_or_zero(text: str) -> int:
    if not text.strip().isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number")
    return int(text)


def _replay_market(args: argparse.Namespace) -> int:
    """``exchange replay``: the summary as JSON on stdout (or ``--json``), a table on stderr;
    1 for a file it cannot read or a replay that could not go on."""
    from aiokafka.errors import KafkaError

    from load.replay.driver import ReplayError, ReplayOptions, run_replay
    from load.replay.summary import table

    options = ReplayOptions(
        path=args.file,
        symbol=args.symbol,
        speed=args.speed,
        format=None if args.format == "auto" else args.format,
        start=args.start,
        end=args.end,
        limit=args.limit,
        orders=args.orders,
        depth=args.depth,
        accounts=args.accounts,
        source=args.source,
        progress=args.progress,
    )
    settings = load_settings()

    async def replay() -> dict[str, Any]:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        return await run_replay(settings, options, stop)

    try:
        summary = asyncio.run(replay())
    except MarketDataError as error:
        log.error(
            "replay_failed",
            file=error.path,
            line=error.line,
            column=error.column,
            field=error.field,
            error=str(error),
        )
        return 1
    except (ReplayError, KafkaError, OSError) as error:
        log.error("replay_failed", file=args.file, error=str(error))
        return 1
    text = json.dumps(summary, indent=2)
    if args.json:
        Path(args.json).write_text(text + "\n", encoding="utf-8")
    else:
        print(text, flush=True)
    print(table(summary), file=sys.stderr, flush=True)
    return 1 if "aborted" in summary else 0


def _load(args: argparse.Namespace) -> int:
    """``exchange load``: the report as JSON on stdout (or ``--json``), a table on stderr; exit
    1 when it could not run or the report is not ok."""
    from load.bench_run import print_report
    from load.loadtest.report import table
    from load.loadtest.run import LoadOptions, run_load

    if not Path(args.file).is_file():  # before starting a whole exchange for nothing
        log.error("load_failed", file=args.file, error="no such file")
        return 1
    options = LoadOptions(
        path=args.file,
        speed=args.speed,
        limit=args.limit,
        clients=args.clients,
        workers=args.workers,
        rate=args.rate,
        duration_s=args.duration,
        sample_every_s=args.sample_every,
        max_error_rate=args.max_error_rate,
        growth_tolerance=args.growth_tolerance,
        growth_slack_mb=args.growth_slack_mb,
        seed=args.seed,
        keep=args.keep,
    )
    settings = load_settings()

    async def load() -> dict[str, Any]:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        return await run_load(options, settings, stop)

    return print_report(load, table, json_path=args.json)


def _up(_args: argparse.Namespace) -> int:
    from services.up import run_up

    return asyncio.run(run_up(load_settings()))


def _service(args: argparse.Namespace) -> int:
    """Run one service until SIGTERM or SIGINT; then it finishes what it is doing (the engine
    its batch and a snapshot) and closes. A service that refuses its configuration says why
    (a ``ValueError``) and exits with 1."""
    module, function = args.target.split(":")
    run = getattr(importlib.import_module(module), function)
    try:
        asyncio.run(_until_signalled(run))
    except ValueError as error:
        log.error("service_failed", service=args.name, error=str(error))
        return 1
    return 0


async def _until_signalled(service: Callable[[Settings, asyncio.Event], Awaitable[None]]) -> None:
    """Run ``service`` with the ``EXCHANGE_*`` settings until SIGTERM or SIGINT sets its stop
    event; it then finishes what it is doing and closes its clients."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await service(load_settings(), stop)


def _replay_orders(args: argparse.Namespace) -> int:
    return _replay(args.file, args.tick_size, args.lot_size, args.trades)


def _replay_sample(_args: argparse.Namespace) -> int:
    return _replay(str(SAMPLE_STREAM), DEFAULT_TICK_SIZE, DEFAULT_LOT_SIZE, None)


def _replay(file: str, tick_size: str, lot_size: str, trades: str | None) -> int:
    try:
        spec = replay_spec(tick_size, lot_size)
        outcome = replay_file(file, spec, trades)
    except (OSError, EOFError, OrderStreamError, ValueError) as error:
        log.error("replay_failed", file=file, error=str(error))
        return 1
    _log_malformed(outcome)
    print(json.dumps(outcome.summary, indent=2))
    return 0


def _log_malformed(outcome: Replay) -> None:
    stream = outcome.stream
    for error in stream.errors:
        log.warning("malformed_row", line=error.line, reason=error.reason, detail=error.detail)
    if stream.malformed_rows > KEPT_ERRORS:
        log.warning("more_malformed_rows", not_shown=stream.malformed_rows - KEPT_ERRORS)
