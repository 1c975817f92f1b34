"""The liquidation service against the real broker, with the engine service in process: the
same mark liquidating two accounts, a cascade of liquidations moving the last price into the
next account, a cascade crashed into twice and restarted, an isolated position liquidated
alone, margin calls once per crossing across a restart, and a stale trigger the engine refuses.

The test is the oracle: it sends marks (and everything else) as command records with rising
event times. BTCUSDT: 0.1 USDT ticks (×10), 0.001 BTC lots, 10,000 minor units per tick·lot.
Every wait is bounded; nothing asserts on how long anything took.
"""

import asyncio
from collections.abc import Callable, Sequence
from pathlib import Path

import aiohttp
from aiokafka import AIOKafkaProducer
from price_services import WAIT_S, Logs, Running, read_commands, start_engine
from topics import fresh_settings

from exchange.commands import PlaceOrder
from exchange.default_markets import DEFAULT_MARKETS, USDT
from exchange.engine import MarginLevel
from exchange.engine_commands import (
    Deposit,
    EngineCommand,
    FundInsurance,
    Liquidate,
    MarginMode,
    MarkPrice,
    OrderCommand,
    SetLeverage,
    SetMarginMode,
)
from exchange.engine_events import (
    CommandError,
    CommandRejected,
    Deleveraged,
    Liquidation,
    PositionUpdate,
    Transfer,
    TransferReason,
)
from exchange.ledger import EXTERNAL
from exchange.orders import Side, TimeInForce
from services.engine_service import EngineService
from services.liquidator import Liquidator, read_risk_topic, scope_of
from services.risk_messages import AdlQuantiles, MarginCall, PositionSide
from services.settings import Settings
from services.wire import ENCODER, CommandBatch, CommandEnvelope

BTC, ETH = "BTCUSDT", "ETHUSDT"
MAKER = 900
DAY0 = 1_748_736_000_000


