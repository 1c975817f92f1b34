"""``exchange funding``: samples the premium index on event time, publishes the predicted funding
rate, and at each boundary sends the engine one ``SettleFunding`` command.

**Input: the oracle's points.** Every ``MarkTick`` carries the premium ``P`` of its moment,
measured by the oracle from its book of the engine's events and its index. The funding service
samples those (``FundingCalculator.advance_premium``: the sample at a point is the premium of
the latest ``MarkTick`` at or before it) rather than following the book itself, because the
event log carries no time: a second follower of it would place book changes at whatever moment
it happened to read them, differently on every run. The oracle's points are in one partition
per market, in order, each with its time, so the funding state is a function of that sequence
alone, and a restarted service that reads it again from the beginning rebuilds every sample and
every weight exactly.

**Settlements, exactly once.** A boundary ``B`` is settled when the first point at or after
``B`` arrives, which the oracle closes as soon as its event time reaches ``B``. The command id
is ``funding-<symbol>-<B>``. The engine applies a market's boundary once: a repeated id is
answered as a duplicate, and a ``funding_time`` at or before the last settled one is refused
(``duplicate_funding``). This service sends each boundary at least once: nothing before it has
read everything that was in the logs when it started (what it reads before then, its previous
run has acted on); then it sends every settlement it computed that the event log does not show
the engine has answered. A restart around a boundary therefore sends it once more at most, and
the engine ignores that. Two instances running at once send everything twice, also harmless.

**The residual race.** The engine pays funding on the positions it holds when the command is
applied, not at ``B``: between the first index tick after ``B`` and the command reaching the
engine (the oracle's and this service's hops, tens of ms on the embedded broker), an order
already in the command log is applied first and its position pays or receives for ``B``.
Binance settles "up to 15 s" after the boundary (perp-mechanics.md §2.1), so the race is the
venue's too, only shorter here.

**Output.** After each batch of points the latest predicted rate per market, and with every
settlement its final rate, as ``FundingRate`` on the price topic (keyed by symbol).
"""

import asyncio
from collections.abc import Sequence
from typing import Any

import msgspec
import structlog
from aiokafka import AIOKafkaProducer

from exchange.engine_commands import SettleFunding
from exchange.engine_events import CommandRejected, FundingSettled
from exchange.funding_rate import (
    FundingCalculator,
    FundingConfig,
    FundingResult,
    funding_config_for,
)
from exchange.market import MarketSpec
from services.broker import create_topics
from services.engine_main import load_markets
from services.log_reader import follow
from services.prices import PRICE_DECODER, PRICE_ENCODER, FundingRate, MarkTick
from services.settings import Settings
from services.wire import ENCODER, CommandBatch, CommandEnvelope, CommandResult, EventBatch

log = structlog.get_logger("funding")

"""Longest a poll waits for records before the service sends what it has."""
_ID_PREFIX = "funding-"


async def run_funding(settings: Settings, stop: asyncio.Event) -> None:
    """Run the funding service for the engine's markets until ``stop``."""
    specs = load_markets(settings.markets_file)
    settings.check_markets(spec.symbol for spec in specs)
    await create_topics(settings.bootstrap_servers, settings)
    await Funding(settings, specs).run(stop)


def funding_command_id(symbol: str, funding_time: int) -> str:
    """The one id of the settlement of ``symbol`` at ``funding_time``, in every run."""
    return f"{_ID_PREFIX}{symbol}-{funding_time}"


class FundingMarket:
    """One market's funding on the oracle's points. Pure."""

    def __init__(self, config: FundingConfig) -> None:
        self.config = config
        self.calculator: FundingCalculator | None = None
        """Started by the first point, in the interval holding it."""
        self._premium: int | None = None
        """The premium of the latest point: the state in effect until the next one."""

    def point(self, tick: MarkTick) -> tuple[FundingResult, ...]:
        """Sample the points before ``tick`` with the previous point's premium, settle the
        boundaries up to it, then take its premium."""
        if self.calculator is None:
            self.calculator = FundingCalculator(self.config, start=tick.time)
        settled = self.calculator.advance_premium(tick.time, self._premium)
        self._premium = tick.premium
        return settled


