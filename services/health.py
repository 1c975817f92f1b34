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


def health_routes(status: Status) -> list[web.RouteDef]:
    """The two routes, for a service that serves them on an app of its own (the gateway, on
    its websocket port)."""

    async def live(_request: web.Request) -> web.Response:
        return web.json_response({"live": True})

    async def ready(_request: web.Request) -> web.Response:
        is_ready, shown = status()
        return web.Response(
            body=msgspec.json.encode(shown),
            status=200 if is_ready else 503,
            content_type="application/json",
        )

    return [web.get("/health/live", live), web.get("/health/ready", ready)]


class HealthServer:
    """A tiny aiohttp app on ``host:port`` (port 0 picks a free one: see ``port``)."""

    def __init__(self, status: Status, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self._host = host
        self._requested_port = port
        self.port = port
        app = web.Application()
        app.add_routes(health_routes(status))
        self._runner = web.AppRunner(app, access_log=None)

    async def start(self) -> None:
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._requested_port)
        await site.start()
        self.port = int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        await self._runner.cleanup()