class Script:
    """The test's own producer: one command record per ``send``, event time one second on
    from the previous, ids ``t<n>``; returns the record's offset in the command log."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.time = DAY0
        self.count = 0
        self.order_id = 0

    async def send(self, *commands: EngineCommand) -> int:
        envelopes = []
        for command in commands:
            self.count += 1
            envelopes.append(CommandEnvelope(f"t{self.count}", command))
        self.time += 1_000
        producer = AIOKafkaProducer(**self.settings.producer_config())
        await producer.start()
        try:
            batch = ENCODER.encode(CommandBatch(envelopes, time=self.time))
            sent = await producer.send_and_wait(self.settings.commands_topic, batch, partition=0)
        finally:
            await producer.stop()
        offset: int = sent.offset
        return offset

    def order(
        self,
        account: int,
        side: Side,
        qty: int,
        price: int,
        *,
        symbol: str = BTC,
        tif: TimeInForce = TimeInForce.GTC,
    ) -> OrderCommand:
        self.order_id += 1
        place = PlaceOrder(
            order_id=self.order_id, account=account, side=side, qty=qty, price=price, tif=tif
        )
        return OrderCommand(symbol=symbol, order=place)


async def until(condition: Callable[[], bool]) -> None:
    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0.02)

    await asyncio.wait_for(poll(), WAIT_S)


def start_liquidator(service: Liquidator) -> Running:
    return Running(service.run)


async def liquidator_settings(bootstrap: str, **changes: object) -> Settings:
    return await fresh_settings(bootstrap, liquidator_health_port=0, **changes)


async def longs(script: Script, wallets: Sequence[tuple[int, int]], price: int) -> None:
    """Each ``(account, USDT)`` deposits, sets 50x and buys 0.1 BTC at ``price`` from the
    maker (a taker: 3 USDT of fee, so the wallet is 3 USDT less)."""
    await script.send(
        Deposit(account=MAKER, amount=100_000 * USDT),
        script.order(MAKER, Side.SELL, 100 * len(wallets), price),
    )
    for account, usdt in wallets:
        await script.send(
            Deposit(account=account, amount=usdt * USDT),
            SetLeverage(account=account, symbol=BTC, leverage=50),
            script.order(account, Side.BUY, 100, price),
        )


def liquidations(logs: Logs) -> list[Liquidation]:
    return [e for e in logs.events() if isinstance(e, Liquidation)]


def liquidate_commands(commands: list[CommandEnvelope]) -> list[CommandEnvelope]:
    return [c for c in commands if isinstance(c.command, Liquidate)]


def check_conservation(logs: Logs, engine: EngineService) -> None:
    """The ledger rebuilt from the event log equals the engine's, and everything inside the
    exchange (wallets, isolated wallets, insurance, fees, clearing, funding pools) sums to
    the net deposits exactly; no liquidation left a loss uncovered."""
    balances: dict[str, int] = {}
    net_deposits = 0
    for event in logs.events():
        if isinstance(event, Transfer):
            balances[event.source] = balances.get(event.source, 0) - event.amount
            balances[event.target] = balances.get(event.target, 0) + event.amount
            if event.reason in (TransferReason.DEPOSIT, TransferReason.INSURANCE_FUNDING):
                net_deposits += event.amount
            elif event.reason is TransferReason.WITHDRAWAL:
                net_deposits -= event.amount
    assert {k: v for k, v in balances.items() if v} == dict(engine.log.engine.ledger.items())
    assert sum(v for k, v in balances.items() if k != EXTERNAL) == net_deposits
    assert all(step.uncovered == 0 for step in liquidations(logs))
    assert balances.get("insurance", 0) >= 0


async def test_one_mark_liquidates_two_accounts_with_one_command_each(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """Two 50x longs at 60,000 with 397 USDT each are due below ~56,255; one mark at 56,000
    makes both due. The service sends both triggers in one record, under ids naming the mark's
    record; the book has no bids, so the engine closes both by ADL against the maker's short
    at their bankruptcy price (56,030), and the fund takes what is left."""
    settings = await liquidator_settings(kafka_bootstrap)
    engine, engine_run = await start_engine(settings, tmp_path)
    script = Script(settings)
    service = Liquidator(settings, DEFAULT_MARKETS)
    async with Logs(settings) as logs:
        await longs(script, [(1, 400), (2, 400)], 600_000)
        running = start_liquidator(service)
        await until(lambda: service.live)
        mark = await script.send(MarkPrice(symbol=BTC, price=560_000))
        await logs.until(lambda: len(liquidations(logs)) == 2)
        later = await script.send(Deposit(account=3, amount=USDT))  # event time moves on
        await until(lambda: service.status().offset >= later and service.status().adl_messages)
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{service.health_port}/health/ready") as response,
        ):
            assert response.status == 200
            health = await response.json()
        await running.finish()
    steps = liquidations(logs)
    assert [(s.account, s.size, s.filled, s.deleveraged) for s in steps] == [
        (1, 100, 0, 100),
        (2, 100, 0, 100),
    ]
    assert {s.bankruptcy_price for s in steps} == {560_300}
    adl = [e for e in logs.events() if isinstance(e, Deleveraged)]
    assert [(e.account, e.counterparty, e.qty, e.price) for e in adl] == [
        (1, MAKER, 100, 560_300),
        (2, MAKER, 100, 560_300),
    ]
    sent = liquidate_commands(await read_commands(settings))
    assert [c.id for c in sent] == [f"liq-{mark}-1-", f"liq-{mark}-2-"]
    assert health["sent"] == 2 and health["liquidated"] == 2 and health["resent"] == 0
    assert health["latency_ms"]["count"] == 2 and health["latency_ms"]["max"] is not None
    published = await read_risk_topic(settings)
    for account in (1, 2):  # keyed by account: each account's calls in order
        calls = [m.level for m in published if isinstance(m, MarginCall) and m.account == account]
        assert calls == [MarginLevel.LIQUIDATION, MarginLevel.SAFE]
    adl_messages = [m for m in published if isinstance(m, AdlQuantiles)]
    first, last = adl_messages[0], adl_messages[-1]
    assert {(e.account, e.side, e.quantile) for e in first.entries} == {
        (1, PositionSide.LONG, 4),
        (2, PositionSide.LONG, 2),  # equal scores, second of two in line: 4 − 1·5 // 2
        (MAKER, PositionSide.SHORT, 4),
    }
    assert {(e.account, e.quantile) for e in last.entries} == {(1, None), (2, None), (MAKER, None)}
    check_conservation(logs, engine)
    await engine_run.finish()


# --------------------------------------------------------------------------------- cascade

CASCADE = [(1, 400), (2, 350), (3, 300), (4, 250), (5, 200)]
"""50x longs of 0.1 BTC at 60,000; due below 56,255 / 56,757 / 57,259 / 57,761 / 58,263."""
BIDS = [577_000, 572_000, 567_000, 562_000, 557_000]
"""The maker's bids, 0.1 BTC each: each liquidation sells into the best one, and that fill is
below the next account's liquidation price."""


