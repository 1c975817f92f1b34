"""The engine state machine, scenario by scenario, with every figure computed by hand.

The market ``TEST`` has a 1 USDT tick, a 1-unit lot and money in cents (multiplier 100: one
lot at one tick is 100 cents), fees of 0.02 % maker and 0.05 % taker, and two brackets: up to
10,000 USDT at 10x with 1 % maintenance, then up to 100,000 USDT at 5x with 5 % and cum 400.
"""

import pytest

from exchange.commands import AmendOrder, CancelOrder, PlaceOrder
from exchange.engine import FIRST_CREATED_ACCOUNT, Engine, MarginLevel, TrackedOrder
from exchange.engine_commands import (
    AdjustMargin,
    CreateAccount,
    Deposit,
    EngineCommand,
    MarginMode,
    MarkPrice,
    OrderCommand,
    SetLeverage,
    SetMarginMode,
    SettleFunding,
    Withdraw,
)
from exchange.engine_events import (
    AccountCreated,
    CommandError,
    CommandRejected,
    EngineEvent,
    FundingSettled,
    MarketEvent,
    PositionUpdate,
    Transfer,
    TransferReason,
)
from exchange.events import Rejected, Trade
from exchange.funding_schedule import FundingSchedule
from exchange.ledger import EXTERNAL, FEES, INSURANCE, clearing, isolated_wallet, wallet
from exchange.market import LeverageBracket, MarketSpec
from exchange.orders import OrderType, Side
from exchange.units import RATE_ONE

