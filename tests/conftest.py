"""Shared fixtures: one embedded Kafka broker for the whole test session, started on demand.

Why one broker: it starts in milliseconds but keeps everything in memory, and tests stay
independent by using topics of their own (``kafka_settings``) instead of a broker of their own.
Why unique topic names rather than deleting topics between tests: on the embedded broker a
topic deleted and created again under the same name can lose the next message
(shared/reference/kafka-broker-notes.md).

The broker fixture is synchronous on purpose: pytest-asyncio runs each test in its own event
loop, and a subprocess needs none, so no loop has to outlive a test.
"""

from collections.abc import Iterator

import pytest
from topics import fresh_settings

from services.broker import start_broker
from services.settings import Settings


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """``host:port`` of an embedded broker on loopback, shared by every test that asks for it.

    Session scoped and requested by name, so a test run that needs no broker starts none.
    """
    broker = start_broker()
    try:
        yield broker.bootstrap
    finally:
        broker.stop()


@pytest.fixture
async def kafka_settings(kafka_bootstrap: str) -> Settings:
    """Settings that point at the session broker, with this test's own topics, created, four
    partitions each, so that key routing across partitions is exercised."""
    return await fresh_settings(
        kafka_bootstrap, commands_partitions=4, events_partitions=4, prices_partitions=4
    )
