"""``exchange trade …``: a person at a terminal trading through the websocket gateway.

Each subcommand opens one connection with the typed client (``services.client``), logs in with
the saved credentials if it needs to, does one thing and prints it: a readable table on
stdout, or with ``--json`` the answer as JSON (decimal strings, as the gateway writes them) for
``jq`` and scripts. ``watch …`` streams until Ctrl-C, one line (or one redrawn book) per push.

A refusal is the gateway's error code and message on stderr and exit status 1, never a
traceback: ``error: insufficient_margin: available balance below the order's cost``. (With
``--json`` the error is a JSON object on stderr.) A usage mistake is argparse's, status 2.

The gateway URL is ``--url``, else ``ws://EXCHANGE_GATEWAY_HOST:EXCHANGE_GATEWAY_PORT/ws`` from
the settings (``services/settings.py``), which is where ``exchange up`` serves by default.

The client is imported when a subcommand runs, not when the parser is built, so that
``exchange --help`` does not pay for aiohttp.
"""

import argparse
import asyncio
import json
import signal
import sys
import threading
from collections.abc import Callable, Coroutine, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from services.client import ExchangeClient, OrderBook

ORDER_TYPES = (
    "limit",
    "market",
    "stop_market",
    "stop_limit",
    "take_profit_market",
    "take_profit_limit",
    "trailing_stop_market",
)
PRICED_TYPES = ("limit", "stop_limit", "take_profit_limit")
"""Order types that need a limit price."""

Action = Callable[["ExchangeClient", argparse.Namespace], Coroutine[Any, Any, None]]


class Failed(Exception):
    """A refusal to print as ``error: …`` with exit status 1."""

    def __init__(self, message: str, code: str = "error") -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# ------------------------------------------------------------------------------ the parser


