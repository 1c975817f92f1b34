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
from collections.abc import Awaitable, Callable
from pathlib import Path

import structlog

import load
from load.generate_orders import DEFAULT_LOT_SIZE, DEFAULT_TICK_SIZE
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
