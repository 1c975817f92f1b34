"""``exchange replay``: drive a running exchange with a market-data file on the data's own time.

The file's steps (``plan.py``) go out as they come: index ticks on the price topic (keyed by
symbol, like the feed's, stamped with the data's event time), commands on the command topic in
records of up to ``COMMANDS_PER_RECORD`` (stamped with the latest step's event time: the
engine's clock). One consumer reads the engine's event log and the price topic meanwhile: the
results of our commands go back to the mirror and the statistics, the oracle's marks give the
tick-to-mark latency.

**Pace.** ``speed`` N: a step at event time ``t`` is sent at ``start + (t − t0) / N`` of
the machine's monotonic clock (1 is real time); a replay that falls behind goes on at once and
says how far behind it got. ``speed`` None (``max``): as fast as the exchange takes it, with
backpressure: at most ``RECORDS_IN_FLIGHT`` command records without their event record, and at
most ``TICKS_IN_FLIGHT`` ticks without the broker's acknowledgement.

**Start.** The event log is read from its beginning (the replay accounts' wallets and positions,
the engine's book of the market), the price topic's last records (the exchange's latest event
time for the market), then one record sets every replay account up: cancel its orders in the
market, set its leverage, top its wallet up to the faucet cap. A file that starts before the
exchange's event time is refused: the oracle would ignore its ticks (event time never goes
back), so it needs a fresh exchange.

**The oracle.** Ticks go no further than ``TICKS_AHEAD`` ahead of the oracle's latest mark
(unless its sources leave ours out, or it answers nothing for ``drain_s``): at full speed the
oracle is the slowest reader of a tick-only replay, and its marks are part of what a replay
measures.

**End.** After the last step: every result awaited (``drain_s`` without progress at most), and
the oracle's mark for the last point the ticks closed. Then the summary (``summary.py``).
"""

import asyncio
import bisect
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from typing import Any

import msgspec
import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from tqdm import tqdm

from exchange.commands import CancelAll
from exchange.engine_commands import Deposit, EngineCommand, OrderCommand, SetLeverage
from exchange.engine_events import CommandRejected, MarketEvent, PositionUpdate, Transfer
from exchange.events import BookDelta, Rejected, Trade
from exchange.ledger import wallet
from exchange.market import MarketSpec
from load.marketdata import MarketDataFile
from load.replay.book import RecordedBook
from load.replay.grid import Grid
from load.replay.mirror import (
    BOOK_ACCOUNT_BASE,
    LEVERAGE,
    MAX_ACCOUNTS,
    TAKER_ACCOUNT_BASE,
    BookMirror,
    Sent,
)
from load.replay.plan import Plan, Step
from load.replay.summary import iso, percentiles, table
from services.broker import create_topics
from services.engine_main import load_markets
from services.l2_book import L2Book
from services.prices import PRICE_DECODER, PRICE_ENCODER, IndexPrice, IndexTick, MarkTick
from services.settings import Settings
from services.wire import ENCODER, CommandBatch, CommandEnvelope, EventBatch, EventJoiner

log = structlog.get_logger("replay")

COMMANDS_PER_RECORD = 500
"""Commands per command record: the broker's cost is per record; a record stays far below 1 MB."""
RECORDS_IN_FLIGHT = 16
"""Command records sent and not yet answered by an event record, at most."""
TICKS_IN_FLIGHT = 5_000
"""Index ticks handed to the producer and not yet acknowledged, at most."""
TICKS_AHEAD = 1_000
"""Index ticks sent after the oracle's latest mark, at most: the oracle is part of the system
a replay measures, and a backlog would only make its latency a measure of the backlog."""
PRICE_LOOKBACK = 1_000
"""Records read back from the end of each price partition at start."""
POLL_MS = 20
"""Longest a wait for results polls before it looks again."""
PROGRESS_EVERY_S = 0.25
"""How often the progress bar and its rates are redrawn."""
FIRST_ERRORS = 10
"""Error messages kept word for word in the summary; the rest are counted by kind."""


