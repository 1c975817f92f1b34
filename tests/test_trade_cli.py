"""``exchange trade …`` against a real gateway and engine: the commands a person types, run
through the ``exchange`` command's own ``main`` (in a thread, as its own event loop), and the
``watch`` commands as real processes stopped with Ctrl-C (SIGINT)."""

import asyncio
import json
import os
import signal
import stat
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from gateway_system import WAIT_S, System

from services import cli
from services.client import Credentials
from services.logs import configure_logging

EXCHANGE = Path(sys.executable).parent / "exchange"


@pytest.fixture
async def system(kafka_bootstrap: str, tmp_path: Path) -> Any:
    configure_logging()  # as the command does: log lines on stderr, stdout for results only
    async with System(kafka_bootstrap, tmp_path) as running:
        yield running


def exit_status(argv: list[str]) -> int:
    """``exchange``'s exit status for ``argv``: what ``main`` returns, or argparse's exit."""
    try:
        return cli.main(argv)
    except SystemExit as exit:
        return int(exit.code or 0)


class Terminal:
    """Runs ``exchange trade …`` in process against one gateway, as one person would type it,
    with a credentials file of its own."""

    def __init__(self, system: System, capsys: pytest.CaptureFixture[str], path: Path) -> None:
        self.url = f"ws://127.0.0.1:{system.gateway.port}/ws"
        self.capsys = capsys
        self.credentials = path

    async def run(self, *argv: str) -> tuple[int, str, str]:
        """Exit status, stdout, and the lines of stderr that are not log lines."""
        self.capsys.readouterr()
        action, *rest = argv
        args = ["trade", action, "--url", self.url, "--credentials", str(self.credentials), *rest]
        code = await asyncio.wait_for(asyncio.to_thread(exit_status, args), WAIT_S)
        out, err = self.capsys.readouterr()
        said = [line for line in err.splitlines() if '"level"' not in line]
        return code, out, "\n".join(said)

    async def ok(self, *argv: str) -> str:
        code, out, err = await self.run(*argv)
        assert code == 0, err
        return out

    async def json(self, *argv: str) -> Any:
        return json.loads(await self.ok(*argv, "--json"))