def add_trade_parser(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """The ``trade`` subcommand group, added to the ``exchange`` command's subcommands."""
    trade = commands.add_parser(
        "trade",
        help="trade from the terminal through the websocket gateway",
        description="Trade through the websocket gateway (docs/gateway-protocol.md): make an "
        "account, deposit, place and cancel orders, query, and watch streams.",
    )
    actions = trade.add_subparsers(required=True, metavar="ACTION")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--url",
        help="the gateway's websocket URL (default: ws://EXCHANGE_GATEWAY_HOST:"
        "EXCHANGE_GATEWAY_PORT/ws from the settings)",
    )
    common.add_argument(
        "--credentials",
        type=Path,
        metavar="PATH",
        help="the credentials file (default: ~/.config/exchange/credentials.json, under "
        "$XDG_CONFIG_HOME if set)",
    )
    common.add_argument("--json", action="store_true", help="print JSON instead of a table")
    common.add_argument(
        "--timeout", type=float, default=30.0, help="seconds to wait for an answer (default 30)"
    )

    def action(
        name: str, run: Action, help_text: str, *, login: bool = True
    ) -> argparse.ArgumentParser:
        parser = actions.add_parser(name, parents=[common], help=help_text, description=help_text)
        parser.set_defaults(handler=run_trade, action=run, login=login, parser=parser)
        return parser

    created = action(
        "create-account",
        _create_account,
        "make a paper account: prints its API key and secret (shown once)",
        login=False,
    )
    created.add_argument(
        "--save", action="store_true", help="save the key and secret to the credentials file"
    )
    created.add_argument(
        "--force", action="store_true", help="with --save, replace an existing credentials file"
    )

    deposit = action("deposit", _deposit, "take paper money from the faucet")
    deposit.add_argument("amount", help="USDT, e.g. 10000")

    place = action("place", _place, "place an order")
    place.add_argument("symbol", type=str.upper)
    place.add_argument("side", type=str.lower, choices=("buy", "sell"))
    place.add_argument("qty", help="quantity, a multiple of the market's lot size")
    place.add_argument(
        "price", nargs="?", help="limit price (limit, stop_limit, take_profit_limit)"
    )
    kind = place.add_mutually_exclusive_group()
    kind.add_argument("--type", choices=ORDER_TYPES, default="limit", help="default: limit")
    kind.add_argument(
        "--market", dest="type", action="store_const", const="market", help="a market order"
    )
    tif = place.add_mutually_exclusive_group()
    tif.add_argument("--tif", choices=("GTC", "IOC", "FOK", "GTX"), default="GTC")
    tif.add_argument(
        "--post-only", dest="tif", action="store_const", const="GTX", help="GTX: never take"
    )
    tif.add_argument("--ioc", dest="tif", action="store_const", const="IOC")
    tif.add_argument("--fok", dest="tif", action="store_const", const="FOK")
    place.add_argument("--reduce-only", action="store_true")
    place.add_argument("--stop-price", help="trigger price of stop and take-profit types")
    place.add_argument("--trigger", choices=("last", "mark"), default="last")
    place.add_argument("--callback-rate", help="trailing stop: a fraction, 0.01 is 1%%")
    place.add_argument("--activation-price", help="trailing stop, optional")
    place.add_argument(
        "--stp",
        choices=("NONE", "EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"),
        default="EXPIRE_TAKER",
        help="self-trade prevention (default EXPIRE_TAKER)",
    )
    place.add_argument(
        "--client-order-id",
        metavar="LABEL",
        help="your own label for the order, to find it by: 1-36 of A-Z a-z 0-9 . : / _ - "
        "(refused while another open order of yours in the market has it)",
    )
    place.add_argument(
        "--good-for",
        type=int,
        metavar="SECONDS",
        help="good till date: the order ends if still open this many seconds from the "
        "gateway's clock (within about a second after)",
    )

    amend = action("amend", _amend, "change a resting limit order's price and/or quantity")
    _one_order(amend)
    amend.add_argument("--price")
    amend.add_argument("--qty")

    cancel = action("cancel", _cancel, "cancel an order")
    _one_order(cancel)

    cancel_all = action("cancel-all", _cancel_all, "cancel every open order in a market")
    cancel_all.add_argument("symbol", type=str.upper)

    orders = action("orders", _orders, "list open orders")
    orders.add_argument("symbol", nargs="?", type=str.upper)

    one = action("order", _order, "show one order, open or recently finished")
    _one_order(one)

    positions = action("positions", _positions, "list positions (every market, flat ones too)")
    positions.add_argument("symbol", nargs="?", type=str.upper)

    action("balances", _balances, "show the balance")

    fills = action("fills", _fills, "list recent fills, newest first")
    fills.add_argument("symbol", nargs="?", type=str.upper)
    fills.add_argument("--limit", type=int, default=20, help="default 20 (at most 1,000)")

    leverage = action("leverage", _leverage, "set a market's leverage")
    leverage.add_argument("symbol", type=str.upper)
    leverage.add_argument("leverage", type=int)

    mode = action("margin-mode", _margin_mode, "set a market's margin mode")
    mode.add_argument("symbol", type=str.upper)
    mode.add_argument("mode", type=str.lower, choices=("cross", "isolated"))

    margin = action("margin", _margin, "add margin to an isolated position or remove it")
    margin.add_argument("symbol", type=str.upper)
    margin.add_argument("direction", type=str.lower, choices=("add", "remove"))
    margin.add_argument("amount")

    action("markets", _markets, "list the markets and their grids", login=False)

    funding = action(
        "funding-history", _funding_history, "a market's funding settlements", login=False
    )
    funding.add_argument("symbol", type=str.upper)
    funding.add_argument("--limit", type=int, default=20)

    watch = action("watch", _watch, "stream to the terminal until Ctrl-C", login=False)
    watch.add_argument(
        "what",
        choices=("book", "trades", "ticker", "fills", "orders", "positions", "balances"),
        help="book, trades and ticker need a SYMBOL; the others are the account's own",
    )
    watch.add_argument("symbol", nargs="?", type=str.upper)
    watch.add_argument("--depth", type=int, default=10, help="book levels per side (default 10)")
    watch.add_argument("--count", type=int, help="stop after this many updates")


def _one_order(parser: argparse.ArgumentParser) -> None:
    """SYMBOL and the order: its ORDER_ID, or the label it was placed with (``_check`` wants
    exactly one)."""
    parser.add_argument("symbol", type=str.upper)
    parser.add_argument("order_id", type=int, nargs="?", help="the exchange's order id")
    parser.add_argument(
        "--client-order-id",
        metavar="LABEL",
        help="the order by the label it was placed with, instead of ORDER_ID",
    )


# ------------------------------------------------------------------------------ running


def run_trade(args: argparse.Namespace) -> int:
    """Run one ``trade`` subcommand; its exit status."""
    from services.client import ClientError, ExchangeError

    _check(args)
    try:
        asyncio.run(_session(args))
    except ExchangeError as error:
        return _fail(args, error.code, error.message, error.retry_after_ms)
    except Failed as failure:
        return _fail(args, failure.code, failure.message)
    except ClientError as error:
        return _fail(args, type(error).__name__, str(error))
    except TimeoutError:
        return _fail(args, "timeout", f"no answer from the gateway within {args.timeout} s")
    except KeyboardInterrupt:
        return 130
    return 0


