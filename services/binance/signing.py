"""Binance's request signature: hex HMAC-SHA256, keyed with the API secret, over the request's
parameters exactly as sent. Pure: the clock is an argument.

REST (``SIGNED`` endpoints): the payload is the raw query string followed, without a separator,
by the raw request body, each without its ``signature`` pair, **as received**: never decoded
and re-encoded, because a client's percent-encoding or parameter order is its own and a
re-encoding would differ from it. WebSocket API: the parameters other than ``signature``,
sorted by name, as ``key=value`` joined by ``&``.

Keys and secrets are the native gateway's (``services.gateway.auth``): the secret of a key is
derived from the master key, so nothing is stored, and an account made through either front
trades through both.
"""

import hashlib
import hmac
from collections.abc import Mapping

from services.binance import errors
from services.binance.errors import BinanceError

DEFAULT_RECV_WINDOW_MS = 5_000
MAX_RECV_WINDOW_MS = 60_000
FUTURE_LEEWAY_MS = 1_000
"""Binance accepts a timestamp up to 1 s ahead of its clock."""


def sign(secret: str, payload: str) -> str:
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def without_signature(raw: str) -> tuple[str, str | None]:
    """``raw`` (a query string or a form body) without its ``signature=…`` pair, and that
    signature (None if absent). The other pairs keep their bytes and order."""
    kept: list[str] = []
    signature = None
    for pair in raw.split("&") if raw else []:
        if pair.startswith("signature="):
            signature = pair[len("signature=") :]
        else:
            kept.append(pair)
    return "&".join(kept), signature


def rest_payload(query: str, body: str) -> tuple[str, str | None]:
    """The signed payload of a REST request and the signature it carries."""
    query_payload, in_query = without_signature(query)
    body_payload, in_body = without_signature(body)
    return query_payload + body_payload, in_query or in_body


def ws_payload(params: Mapping[str, object]) -> str:
    """The signed payload of a WebSocket API request: every parameter but ``signature``,
    sorted by name."""
    return "&".join(f"{key}={_text(params[key])}" for key in sorted(params) if key != "signature")


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def verify(secret: str, payload: str, signature: str | None) -> None:
    """``-1022`` unless ``signature`` is the payload's."""
    if signature is None:
        raise errors.mandatory("signature")
    if not hmac.compare_digest(sign(secret, payload), signature.lower()):
        raise BinanceError(errors.INVALID_SIGNATURE, "Signature for this request is not valid.")


def check_time(timestamp: str | None, recv_window: str | None, now_ms: int) -> None:
    """Binance's rule: ``timestamp < now + 1000`` and ``now − timestamp <= recvWindow``
    (default 5,000 ms, at most 60,000)."""
    if timestamp is None:
        raise errors.mandatory("timestamp")
    stamp = _integer("timestamp", timestamp)
    window = DEFAULT_RECV_WINDOW_MS
    if recv_window is not None:
        window = _integer("recvWindow", recv_window)
        if not 0 < window <= MAX_RECV_WINDOW_MS:
            raise BinanceError(
                errors.BAD_RECV_WINDOW, f"recvWindow must be less than {MAX_RECV_WINDOW_MS}."
            )
    if stamp >= now_ms + FUTURE_LEEWAY_MS or now_ms - stamp > window:
        raise BinanceError(
            errors.INVALID_TIMESTAMP,
            f"Timestamp for this request is outside of the recvWindow (timestamp {stamp}, "
            f"server time {now_ms}, recvWindow {window}).",
        )


def _integer(name: str, text: str) -> int:
    if not text.isascii() or not text.isdigit() or len(text) > 18:
        raise errors.mandatory(name)
    return int(text)
