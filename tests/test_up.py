"""``exchange up`` end to end: the real command starts the broker and every service, prints
where to connect, lets a user trade with the market maker, and stops everything on Ctrl-C."""

import asyncio
import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
from gateway_system import Client

EXCHANGE = Path(sys.executable).parent / "exchange"


def start_up(tmp_path: Path) -> tuple[subprocess.Popen[str], str, str, str, str]:
    """Run ``exchange up`` and wait (bounded) for its banner; return it, the broker's address,
    the websocket URL, the liquidation service's readiness URL and the Binance front's URL."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXCHANGE_")}
    env["EXCHANGE_FEED_SPEED"] = "20"
    up = subprocess.Popen(
        [str(EXCHANGE), "up"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=open(tmp_path / "up.log", "wb"),  # noqa: SIM115 - closed with the process
        text=True,
    )
    assert up.stdout is not None
    banner = ""
    deadline = time.monotonic() + 90
    while "Ctrl-C stops everything." not in banner:
        assert time.monotonic() < deadline and up.poll() is None, (tmp_path / "up.log").read_text()
        banner += up.stdout.readline()
    broker = re.search(r"broker \(Kafka protocol\): (\S+)", banner)
    websocket = re.search(r"websocket API: +(ws://\S+)", banner)
    liquidator = re.search(r"liquidation service: +(http://\S+)", banner)
    binance = re.search(r"Binance USDⓈ-M API: +(http://\S+)", banner)
    assert broker and websocket and liquidator and binance, banner
    return up, broker.group(1), websocket.group(1), liquidator.group(1), binance.group(1)


async def test_up_runs_an_exchange_a_user_can_trade_on(tmp_path: Path) -> None:
    """A user's first minute: connect to the URL the banner prints, make an account, sign in,
    take paper money, and buy from the market maker at market."""
    up, bootstrap, url, liquidator, binance = start_up(tmp_path)
    try:
        async with aiohttp.ClientSession() as session:
            client = Client(await session.ws_connect(url))
            created = await client.ok("create_account")
            await client.login(created["api_key"], created["api_secret"])
            await client.ok("deposit", amount="1000")
            await client.ok("subscribe", channel="fills")
            deadline = time.monotonic() + 60
            while True:  # until the maker has quoted (the feed's first tick, then its ladder)
                order = await client.ok(
                    "place_order", symbol="BTCUSDT", side="buy", qty="0.001", type="market"
                )
                if order["status"] == "filled":
                    break
                assert order["end_reason"] == "no_liquidity", order
                assert time.monotonic() < deadline, "the market maker never quoted"
                await asyncio.sleep(0.2)
            fill = (await client.push("fills"))["data"]
            assert fill["order_id"] == order["order_id"] and fill["qty"] == "0.001"
            positions = await client.ok("positions")
            held = [(p["symbol"], p["size"]) for p in positions if p["size"] != "0.000"]
            assert held == [("BTCUSDT", "0.001")]
            await client.close()
            # the Binance front serves the same markets
            async with session.get(f"{binance}/fapi/v1/exchangeInfo") as response:
                symbols = [s["symbol"] for s in (await response.json())["symbols"]]
                assert response.status == 200 and "BTCUSDT" in symbols
            while True:  # the liquidation service follows the logs: it values the user's position
                # (the banner comes once engine and gateway are ready; this service may still
                # be starting on a busy machine, its port not yet open)
                with contextlib.suppress(aiohttp.ClientConnectionError):
                    async with session.get(liquidator) as response:
                        if response.status == 200 and (await response.json())["scopes"] >= 2:
                            break
                assert time.monotonic() < deadline, "the liquidation service never caught up"
                await asyncio.sleep(0.2)
    finally:
        up.send_signal(signal.SIGINT)
        assert await asyncio.to_thread(up.wait, 60) == 0, (tmp_path / "up.log").read_text()
    host, port = bootstrap.rsplit(":", 1)
    with socket.socket() as sock:  # the broker is gone with the rest
        assert sock.connect_ex((host, int(port))) != 0
