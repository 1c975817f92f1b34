"""The ``exchange`` command: one entry point, one subcommand per job.

Results go to stdout as one JSON object, so that they can be piped into ``jq``; log lines go to
stderr through structlog, so that they never corrupt that JSON.
"""

import argparse
import asyncio
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

SAMPLE_STREAM = Path(load.__file__).parent / "samples" / "orders-sample.csv.gz"
"""A 20,000-row synthetic stream (``load.generate_orders``, seed 1, default grid)."""

log = structlog.get_logger()


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

    engine = commands.add_parser(
        "engine",
        help="run the engine service against the broker in EXCHANGE_BOOTSTRAP_SERVERS",
        description="Consume the command topic, publish the event topic (EXCHANGE_* settings).",
    )
    engine.set_defaults(handler=_engine)

    gateway = commands.add_parser(
        "gateway",
        help="serve the websocket API (docs/gateway-protocol.md) on EXCHANGE_GATEWAY_PORT",
        description="Accounts, trading and streams over a websocket (EXCHANGE_* settings).",
    )
    gateway.set_defaults(handler=_gateway)

    oracle = commands.add_parser(
        "oracle",
        help="publish index and mark prices and send the engine the mark, on event time",
        description="Index and mark from the index ticks and the engine's book, until SIGTERM "
        "or SIGINT (EXCHANGE_* settings).",
    )
    oracle.set_defaults(handler=_oracle)

    funding = commands.add_parser(
        "funding",
        help="publish the predicted funding rate and settle funding at each boundary",
        description="Sample the premium the oracle publishes and settle funding on event time, "
        "until SIGTERM or SIGINT (EXCHANGE_* settings).",
    )
    funding.set_defaults(handler=_funding)

    feed = commands.add_parser(
        "feed",
        help="replay the bundled BTCUSDT recording as live index ticks on the price topic",
        description="Publish index ticks until SIGTERM or SIGINT (EXCHANGE_* settings).",
    )
    feed.set_defaults(handler=_feed)

    maker = commands.add_parser(
        "market-maker",
        help="quote post-only ladders around the index from the maker's own account",
        description="Quote until SIGTERM or SIGINT, then cancel the quotes (EXCHANGE_* settings).",
    )
    maker.set_defaults(handler=_market_maker)
    return parser


def _up(_args: argparse.Namespace) -> int:
    from services.up import run_up

    return asyncio.run(run_up(load_settings()))


def _engine(_args: argparse.Namespace) -> int:
    """Run until SIGTERM or SIGINT; then finish the batch, snapshot and close."""
    from services.engine_main import run_engine

    asyncio.run(_until_signalled(run_engine))
    return 0


def _gateway(_args: argparse.Namespace) -> int:
    from services.gateway.server import run_gateway

    try:
        asyncio.run(_until_signalled(run_gateway))
    except ValueError as error:
        log.error("gateway_failed", error=str(error))
        return 2
    return 0


def _oracle(_args: argparse.Namespace) -> int:
    from services.oracle import run_oracle

    asyncio.run(_until_signalled(run_oracle))
    return 0


def _funding(_args: argparse.Namespace) -> int:
    from services.funding import run_funding

    asyncio.run(_until_signalled(run_funding))
    return 0


def _feed(_args: argparse.Namespace) -> int:
    from services.feed_sample import FeedSampleError
    from services.market_feed import run_feed

    try:
        asyncio.run(_until_signalled(run_feed))
    except FeedSampleError as error:
        log.error("feed_failed", error=str(error))
        return 1
    return 0


def _market_maker(_args: argparse.Namespace) -> int:
    from services.market_maker import run_market_maker

    asyncio.run(_until_signalled(run_market_maker))
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