def _check(args: argparse.Namespace) -> None:
    """Argument rules argparse cannot say; a usage error (status 2) like its own."""
    parser: argparse.ArgumentParser = args.parser
    if args.action is _place:
        if args.type in PRICED_TYPES and args.price is None:
            parser.error(f"a {args.type} order needs a PRICE (or --market)")
        if args.type not in PRICED_TYPES and args.price is not None:
            parser.error(f"a {args.type} order takes no PRICE")
    if args.action in (_amend, _cancel, _order):
        if args.order_id is not None and args.client_order_id is not None:
            parser.error("give an ORDER_ID or --client-order-id, not both")
        if args.order_id is None and args.client_order_id is None:
            parser.error("give an ORDER_ID or --client-order-id")
    if args.action is _amend and args.price is None and args.qty is None:
        parser.error("give --price, --qty or both")
    if args.action is _watch:
        public = args.what in ("book", "trades", "ticker")
        if public and args.symbol is None:
            parser.error(f"watch {args.what} needs a SYMBOL")
        if not public and args.symbol is not None:
            parser.error(f"watch {args.what} takes no SYMBOL: it is the account's own")
        args.login = not public


def _fail(args: argparse.Namespace, code: str, message: str, retry: int | None = None) -> int:
    if args.json:
        error: dict[str, Any] = {"code": code, "message": message}
        if retry is not None:
            error["retry_after_ms"] = retry
        print(json.dumps({"error": error}), file=sys.stderr)
    else:
        retry_text = f" (retry in {retry} ms)" if retry is not None else ""
        print(f"error: {code}: {message}{retry_text}", file=sys.stderr)
    return 1


def gateway_url(args: argparse.Namespace) -> str:
    """``--url``, or the gateway's address from the settings (a wildcard bind is reached on
    loopback)."""
    if args.url:
        return str(args.url)
    from services.settings import load_settings

    settings = load_settings()
    host = settings.gateway_host
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    if ":" in host:
        host = f"[{host}]"
    return f"ws://{host}:{settings.gateway_port}/ws"


def credentials_path(args: argparse.Namespace) -> Path:
    from services.client import default_credentials_path

    return Path(args.credentials) if args.credentials else default_credentials_path()


async def _session(args: argparse.Namespace) -> None:
    from services.client import Credentials, ExchangeClient, ExchangeError

    url = gateway_url(args)
    credentials = None
    if args.login:
        path = credentials_path(args)
        try:
            credentials = Credentials.load(path)
        except FileNotFoundError:
            raise Failed(
                f"no credentials at {path}: make an account with `exchange trade "
                "create-account --save` (or give --credentials PATH)",
                "no_credentials",
            ) from None
        except (OSError, ValueError) as error:
            raise Failed(str(error), "bad_credentials") from None
    async with ExchangeClient(url, timeout=args.timeout) as client:
        if credentials is not None:
            try:
                await client.login(credentials.api_key, credentials.api_secret)
            except ExchangeError as error:
                if error.code == "invalid_signature" and credentials.url not in (None, url):
                    error.message += (
                        f" (these credentials were made on {credentials.url}; each `exchange "
                        "up` is a new exchange)"
                    )
                raise
        await args.action(client, args)


def _emit(args: argparse.Namespace, result: object, text: Callable[[], str]) -> None:
    """Print ``result`` as JSON with ``--json``, else ``text()``."""
    if args.json:
        from services.client.views import to_builtins

        print(json.dumps(to_builtins(result), indent=2))
    else:
        print(text())


# ----------------------------------------------------------------------------- actions


async def _create_account(client: "ExchangeClient", args: argparse.Namespace) -> None:
    from services.client import Credentials

    created = await client.create_account()
    _emit(
        args,
        created,
        lambda: (
            _pairs(
                [
                    ("account", str(created.account)),
                    ("api_key", created.api_key),
                    ("api_secret", created.api_secret),
                ]
            )
            + "\nThe secret is shown this once: keep it (--save writes it to a file of mode 0600)."
        ),
    )
    if args.save:
        path = credentials_path(args)
        kept = Credentials(
            api_key=created.api_key,
            api_secret=created.api_secret,
            account=created.account,
            url=client.url,
        )
        try:
            kept.save(path, overwrite=args.force)
        except FileExistsError as error:
            raise Failed(f"{error}; not saved (--force replaces it)", "credentials_exist") from None
        print(f"saved to {path}", file=sys.stderr)