class SimulatedCrash(Exception):
    """The service dies here, as a killed process would."""


class CrashingLiquidator(Liquidator):
    """Dies at a chosen point: with a trigger read and not yet sent, or right after a send
    (the command is in the log, its answer not yet read)."""

    def __init__(self, settings: Settings, *, before_send: bool, after_send: bool) -> None:
        super().__init__(settings, DEFAULT_MARKETS)
        self.before_send = before_send
        self.after_send = after_send

    async def emit(self, producer: AIOKafkaProducer) -> None:
        if self.before_send and any(s not in self._in_flight for s in self._triggers):
            raise SimulatedCrash("a trigger read, not sent")
        await super().emit(producer)

    def _sent(self, commands: list[CommandEnvelope]) -> None:
        super()._sent(commands)
        if self.after_send:
            raise SimulatedCrash("a trigger sent, its answer not read")


async def crashed(running: Running) -> None:
    ended = asyncio.gather(running.task, return_exceptions=True)
    (outcome,) = await asyncio.wait_for(ended, WAIT_S)
    assert isinstance(outcome, SimulatedCrash), outcome


async def cascade(
    bootstrap: str, path: Path, *, crash: bool
) -> tuple[list[Liquidation], list[str]]:
    """The five longs and the maker's bids; then someone sells 0.01 BTC at 58,200, which
    makes account 5 due: its liquidation fills at 57,700 and makes 4 due, and so on down.
    With ``crash``, the service dies as soon as it has read the first trigger, and the next
    one dies right after sending; a third runs the cascade to its end."""
    settings = await liquidator_settings(bootstrap)
    engine, engine_run = await start_engine(settings, path)
    script = Script(settings)
    async with Logs(settings) as logs:
        await script.send(FundInsurance(amount=1_000 * USDT))
        await longs(script, CASCADE, 600_000)
        await script.send(*[script.order(MAKER, Side.BUY, 100, price) for price in BIDS])
        if crash:
            service: Liquidator = CrashingLiquidator(settings, before_send=True, after_send=False)
        else:
            service = Liquidator(settings, DEFAULT_MARKETS)
        running = start_liquidator(service)
        await until(lambda: service.live)
        await script.send(
            script.order(MAKER, Side.BUY, 10, 582_000),
            Deposit(account=7, amount=1_000 * USDT),
            script.order(7, Side.SELL, 10, 582_000, tif=TimeInForce.IOC),
        )
        if crash:
            await crashed(running)
            assert not liquidations(logs)
            service = CrashingLiquidator(settings, before_send=False, after_send=True)
            running = start_liquidator(service)
            await crashed(running)
            service = Liquidator(settings, DEFAULT_MARKETS)
            running = start_liquidator(service)
        await logs.until(lambda: len(liquidations(logs)) == len(CASCADE))
        await running.finish()
    check_conservation(logs, engine)
    await engine_run.finish()
    sent = [c.id for c in liquidate_commands(await read_commands(settings))]
    return liquidations(logs), sent