class Funding:
    """The service: the oracle's points and the engine's answers in, settlements out."""

    def __init__(self, settings: Settings, specs: Sequence[MarketSpec]) -> None:
        self.settings = settings
        self.markets = {
            spec.symbol: FundingMarket(
                funding_config_for(spec, settings.funding_schedule_of(spec.symbol))
            )
            for spec in specs
        }
        self._settlements: list[tuple[str, FundingResult]] = []
        """Settlements computed and not yet sent, in the order they were computed."""
        self._answered: dict[str, int] = {}
        """Per market, the latest boundary the engine has settled or answered a command for."""
        self._predicted: dict[str, tuple[int, FundingResult]] = {}
        """Per market, the latest predicted rate and the point it is as of, not yet published."""
        self._published: dict[str, int] = {}
        """Per market, the time of the latest predicted rate on the topic."""
        self._time = 0
        """The latest point's time: the event time of the command records."""
        self._live = False

    async def run(self, stop: asyncio.Event) -> None:
        log.info(
            "funding_started",
            schedules={
                symbol: msgspec.structs.asdict(market.config.schedule)
                for symbol, market in self.markets.items()
            },
        )
        await follow(self.settings, stop, self, "funding")

    def caught_up(self) -> None:
        self._live = True

    def progress(self) -> dict[str, Any]:
        return {"answered": self._answered}

    # ----------------------------------------------------------------------------- inputs

    def on_event_batch(self, batch: EventBatch) -> None:
        for result in batch.results:
            if result.id.startswith(_ID_PREFIX):
                self._on_answer(result)
            for event in result.events:
                if isinstance(event, FundingSettled) and event.symbol in self.markets:
                    self._answer(event.symbol, event.funding_time)

    def _on_answer(self, result: CommandResult) -> None:
        """The engine's answer to a settlement command (of this run or an earlier one)."""
        symbol, _, funding_time = result.id.removeprefix(_ID_PREFIX).rpartition("-")
        if symbol not in self.markets or not funding_time.isdigit():
            return
        self._answer(symbol, int(funding_time))
        if not self._live:
            return
        if result.duplicate:
            log.info("funding_duplicate", command_id=result.id)
            return
        for event in result.events:
            if isinstance(event, FundingSettled):
                log.info(
                    "funding_settled",
                    symbol=symbol,
                    funding_time=event.funding_time,
                    rate=event.rate,
                    mark=event.mark,
                    positions=event.positions,
                    remainder=event.remainder,
                )
            elif isinstance(event, CommandRejected):
                log.warning(
                    "funding_rejected",
                    command_id=result.id,
                    reason=event.reason,
                    message=event.message,
                )

    def _answer(self, symbol: str, funding_time: int) -> None:
        self._answered[symbol] = max(self._answered.get(symbol, funding_time), funding_time)

    def on_price_record(self, value: bytes) -> None:
        try:
            message = PRICE_DECODER.decode(value)
        except (msgspec.DecodeError, msgspec.ValidationError) as error:
            log.warning("bad_price_record", error=str(error))
            return
        market = self.markets.get(message.symbol)
        if market is None:
            return
        if isinstance(message, MarkTick):
            self._settlements += [(message.symbol, r) for r in market.point(message)]
            assert market.calculator is not None
            self._predicted[message.symbol] = (message.time, market.calculator.predicted())
            self._time = max(self._time, message.time)
        elif isinstance(message, FundingRate) and not message.final:  # its own
            published = self._published.get(message.symbol, message.time)
            self._published[message.symbol] = max(published, message.time)

    # ---------------------------------------------------------------------------- outputs

    async def emit(self, producer: AIOKafkaProducer) -> None:
        """Send every settlement the engine has not answered, then publish the rates."""
        settings = self.settings
        commands: list[CommandEnvelope] = []
        messages: list[FundingRate] = []
        for symbol, result in self._settlements:
            answered = self._answered.get(symbol)
            if answered is not None and result.funding_time <= answered:
                continue
            settle = SettleFunding(
                symbol=symbol, rate=result.rate, funding_time=result.funding_time
            )
            command_id = funding_command_id(symbol, result.funding_time)
            commands.append(CommandEnvelope(command_id, settle))
            messages.append(_message(symbol, result.funding_time, result))
            log.info(
                "funding_settlement_sent",
                symbol=symbol,
                funding_time=result.funding_time,
                rate=result.rate,
                samples=result.samples,
            )
        self._settlements.clear()
        if commands:
            batch = CommandBatch(commands, time=self._time)
            await producer.send_and_wait(
                settings.commands_topic, ENCODER.encode(batch), partition=0
            )
        for symbol, (time, predicted) in self._predicted.items():
            published = self._published.get(symbol)
            if published is None or time > published:
                messages.append(_message(symbol, time, predicted))
                self._published[symbol] = time
        self._predicted.clear()
        sent = [
            await producer.send(
                settings.prices_topic, PRICE_ENCODER.encode(message), key=message.symbol.encode()
            )
            for message in messages
        ]
        await asyncio.gather(*sent)


def _message(symbol: str, time: int, result: FundingResult) -> FundingRate:
    return FundingRate(
        symbol=symbol,
        time=time,
        funding_time=result.funding_time,
        rate=result.rate,
        uncapped_rate=result.uncapped_rate,
        average_premium=result.average_premium,
        samples=result.samples,
        final=result.final,
    )
