"""The drill's recorder, result, checks and report without a broker: a hand-made log of a
small cascade (deposits, a mark, a liquidation triggered by it, a funding settlement, an ADL
notice) through the recorder's handlers, the result built from it, judged and drawn; then the
same result with each invariant broken in turn gives a non-zero exit status."""

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

from exchange.commands import PlaceOrder
from exchange.default_markets import BTCUSDT, USDT
from exchange.engine_commands import Liquidate, MarginMode, OrderCommand
from exchange.engine_events import (
    Deleveraged,
    EngineEvent,
    FundingSettled,
    Liquidation,
    LiquidationStep,
    MarkChanged,
    PositionUpdate,
    Transfer,
    TransferReason,
)
from exchange.orders import Side
from load.drill.checks import broken_invariants, exit_status
from load.drill.recorder import Recorder
from load.drill.report import render_report
from load.drill.result import build_result
from services.prices import PRICE_ENCODER, MarkTick
from services.settings import Settings
from services.wire import ENCODER, CommandBatch, CommandEnvelope, CommandResult, EventBatch

T0 = 1_748_736_000_000
FUND = "insurance"


def deposit(account: int, usdt: int) -> Transfer:
    return Transfer("external", f"u:{account}", usdt * USDT, TransferReason.DEPOSIT)


def feed(recorder: Recorder, offset: int, time: int, wall: int, *results: CommandResult) -> None:
    batch = EventBatch(offset=offset, results=list(results), time=time)
    recorder.on_event_record(ENCODER.encode(batch), wall)


def result(command_id: str, *events: EngineEvent) -> CommandResult:
    return CommandResult(command_id, list(events))


def mark_tick(time: int, mark: int) -> bytes:
    tick = MarkTick(
        symbol="BTCUSDT",
        time=time,
        mark=mark,
        index=mark - 10,
        frozen=False,
        funding_price=None,
        basis_price=None,
        last_price=mark + 5,
        best_bid=None,
        best_ask=None,
        premium=None,
        funding_rate=0,
        predicted_rate=None,
        next_funding_time=T0 + 60_000,
    )
    return PRICE_ENCODER.encode(tick)


async def recorded_result() -> dict[str, Any]:
    """A drill of two traders and the fund, as the recorder would have read it."""
    recorder = Recorder(Settings(), BTCUSDT, "drill-")
    feed(
        recorder,
        0,
        T0 - 1,
        1_000,
        result("drill-1", deposit(1, 1_000), deposit(2, 1_000)),
        result("drill-2", Transfer("external", FUND, 50 * USDT, TransferReason.INSURANCE_FUNDING)),
        result(
            "drill-3",  # the population's positions: 1 long 100 lots, 2 short as much
            PositionUpdate(1, "BTCUSDT", 100, 100 * 600_000, 0, 0),
            PositionUpdate(2, "BTCUSDT", -100, 100 * 600_000, 0, 0),
            PositionUpdate(2, "ETHUSDT", 7, 7 * 30_000, 0, 0),  # another market's: not counted
        ),
    )
    # A settlement during the setup: its remainder is in the fund's "before", not its change.
    feed(
        recorder,
        1,
        T0 - 1,
        1_001,
        result(
            "funding-BTCUSDT-0",
            Transfer("u:1", "funding:BTCUSDT", 3, TransferReason.FUNDING),
            Transfer("funding:BTCUSDT", FUND, 3, TransferReason.FUNDING_REMAINDER),
            FundingSettled("BTCUSDT", T0 - 60_000, 10_000, 600_000, 1, 3),
        ),
    )
    recorder.take_baseline()
    for k, mark in enumerate((600_000, 590_000, 580_000)):
        recorder.on_price_record(mark_tick(T0 + 1_000 * k, mark))
    feed(recorder, 2, T0 + 1_000, 2_000, result("mark-1", MarkChanged("BTCUSDT", 590_000)))
    liquidation = Liquidation(
        account=1,
        symbol="",
        mode=MarginMode.CROSS,
        step=LiquidationStep.FULL,
        size=100,
        filled=60,
        deleveraged=40,
        mark=590_000,
        bankruptcy_price=589_000,
        limit_price=589_000,
        fee=7 * USDT,
        insurance=7 * USDT - 2 * USDT,
        uncovered=0,
    )
    feed(
        recorder,
        3,
        T0 + 1_000,
        2_030,
        result(
            "liq-2-1-",
            Transfer("u:1", FUND, 7 * USDT, TransferReason.LIQUIDATION_FEE),
            Transfer("u:1", "pnl:BTCUSDT", 993 * USDT, TransferReason.REALIZED_PNL),
            Transfer(FUND, "pnl:BTCUSDT", 2 * USDT, TransferReason.LIQUIDATION_SHORTFALL),
            liquidation,
            Deleveraged("BTCUSDT", 1, 2, Side.BUY, 40, 589_000, 1),
            # 60 lots sold into the book (to 3), 40 taken over by 2, whose short shrinks
            PositionUpdate(1, "BTCUSDT", 0, 0, 0, 0),
            PositionUpdate(3, "BTCUSDT", 60, 60 * 589_000, 0, 0),
            PositionUpdate(2, "BTCUSDT", -60, 60 * 600_000, 0, 0),
        ),
    )
    liquidate = CommandBatch([CommandEnvelope("liq-2-1-", Liquidate(account=1))], time=T0 + 1_000)
    recorder.on_command_record(ENCODER.encode(liquidate), 2_015)
    recorder.on_command_record(ENCODER.encode(liquidate), 2_500)  # a resend: counted once
    order = PlaceOrder(order_id=0, account=2, side=Side.BUY, qty=1, price=1)
    ignored = CommandBatch(
        [CommandEnvelope("drill-9", OrderCommand(symbol="BTCUSDT", order=order))]
    )
    recorder.on_command_record(ENCODER.encode(ignored), 2_600)
    feed(
        recorder,
        4,
        T0 + 60_000,
        3_000,
        result(
            "funding-BTCUSDT-1",
            Transfer("u:2", "funding:BTCUSDT", 5, TransferReason.FUNDING),
            Transfer("funding:BTCUSDT", "pnl:BTCUSDT", 4, TransferReason.FUNDING),
            Transfer("funding:BTCUSDT", FUND, 1, TransferReason.FUNDING_REMAINDER),
            FundingSettled("BTCUSDT", T0 + 60_000, 10_000, 580_000, 2, 1),
        ),
    )
    run = {
        "path_first_time": T0,
        "path_last_time": T0 + 60_000,
        "path_first": "2025-06-01T00:00:00.000Z",
        "path_last": "2025-06-01T00:01:00.000Z",
        "path_start_price": 600_000,
        "path_low": 580_000,
        "timings_s": {"total_s": 1.5},
        "services": {"engine": 0, "liquidator": 0},
        "service_errors": [],
        "aborted": None,
    }
    scenario = {"name": "hand-made", "description": "two traders", "accounts": 2}
    return build_result(recorder, run, scenario)


