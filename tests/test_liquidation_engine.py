"""The engine's liquidation (``Liquidate``), scenario by scenario, figures worked by hand.

The market ``LIQ`` is ``TEST`` of tests/test_engine.py (1 USDT tick, 1-unit lot, money in
cents, 10x up to 10,000 USDT at 1 % maintenance, then 5x up to 100,000 at 5 % with cum 400)
plus a 1 % liquidation clearance fee and no price band. ``BANDED`` is the same with a 5 % band.

The standard long: account 1 deposits 101 USDT and buys 10 at 100 at 10x from account 2, paying
0.50 taker fee, so its wallet is 100.50. Its bankruptcy price is ``100 − 100.50/10 = 89.95``,
rounded up (the way a long reaches it first) to 90. At a mark of 90 its margin balance is
``100.50 − 100 = 0.50`` against 9.00 maintenance: due.

Every command is checked by ``run``: all balances (insurance and fees included) sum to zero
with the outside world, and the positions of each market net to zero.
"""

import msgspec
import pytest
from test_engine import CAP, OTHER, USD, bal, reasons, rejections, run
from test_engine import order as any_order

from exchange.engine import Engine, MarginLevel
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
    Deleveraged,
    EngineEvent,
    Liquidation,
    LiquidationStep,
    MarketEvent,
    Transfer,
    TransferReason,
)
from exchange.events import Cancelled, Trade
from exchange.ledger import FEES, INSURANCE, isolated_wallet, wallet
from exchange.market import LeverageBracket, MarketSpec
from exchange.orders import Side
from exchange.units import RATE_ONE

