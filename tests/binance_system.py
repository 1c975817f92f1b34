"""The engine and the Binance front in process against the session broker, paper accounts made
through the front, and ccxt's ``binanceusdm`` configured for it through its configuration dict
alone: shared by the Binance front's tests.

Why ccxt itself: it is the client bots use, so the front is right when ccxt, unchanged, can
load its markets and trade (the issue's proof). Its sync client blocks, so tests run it in a
thread (``asyncio.to_thread``) while this loop serves the front.
"""

import asyncio
import time
from typing import Any

from gateway_system import WAIT_S, EngineSystem, until
from yarl import URL

from exchange.default_markets import DEFAULT_MARKETS
from services.binance.server import BinanceFront
from services.binance.signing import sign
from services.gateway.config import gateway_config


def ccxt_config(base: str, api_key: str = "", secret: str = "") -> dict[str, Any]:
    """What a bot author gives ``ccxt.binanceusdm(...)`` to trade here (README, *Bots*)."""
    ws = base.replace("http", "ws", 1)
    return {
        "apiKey": api_key,
        "secret": secret,
        "urls": {
            "api": {
                "fapiPublic": f"{base}/fapi/v1",
                "fapiPublicV2": f"{base}/fapi/v2",
                "fapiPublicV3": f"{base}/fapi/v3",
                "fapiPrivate": f"{base}/fapi/v1",
                "fapiPrivateV2": f"{base}/fapi/v2",
                "fapiPrivateV3": f"{base}/fapi/v3",
                "fapiData": f"{base}/futures/data",
                "public": f"{base}/api/v3",
                "private": f"{base}/api/v3",
                "sapi": f"{base}/sapi/v1",
                # newer ccxt reads "linear" (and adds /public, /market, /private), 4.4 "future"
                "ws": {
                    "linear": f"{ws}/ws",
                    "future": f"{ws}/ws",
                    "ws-api": {"linear": f"{ws}/ws-fapi/v1", "future": f"{ws}/ws-fapi/v1"},
                },
            }
        },
        "options": {"defaultType": "swap"},
    }


class BinanceSystem(EngineSystem):
    """Broker topics of this test, the engine and one Binance front, started and stopped
    together. ``config``: gateway settings without their ``gateway_`` prefix."""

    async def start_front(self) -> str:
        self.front = await self.another_front()
        return base_url(self.front)

    async def another_front(self) -> BinanceFront:
        """One more front on this test's logs, once ready: its read model folded from the logs
        and its own memory empty, as an instance restarted now would have them."""
        front = BinanceFront(gateway_config(self.settings), self.settings, DEFAULT_MARKETS)
        self._tasks.append(asyncio.create_task(front.run(self.stop)))
        await asyncio.wait_for(until(lambda: front.ready), WAIT_S)
        return front

    async def account(self, deposit: str = "10000") -> tuple[str, str]:
        """A new paper account with ``deposit`` USDT: its API key and secret."""
        async with self.http.post(f"{self.url}/paper/v1/account") as response:
            created = await response.json()
            assert response.status == 200, created
        api_key, secret = created["apiKey"], created["secretKey"]
        await self.signed("POST", "/paper/v1/deposit", api_key, secret, amount=deposit)
        return api_key, secret

    async def signed(
        self,
        method: str,
        path: str,
        api_key: str,
        secret: str,
        *,
        front: BinanceFront | None = None,
        **params: Any,
    ) -> Any:
        """A signed request (parameters in the query string), its JSON answer; asserts 200."""
        status, body = await self.request(method, path, api_key, secret, front=front, **params)
        assert status == 200, body
        return body

    async def request(
        self,
        method: str,
        path: str,
        api_key: str = "",
        secret: str = "",
        *,
        front: BinanceFront | None = None,
        **params: Any,
    ) -> tuple[int, Any]:
        """``front``: another front than the first (``another_front``)."""
        query = "&".join(f"{key}={value}" for key, value in params.items())
        if secret:
            query = f"{query}&timestamp={int(time.time() * 1000)}".lstrip("&")
            query += f"&signature={sign(secret, query)}"
        headers = {"X-MBX-APIKEY": api_key} if api_key else {}
        base = self.url if front is None else base_url(front)
        url = URL(f"{base}{path}?{query}", encoded=True)  # sent exactly as signed
        async with self.http.request(method, url, headers=headers) as response:
            return response.status, await response.json()


def base_url(front: BinanceFront) -> str:
    return f"http://127.0.0.1:{front.port}"