class ReplayError(RuntimeError):
    """The replay cannot go on: the message says why."""


@dataclass(frozen=True)
class ReplayOptions:
    """What ``exchange replay`` was asked to do."""

    path: str
    symbol: str = "BTCUSDT"
    speed: float | None = None
    """Event time per wall time; None: as fast as the exchange takes it."""
    format: str | None = None
    start: int | None = None
    end: int | None = None
    limit: int | None = None
    orders: bool = True
    depth: int = 100
    """Levels per side of the recorded book kept in the engine (0: all)."""
    accounts: int = 32
    """Book accounts, and as many taker accounts."""
    source: str = "binance-capture"
    """The ``IndexTick.source`` of the ticks (the oracle takes only its configured sources)."""
    progress: bool = True
    drain_s: float = 30.0
    """Longest wait without progress for results and marks at the start and the end."""


class Replay:
    """One replay of one file into a running exchange (module docstring)."""

    def __init__(self, settings: Settings, options: ReplayOptions) -> None:
        self._events = EventJoiner()
        """Joins the parts of a split event record."""
        self.settings = settings
        self.options = options
        if not 0 < options.accounts <= MAX_ACCOUNTS:
            raise ReplayError(f"--accounts must be from 1 to {MAX_ACCOUNTS}")
        specs = {spec.symbol: spec for spec in load_markets(settings.markets_file)}
        symbol = options.symbol.upper()
        if symbol not in specs:
            raise ReplayError(f"no market {symbol!r} in the exchange (markets: {sorted(specs)})")
        self.spec: MarketSpec = specs[symbol]
        self.symbol = symbol
        self.file = MarketDataFile(options.path, options.format)
        self.format = self.file.format or ""
        grid = Grid(self.spec)
        self.book = RecordedBook(grid)
        self.budget = settings.faucet_cap * LEVERAGE * 6 // 10
        self.book_accounts = [BOOK_ACCOUNT_BASE + i for i in range(options.accounts)]
        self.taker_accounts = [TAKER_ACCOUNT_BASE + i for i in range(options.accounts)]
        with_orders = options.orders and self.format not in ("klines", "ohlcv")
        self.mirror = (
            BookMirror(
                self.spec,
                self.book,
                depth=options.depth,
                book_accounts=self.book_accounts,
                taker_accounts=self.taker_accounts,
                budget=self.budget,
            )
            if with_orders
            else None
        )
        self.plan = Plan(
            self.file.records(),
            self.format,
            self.spec,
            symbol=symbol,
            mirror=self.mirror,
            book=self.book,
            start=options.start,
            end=options.end,
            limit=options.limit,
        )
        self.accounts = set(self.book_accounts) | set(self.taker_accounts)
        self._addresses = {wallet(a): a for a in self.accounts}
        self.wallets: dict[int, int] = dict.fromkeys(self.accounts, 0)
        self.engine_book = L2Book()
        self._prefix = f"rp-{uuid.uuid4().hex[:12]}-"
        self._command_count = 0
        self._pending: list[tuple[str, EngineCommand, Sent | None]] = []
        self._pending_time = 0
        self._expected: dict[str, Sent | None] = {}
        """Our commands not yet answered, by id (the mirror's, or None for our own setup)."""
        self._in_flight: dict[str, tuple[float, int]] = {}
        """First command id of each record not yet answered → (sent at, commands)."""
        self._top_ups: set[int] = set()
        self._tick_times: list[int] = []
        self._tick_sent: list[float] = []
        self._tick_futures: list[asyncio.Future[Any]] = []
        self._last_mark_time: int | None = None
        self._last_mark: MarkTick | None = None
        self._last_index: IndexPrice | None = None
        self._exchange_time: int | None = None
        self._await_oracle = True
        """Whether ticks wait for the oracle (``TICKS_AHEAD``): not when it ignores them."""
        self.counts: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self._first_errors: list[str] = []
        self.tick_to_mark: list[float] = []
        self.command_to_event: list[float] = []
        self.records_sent = 0
        self.commands_sent = 0
        self.ticks_sent = 0
        self.behind_s = 0.0
        self.tick_gap_ms = 0
        """The longest event time between two ticks sent."""
        self._started = 0.0
        self._last_answer = 0.0
        self._checked_time = False
        self._events_topic = TopicPartition(settings.events_topic, 0)
        self._bar: tqdm[Any] | None = None
        self._last_progress = 0.0

    # ---------------------------------------------------------------------------- run

    async def run(self, stop: asyncio.Event | None = None) -> dict[str, Any]:
        """Replay the file; return the summary. ``stop`` ends it early (what was sent is
        still awaited and reported)."""
        settings = self.settings
        await create_topics(settings.bootstrap_servers, settings)
        producer = AIOKafkaProducer(**settings.producer_config())
        consumer = AIOKafkaConsumer(**settings.consumer_config())
        await producer.start()
        aborted: str | None = None
        try:
            await consumer.start()
            self.producer, self.consumer = producer, consumer
            await self._read_start()
            self._check_oracle()
            if self.mirror is not None:
                await self._set_up()
            self._started = time.monotonic()
            self._open_progress()
            try:
                await self._replay(stop)
            except ReplayError as error:
                aborted = str(error)
                self._error("aborted", aborted)
            await self._flush()
            await self._finish()
        finally:
            self._close_progress()
            self.file.close()
            await consumer.stop()
            await producer.stop()
        summary = self.summary(aborted)
        return summary

    async def _replay(self, stop: asyncio.Event | None) -> None:
        speed = self.options.speed
        loop_start: float | None = None
        first_time = 0
        for step in self.plan.steps():
            if stop is not None and stop.is_set():
                self.counts["stopped_early"] = 1
                break
            if not self._checked_time:
                self._check_time(step.time)
            if speed is not None:
                now = time.monotonic()
                if loop_start is None:
                    loop_start, first_time = now, step.time
                due = loop_start + (step.time - first_time) / 1000 / speed
                if due > now:
                    await self._flush()
                    await self._wait_until(due)
                else:
                    self.behind_s = max(self.behind_s, now - due)
            await self._step(step)
            self._progress()

    async def _step(self, step: Step) -> None:
        if step.tick is not None:
            await self._send_tick(step.tick, step.time)
        if step.orders:
            for sent in step.orders:
                self._queue(sent.command, sent)
            self._pending_time = max(self._pending_time, step.time)
            if len(self._pending) >= COMMANDS_PER_RECORD:
                await self._flush()

    # ---------------------------------------------------------------------- sending

    async def _send_tick(self, price: int, at: int) -> None:
        if self._await_oracle and self._ticks_ahead() >= TICKS_AHEAD:
            await self._flush()
            await self._catch_up_oracle()
        tick = IndexTick(symbol=self.symbol, source=self.options.source, price=price, time=at)
        if self._tick_times:
            self.tick_gap_ms = max(self.tick_gap_ms, at - self._tick_times[-1])
        if len(self._tick_futures) >= TICKS_IN_FLIGHT:
            await asyncio.gather(*self._tick_futures)
            self._tick_futures.clear()
        future = await self.producer.send(
            self.settings.prices_topic, PRICE_ENCODER.encode(tick), key=self.symbol.encode()
        )
        self._tick_futures.append(future)
        self._tick_times.append(at)
        self._tick_sent.append(time.monotonic())
        self.ticks_sent += 1

    def _ticks_ahead(self) -> int:
        """Ticks sent later than the oracle's latest mark."""
        last = self._last_mark_time
        if last is None:
            return len(self._tick_times)
        return len(self._tick_times) - bisect.bisect_right(self._tick_times, last)

    async def _catch_up_oracle(self) -> None:
        """Wait until the oracle's marks are within ``TICKS_AHEAD`` ticks; if no mark comes for
        ``drain_s``, the oracle is taken not to answer and ticks are sent without waiting."""
        since, seen = time.monotonic(), self.counts["marks"]
        while self._ticks_ahead() >= TICKS_AHEAD:
            await self._take_results(POLL_MS)
            if self.counts["marks"] != seen:
                since, seen = time.monotonic(), self.counts["marks"]
            elif time.monotonic() - since > self.options.drain_s:
                self._await_oracle = False
                self._error(
                    "oracle_not_answering",
                    f"no mark from the oracle for {self.options.drain_s:.0f} s: ticks go on "
                    "without waiting for it",
                )
                return

    def _queue(self, command: EngineCommand, sent: Sent | None) -> None:
        self._command_count += 1
        kind = sent.kind if sent is not None else "setup"
        command_id = f"{self._prefix}{self._command_count}-{kind}"
        self._pending.append((command_id, command, sent))
        self.counts[f"commands.{kind}"] += 1

    async def _flush(self) -> None:
        """Send what is queued, in records of ``COMMANDS_PER_RECORD``, each once fewer than
        ``RECORDS_IN_FLIGHT`` are unanswered; take in the results that have come meanwhile."""
        await self._take_results(0)
        while self._pending:
            chunk = self._pending[:COMMANDS_PER_RECORD]
            del self._pending[:COMMANDS_PER_RECORD]
            while len(self._in_flight) >= RECORDS_IN_FLIGHT:
                await self._await_results()
            envelopes = [CommandEnvelope(command_id, command) for command_id, command, _ in chunk]
            for command_id, _, sent in chunk:
                self._expected[command_id] = sent
            batch = CommandBatch(envelopes, time=self._pending_time)
            self._in_flight[chunk[0][0]] = (time.monotonic(), len(chunk))
            await self.producer.send(
                self.settings.commands_topic, ENCODER.encode(batch), partition=0
            )
            self.records_sent += 1
            self.commands_sent += len(chunk)
        if self.mirror is not None:
            self._queue_top_ups()

    def _queue_top_ups(self) -> None:
        """Top up a replay account whose wallet fell below half the faucet cap (fees)."""
        cap = self.settings.faucet_cap
        for account, balance in self.wallets.items():
            if balance < cap // 2 and account not in self._top_ups:
                self._top_ups.add(account)
                self._queue(Deposit(account=account, amount=cap - balance), None)
                self.counts["top_ups"] += 1

    # ---------------------------------------------------------------------- results

    async def _await_results(self) -> None:
        """Wait for results; give up after ``drain_s`` without any."""
        got = await self._take_results(POLL_MS)
        now = time.monotonic()
        if got:
            self._last_answer = now
        elif now - self._last_answer > self.options.drain_s:
            raise ReplayError(
                f"the engine answered nothing for {self.options.drain_s:.0f} s "
                f"({len(self._in_flight)} command records unanswered): is it running on "
                f"{self.settings.commands_topic!r}?"
            )

    async def _wait_until(self, due: float) -> None:
        while (left := due - time.monotonic()) > 0:
            await self._take_results(max(1, min(POLL_MS, int(left * 1000))))

    async def _take_results(self, timeout_ms: int) -> int:
        """Read what has come on the event log and the price topic; return how many records."""
        batches = await self.consumer.getmany(timeout_ms=timeout_ms)
        count = 0
        for partition, records in batches.items():
            count += len(records)
            if partition == self._events_topic:
                for record in records:
                    self._on_event_record(record.value or b"")
            else:
                for record in records:
                    self._on_price_record(record.value or b"")
        return count

    def _on_event_record(self, value: bytes, *, live: bool = True) -> None:
        try:
            batch = self._events.decode(value)
        except (msgspec.DecodeError, msgspec.ValidationError) as error:
            self._error("bad_event_record", str(error))
            return
        if batch is None:  # a part of a split record: the rest is still to come
            return
        if live and batch.results:
            sent_at = self._in_flight.pop(batch.results[0].id, None)
            if sent_at is not None:
                now = time.monotonic()
                self.command_to_event.append((now - sent_at[0]) * 1000)
                self._last_answer = now
        self._follow(batch, live)

    def _follow(self, batch: EventBatch, live: bool) -> None:
        mirror = self.mirror
        symbol = self.symbol
        for result in batch.results:
            if result.duplicate:
                continue
            sent = self._expected.pop(result.id, None) if live else None
            ours = live and result.id.startswith(self._prefix)
            for event in result.events:
                if isinstance(event, MarketEvent):
                    if event.symbol != symbol:
                        continue
                    inner = event.event
                    if isinstance(inner, BookDelta):
                        self.engine_book.apply(inner)
                    elif isinstance(inner, Trade) and live:
                        if inner.taker_account in self.accounts:
                            self.counts["engine_trades"] += 1
                            self.counts["engine_traded_lots"] += inner.qty
                        elif mirror is not None and inner.maker_account in self.accounts:
                            mirror.on_foreign_fill(inner)
                    elif ours and isinstance(inner, Rejected):
                        self._error(f"rejected.{inner.reason}", f"{result.id}: {inner.message}")
                elif isinstance(event, Transfer):
                    self._transfer(event)
                elif isinstance(event, PositionUpdate) and event.symbol == symbol:
                    if mirror is not None and not live:
                        mirror.set_position(event.account, event.size)
                elif ours and isinstance(event, CommandRejected):
                    self._error(f"command_rejected.{event.reason}", f"{result.id}: {event.message}")
            if ours and result.id.endswith("-setup"):
                self._top_ups.discard(self._account_of(result))
            if sent is not None and mirror is not None:
                mirror.on_result(sent, result.events)

    def _account_of(self, result: Any) -> int:
        for event in result.events:
            if isinstance(event, Transfer) and event.target in self._addresses:
                return self._addresses[event.target]
        return -1

    def _transfer(self, event: Transfer) -> None:
        target = self._addresses.get(event.target)
        if target is not None:
            self.wallets[target] += event.amount
        source = self._addresses.get(event.source)
        if source is not None:
            self.wallets[source] -= event.amount

    def _on_price_record(self, value: bytes, *, live: bool = True) -> None:
        try:
            message = PRICE_DECODER.decode(value)
        except (msgspec.DecodeError, msgspec.ValidationError) as error:
            self._error("bad_price_record", str(error))
            return
        if message.symbol != self.symbol:
            return
        if isinstance(message, IndexTick) and not live:
            latest = self._exchange_time
            self._exchange_time = message.time if latest is None else max(latest, message.time)
        elif isinstance(message, MarkTick):
            if not live:
                return
            self._last_mark = message
            previous = self._last_mark_time
            if previous is not None and message.time <= previous:
                return
            self._last_mark_time = message.time
            self.counts["marks"] += 1
            # The point at ``time`` is closed by the first tick at or after it.
            index = bisect.bisect_left(self._tick_times, message.time)
            if index < len(self._tick_times):
                self.tick_to_mark.append((time.monotonic() - self._tick_sent[index]) * 1000)
        elif isinstance(message, IndexPrice) and live:
            self._last_index = message

    def _error(self, kind: str, message: str) -> None:
        self.errors[kind] += 1
        if len(self._first_errors) < FIRST_ERRORS:
            self._first_errors.append(f"{kind}: {message}")
        log.warning("replay_error", kind=kind, message=message)

    # ------------------------------------------------------------------------ start

    async def _read_start(self) -> None:
        """The event log from its beginning, the price topic's last records; then every
        partition is positioned at its end, so that what comes next is live."""
        consumer = self.consumer
        settings = self.settings
        prices = [
            TopicPartition(settings.prices_topic, p) for p in range(settings.prices_partitions)
        ]
        events = self._events_topic
        consumer.assign([events, *prices])
        await consumer.seek_to_beginning(events, *prices)
        deadline = time.monotonic() + settings.request_timeout_ms / 1000
        every = [events, *prices]
        while any(consumer.highwater(p) is None for p in every):
            if time.monotonic() > deadline:
                raise ReplayError(
                    f"no fetch answered in {settings.request_timeout_ms} ms: is the broker at "
                    f"{settings.bootstrap_servers}?"
                )
            batches = await consumer.getmany(*every, timeout_ms=POLL_MS)
            for record in batches.get(events, []):
                self._on_event_record(record.value or b"", live=False)
            for partition in prices:
                for record in batches.get(partition, []):
                    self._on_price_record(record.value or b"", live=False)
        ends = {p: consumer.highwater(p) or 0 for p in prices}
        for partition, end in ends.items():
            if await consumer.position(partition) < end - PRICE_LOOKBACK:
                consumer.seek(partition, end - PRICE_LOOKBACK)
        for partition in every:
            while await consumer.position(partition) < (consumer.highwater(partition) or 0):
                batches = await consumer.getmany(partition, timeout_ms=POLL_MS, max_records=10_000)
                for record in batches.get(partition, []):
                    if partition == events:
                        self._on_event_record(record.value or b"", live=False)
                    else:
                        self._on_price_record(record.value or b"", live=False)
        log.info(
            "replay_start",
            file=self.file.path,
            format=self.format,
            symbol=self.symbol,
            exchange_time=iso(self._exchange_time),
            engine_best_bid=self.engine_book.best_bid,
            engine_best_ask=self.engine_book.best_ask,
        )

    def _check_oracle(self) -> None:
        config = self.settings.index_config(self.symbol)
        if config is None or self.options.source not in {s.name for s in config.sources}:
            self._await_oracle = False
            self._error(
                "oracle_ignores_source",
                f"the oracle's sources for {self.symbol} (EXCHANGE_ORACLE_SOURCES) do not "
                f"include {self.options.source!r}: it will publish no index or mark from the "
                "replay",
            )

    def _check_time(self, first: int) -> None:
        self._checked_time = True
        latest = self._exchange_time
        if latest is not None and latest > first:
            raise ReplayError(
                f"the exchange's event time for {self.symbol} is {iso(latest)}, after the "
                f"replay's first event at {iso(first)}: the oracle would ignore its ticks "
                "(event time never goes back). Replay into a fresh exchange, without the feed: "
                "EXCHANGE_UP_WITHOUT=feed,market-maker make run"
            )

    async def _set_up(self) -> None:
        """One record: every replay account's orders in the market cancelled, its leverage
        set, its wallet topped up to the faucet cap; its results awaited."""
        cap = self.settings.faucet_cap
        for account in sorted(self.accounts):
            order = CancelAll(account=account)
            self._queue(OrderCommand(symbol=self.symbol, order=order), None)
            self._queue(SetLeverage(account=account, symbol=self.symbol, leverage=LEVERAGE), None)
            top_up = cap - self.wallets[account]
            if top_up > 0:
                self._top_ups.add(account)  # answered by its result: no second top-up meanwhile
                self._queue(Deposit(account=account, amount=top_up), None)
        self._pending_time = self._exchange_time or 0
        self._last_answer = time.monotonic()
        await self._flush()
        while self._in_flight:
            await self._await_results()
        self.counts.clear()  # the setup is not the replay's traffic
        self.records_sent = self.commands_sent = 0
        self.command_to_event.clear()

    # -------------------------------------------------------------------------- end

    async def _finish(self) -> None:
        """Await the acknowledgements of the ticks, the results of every record sent, and the
        oracle's mark of the last point the ticks closed."""
        if self._tick_futures:
            await asyncio.gather(*self._tick_futures)
            self._tick_futures.clear()
        self._last_answer = time.monotonic()
        try:
            while self._in_flight:
                await self._await_results()
        except ReplayError as error:
            self._error("results_missing", str(error))
        expected = self._last_point()
        if expected is None or not self._await_oracle:
            return
        waited_since = time.monotonic()
        seen = self.counts["marks"]
        while self._last_mark_time is None or self._last_mark_time < expected:
            await self._take_results(POLL_MS)
            if self.counts["marks"] != seen:
                seen, waited_since = self.counts["marks"], time.monotonic()
            elif time.monotonic() - waited_since > self.options.drain_s:
                self._error(
                    "marks_missing",
                    f"no mark from the oracle for the point {iso(expected)} (is it running?)",
                )
                return

    def _last_point(self) -> int | None:
        """The last point of the oracle's cadence that the ticks sent have closed: a tick at
        ``t`` closes the points before ``t``, and ``t`` itself if it is one."""
        if len(self._tick_times) < 2:
            return None
        step = self.settings.oracle_publish_ms
        last = self._tick_times[-1]
        point = last // step * step
        return point if point >= self._tick_times[0] else None

    # --------------------------------------------------------------------- progress

    def _open_progress(self) -> None:
        if self.options.progress:
            self._bar = tqdm(
                total=self.file.size,
                unit="B",
                unit_scale=True,
                desc=f"replay {self.symbol}",
                dynamic_ncols=True,
            )

    def _progress(self) -> None:
        now = time.monotonic()
        if now - self._last_progress < PROGRESS_EVERY_S:
            return
        self._last_progress = now
        elapsed = max(now - self._started, 1e-9)
        events = self.plan.counts["events_read"]
        if self._bar is not None:
            self._bar.n = self.file.position()
            self._bar.set_postfix_str(
                f"{events / elapsed:,.0f} events/s, {self.commands_sent / elapsed:,.0f} cmd/s, "
                f"{self.ticks_sent:,} ticks, {len(self._in_flight)} records in flight",
                refresh=True,
            )

    def _close_progress(self) -> None:
        if self._bar is not None:
            self._bar.n = self.file.position()
            self._bar.close()
            self._bar = None

    # ---------------------------------------------------------------------- summary

    def summary(self, aborted: str | None = None) -> dict[str, Any]:
        wall = max(time.monotonic() - self._started, 1e-9) if self._started else 0.0
        plan = self.plan
        counts = plan.counts
        errors: Counter[str] = Counter(self.errors)
        book = self.book
        if book.gaps:
            errors["depth_gaps"] += book.gaps
        for kind in ("events_late",):
            if counts[kind]:
                errors[kind] += counts[kind]
        mirror_counts: Counter[str] = self.mirror.counts if self.mirror is not None else Counter()
        for kind in ("levels_without_room", "trades_without_room", "taker_mispredicted"):
            if mirror_counts[kind]:
                errors[kind] += mirror_counts[kind]
        events = {
            "read": counts["events_read"],
            "replayed": counts["events_replayed"],
            "by_kind": _by_kind(counts, "events."),
        }
        for key in ("events_before_start", "events_other_symbol", "events_late"):
            if counts[key]:
                events[key.removeprefix("events_")] = counts[key]
        out: dict[str, Any] = {
            "file": self.file.path,
            "format": self.format,
            "symbol": self.symbol,
            "speed": "max" if self.options.speed is None else self.options.speed,
            "orders": self.mirror is not None,
            "data": {
                "first_time": iso(plan.first_time),
                "last_time": iso(plan.last_time),
                "span_s": (
                    round((plan.last_time - plan.first_time) / 1000, 3)
                    if plan.first_time is not None and plan.last_time is not None
                    else 0
                ),
            },
            "wall_s": round(wall, 3),
            "events": events,
            "index_ticks": self.ticks_sent,
            "commands": {
                "sent": self.commands_sent,
                "records": self.records_sent,
                "by_kind": _by_kind(self.counts, "commands."),
            },
            "trades": {
                "recorded": counts["trades"],
                "taker_orders": self.counts["commands.taker"],
                "engine_trades": self.counts["engine_trades"],
                "engine_traded_qty": self.spec.lots_to_str(self.counts["engine_traded_lots"])
                if self.counts["engine_traded_lots"]
                else "0",
            },
            "rates": {
                "events_per_s": round(counts["events_read"] / wall, 1) if wall else 0,
                "commands_per_s": round(self.commands_sent / wall, 1) if wall else 0,
                "records_per_s": round(self.records_sent / wall, 1) if wall else 0,
                "ticks_per_s": round(self.ticks_sent / wall, 1) if wall else 0,
                "speedup": round(_span_s(plan) / wall, 1) if wall else 0,
            },
            "latency_ms": {
                "tick_to_mark": percentiles(self.tick_to_mark),
                "command_to_event": percentiles(self.command_to_event),
            },
            "oracle": self._oracle_summary(),
            "behind_schedule_s": round(self.behind_s, 3),
        }
        if self.mirror is not None:
            out["book"] = self._book_summary(mirror_counts)
        out["errors"] = {
            "count": sum(errors.values()),
            "by_kind": dict(errors),
            "first": list(self._first_errors),
        }
        notes = self._notes()
        if notes:
            out["notes"] = notes
        if aborted is not None:
            out["aborted"] = aborted
        if self.counts["stopped_early"]:
            out["stopped_early"] = True
        return out

    def _notes(self) -> list[str]:
        """What the figures do not show but the user should know."""
        notes = []
        stale = self.settings.oracle_stale_after_ms
        if self.tick_gap_ms > stale:
            notes.append(
                f"ticks were up to {self.tick_gap_ms:,} ms apart, more than "
                f"EXCHANGE_ORACLE_STALE_AFTER_MS ({stale:,}): the oracle takes the source for "
                "stale, and the index for frozen, between them; run the exchange with a larger "
                "EXCHANGE_ORACLE_STALE_AFTER_MS for such data (docs/replay.md)"
            )
        return notes

    def _oracle_summary(self) -> dict[str, Any]:
        spec = self.spec
        mark, index = self._last_mark, self._last_index
        return {
            "marks": self.counts["marks"],
            "last_point": iso(mark.time) if mark else None,
            "last_index": spec.ticks_to_str(index.price) if index and index.price else None,
            "last_mark": spec.ticks_to_str(mark.mark) if mark and mark.mark else None,
        }

    def _book_summary(self, mirror_counts: Counter[str]) -> dict[str, Any]:
        spec = self.spec

        def price(ticks: int | None) -> str | None:
            return spec.ticks_to_str(ticks) if ticks is not None else None

        engine_bid, engine_ask = self.engine_book.best_bid, self.engine_book.best_ask
        recorded_bid, recorded_ask = self.book.best(True), self.book.best(False)
        return {
            "depth": self.options.depth,
            "engine_best_bid": price(engine_bid),
            "engine_best_ask": price(engine_ask),
            "recorded_best_bid": price(recorded_bid),
            "recorded_best_ask": price(recorded_ask),
            "best_equal": (engine_bid, engine_ask) == (recorded_bid, recorded_ask),
            "depth_gaps": self.book.gaps,
            "resets": mirror_counts["resets"],
            "levels_capped": mirror_counts["levels_capped"],
            "placed_at_minimum": mirror_counts["placed_at_minimum"],
            "accounts": {
                "book": [self.book_accounts[0], self.book_accounts[-1]],
                "taker": [self.taker_accounts[0], self.taker_accounts[-1]],
            },
        }


def _by_kind(counts: Counter[str], prefix: str) -> dict[str, int]:
    return {k.removeprefix(prefix): v for k, v in counts.items() if k.startswith(prefix)}


def _span_s(plan: Plan) -> float:
    """Seconds of event time replayed."""
    if plan.first_time is None or plan.last_time is None:
        return 0.0
    return (plan.last_time - plan.first_time) / 1000


async def run_replay(
    settings: Settings, options: ReplayOptions, stop: asyncio.Event | None = None
) -> dict[str, Any]:
    """Replay ``options.path`` into the exchange of ``settings``; return the summary."""
    replay = Replay(settings, options)
    summary = await replay.run(stop)
    return summary


__all__ = ["ReplayError", "ReplayOptions", "run_replay", "table"]