async def test_a_person_trades_from_the_terminal(
    system: System, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    alice = Terminal(system, capsys, tmp_path / "alice" / "credentials.json")
    bob = Terminal(system, capsys, tmp_path / "bob.json")

    made = await alice.ok("create-account", "--save")
    saved = Credentials.load(alice.credentials)
    assert stat.S_IMODE(alice.credentials.stat().st_mode) == 0o600
    assert saved.api_secret in made and saved.api_key in made and saved.url == alice.url
    assert f"account     {saved.account}" in made
    created = await bob.json("create-account", "--save")
    assert Credentials.load(bob.credentials).api_secret == created["api_secret"]

    assert (await alice.json("deposit", "10000"))["wallet"] == "10000.00000000"
    assert "USDT   5000.00000000" in await bob.ok("deposit", "5000")

    ask = await alice.json("place", "btcusdt", "sell", "0.010", "61000", "--post-only")
    assert (ask["status"], ask["tif"], ask["price"], ask["open_qty"]) == (
        "new",
        "GTX",
        "61000.0",
        "0.010",
    )
    table = (await alice.ok("orders")).splitlines()
    assert table[0].split()[:5] == ["SYMBOL", "ID", "SIDE", "TYPE", "STATUS"]
    assert table[1].split()[:8] == [
        "BTCUSDT",
        str(ask["order_id"]),
        "sell",
        "limit",
        "new",
        "0.010",
        "0.000",
        "61000.0",
    ]
    bought = await bob.json("place", "BTCUSDT", "buy", "0.004", "--market")
    assert (bought["status"], bought["avg_price"]) == ("filled", "61000.00000")
    stop = await bob.json(
        "place", "BTCUSDT", "sell", "0.004", "--type", "stop_market", "--stop-price", "50000"
    )
    assert (stop["type"], stop["stop_price"], stop["trigger"]) == ("stop_market", "50000.0", "last")
    assert (await bob.json("order", "BTCUSDT", str(stop["order_id"])))["status"] == "new"

    positions = {p["symbol"]: p for p in await alice.json("positions")}
    assert positions["BTCUSDT"]["size"] == "-0.004" and positions["ETHUSDT"]["size"] == "0.000"
    assert "-0.004" in await alice.ok("positions", "BTCUSDT")
    (fill,) = await alice.json("fills")
    assert (fill["role"], fill["qty"], fill["order_id"]) == ("maker", "0.004", ask["order_id"])
    assert "maker" in await alice.ok("fills", "BTCUSDT", "--limit", "5")
    balance = await alice.json("balances")
    assert balance["wallet"] == "9999.95120000"  # 10,000 less the 0.02 % maker fee on 244
    assert (await alice.json("orders", "BTCUSDT"))[0]["open_qty"] == "0.006"

    amended = await alice.json("amend", "BTCUSDT", str(ask["order_id"]), "--price", "61500")
    assert amended["price"] == "61500.0"
    cancelled = await alice.json("cancel", "BTCUSDT", str(ask["order_id"]))
    assert (cancelled["status"], cancelled["end_reason"]) == ("cancelled", "user")
    assert await alice.ok("orders") == "no open orders\n"
    assert await bob.ok("cancel-all", "BTCUSDT") == (
        f"cancelled 1 order in BTCUSDT: {stop['order_id']}\n"
    )
    assert await alice.ok("leverage", "BTCUSDT", "5") == "BTCUSDT leverage 5x\n"
    assert (await alice.json("margin-mode", "ETHUSDT", "isolated"))["mode"] == "isolated"
    markets = await alice.ok("markets")
    assert "BTCUSDT" in markets and "ETHUSDT" in markets
    assert await alice.json("funding-history", "BTCUSDT") == []

    # refusals: the gateway's code and message, exit status 1, no traceback
    code, out, err = await bob.run("place", "BTCUSDT", "buy", "5", "60000")
    assert (code, out) == (1, "")
    assert err == "error: insufficient_margin: available balance below the order's cost"
    code, out, err = await alice.run("cancel", "BTCUSDT", "999999", "--json")
    assert (code, out) == (1, "")
    assert json.loads(err) == {
        "error": {"code": "unknown_order", "message": "no order 999999 of this account in BTCUSDT"}
    }
    code, out, err = await alice.run("deposit", "0.000000001")
    assert code == 1 and err.startswith("error: invalid_value: amount '0.000000001'")
    code, out, err = await alice.run("create-account", "--save")  # would lose alice's secret
    assert code == 1 and "credentials_exist" in err and "api_secret" in out
    assert Credentials.load(alice.credentials) == saved
    nobody = Terminal(system, capsys, tmp_path / "nobody.json")
    code, _, err = await nobody.run("balances")
    assert code == 1 and err.startswith("error: no_credentials: no credentials at")
    code, _, err = await alice.run("balances", "--url", "ws://127.0.0.1:1/ws")
    assert code == 1 and err.startswith("error: ConnectError: ws://127.0.0.1:1/ws")
    code, _, err = await alice.run("place", "BTCUSDT", "buy", "0.01")  # a usage mistake
    assert code == 2 and err.endswith("error: a limit order needs a PRICE (or --market)")


async def test_orders_by_client_order_id_from_the_terminal(
    system: System, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    dave = Terminal(system, capsys, tmp_path / "dave.json")
    await dave.ok("create-account", "--save")
    await dave.ok("deposit", "10000")
    placed = await dave.json(
        "place", "BTCUSDT", "buy", "0.010", "59000", "--client-order-id", "d-1"
    )
    assert placed["client_order_id"] == "d-1"
    table = (await dave.ok("orders")).splitlines()
    assert table[0].endswith("CLIENT ID") and table[1].endswith("d-1")
    by_label = ("BTCUSDT", "--client-order-id", "d-1")
    assert await dave.json("order", *by_label) == placed
    code, _, err = await dave.run(
        "place", "BTCUSDT", "buy", "0.010", "58000", "--client-order-id", "d-1"
    )
    assert (code, err) == (1, "error: duplicate_client_order_id: client order id 'd-1' is live")
    amended = await dave.json("amend", *by_label, "--price", "59100")
    assert (amended["order_id"], amended["price"]) == (placed["order_id"], "59100.0")
    cancelled = await dave.json("cancel", *by_label)
    assert (cancelled["order_id"], cancelled["status"]) == (placed["order_id"], "cancelled")
    code, _, err = await dave.run("cancel", "BTCUSDT", "--client-order-id", "d-9")
    assert code == 1 and err.startswith("error: unknown_order: no order with client_order_id")

    # good for a minute from the gateway's clock
    before = int(time.time() * 1000)
    gtd = await dave.json("place", "BTCUSDT", "buy", "0.010", "59000", "--good-for", "60")
    assert before + 60_000 <= gtd["expire_time"] <= int(time.time() * 1000) + 60_000

    # usage mistakes: both names, or neither
    code, _, err = await dave.run("order", "BTCUSDT", "7", "--client-order-id", "d-1")
    assert code == 2 and err.endswith("error: give an ORDER_ID or --client-order-id, not both")
    code, _, err = await dave.run("cancel", "BTCUSDT")
    assert code == 2 and err.endswith("error: give an ORDER_ID or --client-order-id")


async def watch(
    system: System, credentials: Path, home: Path, *argv: str
) -> asyncio.subprocess.Process:
    """``exchange trade watch …`` as its own process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXCHANGE_")}
    env["XDG_CONFIG_HOME"] = str(home)
    url = f"ws://127.0.0.1:{system.gateway.port}/ws"
    return await asyncio.create_subprocess_exec(
        str(EXCHANGE),
        "trade",
        "watch",
        *argv,
        "--url",
        url,
        "--credentials",
        str(credentials),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def line(process: asyncio.subprocess.Process) -> str:
    assert process.stdout is not None
    text = await asyncio.wait_for(process.stdout.readline(), WAIT_S)
    assert text, "the process ended"
    return text.decode()


async def test_watch_streams_the_book_and_fills_until_ctrl_c(
    system: System, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    carol = Terminal(system, capsys, tmp_path / "carol.json")
    await carol.ok("create-account", "--save")
    await carol.ok("deposit", "10000")
    await carol.ok("place", "BTCUSDT", "buy", "0.010", "59000")

    book = await watch(system, carol.credentials, tmp_path, "book", "BTCUSDT", "--json")
    fills = await watch(system, carol.credentials, tmp_path, "fills")
    try:
        first = json.loads(await line(book))
        assert (first["bids"], first["asks"]) == ([["59000.0", "0.010"]], [])
        header = await line(fills)  # printed once subscribed
        assert header.split()[:3] == ["TIME", "SYMBOL", "TRADE"]

        taker = Terminal(system, capsys, tmp_path / "taker.json")
        await taker.ok("create-account", "--save")
        await taker.ok("deposit", "10000")
        await taker.ok("place", "BTCUSDT", "sell", "0.004", "--market")
        changed = json.loads(await line(book))
        assert changed["bids"] == [["59000.0", "0.006"]]
        assert changed["update_id"] == first["update_id"] + 1
        row = (await line(fills)).split()
        assert row[2:] == ["BTCUSDT", "1", "1", "buy", "maker", "59000.0", "0.004", "0.04720000"]
    finally:
        for process in (book, fills):
            process.send_signal(signal.SIGINT)
    for process in (book, fills):
        assert await asyncio.wait_for(process.wait(), WAIT_S) == 0
        assert process.stderr is not None
        said = (await process.stderr.read()).decode()
        assert "Traceback" not in said, said
