"""The gateway's keys, login checks and rate limits, without a broker or a socket.

Why pure tests here: the security of a login rests on small rules (the window both ways, a
nonce once, an unknown key answered like a bad signature, memory that does not grow) that are
cheapest to pin down with the clock as an argument.
"""

import hashlib
import hmac

import pytest

from services.gateway.auth import Authenticator, derive_secret, key_hash, sign_login
from services.gateway.protocol import ErrorCode, Failure
from services.gateway.rate_limit import TokenBucket, TokenBuckets

MASTER = "m" * 32
NOW = 1_750_000_000_000
WINDOW = 10_000


def authenticator(nonces_per_key: int = 100) -> Authenticator:
    return Authenticator(MASTER, window_ms=WINDOW, nonces_per_key=nonces_per_key)


def registered(auth: Authenticator) -> tuple[str, str, dict[str, int]]:
    api_key, secret = auth.issue()
    return api_key, secret, {key_hash(api_key): 1_048_576}


def login(
    auth: Authenticator,
    api_key: str,
    secret: str,
    accounts: dict[str, int],
    *,
    timestamp: int = NOW,
    nonce: str = "nonce-0001",
    now: int = NOW,
    signature: str | None = None,
) -> int:
    return auth.login(
        api_key=api_key,
        timestamp=timestamp,
        nonce=nonce,
        signature=signature if signature is not None else sign_login(secret, timestamp, nonce),
        now_ms=now,
        accounts=accounts,
    )


def failure_code(error: pytest.ExceptionInfo[Failure]) -> str:
    return error.value.body.code


def test_the_secret_is_derived_from_the_master_key_and_the_key_hash_is_sha256() -> None:
    auth = authenticator()
    api_key, secret = auth.issue()
    expected = hmac.new(MASTER.encode(), api_key.encode(), hashlib.sha256).hexdigest()
    assert secret == expected == derive_secret(MASTER, api_key)
    assert derive_secret("x" * 32, api_key) != secret
    assert key_hash(api_key) == hashlib.sha256(api_key.encode()).hexdigest()
    assert len(key_hash(api_key)) == 64
    assert auth.issue()[0] != api_key


def test_a_good_login_returns_the_account_and_the_signature_is_documented() -> None:
    auth = authenticator()
    api_key, secret, accounts = registered(auth)
    signature = hmac.new(secret.encode(), f"{NOW}:nonce-0001".encode(), hashlib.sha256)
    assert login(auth, api_key, secret, accounts, signature=signature.hexdigest()) == 1_048_576


def test_a_wrong_signature_and_an_unknown_key_get_the_same_answer() -> None:
    auth = authenticator()
    api_key, secret, accounts = registered(auth)
    with pytest.raises(Failure) as wrong:
        login(auth, api_key, secret, accounts, signature="0" * 64)
    other_key, other_secret = auth.issue()  # a valid pair the engine never registered
    with pytest.raises(Failure) as unknown:
        login(auth, other_key, other_secret, accounts)
    assert wrong.value.body == unknown.value.body
    assert failure_code(wrong) == ErrorCode.INVALID_SIGNATURE


@pytest.mark.parametrize("skew", [WINDOW + 1, -(WINDOW + 1)])
def test_a_timestamp_outside_the_window_is_stale_either_way(skew: int) -> None:
    auth = authenticator()
    api_key, secret, accounts = registered(auth)
    with pytest.raises(Failure) as error:
        login(auth, api_key, secret, accounts, timestamp=NOW + skew)
    assert failure_code(error) == ErrorCode.STALE_TIMESTAMP
    assert login(auth, api_key, secret, accounts, timestamp=NOW - WINDOW) == 1_048_576


def test_a_nonce_is_accepted_once_and_a_failed_login_does_not_use_it_up() -> None:
    auth = authenticator()
    api_key, secret, accounts = registered(auth)
    with pytest.raises(Failure):
        login(auth, api_key, secret, accounts, signature="0" * 64)
    login(auth, api_key, secret, accounts)
    with pytest.raises(Failure) as error:
        login(auth, api_key, secret, accounts, now=NOW + 5)
    assert failure_code(error) == ErrorCode.REPLAYED_NONCE
    login(auth, api_key, secret, accounts, nonce="nonce-0002")


def test_nonces_are_forgotten_once_their_logins_would_be_stale() -> None:
    auth = authenticator()
    api_key, secret, accounts = registered(auth)
    login(auth, api_key, secret, accounts)
    later = NOW + 3 * WINDOW
    # the captured login is now stale: the nonce no longer needs remembering
    with pytest.raises(Failure) as error:
        login(auth, api_key, secret, accounts, now=later)
    assert failure_code(error) == ErrorCode.STALE_TIMESTAMP
    other_key, other_secret, other = registered(auth)
    login(auth, other_key, other_secret, other, timestamp=later, now=later)
    assert list(auth._nonces) == [key_hash(other_key)]


def test_logins_per_key_within_a_window_are_bounded() -> None:
    auth = authenticator(nonces_per_key=3)
    api_key, secret, accounts = registered(auth)
    for n in range(3):
        login(auth, api_key, secret, accounts, nonce=f"nonce-000{n}")
    with pytest.raises(Failure) as error:
        login(auth, api_key, secret, accounts, nonce="nonce-0009")
    assert failure_code(error) == ErrorCode.RATE_LIMITED
    assert error.value.body.retry_after_ms == WINDOW


def test_the_token_bucket_allows_a_burst_then_says_exactly_when_to_retry() -> None:
    bucket = TokenBucket(limit=10, window_ms=1_000, now_ms=0)
    assert [bucket.take(1, 0) for _ in range(10)] == [0] * 10
    assert bucket.take(1, 0) == 100  # one token refills in 1000 / 10 ms
    assert bucket.take(1, 60) == 40
    assert bucket.take(1, 100) == 0
    assert bucket.take(3, 100) == 300
    assert bucket.take(1, 10_000) == 0  # refilled, never above the limit
    assert [bucket.take(1, 10_000) for _ in range(10)] == [0] * 9 + [100]


def test_a_weight_above_the_limit_never_fits() -> None:
    bucket = TokenBucket(limit=5, window_ms=1_000, now_ms=0)
    assert bucket.take(6, 0) == 1_000
    assert bucket.take(5, 0) == 0


def test_keyed_buckets_are_one_per_key_each_full_at_its_first_request() -> None:
    buckets: TokenBuckets[int] = TokenBuckets(limit=2, window_ms=1_000)
    assert [buckets.take(1, 1, 0), buckets.take(1, 1, 0), buckets.take(1, 1, 0)] == [0, 0, 500]
    assert buckets.take(2, 2, 0) == 0  # another key: a bucket of its own, full
    assert buckets.take(3, 2, 10_000) == 0  # made full when first seen, not filled since 0
    assert buckets.take(3, 1, 10_000) == 500
