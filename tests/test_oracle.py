"""The oracle service against the real broker: index and mark on event time, the engine's mark,
a restart that publishes nothing twice, stale and deviant sources, and a frozen index.

Why against the broker: the oracle's contract is what it leaves on the price topic and in the
engine, and that a restarted oracle continues where the last one stopped, which only the topics
between them can show.
"""

import itertools
from pathlib import Path

from price_services import (
    DAY0,
    Logs,
    publish_ticks,
    read_commands,
    start_engine,
    start_oracle,
)
from structlog.testing import capture_logs
from topics import fresh_settings

from exchange.engine_commands import MarkPrice
from exchange.index_price import IndexBasis, SourceState
from services.oracle import mark_command_id
from services.prices import IndexTick

TEN_MINUTES = 600_000


def tick(time: int, price: int, source: str = "binance-capture") -> IndexTick:
    return IndexTick(symbol="BTCUSDT", source=source, price=price, time=time)


async def test_a_day_of_ticks_publishes_index_and_mark_on_event_time(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """A tick every 10 minutes for a day (event time; the run takes seconds). Each tick closes
    its own point, and of the quiet points between two ticks the first and the last; the mark
    (no book, no trade, no funding yet) is the index; the engine gets each new mark once; a
    restarted oracle publishes only what comes after what it had published."""
    settings = await fresh_settings(kafka_bootstrap, oracle_stale_after_ms=3_600_000)
    engine, engine_run = await start_engine(settings, tmp_path)
    oracle = start_oracle(settings)
    day = [tick(DAY0 + k * TEN_MINUTES, 1_000_000 + 10 * k) for k in range(145)]
    async with Logs(settings) as logs:
        await publish_ticks(settings, day)
        await logs.until(lambda: any(m.time == day[-1].time for m in logs.marks()))
        expected = {t.time for t in day}
        for before, after in itertools.pairwise(day):
            expected |= {before.time + 1_000, after.time - 1_000}
        marks = logs.marks()
        assert [m.time for m in marks] == sorted(expected)  # 433 points, in order, once each
        assert [i.time for i in logs.indexes()] == sorted(expected)
        for mark in marks:
            price = [t.price for t in day if t.time <= mark.time][-1]
            assert (mark.index, mark.mark, mark.frozen) == (price, price, False)
            assert mark.next_funding_time == DAY0 + 8 * 3_600_000 * (
                1 + (mark.time - DAY0) // (8 * 3_600_000)
            )
        assert all(i.basis is IndexBasis.WEIGHTED_AVERAGE for i in logs.indexes())
        assert logs.marks("ETHUSDT") == []  # no ticks, no points
        await logs.until(lambda: engine.log.engine.markets["BTCUSDT"].book.mark == day[-1].price)

        # killed and restarted: it reads everything again, publishes the next points only
        await oracle.crash()
        oracle = start_oracle(settings)
        later = tick(day[-1].time + TEN_MINUTES, 1_002_000)
        await publish_ticks(settings, [later])
        await logs.until(lambda: logs.marks()[-1].time == later.time)
        assert [m.time for m in logs.marks()][len(marks) :] == [
            day[-1].time + 1_000,
            later.time - 1_000,
            later.time,
        ]
        await logs.until(lambda: engine.log.engine.markets["BTCUSDT"].book.mark == later.price)
    await oracle.finish()
    await engine_run.finish()
    marks_sent = [c for c in await read_commands(settings) if isinstance(c.command, MarkPrice)]
    assert [c.id for c in marks_sent] == [mark_command_id("BTCUSDT", t.time) for t in [*day, later]]
    assert [c.command.price for c in marks_sent] == [t.price for t in [*day, later]]


async def test_stale_and_deviant_sources_leave_and_all_stale_freeze_the_index(
    kafka_bootstrap: str,
) -> None:
    """Sources a, b and c (10 s staleness, 5 % deviation): c 10 % off is deviant; a and c go
    stale; when b stops too, the index and the mark freeze; b's next tick brings them back.
    Every change is published (the sources' states) and logged."""
    settings = await fresh_settings(kafka_bootstrap, oracle_sources="a,b,c")
    ticks = [
        tick(DAY0, 600_000, "a"),
        tick(DAY0 + 100, 600_200, "b"),
        tick(DAY0 + 200, 660_000, "c"),
        tick(DAY0 + 5_000, 600_200, "b"),
        tick(DAY0 + 12_000, 600_400, "b"),  # a and c are 12 s old at 12 s
        tick(DAY0 + 40_000, 600_600, "b"),  # at 39 s b is 28 s old: nothing is live
        tick(DAY0 + 41_000, 600_000, "a"),
    ]
    oracle = start_oracle(settings)
    with capture_logs() as logged:
        async with Logs(settings) as logs:
            await publish_ticks(settings, ticks)
            await logs.until(lambda: any(m.time == DAY0 + 41_000 for m in logs.marks()))
        await oracle.finish()
    indexes = {i.time: i for i in logs.indexes()}
    marks = {m.time: m for m in logs.marks()}

    def states(time: int) -> dict[str, SourceState]:
        return {s.source: s.state for s in indexes[time].sources}

    included, stale, deviant = SourceState.INCLUDED, SourceState.STALE, SourceState.DEVIANT
    assert states(DAY0 + 1_000) == {"a": included, "b": included, "c": deviant}
    assert indexes[DAY0 + 1_000].price == 600_100  # (a + b) / 2
    assert states(DAY0 + 11_000) == {"a": stale, "b": included, "c": stale}
    assert indexes[DAY0 + 11_000].changed == ("a", "c")
    assert indexes[DAY0 + 12_000].price == 600_400
    frozen = indexes[DAY0 + 39_000]
    assert (frozen.frozen, frozen.basis, frozen.price) == (True, IndexBasis.FROZEN, 600_400)
    assert set(states(DAY0 + 39_000).values()) == {stale}
    assert (marks[DAY0 + 39_000].frozen, marks[DAY0 + 39_000].mark) == (True, 600_400)
    assert (indexes[DAY0 + 40_000].frozen, indexes[DAY0 + 40_000].price) == (False, 600_600)
    assert states(DAY0 + 41_000) == {"a": included, "b": included, "c": stale}

    changes = [
        (e["source"], e["before"], e["after"], e["time"] - DAY0)
        for e in logged
        if e["event"] == "index_source_changed"
    ]
    no_data = SourceState.NO_DATA
    assert changes == [
        ("a", None, included, 0),  # the first point: every source from nothing
        ("b", None, no_data, 0),
        ("c", None, no_data, 0),
        ("b", no_data, included, 1_000),
        ("c", no_data, deviant, 1_000),
        ("a", included, stale, 11_000),
        ("c", deviant, stale, 11_000),
        ("b", included, stale, 39_000),
        ("b", stale, included, 40_000),
        ("a", stale, included, 41_000),
    ]
    freezing = [
        (e["event"], e["time"] - DAY0)
        for e in logged
        if e["event"] in ("index_frozen", "index_live_again")
    ]
    assert freezing == [("index_frozen", 39_000), ("index_live_again", 40_000)]
