"""Liveness and readiness over HTTP, for ``exchange up``, orchestrators and the compose file.

``GET /health/live`` answers 200 while the process's event loop runs; ``GET /health/ready``
answers 200 when the service says it is ready and 503 while it is not (starting, replaying,
stopping), each with the service's own status as JSON so a person can see why.
"""

from collections.abc import Callable

import msgspec
from aiohttp import web

Status = Callable[[], tuple[bool, msgspec.Struct]]
"""A service's readiness and the status it wants shown."""


class HealthServer:
    """A tiny aiohttp app on ``host:port`` (port 0 picks a free one: see ``port``)."""

    def __init__(self, status: Status, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self._status = status
        self._host = host
        self._requested_port = port
        self.port = port
        app = web.Application()
        app.router.add_get("/health/live", self._live)
        app.router.add_get("/health/ready", self._ready)
        self._runner = web.AppRunner(app, access_log=None)

    async def start(self) -> None:
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._requested_port)
        await site.start()
        self.port = int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        await self._runner.cleanup()

    async def _live(self, _request: web.Request) -> web.Response:
        return web.json_response({"live": True})

    async def _ready(self, _request: web.Request) -> web.Response:
        ready, status = self._status()
        return web.Response(
            body=msgspec.json.encode(status),
            status=200 if ready else 503,
            content_type="application/json",
        )