async def test_the_result_holds_what_the_logs_said() -> None:
    result = await recorded_result()
    assert broken_invariants(result) == [] and exit_status(result) == 0
    liquidations = result["liquidations"]
    assert (liquidations["count"], liquidations["full"], liquidations["partial"]) == (1, 1, 0)
    assert liquidations["notional"] == 100 * 589_000 * BTCUSDT.multiplier
    assert result["insurance"]["before"] == 50 * USDT + 3
    assert result["insurance"]["after"] == 55 * USDT + 1 + 3
    assert result["bad_debt"]["fund_paid_shortfalls"] == 2 * USDT
    assert result["adl"]["events"] == 1 and result["adl"]["lots"] == 40
    interest = result["open_interest"]
    assert (interest["before"], interest["after"], interest["low"]) == (100, 60, 60)
    assert (interest["before_qty"], interest["after_qty"]) == ("0.100", "0.060")
    latency = result["latency"]
    assert latency["mark_crossing_to_liquidate_ms"]["p99"] == 15.0
    assert latency["liquidate_commands"] == 1 and latency["liquidate_resent"] == 1
    _, settlement = result["funding"]["settlements"]
    assert (settlement["paid"], settlement["received"], settlement["remainder"]) == (5, 4, 1)
    conservation = result["conservation"]
    assert conservation["inside_before"] == conservation["inside_after"] == 2_050 * USDT
    assert conservation["deposits_total"] == 2_050 * USDT and conservation["ledger_total"] == 0
    assert len(result["prices"]["points"]) == 3


async def test_the_report_draws_the_cascade(tmp_path: Path) -> None:
    result = await recorded_result()
    png, page = render_report(result, tmp_path / "report")
    assert png.read_bytes().startswith(b"\x89PNG")
    text = page.read_text(encoding="utf-8")
    assert "Every invariant held." in text and "data:image/png;base64," in text
    assert "2025-06-01T00:01:00.000Z" in text  # the funding table's row
    assert "0.100 → 0.060 (lowest 0.060)" in text  # the open interest's headline


async def test_each_broken_invariant_fails_the_drill() -> None:
    held = await recorded_result()
    breaks: dict[str, Callable[[dict[str, Any]], object]] = {
        "conservation": lambda r: r["conservation"].update(difference=1),
        "sums to": lambda r: r["conservation"].update(ledger_total=-1),
        "explain": lambda r: r["conservation"].update(fund_change_explained=0),
        "below 0": lambda r: r["insurance"].update(low=-1),
        "uncovered": lambda r: r["bad_debt"].update(uncovered=3),
        "service engine": lambda r: r["run"]["services"].update(engine=1),
        "aborted": lambda r: r["run"].update(aborted="nothing moved"),
    }
    for words, breaking in breaks.items():
        result = copy.deepcopy(held)
        breaking(result)
        broken = broken_invariants(result)
        assert exit_status(result) == 1 and len(broken) == 1 and words in broken[0], broken