async def _deposit(client: "ExchangeClient", args: argparse.Namespace) -> None:
    balance = await client.deposit(args.amount)
    _emit(args, balance, lambda: _balance_table([balance]))


async def _place(client: "ExchangeClient", args: argparse.Namespace) -> None:
    expire_time = None
    if args.good_for is not None:  # from the gateway's clock, which stamps the order's time
        expire_time = (await client.ping()).time + args.good_for * 1000
    order = await client.place_order(
        args.symbol,
        args.side,
        args.qty,
        args.price,
        type=args.type,
        tif=args.tif,
        reduce_only=args.reduce_only,
        stop_price=args.stop_price,
        activation_price=args.activation_price,
        callback_rate=args.callback_rate,
        trigger=args.trigger,
        stp=args.stp,
        client_order_id=args.client_order_id,
        expire_time=expire_time,
    )
    _emit(args, order, lambda: _order_table([order]))


async def _amend(client: "ExchangeClient", args: argparse.Namespace) -> None:
    order = await client.amend_order(
        args.symbol,
        args.order_id,
        client_order_id=args.client_order_id,
        price=args.price,
        qty=args.qty,
    )
    _emit(args, order, lambda: _order_table([order]))


async def _cancel(client: "ExchangeClient", args: argparse.Namespace) -> None:
    order = await client.cancel_order(
        args.symbol, args.order_id, client_order_id=args.client_order_id
    )
    _emit(args, order, lambda: _order_table([order]))


async def _cancel_all(client: "ExchangeClient", args: argparse.Namespace) -> None:
    done = await client.cancel_all(args.symbol)
    ids = ", ".join(str(order_id) for order_id in done.order_ids)
    count = len(done.order_ids)
    _emit(args, done, lambda: f"cancelled {count} order{'s'[: count != 1]} in {done.symbol}: {ids}")


async def _orders(client: "ExchangeClient", args: argparse.Namespace) -> None:
    orders = await client.open_orders(args.symbol)
    _emit(args, orders, lambda: _order_table(orders) if orders else "no open orders")


async def _order(client: "ExchangeClient", args: argparse.Namespace) -> None:
    order = await client.order(args.symbol, args.order_id, client_order_id=args.client_order_id)
    _emit(args, order, lambda: _order_table([order]))


async def _positions(client: "ExchangeClient", args: argparse.Namespace) -> None:
    positions = await client.positions(args.symbol)
    _emit(args, positions, lambda: _position_table(positions))


async def _balances(client: "ExchangeClient", args: argparse.Namespace) -> None:
    balance = await client.balances()
    _emit(args, balance, lambda: _balance_table([balance]))


async def _fills(client: "ExchangeClient", args: argparse.Namespace) -> None:
    fills = await client.fills(args.symbol, args.limit)
    _emit(args, fills, lambda: _fill_table(fills) if fills else "no fills")


async def _leverage(client: "ExchangeClient", args: argparse.Namespace) -> None:
    done = await client.set_leverage(args.symbol, args.leverage)
    _emit(args, done, lambda: f"{done.symbol} leverage {done.leverage}x")


async def _margin_mode(client: "ExchangeClient", args: argparse.Namespace) -> None:
    done = await client.set_margin_mode(args.symbol, args.mode)
    _emit(args, done, lambda: f"{done.symbol} margin mode {done.mode}")


async def _margin(client: "ExchangeClient", args: argparse.Namespace) -> None:
    position = await client.adjust_margin(args.symbol, args.amount, args.direction)
    _emit(args, position, lambda: _position_table([position]))


async def _markets(client: "ExchangeClient", args: argparse.Namespace) -> None:
    markets = await client.markets()
    columns = ["SYMBOL", "TICK", "LOT", "MIN QTY", "MIN NOTIONAL", "MAKER", "TAKER", "MAX LEV"]
    rows = [
        [
            *(m.symbol, m.tick_size, m.lot_size, m.min_qty, m.min_notional),
            *(m.maker_fee, m.taker_fee, m.max_leverage),
        ]
        for m in markets
    ]
    _emit(args, markets, lambda: table(columns, rows))


