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


class CommandResult(msgspec.Struct, frozen=True, omit_defaults=True):
    """The events one command caused. ``duplicate``: the id was seen before, and ``events``
    are that first command's events, repeated; nothing happened a second time. ``more``: only
    in a part of a split record (``split_events``), the command's events go on in the next
    part; a joined record never has it."""

    id: str
    events: list[EngineEvent]
    duplicate: bool = False
    more: bool = False


class EventBatch(msgspec.Struct, frozen=True, omit_defaults=True):
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
    part: int = 0
    parts: int = 1
    """A record too big for the broker travels as ``parts`` records (``split_events``), all with
    the same ``offset``; readers join them (``EventJoiner``) before they look inside."""


COMMAND_DECODER = msgspec.msgpack.Decoder(CommandBatch)
EVENT_DECODER = msgspec.msgpack.Decoder(EventBatch)
ENCODER = msgspec.msgpack.Encoder()

EVENT_RECORD_BYTES = 512 * 1024
"""The largest event record the engine writes whole. The broker refuses records over 1 MiB (the
producer's ``max_request_size``), and one command can cause far more: a funding settlement or an
auto-deleveraging over 100,000 positions. Half of that leaves room for the record's framing."""


def split_events(batch: EventBatch, limit: int = EVENT_RECORD_BYTES) -> list[bytes]:
    """``batch`` encoded as one record, or as several of at most about ``limit`` bytes each.

    Parts are cut between events, never inside one, so a command's result may span parts
    (``CommandResult.more``). The cut depends only on the batch, so an engine that restarts
    after writing some parts writes the same remaining ones (``EngineService``).
    """
    whole = ENCODER.encode(batch)
    if len(whole) <= limit:
        return [whole]
    header = EventBatch(batch.offset, [], batch.error, batch.time, part=2**32, parts=2**32)
    budget = limit - len(ENCODER.encode(header)) - 8  # 8: the two lists' length prefixes
    parts: list[list[CommandResult]] = [[]]
    size = 0
    for result in batch.results:
        piece: list[EngineEvent] = []
        fixed = len(ENCODER.encode(CommandResult(result.id, [], result.duplicate, more=True)))
        if size + fixed > budget and parts[-1]:
            parts.append([])
            size = 0
        size += fixed
        for event in result.events:
            cost = len(ENCODER.encode(event))
            if size + cost > budget and (piece or parts[-1]):
                parts[-1].append(CommandResult(result.id, piece, result.duplicate, True))
                parts.append([])
                piece = []
                size = fixed
            piece.append(event)
            size += cost
        parts[-1].append(CommandResult(result.id, piece, result.duplicate))
    return [
        ENCODER.encode(
            EventBatch(batch.offset, results, batch.error, batch.time, index, len(parts))
        )
        for index, results in enumerate(parts)
    ]


class EventJoiner:
    """Joins the parts of a split event record back into the engine's one ``EventBatch``.

    Every reader of the event log puts each decoded record through ``join``: a whole record
    comes straight back, and a part is held until its last part arrives. A part seen twice (a
    producer retry) is dropped, and a part 0 starts over (the engine wrote the record again).
    """

    def __init__(self) -> None:
        self._parts: list[EventBatch] = []

    def decode(self, value: bytes) -> EventBatch | None:
        """``EVENT_DECODER.decode`` then ``join``: the whole record, or None while it is in
        parts. Raises as the decoder does."""
        return self.join(EVENT_DECODER.decode(value))

    def join(self, batch: EventBatch) -> EventBatch | None:
        """The whole record once ``batch`` completes one, else None."""
        if batch.parts == 1:
            return batch
        held = self._parts
        if batch.part == 0 or (held and held[0].offset != batch.offset):
            held.clear()
        if batch.part != len(held):
            return None
        held.append(batch)
        if len(held) < batch.parts:
            return None
        results: list[CommandResult] = []
        continued = False
        for part in held:
            for result in part.results:
                if continued:
                    results[-1].events.extend(result.events)
                else:
                    results.append(CommandResult(result.id, result.events, result.duplicate))
                continued = result.more
        held.clear()
        return EventBatch(batch.offset, results, batch.error, batch.time)
