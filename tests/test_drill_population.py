"""The drill's population: drawn from its seed alone, with the shares, leverages and sizes the
scenario asks for, each trader able to pay for its position, and opened against the house for
exactly what the traders take. Also the maker's ladder and flow."""

from decimal import Decimal

from exchange.commands import CancelAll, PlaceOrder
from exchange.default_markets import BTCUSDT
from exchange.engine_commands import (
    AdjustMargin,
    Deposit,
    FundInsurance,
    OrderCommand,
    SetMarginMode,
)
from exchange.orders import Side, TimeInForce
from exchange.units import ceil_div
from load.drill.liquidity import flow_order, ladder
from load.drill.population import (
    HOUSE,
    MAKER,
    TAKER,
    Trader,
    draw_population,
    setup_commands,
)
from load.drill.scenario import Liquidity, Population

PRICE = 600_000  # 60,000.0 USDT in ticks
POPULATION = Population(
    accounts=2_000,
    leverage={5: 1, 20: 2, 100: 1},
    size_min=Decimal("0.002"),
    size_max=Decimal("0.05"),
    long_pct=Decimal(70),
    isolated_pct=Decimal(25),
    buffer_pct_max=Decimal(50),
)


def test_a_seed_draws_the_same_population_every_time() -> None:
    first = draw_population(POPULATION, BTCUSDT, PRICE, seed=11)
    assert first == draw_population(POPULATION, BTCUSDT, PRICE, seed=11)
    assert first != draw_population(POPULATION, BTCUSDT, PRICE, seed=12)
    # Pinned: a change of the drawing would change every drill's population.
    assert first[0] == Trader(
        1, False, 30, 100, False, 2_728_800_000, 2_728_800_000 - 1_800_000_000 - 2 * 90_000_000
    )
    assert first[-1].account == 2_000 and sum(t.lots for t in first) == 51_200


def test_the_population_has_the_shares_leverages_and_sizes_asked_for() -> None:
    traders = draw_population(POPULATION, BTCUSDT, PRICE, seed=5)
    assert {t.leverage for t in traders} == {5, 20, 100}
    longs = sum(t.long for t in traders) / len(traders)
    isolated = sum(t.isolated for t in traders) / len(traders)
    twenties = sum(t.leverage == 20 for t in traders) / len(traders)
    assert 0.66 < longs < 0.74 and 0.21 < isolated < 0.29 and 0.46 < twenties < 0.54
    assert all(2 <= t.lots <= 50 for t in traders)
    for trader in traders:
        notional = trader.lots * PRICE * BTCUSDT.multiplier
        assert notional >= BTCUSDT.min_notional
        fee = ceil_div(notional * BTCUSDT.taker_fee, 100_000_000)
        margin = ceil_div(notional, trader.leverage)
        assert margin + 2 * fee <= trader.deposit <= margin * 3 // 2 + 2 * fee


def test_the_setup_opens_every_position_against_the_house() -> None:
    traders = draw_population(POPULATION, BTCUSDT, PRICE, seed=5)
    commands = setup_commands(traders, BTCUSDT, PRICE, insurance_fund=123)
    deposits = [c for c in commands if isinstance(c, Deposit)]
    assert [d.account for d in deposits] == [HOUSE, *range(1, 2_001)]
    modes = [c.account for c in commands if isinstance(c, SetMarginMode)]
    assert modes == [t.account for t in traders if t.isolated]
    orders = [c.order for c in commands if isinstance(c, OrderCommand)]
    places = [o for o in orders if isinstance(o, PlaceOrder)]
    house = [o for o in places if o.account == HOUSE]
    assert all(o.tif is TimeInForce.GTC and o.price == PRICE for o in house)
    sold = sum(o.qty for o in house if o.side is Side.SELL)
    bought = sum(o.qty for o in house if o.side is Side.BUY)
    assert sold == sum(t.lots for t in traders if t.long)
    assert bought == sum(t.lots for t in traders if not t.long)
    takers = [o for o in places if o.account != HOUSE]
    assert all(o.tif is TimeInForce.IOC and o.price == PRICE for o in takers)
    assert [o for o in orders if isinstance(o, CancelAll)] == [CancelAll(account=HOUSE)] * 2
    adjusted = [c for c in commands if isinstance(c, AdjustMargin)]
    assert [(a.account, a.amount) for a in adjusted] == [
        (t.account, t.buffer) for t in traders if t.isolated and t.buffer
    ]
    assert commands[-1] == FundInsurance(amount=123)


def test_the_ladder_thins_and_the_flow_takes_its_best_level() -> None:
    liquidity = Liquidity(levels=3, spread_bps=10, step_bps=10, level_size=Decimal("0.5"))
    full = ladder(BTCUSDT, liquidity, PRICE, 10_000)
    assert full[0] == OrderCommand(symbol="BTCUSDT", order=CancelAll(account=MAKER))
    quotes = [c.order for c in full[1:] if isinstance(c, OrderCommand)]
    assert all(isinstance(q, PlaceOrder) and q.tif is TimeInForce.GTX for q in quotes)
    bids = sorted(q.price or 0 for q in quotes if isinstance(q, PlaceOrder) and q.side is Side.BUY)
    assert bids == [598_500, 599_100, 599_700]  # 5, 15 and 25 bps below, floored
    assert {q.qty for q in quotes if isinstance(q, PlaceOrder)} == {500}
    thin = ladder(BTCUSDT, liquidity, PRICE, 2_500)
    assert {
        c.order.qty
        for c in thin[1:]
        if isinstance(c, OrderCommand) and isinstance(c.order, PlaceOrder)
    } == {125}
    assert ladder(BTCUSDT, liquidity, PRICE, 0) == full[:1]  # nothing left to quote
    sell = flow_order(BTCUSDT, liquidity, PRICE, sell=True)
    assert isinstance(sell, OrderCommand) and isinstance(sell.order, PlaceOrder)
    assert (sell.order.account, sell.order.side, sell.order.price) == (TAKER, Side.SELL, 599_700)
    assert sell.order.qty == 2  # 100 USDT of minimum notional at 59,970: 0.002 BTC
