"""API keys, their secrets, and the login signature. Pure: the clock is an argument.

Why a derived secret: ``secret = HMAC-SHA256(master_key, api_key)``. Every gateway instance
has the master key (configuration), so each one can check a login without any store of
secrets, and the secret exists nowhere but in the ``create_account`` answer and the client.
The engine registers an account from ``sha256(api_key)`` alone, so the log (every gateway's
source of key → account) holds keys hashed, never the keys themselves. The price: whoever has
the master key can derive every secret; rotating it invalidates every key.

The login proves the secret without sending it: ``signature = hex HMAC-SHA256(secret,
f"{timestamp}:{nonce}")``. A timestamp outside the window is refused (an old captured login
cannot be used), and a nonce is remembered for as long as its timestamp is inside the window
(a fresh captured login cannot be used twice on this instance). Nonces are remembered per
instance, not shared: a login captured in transit could be replayed once on another instance
within the window, which TLS in front of the gateways prevents.
"""

import hashlib
import hmac
import secrets
from collections import OrderedDict
from collections.abc import Mapping

from services.gateway.protocol import ErrorCode, Failure

_KEY_BYTES = 24
"""Random bytes in an API key: 192 bits, written as 48 hex digits."""


def new_api_key() -> str:
    return secrets.token_hex(_KEY_BYTES)


def key_hash(api_key: str) -> str:
    """What the engine and the log know of a key: its SHA-256, 64 lowercase hex digits."""
    return hashlib.sha256(api_key.encode()).hexdigest()


def derive_secret(master_key: str, api_key: str) -> str:
    return hmac.new(master_key.encode(), api_key.encode(), hashlib.sha256).hexdigest()


def sign_login(secret: str, timestamp: int, nonce: str) -> str:
    """The login signature a client sends: hex HMAC-SHA256 keyed with the secret's text."""
    payload = f"{timestamp}:{nonce}".encode()
    return hmac.new(secret.encode(), payload, hashlib.sha256).hexdigest()


class Authenticator:
    """Checks logins against the accounts known from the log; remembers recent nonces.

    ``window_ms``: how far a login's timestamp may be from this gateway's clock, either way.
    ``nonces_per_key``: the most logins one key may make within a window; the bound on what a
    key can make this instance remember.
    """

    def __init__(self, master_key: str, *, window_ms: int, nonces_per_key: int) -> None:
        self._master_key = master_key
        self.window_ms = window_ms
        self.nonces_per_key = nonces_per_key
        self._nonces: dict[str, OrderedDict[str, int]] = {}
        """Per key hash, the nonces of accepted logins and their timestamps, oldest first."""
        self._swept = 0

    def issue(self) -> tuple[str, str]:
        """A new API key and its secret."""
        api_key = new_api_key()
        return api_key, derive_secret(self._master_key, api_key)

    def login(
        self,
        *,
        api_key: str,
        timestamp: int,
        nonce: str,
        signature: str,
        now_ms: int,
        accounts: Mapping[str, int],
    ) -> int:
        """The account that ``api_key`` belongs to, if the login is good; else ``Failure``.

        Checked in this order: the timestamp (cheap, and says nothing about the key), the key
        and the signature together (an unknown key and a wrong signature get the same answer,
        so keys cannot be probed), then the nonce, recorded only for a login that passed, so
        that nobody without the secret can use up someone's nonces.
        """
        if abs(now_ms - timestamp) > self.window_ms:
            raise Failure(
                ErrorCode.STALE_TIMESTAMP,
                f"timestamp {timestamp} is more than {self.window_ms} ms from the "
                f"gateway's clock ({now_ms})",
            )
        hashed = key_hash(api_key)
        expected = sign_login(derive_secret(self._master_key, api_key), timestamp, nonce)
        account = accounts.get(hashed)
        if not hmac.compare_digest(expected, signature.lower()) or account is None:
            raise Failure(ErrorCode.INVALID_SIGNATURE, "unknown API key or wrong signature")
        self._remember(hashed, nonce, timestamp, now_ms)
        return account

    def _remember(self, hashed: str, nonce: str, timestamp: int, now_ms: int) -> None:
        if now_ms - self._swept > self.window_ms:
            self._sweep(now_ms)
        seen = self._nonces.setdefault(hashed, OrderedDict())
        _forget_before(seen, now_ms - self.window_ms)
        if nonce in seen:
            raise Failure(ErrorCode.REPLAYED_NONCE, "this nonce was used already")
        if len(seen) >= self.nonces_per_key:
            raise Failure(
                ErrorCode.RATE_LIMITED,
                f"more than {self.nonces_per_key} logins of this key within {self.window_ms} ms",
                retry_after_ms=self.window_ms,
            )
        seen[nonce] = timestamp

    def _sweep(self, now_ms: int) -> None:
        """Forget every key whose nonces have all left the window, so that memory is bounded
        by the logins of one window, not by every key that ever logged in."""
        self._swept = now_ms
        horizon = now_ms - self.window_ms
        for hashed in list(self._nonces):
            seen = self._nonces[hashed]
            _forget_before(seen, horizon)
            if not seen:
                del self._nonces[hashed]


def _forget_before(seen: OrderedDict[str, int], horizon: int) -> None:
    """Drop nonces with a timestamp before ``horizon``: such a login is stale anyway.

    Kept in arrival order, which is nearly timestamp order; a nonce that arrived late with an
    old timestamp is dropped when those before it are, never while it could still be replayed,
    because every nonce older than the horizon is refused as stale before it is looked up.
    """
    while seen:
        nonce, timestamp = next(iter(seen.items()))
        if timestamp >= horizon:
            return
        del seen[nonce]
