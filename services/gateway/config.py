"""The gateway's own tunables. The broker, topics and markets come from ``Settings``.

Why a struct of its own: the gateway's knobs (its port, the master key, limits, buffers) mean
nothing to the other services; ``Settings`` (one ``EXCHANGE_*`` variable per field) is where
they will be exposed for deployment, each as ``EXCHANGE_GATEWAY_<NAME>``.
"""

import msgspec


class GatewayConfig(msgspec.Struct, frozen=True, kw_only=True):
    """Defaults are for one gateway on a developer's machine; ``check`` refuses nonsense."""

    host: str = "127.0.0.1"
    """Interface the websocket and health endpoints bind; ``0.0.0.0`` in a container."""
    port: int = 8765
    """Port of ``/ws`` and ``/health/*``; 0 picks a free one (``GatewayServer.port``)."""
    master_key: str = ""
    """Derives every API secret (``auth``): the same on every gateway instance, secret, at
    least 32 characters. Changing it invalidates every API key."""
    login_window_ms: int = 10_000
    """A login's timestamp may be this far from the gateway's clock, either way."""
    nonces_per_key: int = 1_000
    """Most logins of one API key per login window (the bound on remembered nonces)."""
    max_frame_bytes: int = 16_384
    """A larger request frame is answered with ``frame_too_large`` (the connection stays)."""
    max_message_bytes: int = 1_048_576
    """A larger frame closes the connection (1009): the bound on what a client makes the
    gateway read into memory before it can look at it."""
    send_buffer_bytes: int = 4_194_304
    """Unsent bytes a connection may have queued; a client that reads slower than its streams
    arrive is disconnected when it would exceed this, so it never slows anybody else."""
    connection_request_limit: int = 600
    """Request weight a connection may spend per ``connection_request_window_ms`` (a token
    bucket: bursts up to the limit); every request counts, valid or not."""
    connection_request_window_ms: int = 10_000
    account_order_limit: int = 300
    """Order requests (place, amend, cancel, cancel-all) an account may make per
    ``account_order_window_ms`` on this gateway instance, across its connections."""
    account_order_window_ms: int = 10_000
    max_commands_per_record: int = 500
    """Most commands per command record (a record stays far below the broker's 1 MB)."""
    flush_interval_ms: int = 1
    """How long the first command of a record waits for others before the record is sent:
    requests arriving together ride in one record, the broker's unit of cost. 0: send at once."""
    engine_timeout_ms: int = 10_000
    """A command the engine has not answered within this gets ``timeout``."""
    recent_fills: int = 1_000
    """Fills kept per account for the ``fills`` query."""
    finished_orders: int = 1_000
    """Finished (filled, cancelled, expired) orders kept per account for the ``order`` query."""
    heartbeat_ms: int = 20_000
    """Websocket ping interval: a peer that stops answering is closed."""

    def check(self) -> "GatewayConfig":
        """Raise ``ValueError`` for a configuration the gateway cannot run with."""
        if len(self.master_key) < 32:
            raise ValueError("the gateway's master key must have at least 32 characters")
        positive = (
            "login_window_ms",
            "nonces_per_key",
            "max_frame_bytes",
            "send_buffer_bytes",
            "connection_request_limit",
            "connection_request_window_ms",
            "account_order_limit",
            "account_order_window_ms",
            "max_commands_per_record",
            "engine_timeout_ms",
            "recent_fills",
            "finished_orders",
            "heartbeat_ms",
        )
        for name in positive:
            if getattr(self, name) <= 0:
                raise ValueError(f"gateway {name} must be positive")
        if self.max_message_bytes < self.max_frame_bytes:
            raise ValueError("gateway max_message_bytes must be at least max_frame_bytes")
        if not 0 <= self.port <= 65_535 or self.flush_interval_ms < 0:
            raise ValueError("gateway port or flush interval out of range")
        return self