USD = 100  # cents per USDT
SPEC = MarketSpec(
    symbol="TEST",
    tick_size="1",
    lot_size="1",
    settle_decimals=2,
    maker_fee=RATE_ONE * 2 // 10_000,
    taker_fee=RATE_ONE * 5 // 10_000,
    leverage_brackets=(
        LeverageBracket(10_000 * USD, 10, RATE_ONE // 100, 0),
        LeverageBracket(100_000 * USD, 5, RATE_ONE * 5 // 100, 400 * USD),
    ),
)
OTHER = MarketSpec(
    symbol="OTHER",
    tick_size="1",
    lot_size="1",
    settle_decimals=2,
    leverage_brackets=(LeverageBracket(1_000_000 * USD, 10, RATE_ONE // 100, 0),),
)
CAP = 1_000_000 * USD


def engine(*deposits: tuple[int, int]) -> Engine:
    e = Engine([SPEC, OTHER], faucet_cap=CAP, default_leverage=10)
    for account, amount in deposits:
        assert not rejections(e.process(Deposit(account=account, amount=amount)))
    return e


def order(
    account: int,
    side: Side,
    qty: int,
    price: int | None = None,
    *,
    order_id: int,
    symbol: str = "TEST",
    **fields: object,
) -> OrderCommand:
    kind = OrderType.LIMIT if price is not None else OrderType.MARKET
    fields.setdefault("type", kind)
    place = PlaceOrder(
        order_id=order_id,
        account=account,
        side=side,
        qty=qty,
        price=price,
        **fields,  # type: ignore[arg-type]
    )
    return OrderCommand(symbol=symbol, order=place)


def rejections(events: list[EngineEvent]) -> list[object]:
    found: list[object] = [e for e in events if isinstance(e, CommandRejected)]
    found += [
        e.event for e in events if isinstance(e, MarketEvent) and isinstance(e.event, Rejected)
    ]
    return found


def run(e: Engine, *commands: EngineCommand) -> list[EngineEvent]:
    events: list[EngineEvent] = []
    for cmd in commands:
        events += e.process(cmd)
        check_books(e)
    return events


def check_books(e: Engine) -> None:
    """The ledger invariants every test re-checks after every command."""
    assert e.total_balance() == 0
    for symbol, market in e.markets.items():
        sizes = {a: acct.size for a, acct in e.accounts_in(symbol)}
        assert sum(sizes.values()) == 0
        for account_id, size in sizes.items():
            assert market.book.position(account_id) == size
        signed_entry = sum(
            acct.entry_notional if acct.size > 0 else -acct.entry_notional
            for _, acct in e.accounts_in(symbol)
        )
        assert e.ledger.balance(clearing(symbol)) == -signed_entry


def bal(e: Engine, address: str) -> int:
    return e.ledger.balance(address)


# --------------------------------------------------------------------------- money in and out


def test_deposit_withdraw_and_faucet_cap() -> None:
    e = engine((1, 500 * USD))
    assert bal(e, wallet(1)) == 500 * USD
    assert bal(e, EXTERNAL) == -500 * USD
    over = e.process(Deposit(account=1, amount=CAP - 500 * USD + 1))
    assert [r.reason for r in rejections(over)] == [CommandError.FAUCET_CAP]  # type: ignore[attr-defined]
    assert not rejections(e.process(Deposit(account=1, amount=CAP - 500 * USD)))
    assert bal(e, wallet(1)) == CAP
    for bad in (0, -5):
        events = e.process(Deposit(account=1, amount=bad))
        assert [r.reason for r in rejections(events)] == [CommandError.INVALID_AMOUNT]  # type: ignore[attr-defined]
    events = e.process(Withdraw(account=1, amount=CAP + 1))
    assert [r.reason for r in rejections(events)] == [CommandError.INSUFFICIENT_BALANCE]  # type: ignore[attr-defined]
    events = e.process(Withdraw(account=1, amount=CAP))
    assert events == [Transfer(wallet(1), EXTERNAL, CAP, TransferReason.WITHDRAWAL)]
    assert e.total_balance() == 0 and bal(e, EXTERNAL) == 0


def test_withdrawal_limited_by_margin_held_and_excludes_unrealized_profit() -> None:
    e = engine((1, 1_000 * USD), (2, 10_000 * USD))
    # 1 buys 50 @ 100 (5,000 USDT at 10x: 500 USDT margin) from 2's resting sell.
    run(e, order(2, Side.SELL, 50, 100, order_id=1), order(1, Side.BUY, 50, 100, order_id=2))
    fee = 5_000 * USD * 5 // 10_000  # taker 0.05 % = 2.50 USDT
    assert bal(e, wallet(1)) == 1_000 * USD - fee
    assert e.withdrawable(1) == 1_000 * USD - fee - 500 * USD
    run(e, MarkPrice(symbol="TEST", price=110))  # +500 USDT unrealized, not withdrawable
    assert e.available(1) == 1_000 * USD - fee - 500 * USD + 500 * USD
    assert e.withdrawable(1) == 1_000 * USD - fee - 500 * USD
    run(e, MarkPrice(symbol="TEST", price=95))  # −250 USDT unrealized: it is
    assert e.withdrawable(1) == 1_000 * USD - fee - 500 * USD - 250 * USD


# ---------------------------------------------------------------------------- positions, fees


def test_fills_average_entry_realize_on_reduce_and_flip_with_fees_on_both_sides() -> None:
    e = engine((1, 10_000 * USD), (2, 10_000 * USD))
    run(
        e,
        order(2, Side.SELL, 10, 100, order_id=1),
        order(1, Side.BUY, 10, 100, order_id=2),  # 1 long 10 @ 100
        order(2, Side.SELL, 10, 110, order_id=3),
        order(1, Side.BUY, 10, 110, order_id=4),  # 1 long 20, entry 2,100 USDT = avg 105
    )
    long = e.accounts[1]["TEST"]
    assert (long.size, long.entry_notional) == (20, 2_100 * USD)
    # Fees: taker 0.05 % of 1,000 and 1,100 USDT; maker 0.02 %.
    assert bal(e, FEES) == (50 + 55) + (20 + 22)
    # 1 sells 5 @ 120 to 2: realizes 5 × (120 − 105) = 75 USDT; entry keeps its average.
    events = run(e, order(2, Side.BUY, 5, 120, order_id=5), order(1, Side.SELL, 5, 120, order_id=6))
    assert (long.size, long.entry_notional) == (15, 1_575 * USD)
    update = [u for u in events if isinstance(u, PositionUpdate) and u.account == 1][-1]
    assert update.realized_pnl == 75 * USD
    assert Transfer(clearing("TEST"), wallet(1), 75 * USD, TransferReason.REALIZED_PNL) in events
    # 1 sells 25 @ 90: closes 15 (loss 15 × 15 = 225 USDT) and opens a short of 10 @ 90.
    events = run(e, order(2, Side.BUY, 25, 90, order_id=7), order(1, Side.SELL, 25, 90, order_id=8))
    assert (long.size, long.entry_notional) == (-10, 900 * USD)
    update = [u for u in events if isinstance(u, PositionUpdate) and u.account == 1][-1]
    assert update.realized_pnl == -225 * USD
    short = e.accounts[2]["TEST"]
    assert short.size == 10


def test_entry_notional_release_rounds_down_and_the_last_lot_takes_the_rest() -> None:
    e = engine((1, 10_000 * USD), (2, 10_000 * USD), (3, 10_000 * USD))
    events = run(
        e,
        order(2, Side.SELL, 1, 100, order_id=1),
        order(2, Side.SELL, 2, 101, order_id=2),
        order(1, Side.BUY, 3, 101, order_id=3),  # entry 302 USDT for 3 lots: 100.666…
    )
    acct = e.accounts[1]["TEST"]
    assert acct.entry_notional == 302 * USD
    events += run(
        e, order(3, Side.BUY, 1, 101, order_id=4), order(1, Side.SELL, 1, 101, order_id=5)
    )
    # released floor(30,200 × 1 / 3) = 10,066 cents; realized 10,100 − 10,066 = 34 cents
    assert acct.entry_notional == 30_200 - 10_066
    events += run(
        e, order(3, Side.BUY, 2, 101, order_id=6), order(1, Side.SELL, 2, 101, order_id=7)
    )
    assert (acct.size, acct.entry_notional) == (0, 0)
    realized = [u.realized_pnl for u in events if isinstance(u, PositionUpdate) and u.account == 1]
    assert realized == [0, 0, 34, 66]  # paid 302, received 303 USDT: exactly 1 USDT in all
    fees = [t.amount for t in events if isinstance(t, Transfer) and t.source == wallet(1)]
    # taker 0.05 % rounded up per fill: 5, 10.1 → 11, 5.05 → 6, 10.1 → 11 cents
    assert fees == [5, 11, 6, 11]
    assert bal(e, wallet(1)) == 10_000 * USD + 100 - sum(fees)


# -------------------------------------------------------------------------- pre-trade check


def reasons(events: list[EngineEvent]) -> list[str]:
    return [str(r.reason) for r in rejections(events)]  # type: ignore[attr-defined]


@pytest.mark.parametrize(("deposit", "accepted"), [(10_050, True), (10_049, False)])
def test_limit_order_costs_initial_margin_plus_fee_at_the_boundary(
    deposit: int, accepted: bool
) -> None:
    # buy 10 @ 100 = 1,000 USDT at 10x: 100 USDT margin + 0.50 USDT fee (0.05 %) = 10,050 cents
    e = engine((1, deposit))
    events = run(e, order(1, Side.BUY, 10, 100, order_id=1))
    assert reasons(events) == ([] if accepted else ["insufficient_margin"])
    assert e.available(1) == (0 if accepted else deposit)


@pytest.mark.parametrize(("deposit", "accepted"), [(14_548, True), (14_547, False)])
def test_open_loss_against_the_mark_is_part_of_the_cost(deposit: int, accepted: bool) -> None:
    # mark 100; sell 10 @ 95: margin 95 USDT + fee 0.475 + open loss 10 × (100 − 95) = 50 USDT
    e = engine((1, deposit))
    run(e, MarkPrice(symbol="TEST", price=100))
    events = run(e, order(1, Side.SELL, 10, 95, order_id=1))
    assert reasons(events) == ([] if accepted else ["insufficient_margin"])


def test_closing_orders_hold_only_their_fee_and_initial_margin_nets_across_sides() -> None:
    e = engine((1, 11_150), (2, 100_000 * USD))
    # 1 buys 10 @ 100 from 2: pays the 0.50 USDT taker fee and holds 100 USDT of margin
    run(e, order(2, Side.SELL, 10, 100, order_id=1), order(1, Side.BUY, 10, 100, order_id=2))
    spare = e.available(1)
    assert spare == 11_150 - 50 - 10_000
    # a sell of 10 closes: no initial margin, only its fee (0.05 % of 1,500 USDT = 75 cents)
    assert not reasons(run(e, order(1, Side.SELL, 10, 150, order_id=3)))
    assert e.available(1) == spare - 75
    # a further sell of 1 opens: 1/11 of the side's 165 USDT margin, + 0.825 fee: 15.83 USDT
    events = run(e, order(1, Side.SELL, 1, 150, order_id=4))
    assert reasons(events) == ["insufficient_margin"]
    # a buy of 1 @ 50 opens 5 USDT at 10x: the larger side's margin is now the buys' 500
    # cents (the sells close), plus both sides' fees, 0.05 % of 1,550 USDT = 77.5 cents
    assert not reasons(run(e, order(1, Side.BUY, 1, 50, order_id=5)))
    assert e.available(1) == spare - (500 + 78)


def test_market_order_is_costed_at_the_prices_it_would_take() -> None:
    book = [order(2, Side.SELL, 5, 100, order_id=1), order(2, Side.SELL, 5, 102, order_id=2)]
    # buy 8: 5 @ 100 + 3 @ 102 = 806 USDT: 80.60 margin + 0.403 fee = 8,100.3 → 8,101 cents
    for deposit, accepted in ((8_101, True), (8_100, False)):
        e = engine((1, deposit), (2, 100_000 * USD))
        run(e, *book)
        events = run(e, order(1, Side.BUY, 8, order_id=3))
        assert reasons(events) == ([] if accepted else ["insufficient_margin"])
        assert e.accounts[1]["TEST"].size == (8 if accepted else 0)
    # into an empty book nothing can fill, so nothing is needed; the order expires
    e = engine()
    events = run(e, order(1, Side.BUY, 8, order_id=1))
    assert not reasons(events)


def test_amend_is_checked_and_cancel_releases_the_margin() -> None:
    e = engine((1, 10_050))
    run(e, order(1, Side.BUY, 10, 100, order_id=1))
    assert e.available(1) == 0
    events = run(e, OrderCommand(symbol="TEST", order=AmendOrder(order_id=1, account=1, qty=11)))
    assert reasons(events) == ["insufficient_margin"]
    run(e, OrderCommand(symbol="TEST", order=AmendOrder(order_id=1, account=1, price=90, qty=5)))
    assert e.available(1) == 10_050 - (4_500 + 23)  # 450 USDT at 10x + 0.225 fee, rounded up
    run(e, OrderCommand(symbol="TEST", order=CancelOrder(order_id=1, account=1)))
    assert e.available(1) == 10_050
    assert e.markets["TEST"].orders == {}


def test_position_limit_of_the_leverage_bracket() -> None:
    e = engine((1, 100_000 * USD))
    # at 10x only the first bracket (≤ 10,000 USDT) is allowed: 101 lots @ 100 exceed it
    events = run(e, order(1, Side.BUY, 101, 100, order_id=1))
    assert reasons(events) == ["max_position"]
    assert not reasons(run(e, order(1, Side.BUY, 100, 100, order_id=2)))
    # leverage above the bracket for what the account holds in orders
    assert reasons(run(e, order(1, Side.BUY, 1, 100, order_id=3))) == ["max_position"]
    assert reasons(run(e, SetLeverage(account=1, symbol="TEST", leverage=11))) == [
        "invalid_leverage"
    ]
    assert reasons(run(e, SetLeverage(account=1, symbol="TEST", leverage=0))) == [
        "invalid_leverage"
    ]
    assert not reasons(run(e, SetLeverage(account=1, symbol="TEST", leverage=5)))
    assert not reasons(run(e, order(1, Side.BUY, 101, 100, order_id=3)))
    assert reasons(run(e, SetLeverage(account=1, symbol="TEST", leverage=10))) == [
        "invalid_leverage"
    ]


def test_lowering_leverage_needs_the_margin_for_it() -> None:
    e = engine((1, 10_050))
    run(e, order(1, Side.BUY, 10, 100, order_id=1))
    assert reasons(run(e, SetLeverage(account=1, symbol="TEST", leverage=5))) == [
        "insufficient_margin"
    ]
    assert e.accounts[1]["TEST"].leverage == 10


def test_unknown_market_is_rejected_with_a_reason() -> None:
    e = engine((1, 100 * USD))
    events = run(e, order(1, Side.BUY, 1, 100, order_id=1, symbol="NOPE"))
    assert reasons(events) == ["unknown_market"]
    for cmd in (
        MarkPrice(symbol="NOPE", price=1),
        SetLeverage(account=1, symbol="NOPE", leverage=1),
        SettleFunding(symbol="NOPE", rate=1, funding_time=1),
    ):
        assert reasons(run(e, cmd)) == ["unknown_market"]


# --------------------------------------------------------------------------------- isolated


def test_isolated_margin_moves_in_on_open_can_be_adjusted_and_returns_on_close() -> None:
    e = engine((1, 1_000 * USD), (2, 100_000 * USD))
    iso = isolated_wallet(1, "TEST")
    assert not reasons(run(e, SetMarginMode(account=1, symbol="TEST", mode=MarginMode.ISOLATED)))
    run(e, order(2, Side.SELL, 10, 100, order_id=1), order(1, Side.BUY, 10, 100, order_id=2))
    assert bal(e, iso) == 100 * USD  # 1,000 USDT at 10x
    assert bal(e, wallet(1)) == 1_000 * USD - 100 * USD - 50  # margin moved, fee paid
    assert reasons(run(e, SetMarginMode(account=1, symbol="TEST", mode=MarginMode.CROSS))) == [
        "position_or_orders_open"
    ]
    assert not reasons(run(e, AdjustMargin(account=1, symbol="TEST", amount=50 * USD)))
    assert bal(e, iso) == 150 * USD
    run(e, MarkPrice(symbol="TEST", price=96))  # −40 USDT: excess 150 − 40 − 100 = 10 USDT
    events = run(e, AdjustMargin(account=1, symbol="TEST", amount=-(10 * USD + 1)))
    assert reasons(events) == ["unsafe_margin"]
    assert not reasons(run(e, AdjustMargin(account=1, symbol="TEST", amount=-10 * USD)))
    assert bal(e, iso) == 140 * USD
    status = e.margin_status(1)
    assert [s.symbol for s in status] == ["TEST"]
    # maintenance 1 % of 960 = 9.60 USDT over a balance of 140 − 40 = 100 USDT: 9.6 %
    assert status[0].ratio == RATE_ONE * 96 // 1000
    # close half at 110: +50 USDT into the isolated wallet, then half of it released
    run(e, order(2, Side.BUY, 5, 110, order_id=3), order(1, Side.SELL, 5, 110, order_id=4))
    assert bal(e, iso) == (140 + 50) * USD // 2
    run(e, order(2, Side.BUY, 5, 110, order_id=5), order(1, Side.SELL, 5, 110, order_id=6))
    assert bal(e, iso) == 0
    assert e.accounts[1]["TEST"].size == 0
    assert not reasons(run(e, SetMarginMode(account=1, symbol="TEST", mode=MarginMode.CROSS)))


def test_adjusting_margin_needs_an_isolated_position() -> None:
    e = engine((1, 1_000 * USD))
    assert reasons(run(e, AdjustMargin(account=1, symbol="TEST", amount=1))) == ["not_isolated"]
    run(e, SetMarginMode(account=1, symbol="TEST", mode=MarginMode.ISOLATED))
    assert reasons(run(e, AdjustMargin(account=1, symbol="TEST", amount=1))) == ["no_position"]


# --------------------------------------------------------------------------------- funding


def funded_pair() -> Engine:
    e = engine((1, 10_000 * USD), (2, 10_000 * USD))
    run(e, order(2, Side.SELL, 10, 100, order_id=1), order(1, Side.BUY, 10, 100, order_id=2))
    run(e, MarkPrice(symbol="TEST", price=100))
    return e


def test_funding_longs_pay_shorts_exactly_once() -> None:
    e = funded_pair()
    before = bal(e, wallet(1)), bal(e, wallet(2))
    # 0.01 %: 10 × 100 USDT × 0.0001 = 0.10 USDT
    events = run(e, SettleFunding(symbol="TEST", rate=RATE_ONE // 10_000, funding_time=8))
    assert (bal(e, wallet(1)), bal(e, wallet(2))) == (before[0] - 10, before[1] + 10)
    assert events[-1] == FundingSettled("TEST", 8, RATE_ONE // 10_000, 100, 2, 0)
    for again in (8, 7):
        events = run(e, SettleFunding(symbol="TEST", rate=RATE_ONE, funding_time=again))
        assert reasons(events) == ["duplicate_funding"]
    assert (bal(e, wallet(1)), bal(e, wallet(2))) == (before[0] - 10, before[1] + 10)
    # negative rate: shorts pay longs
    run(e, SettleFunding(symbol="TEST", rate=-RATE_ONE // 10_000, funding_time=16))
    assert (bal(e, wallet(1)), bal(e, wallet(2))) == before


def test_funding_rounding_remainder_goes_to_the_insurance_fund() -> None:
    e = funded_pair()
    # 3e-8 of 1,000 USDT is 0.003 cents: the payer pays 1 cent, the receiver gets 0
    events = run(e, SettleFunding(symbol="TEST", rate=3, funding_time=1))
    assert bal(e, INSURANCE) == 1
    assert events[-1] == FundingSettled("TEST", 1, 3, 100, 2, 1)


def test_funding_with_no_positions_or_no_mark() -> None:
    e = engine()
    assert reasons(run(e, SettleFunding(symbol="TEST", rate=1, funding_time=1))) == [
        "no_mark_price"
    ]
    run(e, MarkPrice(symbol="TEST", price=100))
    events = run(e, SettleFunding(symbol="TEST", rate=RATE_ONE // 100, funding_time=1))
    assert events == [FundingSettled("TEST", 1, RATE_ONE // 100, 100, 0, 0)]


def test_funding_of_an_isolated_position_goes_to_its_wallet() -> None:
    e = engine((1, 10_000 * USD), (2, 10_000 * USD))
    run(e, SetMarginMode(account=2, symbol="TEST", mode=MarginMode.ISOLATED))
    run(e, order(2, Side.SELL, 10, 100, order_id=1), order(1, Side.BUY, 10, 100, order_id=2))
    run(e, MarkPrice(symbol="TEST", price=100))
    iso = bal(e, isolated_wallet(2, "TEST"))
    run(e, SettleFunding(symbol="TEST", rate=RATE_ONE // 10_000, funding_time=1))
    assert bal(e, isolated_wallet(2, "TEST")) == iso + 10


MINUTE = 60_000


def scheduled_pair() -> Engine:
    """``funded_pair`` with a funding boundary every minute, at event time 10 min + 30 s."""
    e = Engine(
        [SPEC, OTHER],
        faucet_cap=CAP,
        default_leverage=10,
        funding_schedules={"TEST": FundingSchedule(interval_ms=MINUTE)},
    )
    e.advance_time(10 * MINUTE + 30_000)
    for account in (1, 2, 3):
        run(e, Deposit(account=account, amount=10_000 * USD))
    run(e, order(2, Side.SELL, 10, 100, order_id=1), order(1, Side.BUY, 10, 100, order_id=2))
    run(e, MarkPrice(symbol="TEST", price=100))
    return e


def test_funding_pays_on_the_positions_held_at_the_boundary() -> None:
    """Account 1 closes its long to account 3 after the boundary, before the settlement: 1
    still pays for the boundary, 3 (who bought after it) pays nothing; the mark is the one
    in force at the boundary, not the later one."""
    e = scheduled_pair()
    e.advance_time(11 * MINUTE)  # the boundary: positions and mark recorded
    run(e, MarkPrice(symbol="TEST", price=150))
    run(e, order(1, Side.SELL, 10, 150, order_id=3), order(3, Side.BUY, 10, 150, order_id=4))
    assert e.accounts[1]["TEST"].size == 0 and e.accounts[3]["TEST"].size == 10
    before = {a: bal(e, wallet(a)) for a in (1, 2, 3)}
    events = run(e, SettleFunding(symbol="TEST", rate=RATE_ONE // 10_000, funding_time=11 * MINUTE))
    assert events[-1] == FundingSettled("TEST", 11 * MINUTE, RATE_ONE // 10_000, 100, 2, 0)
    after = {a: bal(e, wallet(a)) for a in (1, 2, 3)}
    assert after == {1: before[1] - 10, 2: before[2] + 10, 3: before[3]}


def test_funding_of_an_unrecorded_boundary_uses_the_positions_of_now() -> None:
    e = scheduled_pair()
    e.advance_time(11 * MINUTE + 1)
    events = run(e, SettleFunding(symbol="TEST", rate=RATE_ONE // 10_000, funding_time=5))
    assert events[-1] == FundingSettled("TEST", 5, RATE_ONE // 10_000, 100, 2, 0)
    # the recorded boundary is still due, and later than 5
    events = run(e, SettleFunding(symbol="TEST", rate=RATE_ONE // 10_000, funding_time=11 * MINUTE))
    assert events[-1].positions == 2  # type: ignore[union-attr]


def test_time_never_goes_back_and_the_first_time_crosses_nothing() -> None:
    e = scheduled_pair()
    assert e.markets["TEST"].roll is None  # 10:30 was the first time: no boundary crossed
    e.advance_time(12 * MINUTE + 5)  # 11:00 and 12:00 crossed in one jump: the latest kept
    assert e.markets["TEST"].roll is not None and e.markets["TEST"].roll.boundary == 12 * MINUTE
    e.advance_time(MINUTE)
    assert e.time == 12 * MINUTE + 5
    restored = Engine.restore(
        [SPEC, OTHER],
        e.snapshot(),
        faucet_cap=CAP,
        default_leverage=10,
        funding_schedules={"TEST": FundingSchedule(interval_ms=MINUTE)},
    )
    assert restored.state_hash() == e.state_hash()
    assert restored.markets["TEST"].roll == e.markets["TEST"].roll


# ------------------------------------------------------------------------- margin levels


def test_margin_call_and_liquidation_levels_follow_the_liquidation_price() -> None:
    e = engine((1, 650 * USD), (2, 100_000 * USD), (3, 100_000 * USD))
    run(
        e,
        order(2, Side.SELL, 50, 100, order_id=1),
        order(1, Side.BUY, 50, 100, order_id=2),  # 5,000 USDT long at 10x, 500 USDT margin
        order(3, Side.SELL, 10, 20, order_id=3, symbol="OTHER"),
        order(1, Side.BUY, 10, 20, order_id=4, symbol="OTHER"),  # a second cross position
        MarkPrice(symbol="TEST", price=100),
        MarkPrice(symbol="OTHER", price=20),
    )
    risk = e.position_risk(1, "TEST")
    liq = risk.liquidation_price
    assert liq is not None
    assert e.margin_status(1)[0].level is MarginLevel.SAFE
    run(e, MarkPrice(symbol="TEST", price=liq + 1))
    assert e.margin_status(1)[0].level is not MarginLevel.LIQUIDATION
    run(e, MarkPrice(symbol="TEST", price=liq - 1))
    status = e.margin_status(1)[0]
    assert status.level is MarginLevel.LIQUIDATION
    assert status.symbol == ""
    # the warning level (80 %) is crossed on the way down
    levels = []
    for price in range(100, liq - 2, -1):
        run(e, MarkPrice(symbol="TEST", price=price))
        levels.append(e.margin_status(1)[0].level)
    assert levels.index(MarginLevel.WARNING) < levels.index(MarginLevel.LIQUIDATION)
    assert levels == sorted(
        levels, key=[MarginLevel.SAFE, MarginLevel.WARNING, MarginLevel.LIQUIDATION].index
    )
    # bankruptcy: margin balance zero
    bankrupt = e.position_risk(1, "TEST").bankruptcy_price
    assert bankrupt is not None and bankrupt <= liq  # both round up on a 1 USDT tick


def test_snapshot_restore_gives_the_same_hash_and_behaviour() -> None:
    e = funded_pair()
    run(e, order(1, Side.BUY, 3, 95, order_id=10), order(2, Side.SELL, 2, 105, order_id=11))
    state = e.snapshot()
    import msgspec

    from exchange.engine import EngineState

    wire = msgspec.msgpack.encode(state)
    restored = Engine.restore(
        [SPEC, OTHER],
        msgspec.msgpack.decode(wire, type=EngineState),
        faucet_cap=CAP,
        default_leverage=10,
    )
    assert restored.state_hash() == e.state_hash()
    tail = [order(1, Side.SELL, 5, 95, order_id=12), MarkPrice(symbol="TEST", price=97)]
    assert [e.process(c) for c in tail] == [restored.process(c) for c in tail]
    assert restored.state_hash() == e.state_hash()
    assert isinstance(restored.markets["TEST"].orders[11], TrackedOrder)


def test_trade_events_carry_fees_that_the_ledger_moves() -> None:
    e = engine((1, 10_000 * USD), (2, 10_000 * USD))
    events = run(
        e, order(2, Side.SELL, 10, 100, order_id=1), order(1, Side.BUY, 10, 100, order_id=2)
    )
    trade = next(
        m.event for m in events if isinstance(m, MarketEvent) and isinstance(m.event, Trade)
    )
    assert (trade.taker_fee, trade.maker_fee) == (50, 20)
    assert bal(e, FEES) == 70


# ------------------------------------------------ accounts by key, order ids by the engine


def key_hash(n: int) -> str:
    return f"{n:064x}"


def test_accounts_are_numbered_by_the_engine_and_a_key_registers_once() -> None:
    e = engine()
    first = e.process(CreateAccount(key_hash=key_hash(1)))
    second = e.process(CreateAccount(key_hash=key_hash(2)))
    assert first == [AccountCreated(FIRST_CREATED_ACCOUNT, key_hash(1))]
    assert second == [AccountCreated(FIRST_CREATED_ACCOUNT + 1, key_hash(2))]
    again = e.process(CreateAccount(key_hash=key_hash(1)))
    assert [r.reason for r in rejections(again)] == [CommandError.DUPLICATE_KEY]
    for bad in ("", "ab", key_hash(3).upper().replace("0", "G"), key_hash(3) + "0"):
        rejected = e.process(CreateAccount(key_hash=bad))
        assert [r.reason for r in rejections(rejected)] == [CommandError.INVALID_KEY]
    assert e.keys == {key_hash(1): FIRST_CREATED_ACCOUNT, key_hash(2): FIRST_CREATED_ACCOUNT + 1}


def test_order_id_zero_gets_the_next_free_id_skipping_ids_clients_chose() -> None:
    e = engine((1, 10_000 * USD))
    e.process(order(1, Side.BUY, 1, 90, order_id=2))
    ids = []
    for _ in range(3):
        events = e.process(order(1, Side.BUY, 1, 90, order_id=0))
        accepted = [m.event for m in events if isinstance(m, MarketEvent)]
        ids.append(accepted[0].order_id)
    assert ids == [1, 3, 4]
    assert sorted(e.markets["TEST"].book.open_orders(1)) == [1, 2, 3, 4]


def test_registry_and_counters_survive_a_snapshot() -> None:
    e = engine((1, 10_000 * USD))
    e.process(CreateAccount(key_hash=key_hash(7)))
    e.process(order(1, Side.BUY, 1, 90, order_id=0))
    restored = Engine.restore([SPEC, OTHER], e.snapshot(), faucet_cap=CAP, default_leverage=10)
    assert restored.state_hash() == e.state_hash()
    for twin in (e, restored):
        created = twin.process(CreateAccount(key_hash=key_hash(8)))
        placed = twin.process(order(1, Side.BUY, 1, 90, order_id=0))
        assert created == [AccountCreated(FIRST_CREATED_ACCOUNT + 1, key_hash(8))]
        assert next(m.event.order_id for m in placed if isinstance(m, MarketEvent)) == 2
