"""Logins in the engine: the one check gateway instances cannot make alone, a nonce once per
key across all of them. Pure: the engine with event time as an argument."""

import msgspec

from exchange.default_markets import BTCUSDT, USDT
from exchange.engine import Engine, EngineState
from exchange.engine_commands import CreateAccount, Login
from exchange.engine_events import CommandError, CommandRejected, LoggedIn

KEY_A, KEY_B = "a" * 64, "b" * 64
WINDOW = 10_000
T0 = 1_750_000_000_000


def engine() -> Engine:
    e = Engine((BTCUSDT,), faucet_cap=1_000 * USDT, login_window_ms=WINDOW)
    e.advance_time(T0)
    for key in (KEY_A, KEY_B):
        e.process(CreateAccount(key_hash=key))
    return e


def login(e: Engine, key: str, nonce: str, timestamp: int = T0) -> object:
    [event] = e.process(Login(key_hash=key, nonce=nonce, timestamp=timestamp))
    return event.reason if isinstance(event, CommandRejected) else event


def test_a_nonce_passes_once_per_key() -> None:
    e = engine()
    first = login(e, KEY_A, "nonce-0001")
    assert isinstance(first, LoggedIn) and first.key_hash == KEY_A
    assert first.account == e.keys[KEY_A]
    assert login(e, KEY_A, "nonce-0001") is CommandError.REPLAYED_NONCE
    assert isinstance(login(e, KEY_B, "nonce-0001"), LoggedIn)  # another key's nonces are its own
    assert isinstance(login(e, KEY_A, "nonce-0002"), LoggedIn)


def test_an_unknown_key_and_a_bad_nonce_are_refused_and_remember_nothing() -> None:
    e = engine()
    assert login(e, "c" * 64, "nonce-0001") is CommandError.UNKNOWN_KEY
    assert login(e, KEY_A, "") is CommandError.INVALID_NONCE
    assert login(e, KEY_A, "n" * 65) is CommandError.INVALID_NONCE
    assert e.nonces == {}


def test_a_nonce_is_kept_for_two_windows_of_event_time_then_forgotten() -> None:
    e = engine()
    login(e, KEY_A, "nonce-0001")
    e.advance_time(T0 + 2 * WINDOW)  # a new window: the login is exactly two windows old, kept
    assert login(e, KEY_A, "nonce-0001") is CommandError.REPLAYED_NONCE
    e.advance_time(T0 + 3 * WINDOW)  # a new window: more than two windows old, forgotten
    assert e.nonces == {}


def test_the_nonces_travel_in_the_snapshot() -> None:
    e = engine()
    login(e, KEY_A, "nonce-0001")
    login(e, KEY_B, "nonce-0002", T0 + 5)
    state = msgspec.msgpack.decode(msgspec.msgpack.encode(e.snapshot()), type=EngineState)
    restored = Engine.restore((BTCUSDT,), state, faucet_cap=1_000 * USDT, login_window_ms=WINDOW)
    assert restored.state_hash() == e.state_hash()
    assert login(restored, KEY_B, "nonce-0002") is CommandError.REPLAYED_NONCE