async def _funding_history(client: "ExchangeClient", args: argparse.Namespace) -> None:
    history = await client.funding_history(args.symbol, args.limit)
    columns = ["FUNDING TIME", "SYMBOL", "RATE", "MARK", "POSITIONS", "PAID", "RECEIVED"]
    rows = [
        [_time(s.funding_time), s.symbol, s.rate, s.mark, s.positions, s.paid, s.received]
        for s in history
    ]
    _emit(args, history, lambda: table(columns, rows) if rows else "no settlements yet")


# ------------------------------------------------------------------------------- watching


async def _watch(client: "ExchangeClient", args: argparse.Namespace) -> None:
    """Stream until Ctrl-C (SIGINT, or SIGTERM: a clean stop, status 0) or ``--count``."""
    task = asyncio.ensure_future(
        _watch_book(client, args) if args.what == "book" else _watch_channel(client, args)
    )
    loop = asyncio.get_running_loop()
    signals = (signal.SIGINT, signal.SIGTERM)
    handled = threading.current_thread() is threading.main_thread()
    if handled:  # signal handlers can only be set from the main thread
        for sig in signals:
            loop.add_signal_handler(sig, task.cancel)
    try:
        await task
    except asyncio.CancelledError:
        if not task.cancelled():
            raise
    finally:
        if handled:
            for sig in signals:
                loop.remove_signal_handler(sig)


async def _watch_book(client: "ExchangeClient", args: argparse.Namespace) -> None:
    live = await client.order_book(args.symbol)
    redraw = sys.stdout.isatty() and not args.json
    shown = 0
    while args.count is None or shown < args.count:
        book = live.book
        if args.json:
            bids, asks = book.depth(args.depth)
            update: dict[str, object] = {"symbol": book.symbol, "update_id": book.update_id}
            update |= {"bids": _levels(bids), "asks": _levels(asks)}
            print(json.dumps(update), flush=True)
        else:
            text = book_table(book, args.depth)
            print(("\x1b[H\x1b[2J" + text) if redraw else text + "\n", flush=True)
        shown += 1
        if args.count is not None and shown >= args.count:
            break
        await live.updated()  # after a gap: when the fresh snapshot is in


def _levels(levels: Sequence[tuple[Decimal, Decimal]]) -> list[list[str]]:
    return [[format(price, "f"), format(qty, "f")] for price, qty in levels]


async def _watch_channel(client: "ExchangeClient", args: argparse.Namespace) -> None:
    from services.client.views import to_builtins

    channel = f"{args.what}.{args.symbol}" if args.symbol else args.what
    row, columns = _ROWS[args.what]
    shown = 0
    widths = [23 if column == "TIME" else max(len(column), 10) for column in columns]
    async with client.subscribe(channel) as pushes:
        if not args.json:
            print(_line(columns, widths), flush=True)
        async for push in pushes:
            # a trades push is a list (the trades of one gateway step): a line for each
            for item in push.data if isinstance(push.data, list) else [push.data]:
                if args.json:
                    print(json.dumps(to_builtins(item)), flush=True)
                else:
                    values = row(item)
                    cells = [_cell(value) for value in values]
                    print(_line(cells, widths, [_numeric([v]) for v in values]), flush=True)
                shown += 1
                if args.count is not None and shown >= args.count:
                    return


# ------------------------------------------------------------------------------- tables


