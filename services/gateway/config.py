"""The gateway's slice of ``Settings``: its ``gateway_*`` fields without the prefix.

Why a struct of its own: the gateway's modules take only the knobs they need, named as the
gateway names them, while deployment sets them where every other knob is set, as
``EXCHANGE_GATEWAY_<NAME>`` variables of ``services.settings`` (which documents each one).
"""

import msgspec

from services.settings import Settings

PREFIX = "gateway_"


class GatewayConfig(msgspec.Struct, frozen=True, kw_only=True):
    """Built by ``gateway_config``; every field is ``Settings.gateway_<field>``."""

    host: str
    port: int
    master_key: str
    login_window_ms: int
    nonces_per_key: int
    max_frame_bytes: int
    max_message_bytes: int
    send_buffer_bytes: int
    connection_request_limit: int
    connection_request_window_ms: int
    account_order_limit: int
    account_order_window_ms: int
    max_commands_per_record: int
    flush_interval_ms: int
    engine_timeout_ms: int
    recent_fills: int
    finished_orders: int
    heartbeat_ms: int


def gateway_config(settings: Settings) -> GatewayConfig:
    """The gateway's knobs from ``settings``; ``ValueError`` if it cannot run with them."""
    values = {
        field.name: getattr(settings, PREFIX + field.name)
        for field in msgspec.structs.fields(GatewayConfig)
    }
    if len(values["master_key"]) < 32:
        raise ValueError(
            "the gateway needs EXCHANGE_GATEWAY_MASTER_KEY, at least 32 characters, the same on "
            "every gateway instance (every API secret derives from it)"
        )
    return GatewayConfig(**values)
