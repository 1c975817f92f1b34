"""The engine and a gateway in process against the session broker, and a small websocket client
that speaks the gateway's protocol: shared by the gateway's end-to-end tests.

The client here is the tests' own, deliberately plain (JSON dicts, one reader task that sorts
responses by id and pushes by channel); the typed client for bots is separate. Every wait is
bounded (``WAIT_S``); nothing asserts on how long anything took.
"""

import asyncio
import itertools
import json
import time
import uuid
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import aiohttp
from topics import fresh_settings

from exchange.default_markets import DEFAULT_MARKETS
from services.engine_service import EngineService
from services.gateway.auth import sign_login
from services.gateway.config import gateway_config
from services.gateway.server import Gateway

WAIT_S = 20
"""The bound of every wait: far above what a run takes, so only a hang reaches it."""

MASTER_KEY = "test-master-key-0123456789abcdef"


class EngineSystem:
    """Broker topics of this test, the engine and one front (``start_front``), started and
    stopped together."""

    def __init__(
        self,
        bootstrap: str,
        snapshot_dir: Path,
        *,
        settings: dict[str, Any] | None = None,
        **config: Any,
    ) -> None:
        """``config``: gateway settings without their ``gateway_`` prefix; ``settings``: any
        others (a funding schedule for the oracle and funding services beside it)."""
        self.bootstrap = bootstrap
        self.snapshot_dir = snapshot_dir
        self.config_changes = {"gateway_" + name: value for name, value in config.items()}
        self.config_changes |= settings or {}
        self.stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> Self:
        self.settings = await fresh_settings(
            self.bootstrap,
            gateway_port=0,
            binance_port=0,
            gateway_master_key=MASTER_KEY,
            **self.config_changes,
        )
        self.engine = EngineService(
            bootstrap=self.bootstrap,
            commands_topic=self.settings.commands_topic,
            events_topic=self.settings.events_topic,
            snapshot_path=self.snapshot_dir / "engine.snap",
            specs=DEFAULT_MARKETS,
            faucet_cap=self.settings.faucet_cap,
        )
        self._tasks.append(asyncio.create_task(self.engine.run(self.stop)))
        await asyncio.wait_for(self.engine.ready.wait(), WAIT_S)
        self.url = await self.start_front()
        self.http = aiohttp.ClientSession()
        return self

    async def start_front(self) -> str:
        """Start the front as a task of ``self._tasks``; its base URL once it is ready."""
        raise NotImplementedError

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.http.close()
        self.stop.set()
        await asyncio.wait_for(asyncio.gather(*self._tasks), WAIT_S)


class System(EngineSystem):
    """The engine and one native gateway."""

    async def start_front(self) -> str:
        self.gateway = Gateway(gateway_config(self.settings), self.settings, DEFAULT_MARKETS)
        self._tasks.append(asyncio.create_task(self.gateway.run(self.stop)))
        await asyncio.wait_for(until(lambda: self.gateway.ready), WAIT_S)
        return f"http://127.0.0.1:{self.gateway.port}"

    async def connect(self) -> "Client":
        ws = await self.http.ws_connect(f"{self.url}/ws", max_msg_size=0)
        return Client(ws)

    async def trader(self, deposit: str = "10000") -> "Client":
        """A new account, logged in on a new connection, with ``deposit`` USDT."""
        client = await self.connect()
        created = await client.ok("create_account")
        await client.login(created["api_key"], created["api_secret"])
        await client.ok("deposit", amount=deposit)
        return client


class Client:
    """Requests by id, pushes by channel; a reader task sorts every frame as it arrives.

    Its request ids are strings no other sender would choose, so that frames a test sends by
    hand (with ids of their own) are never mistaken for its requests' answers."""

    _PREFIX = "client-"

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.account = 0
        self._ids = (f"{self._PREFIX}{uuid.uuid4().hex[:12]}-{n}" for n in itertools.count(1))
        self._waiting: dict[object, asyncio.Future[dict[str, Any]]] = {}
        self.unmatched: list[dict[str, Any]] = []
        """Responses with no request waiting (id null: a frame that was no request)."""
        self._pushes: dict[str, asyncio.Queue[dict[str, Any]]] = {}
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for message in self.ws:
            frame = json.loads(message.data)
            if "channel" in frame:
                self.channel(frame["channel"]).put_nowait(frame)
                continue
            waiting = self._waiting.pop(frame["id"], None)
            if waiting is None:
                self.unmatched.append(frame)
            else:
                waiting.set_result(frame)

    def channel(self, name: str) -> "asyncio.Queue[dict[str, Any]]":
        return self._pushes.setdefault(name, asyncio.Queue())

    async def call(self, op: str, **fields: Any) -> dict[str, Any]:
        """Send a request; its response (``result`` or ``error``)."""
        request_id = next(self._ids)
        future = asyncio.get_running_loop().create_future()
        self._waiting[request_id] = future
        await self.ws.send_str(json.dumps({"id": request_id, "op": op, **fields}))
        response: dict[str, Any] = await asyncio.wait_for(future, WAIT_S)
        assert response["id"] == request_id
        return response

    async def ok(self, op: str, **fields: Any) -> Any:
        response = await self.call(op, **fields)
        assert "result" in response, response
        return response["result"]

    async def fail(self, op: str, **fields: Any) -> dict[str, Any]:
        response = await self.call(op, **fields)
        assert "error" in response, response
        error: dict[str, Any] = response["error"]
        return error

    async def login(self, api_key: str, secret: str) -> None:
        timestamp = int(time.time() * 1000)
        nonce = uuid.uuid4().hex
        result = await self.ok(
            "login",
            api_key=api_key,
            timestamp=timestamp,
            nonce=nonce,
            signature=sign_login(secret, timestamp, nonce),
        )
        self.account = result["account"]

    async def push(self, channel: str) -> dict[str, Any]:
        """The next push on ``channel`` (its whole frame: channel, seq, data)."""
        return await asyncio.wait_for(self.channel(channel).get(), WAIT_S)

    async def push_where(self, channel: str, **data: Any) -> dict[str, Any]:
        """The next push on ``channel`` whose data has these values; earlier ones are skipped."""
        while True:
            frame = await self.push(channel)
            if all(frame["data"].get(key) == value for key, value in data.items()):
                return frame

    async def close(self) -> None:
        await self.ws.close()
        await asyncio.wait_for(self._reader, WAIT_S)


async def until(condition: Any, interval_s: float = 0.01) -> None:
    """Poll ``condition()`` until it is true (callers bound the wait)."""
    while not condition():
        await asyncio.sleep(interval_s)
