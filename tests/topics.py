"""Settings with topics of a test's own, created on the shared embedded broker.

Why fresh names rather than deleting topics between tests: on the embedded broker a topic
deleted and created again under the same name can lose the next message
(shared/reference/kafka-broker-notes.md). The defaults give the engine's two topics the one
partition it reads and writes, and the price and risk topics four, so that keys spread.
"""

import uuid

import msgspec

from services.broker import create_topics
from services.settings import Settings


async def fresh_settings(bootstrap: str, **changes: object) -> Settings:
    """Default settings pointed at ``bootstrap`` with new topics (created), and ``changes``."""
    suffix = uuid.uuid4().hex[:12]
    settings = msgspec.structs.replace(
        Settings(),
        bootstrap_servers=bootstrap,
        commands_topic=f"commands-{suffix}",
        events_topic=f"events-{suffix}",
        prices_topic=f"prices-{suffix}",
        risk_topic=f"risk-{suffix}",
        **changes,
    )
    await create_topics(bootstrap, settings)
    return settings
