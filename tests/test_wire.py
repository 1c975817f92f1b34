"""Event records too big for the broker: cut in parts by the engine, joined by every reader."""

from hypothesis import given, settings
from hypothesis import strategies as st

from exchange.engine_events import EngineEvent, Transfer, TransferReason
from services.wire import (
    ENCODER,
    EVENT_DECODER,
    CommandResult,
    EventBatch,
    EventJoiner,
    split_events,
)


def transfer(amount: int) -> Transfer:
    return Transfer("external", f"u:{amount}", amount, TransferReason.DEPOSIT)


def big_batch(commands: int, events_each: int) -> EventBatch:
    results = [
        CommandResult(f"c{c}", [transfer(c * 1_000 + e) for e in range(events_each)])
        for c in range(commands)
    ]
    return EventBatch(7, results, time=1_700_000_000_000)


def join_all(records: list[bytes]) -> list[EventBatch]:
    joiner = EventJoiner()
    joined = [joiner.decode(record) for record in records]
    return [batch for batch in joined if batch is not None]


def test_a_small_record_is_written_whole_as_before() -> None:
    batch = big_batch(3, 2)
    assert split_events(batch) == [ENCODER.encode(batch)]
    assert join_all(split_events(batch)) == [batch]


def test_a_big_record_is_cut_between_events_and_joined_back() -> None:
    batch = big_batch(40, 50)  # one result alone is bigger than a part
    records = split_events(batch, limit=2_000)
    parts = [EVENT_DECODER.decode(record) for record in records]
    assert len(parts) > 40
    assert all(len(record) <= 2_000 for record in records)
    assert [part.part for part in parts] == list(range(len(parts)))
    assert {part.parts for part in parts} == {len(parts)}
    assert {(part.offset, part.time) for part in parts} == {(7, batch.time)}
    assert any(result.more for part in parts for result in part.results)
    joiner = EventJoiner()
    assert [joiner.join(part) for part in parts[:-1]] == [None] * (len(parts) - 1)
    assert joiner.join(parts[-1]) == batch


def test_the_cut_depends_only_on_the_batch() -> None:
    assert split_events(big_batch(10, 30), 1_500) == split_events(big_batch(10, 30), 1_500)


def test_a_repeated_part_is_dropped_and_a_first_part_starts_over() -> None:
    records = split_events(big_batch(10, 30), limit=1_500)
    assert len(records) >= 3
    retried = [records[0], records[1], records[1], *records[2:]]
    rewritten = [records[0], records[1], *records]  # the engine wrote the record again
    assert join_all(retried) == [big_batch(10, 30)]
    assert join_all(rewritten) == [big_batch(10, 30)]


def test_commands_without_events_and_duplicates_keep_their_place() -> None:
    results = [
        CommandResult("a", []),
        CommandResult("b", [transfer(e) for e in range(30)]),
        CommandResult("b", [transfer(e) for e in range(30)], duplicate=True),
        CommandResult("c", []),
    ]
    batch = EventBatch(3, results, time=5)
    records = split_events(batch, limit=600)
    assert len(records) > 2
    assert join_all(records) == [batch]


@settings(max_examples=60, deadline=None)
@given(
    sizes=st.lists(st.integers(0, 40), min_size=0, max_size=12),
    duplicates=st.lists(st.booleans(), min_size=12, max_size=12),
    limit=st.integers(300, 4_000),
)
def test_any_batch_survives_any_cut(sizes: list[int], duplicates: list[bool], limit: int) -> None:
    results = []
    for c, size in enumerate(sizes):
        events: list[EngineEvent] = [transfer(c * 100 + e) for e in range(size)]
        results.append(CommandResult(f"id-{c % 3}", events, duplicate=duplicates[c]))
    batch = EventBatch(11, results, time=9)
    assert join_all(split_events(batch, limit)) == [batch]
