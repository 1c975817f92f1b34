"""What travels on the engine's Kafka topics: batches of commands in, batches of results out.

Many commands ride in one Kafka record (a ``CommandBatch``), because the broker's cost is per
record (about 70,000 records/s from one producer) and a busy gateway has many commands at once.
For every command record the engine writes exactly one ``EventBatch`` record, carrying the
command record's offset: that is how a restarted engine knows which results it had already
published, and how a client finds the result of its command (by ``CommandResult.id``).
"""

import msgspec

from exchange.engine_commands import EngineCommand
from exchange.engine_events import EngineEvent


class CommandEnvelope(msgspec.Struct, frozen=True):
    """One command with its producer-assigned id (unique per producer retry window)."""

    id: str
    command: EngineCommand


class CommandBatch(msgspec.Struct, frozen=True):
    """Commands that travel in one record. ``time`` is the producer's event time in ms (the
    wall clock of a live feed or gateway, the data's own time in a replay): the engine's
    clock, which never reads the machine's (it drives time-based snapshots)."""

    commands: list[CommandEnvelope]
    time: int = 0


class CommandResult(msgspec.Struct, frozen=True):
    """The events one command caused. ``duplicate``: the id was seen before, and ``events``
    are that first command's events, repeated; nothing happened a second time."""

    id: str
    events: list[EngineEvent]
    duplicate: bool = False


class EventBatch(msgspec.Struct, frozen=True):
    """The results of the command record at ``offset`` of the command topic, in order.

    ``error`` is set (and ``results`` empty) when the record did not decode: nothing of it
    was applied, and the reason is published rather than the record silently skipped.
    ``time`` is the command record's event time (``CommandBatch.time``), so that a reader of the
    event log knows when each effect happened (fills, book changes) without a clock of its own.
    """

    offset: int
    results: list[CommandResult]
    error: str = ""
    time: int = 0


COMMAND_DECODER = msgspec.msgpack.Decoder(CommandBatch)
EVENT_DECODER = msgspec.msgpack.Decoder(EventBatch)
ENCODER = msgspec.msgpack.Encoder()