def table(columns: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Columns sized to fit; numbers right-aligned so that their places line up."""
    cells = [[_cell(value) for value in row] for row in rows]
    widths = [
        max([len(column), *(len(row[i]) for row in cells)]) for i, column in enumerate(columns)
    ]
    numeric = [_numeric([row[i] for row in rows]) for i in range(len(columns))]
    lines = [_line(columns, widths, numeric)]
    lines += [_line(row, widths, numeric) for row in cells]
    return "\n".join(lines)


def _numeric(values: Sequence[object]) -> bool:
    """A column of numbers (and blanks), so right-aligned."""
    present = [value for value in values if value is not None]
    return bool(present) and all(
        isinstance(value, Decimal | int) and not isinstance(value, bool) for value in present
    )


def _line(cells: Sequence[str], widths: Sequence[int], numeric: Sequence[bool] = ()) -> str:
    padded = [
        cell.rjust(width) if i < len(numeric) and numeric[i] else cell.ljust(width)
        for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
    ]
    return "  ".join(padded).rstrip()


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _pairs(pairs: Sequence[tuple[str, str]]) -> str:
    width = max(len(key) for key, _ in pairs)
    return "\n".join(f"{key.ljust(width)}  {value}" for key, value in pairs)


def _time(ms: int) -> str:
    """Event time in ms as UTC, to the millisecond."""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


ORDER_COLUMNS = ["SYMBOL", "ID", "SIDE", "TYPE", "STATUS", "QTY", "FILLED", "PRICE", "AVG PRICE"]
ORDER_COLUMNS += ["STOP", "TIF", "REDUCE", "END", "CLIENT ID"]  # last: up to 36 wide


def _order_row(o: Any) -> list[object]:
    return [
        *(o.symbol, o.order_id, o.side.value, o.type.value, o.status.value, o.qty, o.filled_qty),
        *(o.price, o.avg_price, o.stop_price, o.tif.value, o.reduce_only, o.end_reason),
        o.client_order_id,
    ]


def _order_table(orders: Sequence[Any]) -> str:
    return table(ORDER_COLUMNS, [_order_row(o) for o in orders])


POSITION_COLUMNS = ["SYMBOL", "SIZE", "ENTRY PRICE", "NOTIONAL", "REALIZED PNL", "MODE"]
POSITION_COLUMNS += ["LEVERAGE", "ISOLATED"]


def _position_row(p: Any) -> list[object]:
    return [
        *(p.symbol, p.size, p.entry_price, p.entry_notional, p.realized_pnl),
        *(p.margin_mode.value, p.leverage, p.isolated_wallet),
    ]


def _position_table(positions: Sequence[Any]) -> str:
    return table(POSITION_COLUMNS, [_position_row(p) for p in positions])


BALANCE_COLUMNS = ["ASSET", "WALLET", "ISOLATED", "ORDER MARGIN", "AVAILABLE"]


def _balance_row(b: Any) -> list[object]:
    return [b.asset, b.wallet, b.isolated, b.order_margin, b.available]


def _balance_table(balances: Sequence[Any]) -> str:
    return table(BALANCE_COLUMNS, [_balance_row(b) for b in balances])


FILL_COLUMNS = ["TIME", "SYMBOL", "TRADE", "ORDER", "SIDE", "ROLE", "PRICE", "QTY", "FEE"]


def _fill_row(f: Any) -> list[object]:
    return [
        *(_time(f.time), f.symbol, f.trade_id, f.order_id, f.side.value, f.role),
        *(f.price, f.qty, f.fee),
    ]


def _fill_table(fills: Sequence[Any]) -> str:
    return table(FILL_COLUMNS, [_fill_row(f) for f in fills])


TRADE_COLUMNS = ["TIME", "SYMBOL", "TRADE", "TAKER SIDE", "PRICE", "QTY"]
TICKER_COLUMNS = ["TIME", "SYMBOL", "BID", "ASK", "LAST", "24H CHANGE", "%", "HIGH", "LOW"]
TICKER_COLUMNS += ["VOLUME"]

_ROWS: dict[str, tuple[Callable[[Any], list[object]], list[str]]] = {
    "trades": (
        lambda t: [_time(t.time), t.symbol, t.trade_id, t.taker_side.value, t.price, t.qty],
        TRADE_COLUMNS,
    ),
    "ticker": (
        lambda t: [
            *(_time(t.time), t.symbol, t.best_bid, t.best_ask, t.last, t.price_change),
            *(t.price_change_percent, t.high, t.low, t.volume),
        ],
        TICKER_COLUMNS,
    ),
    "fills": (_fill_row, FILL_COLUMNS),
    "orders": (_order_row, ORDER_COLUMNS),
    "positions": (_position_row, POSITION_COLUMNS),
    "balances": (_balance_row, BALANCE_COLUMNS),
}
"""What ``watch`` prints per push of each channel, and its header."""


def book_table(book: "OrderBook", depth: int) -> str:
    """The top ``depth`` levels of each side, bids beside asks, best first."""
    bids, asks = book.depth(depth)
    spread = book.spread
    head = f"{book.symbol}  update {book.update_id}"
    if spread is not None:
        head += f"  spread {format(spread, 'f')}"
    rows = []
    for i in range(max(len(bids), len(asks))):
        bid = bids[i] if i < len(bids) else (None, None)
        ask = asks[i] if i < len(asks) else (None, None)
        rows.append([bid[1], bid[0], ask[0], ask[1]])
    columns = ["BID QTY", "BID", "ASK", "ASK QTY"]
    return head + "\n" + (table(columns, rows) if rows else "(empty book)")