async def test_a_cascade_liquidates_each_account_once_in_turn(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    steps, sent = await cascade(kafka_bootstrap, tmp_path, crash=False)
    assert [(s.account, s.filled, s.deleveraged) for s in steps] == [
        (5, 100, 0),
        (4, 100, 0),
        (3, 100, 0),
        (2, 100, 0),
        (1, 100, 0),
    ]
    assert all(s.limit_price < s.bankruptcy_price for s in steps)  # the fund widens it
    assert [scope_of(i) for i in sent] == [(a, "") for a in (5, 4, 3, 2, 1)]


async def test_a_cascade_crashed_into_twice_ends_as_an_uninterrupted_one(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """Nothing liquidated twice, nothing missed: the crashed run's liquidations, and even its
    commands' ids, equal those of a run that was never interrupted."""
    expected = await cascade(kafka_bootstrap, tmp_path / "whole", crash=False)
    assert await cascade(kafka_bootstrap, tmp_path / "crashed", crash=True) == expected


# ------------------------------------------------------------------------------- isolated


async def test_an_isolated_position_is_liquidated_alone(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """Account 8 holds 10,000 USDT, a cross ETH long and an isolated 50x BTC long (120 USDT
    of isolated margin). A BTC mark at 59,000 takes the isolated position past maintenance;
    only it is liquidated, into the maker's bid; the cross account stays as it was."""
    settings = await liquidator_settings(kafka_bootstrap)
    engine, engine_run = await start_engine(settings, tmp_path)
    script = Script(settings)
    service = Liquidator(settings, DEFAULT_MARKETS)
    async with Logs(settings) as logs:
        await script.send(
            Deposit(account=MAKER, amount=100_000 * USDT),
            script.order(MAKER, Side.SELL, 100, 600_000),
            script.order(MAKER, Side.SELL, 1_000, 300_000, symbol=ETH),
            script.order(MAKER, Side.BUY, 100, 589_900),
            Deposit(account=8, amount=10_000 * USDT),
            SetMarginMode(account=8, symbol=BTC, mode=MarginMode.ISOLATED),
            SetLeverage(account=8, symbol=BTC, leverage=50),
            script.order(8, Side.BUY, 100, 600_000),
            script.order(8, Side.BUY, 1_000, 300_000, symbol=ETH),
        )
        running = start_liquidator(service)
        await until(lambda: service.live)
        assert service.view.margin_status(8)[1].level is MarginLevel.SAFE
        await script.send(MarkPrice(symbol=BTC, price=590_000))
        await logs.until(lambda: bool(liquidations(logs)))
        await until(lambda: service.status().margin_calls == 2)
        await running.finish()
    (step,) = liquidations(logs)
    assert (step.account, step.symbol, step.mode, step.filled) == (8, BTC, MarginMode.ISOLATED, 100)
    sent = liquidate_commands(await read_commands(settings))
    assert [scope_of(c.id) for c in sent] == [(8, BTC)]
    eth = [e for e in logs.events() if isinstance(e, PositionUpdate) and e.symbol == ETH]
    assert [(e.account, e.size) for e in eth if e.account == 8] == [(8, 1_000)]
    assert engine.log.engine.accounts[8][ETH].size == 1_000
    published = await read_risk_topic(settings)
    calls = [(m.account, m.symbol, m.level) for m in published if isinstance(m, MarginCall)]
    assert calls == [(8, BTC, MarginLevel.LIQUIDATION), (8, BTC, MarginLevel.SAFE)]
    check_conservation(logs, engine)
    await engine_run.finish()


# --------------------------------------------------------------------------- margin calls


async def test_margin_calls_once_per_crossing_and_never_again_after_a_restart(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """Account 6 (50x long at 60,000, 397 USDT) is at warning between ~56,255 and ~56,311.
    Three marks inside that band give one margin call, a recovery one more; a restarted
    service publishes nothing it had published; the next crossing is called again. The ADL
    indicators (one position a side: both first in line) are published once in all that."""
    settings = await liquidator_settings(kafka_bootstrap)
    _, engine_run = await start_engine(settings, tmp_path)
    script = Script(settings)
    await longs(script, [(6, 400)], 600_000)
    service = Liquidator(settings, DEFAULT_MARKETS)
    running = start_liquidator(service)
    await until(lambda: service.live)

    async def marks(*prices: int) -> None:
        for price in prices:
            offset = await script.send(MarkPrice(symbol=BTC, price=price))
        await until(lambda: service.status().offset >= offset)
        await asyncio.sleep(0.2)  # a poll and its emit after the last

    await marks(563_000, 562_900, 562_800)
    await marks(570_000)
    await running.finish()
    service = Liquidator(settings, DEFAULT_MARKETS)
    running = start_liquidator(service)
    await until(lambda: service.live)
    await marks(571_000)
    assert service.status().margin_calls == 0
    await marks(563_000)
    await running.finish()
    await engine_run.finish()
    published = await read_risk_topic(settings)
    calls = [m for m in published if isinstance(m, MarginCall)]
    assert [(c.account, c.symbol, c.level) for c in calls] == [
        (6, "", MarginLevel.WARNING),
        (6, "", MarginLevel.SAFE),
        (6, "", MarginLevel.WARNING),
    ]
    first = calls[0]
    assert first.ratio is not None and 80_000_000 <= first.ratio < 100_000_000
    # valued at one of the three marks: the service publishes once per poll, and the marks may
    # arrive in one poll or in several (0.4 % of 5,630 USDT at 56,300)
    assert first.maintenance in {p * 100 * 40 for p in (563_000, 562_900, 562_800)}
    mark = first.maintenance // (100 * 40)
    assert first.margin_balance == 397 * USDT + (mark - 600_000) * 100 * 10_000
    adl = [m for m in published if isinstance(m, AdlQuantiles)]
    assert len(adl) == 1
    assert {(e.account, e.side, e.quantile) for e in adl[0].entries} == {
        (6, PositionSide.LONG, 4),
        (MAKER, PositionSide.SHORT, 4),
    }
    assert not liquidate_commands(await read_commands(settings))


# ---------------------------------------------------------------------------- stale trigger


async def test_a_stale_trigger_is_refused_once_and_not_sent_again(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """Account 9 is due (mark 56,000) while no liquidation service runs; the engine is then
    stopped and a deposit that makes the account safe enters the command log. A service that
    starts now sees the account due and sends its trigger, after the deposit; with the engine
    still down it sends it again (same id) after its timeout. The engine, back, applies the
    deposit, refuses the trigger (not liquidatable) and answers the resend as a duplicate;
    the service, having read all that, sends nothing more."""
    settings = await liquidator_settings(kafka_bootstrap, liquidator_resend_ms=300)
    _, engine_run = await start_engine(settings, tmp_path)
    script = Script(settings)
    async with Logs(settings) as logs:
        await longs(script, [(9, 400)], 600_000)
        await script.send(MarkPrice(symbol=BTC, price=560_000))
        await logs.until(lambda: len(logs.batches) == 3)
        await engine_run.finish()
        await script.send(Deposit(account=9, amount=1_000 * USDT))
        service = Liquidator(settings, DEFAULT_MARKETS)
        running = start_liquidator(service)
        await until(lambda: service.status().resent >= 1)
        _, engine_run = await start_engine(settings, tmp_path)
        await until(lambda: service.status().rejected == 1 and not service.status().in_flight)
        before = len(liquidate_commands(await read_commands(settings)))
        await asyncio.sleep(1.0)  # three timeouts: nothing is sent again
        status = service.status()
        await running.finish()
    commands = liquidate_commands(await read_commands(settings))
    assert len(commands) == before and len({c.id for c in commands}) == 1
    assert status.sent == 1 and status.rejected == 1 and status.blocked == 0
    assert status.at_liquidation == 0 and not liquidations(logs)
    answers = [r for b in logs.batches for r in b.results if r.id == commands[0].id]
    assert [r.duplicate for r in answers] == [False] + [True] * (len(answers) - 1)
    refused = answers[0].events
    assert isinstance(refused[0], CommandRejected)
    assert refused[0].reason is CommandError.NOT_LIQUIDATABLE
    await engine_run.finish()