LIQ = MarketSpec(
    symbol="LIQ",
    tick_size="1",
    lot_size="1",
    settle_decimals=2,
    maker_fee=RATE_ONE * 2 // 10_000,
    taker_fee=RATE_ONE * 5 // 10_000,
    liquidation_fee=RATE_ONE // 100,
    leverage_brackets=(
        LeverageBracket(10_000 * USD, 10, RATE_ONE // 100, 0),
        LeverageBracket(100_000 * USD, 5, RATE_ONE * 5 // 100, 400 * USD),
    ),
)
BANDED = msgspec.structs.replace(
    LIQ, symbol="BANDED", price_band_up=RATE_ONE * 5 // 100, price_band_down=RATE_ONE * 5 // 100
)
MAKER = 3


def order(
    account: int, side: Side, qty: int, price: int, *, order_id: int, symbol: str = "LIQ"
) -> OrderCommand:
    return any_order(account, side, qty, price, order_id=order_id, symbol=symbol)


def engine(*deposits: tuple[int, int]) -> Engine:
    e = Engine([LIQ, BANDED, OTHER], faucet_cap=CAP, default_leverage=10)
    for account, amount in deposits:
        assert not rejections(e.process(Deposit(account=account, amount=amount)))
    return e


def standard_long(fund: int = 0, symbol: str = "LIQ") -> Engine:
    e = engine((1, 101 * USD), (2, 10_000 * USD), (MAKER, 100_000 * USD), (4, 10_000 * USD))
    if fund:
        run(e, FundInsurance(amount=fund))
    run(
        e,
        order(2, Side.SELL, 10, 100, order_id=1, symbol=symbol),
        order(1, Side.BUY, 10, 100, order_id=2, symbol=symbol),
    )
    assert bal(e, wallet(1)) == 10_050
    return e


def steps(events: list[EngineEvent]) -> list[Liquidation]:
    return [e for e in events if isinstance(e, Liquidation)]


def transfers(events: list[EngineEvent], reason: TransferReason) -> list[Transfer]:
    return [e for e in events if isinstance(e, Transfer) and e.reason is reason]


def size(e: Engine, account: int, symbol: str = "LIQ") -> int:
    return e.accounts[account][symbol].size


def bid(price: int, qty: int = 10, order_id: int = 50, symbol: str = "LIQ") -> EngineCommand:
    return order(MAKER, Side.BUY, qty, price, order_id=order_id, symbol=symbol)


def test_a_healthy_account_is_not_liquidated_and_nothing_changes() -> None:
    e = standard_long()
    run(e, MarkPrice(symbol="LIQ", price=91), bid(91))
    before = e.state_hash()
    for target in ("", "LIQ", "OTHER"):
        assert reasons(run(e, Liquidate(account=1, symbol=target))) == ["not_liquidatable"]
    assert reasons(run(e, Liquidate(account=99))) == ["not_liquidatable"]
    assert reasons(run(e, Liquidate(account=1, symbol="NOPE"))) == ["unknown_market"]
    assert e.state_hash() == before


def test_full_close_at_bankruptcy_sends_what_is_left_to_the_fund_as_the_fee() -> None:
    e = standard_long()
    run(e, bid(90), MarkPrice(symbol="LIQ", price=90))
    assert e.margin_status(1)[0].level is MarginLevel.LIQUIDATION
    fees = bal(e, FEES)
    events = run(e, Liquidate(account=1))
    [step] = steps(events)
    assert step.step is LiquidationStep.FULL
    assert (step.size, step.filled, step.deleveraged) == (10, 10, 0)
    assert (step.bankruptcy_price, step.limit_price) == (90, 90)
    # realized −100 USDT of the 100.50: the 0.50 left is the clearance fee (1 % of 900 capped)
    assert (step.fee, step.insurance, step.uncovered) == (50, 50, 0)
    assert bal(e, wallet(1)) == 0
    assert bal(e, INSURANCE) == 50
    assert size(e, 1) == 0
    trade = next(m.event for m in events if isinstance(m, MarketEvent) and type(m.event) is Trade)
    assert (trade.taker_fee, trade.maker_fee) == (0, 18)  # no taker fee; the maker pays 0.02 %
    assert bal(e, FEES) == fees + 18
    assert reasons(run(e, Liquidate(account=1))) == ["not_liquidatable"]  # a repeat does nothing


def test_a_fill_better_than_bankruptcy_pays_the_fee_and_the_surplus_to_the_fund() -> None:
    e = standard_long()
    run(e, bid(95), MarkPrice(symbol="LIQ", price=90))
    events = run(e, Liquidate(account=1))
    [step] = steps(events)
    # sold at 95: realized −50, so 50.50 left: 9.50 fee (1 % of 950) and 41.00 surplus
    assert (step.fee, step.insurance) == (950, 5_050)
    [surplus] = transfers(events, TransferReason.LIQUIDATION_SURPLUS)
    assert surplus.amount == 4_100
    assert bal(e, wallet(1)) == 0


def test_open_orders_are_cancelled_first() -> None:
    e = standard_long()
    run(e, order(1, Side.SELL, 1, 200, order_id=8))  # a closing order: it holds its fee
    run(e, bid(90), MarkPrice(symbol="LIQ", price=90))
    events = run(e, Liquidate(account=1))
    cancelled = [
        m.event.order_id
        for m in events
        if isinstance(m, MarketEvent) and isinstance(m.event, Cancelled)
    ]
    assert cancelled == [8]
    assert e.markets["LIQ"].book.open_orders(1) == []
    assert size(e, 1) == 0


@pytest.mark.parametrize("book", ["empty", "one-sided"])
def test_with_no_bids_the_position_goes_to_adl_at_the_bankruptcy_price(book: str) -> None:
    e = standard_long()
    if book == "one-sided":
        run(e, order(MAKER, Side.SELL, 10, 95, order_id=50))
    run(e, MarkPrice(symbol="LIQ", price=90))
    events = run(e, Liquidate(account=1))
    [step] = steps(events)
    assert (step.filled, step.deleveraged) == (0, 10)
    assert [
        (d.counterparty, d.qty, d.price, d.rank) for d in events if isinstance(d, Deleveraged)
    ] == [(2, 10, 90, 1)]
    assert (size(e, 1), size(e, 2)) == (0, 0)
    assert bal(e, wallet(2)) == 10_000 * USD - 20 + 100 * USD  # its maker fee, then +100 PnL
    # closed at 90, 0.50 left; no clearance fee on ADL lots, so all of it is surplus
    assert (step.fee, step.insurance, step.uncovered) == (0, 50, 0)
    assert bal(e, wallet(1)) == 0


def test_a_gap_past_bankruptcy_is_paid_by_the_fund_as_far_as_it_reaches() -> None:
    e = standard_long(fund=1_000 * USD)
    run(e, bid(85), MarkPrice(symbol="LIQ", price=80))
    events = run(e, Liquidate(account=1))
    [step] = steps(events)
    # the fund can pay 100 ticks a lot, so the limit goes to the floor of 1 and the bid at 85
    # fills: realized −150 of 100.50, 49.50 short, paid by the fund
    assert (step.bankruptcy_price, step.limit_price, step.filled) == (90, 1, 10)
    [shortfall] = transfers(events, TransferReason.LIQUIDATION_SHORTFALL)
    assert shortfall.amount == 4_950
    assert (step.fee, step.insurance, step.uncovered) == (0, -4_950, 0)
    assert bal(e, wallet(1)) == 0
    assert bal(e, INSURANCE) == 1_000 * USD - 4_950


def test_a_gap_past_bankruptcy_with_the_fund_at_exactly_zero_goes_to_adl() -> None:
    e = standard_long()
    assert bal(e, INSURANCE) == 0
    run(e, bid(85), MarkPrice(symbol="LIQ", price=80))
    events = run(e, Liquidate(account=1))
    [step] = steps(events)
    assert (step.limit_price, step.filled, step.deleveraged) == (90, 0, 10)
    assert not transfers(events, TransferReason.LIQUIDATION_SHORTFALL)
    assert (step.insurance, step.uncovered) == (50, 0)
    assert bal(e, wallet(1)) == 0
    assert e.markets["LIQ"].book.bids.best == 85  # the bid below bankruptcy was not touched


def test_the_limit_stays_inside_the_price_band() -> None:
    e = standard_long(fund=1_000 * USD, symbol="BANDED")
    run(e, bid(85, symbol="BANDED"), bid(70, order_id=51, symbol="BANDED"))
    run(e, MarkPrice(symbol="BANDED", price=80))
    events = run(e, Liquidate(account=1))
    [step] = steps(events)
    assert step.limit_price == 76  # 80 × 0.95, the band's floor, not the fund's reach of 1
    assert (step.filled, step.deleveraged) == (10, 0)
    assert e.markets["BANDED"].book.bids.best == 70


def test_adl_takes_the_highest_ranked_opposite_position_first() -> None:
    e = engine((1, 101 * USD), (2, 10_000 * USD), (4, 150 * USD))
    run(
        e,
        order(2, Side.SELL, 6, 100, order_id=1),
        order(4, Side.SELL, 4, 100, order_id=2),
        order(1, Side.BUY, 10, 100, order_id=3),
        MarkPrice(symbol="LIQ", price=90),
    )
    # both shorts gain 10 a lot; 4's is the higher profit on a thinner wallet: ranked first
    scores = dict(e.adl_scores("LIQ", long=False))
    assert scores[4] > scores[2]
    events = run(e, Liquidate(account=1))
    notices = [(d.counterparty, d.qty, d.rank) for d in events if isinstance(d, Deleveraged)]
    assert notices == [(4, 4, 1), (2, 6, 2)]
    assert (size(e, 2), size(e, 4)) == (0, 0)


def test_a_large_position_is_first_cut_to_the_next_lower_bracket() -> None:
    e = engine((1, 300_750), (2, 100_000 * USD), (MAKER, 100_000 * USD))
    run(
        e,
        SetLeverage(account=1, symbol="LIQ", leverage=5),
        SetLeverage(account=2, symbol="LIQ", leverage=5),
        order(2, Side.SELL, 150, 100, order_id=1),
        order(1, Side.BUY, 150, 100, order_id=2),  # 15,000 USDT: the 5 % bracket
        bid(81, qty=30),
        MarkPrice(symbol="LIQ", price=81),
    )
    # wallet 3,000 − 2,850 loss = 150 against 150 × 81 × 5 % − 400 = 207.50: due
    assert e.margin_status(1)[0].level is MarginLevel.LIQUIDATION
    events = run(e, Liquidate(account=1))
    [step] = steps(events)
    assert step.step is LiquidationStep.PARTIAL
    # keep 10,000 USDT // 81 = 123 lots; sell 27 at 81: fee 1 % of 2,187 = 21.87
    assert (step.size, step.filled, step.fee, step.insurance) == (150, 27, 2_187, 2_187)
    assert size(e, 1) == 123
    # left: 150 − 21.87 = 128.13 against 123 × 81 × 1 % = 99.63: no longer due, so it stops
    assert e.margin_status(1)[0].level is not MarginLevel.LIQUIDATION


def test_a_cross_account_closes_its_largest_position_first_until_it_is_safe_or_flat() -> None:
    e = engine((1, 121 * USD), (2, 10_000 * USD), (MAKER, 100_000 * USD))
    run(
        e,
        order(2, Side.SELL, 10, 100, order_id=1),
        order(1, Side.BUY, 10, 100, order_id=2),
        order(2, Side.SELL, 10, 20, order_id=3, symbol="OTHER"),
        order(1, Side.BUY, 10, 20, order_id=4, symbol="OTHER"),
        MarkPrice(symbol="OTHER", price=20),
        bid(88),
        order(MAKER, Side.BUY, 10, 20, order_id=5, symbol="OTHER"),
        MarkPrice(symbol="LIQ", price=88),
    )
    assert e.margin_status(1)[0].level is MarginLevel.LIQUIDATION
    events = run(e, Liquidate(account=1))
    assert [(s.symbol, s.step) for s in steps(events)] == [
        ("LIQ", LiquidationStep.FULL),
        ("OTHER", LiquidationStep.FULL),
    ]
    assert (size(e, 1), size(e, 1, "OTHER")) == (0, 0)
    assert bal(e, wallet(1)) == 0
    assert all(s.uncovered == 0 for s in steps(events))


def test_an_isolated_position_is_liquidated_alone_and_the_cross_wallet_keeps_its_money() -> None:
    e = engine((1, 10_000 * USD), (2, 10_000 * USD), (MAKER, 100_000 * USD))
    run(
        e,
        SetMarginMode(account=1, symbol="LIQ", mode=MarginMode.ISOLATED),
        order(2, Side.SELL, 10, 100, order_id=1),
        order(1, Side.BUY, 10, 100, order_id=2),  # 100 USDT into the isolated wallet
        bid(92),
        MarkPrice(symbol="LIQ", price=90),
    )
    cross = bal(e, wallet(1))
    assert cross == 10_000 * USD - 50 - 100 * USD
    assert [s.symbol for s in e.margin_status(1)] == ["LIQ"]
    assert reasons(run(e, Liquidate(account=1))) == ["not_liquidatable"]
    events = run(e, Liquidate(account=1, symbol="LIQ"))
    [step] = steps(events)
    # sold at 92: 20 left of the isolated 100; fee 9.20, surplus 10.80; cross untouched
    assert (step.mode, step.fee, step.insurance) == (MarginMode.ISOLATED, 920, 2_000)
    assert bal(e, wallet(1)) == cross
    assert bal(e, isolated_wallet(1, "LIQ")) == 0


def test_liquidation_survives_a_snapshot_and_replays_to_the_same_state() -> None:
    commands: list[EngineCommand] = [
        Deposit(account=1, amount=101 * USD),
        Deposit(account=2, amount=10_000 * USD),
        Deposit(account=MAKER, amount=100_000 * USD),
        order(2, Side.SELL, 10, 100, order_id=1),
        order(1, Side.BUY, 10, 100, order_id=2),
        bid(85, qty=4),
        MarkPrice(symbol="LIQ", price=86),
        Liquidate(account=1),
    ]
    first, second = engine(), engine()
    for cmd in commands:
        assert first.process(cmd) == second.process(cmd)
    assert first.state_hash() == second.state_hash()
    restored = Engine.restore([LIQ, BANDED, OTHER], first.snapshot(), faucet_cap=CAP)
    assert restored.state_hash() == first.state_hash()
