"""Margin, liquidation and funding against Binance's published examples, and their properties.

Vectors are from /work/shared/reference/perp-mechanics.md §9 (TV-…). Their decimals become
ticks, lots and minor units (USDT at 8 decimals) through a MarketSpec with the example's grid.
Where a published figure is a rounding of an exact value, our exact integer must lie within
half its rounding unit (the reference's own tolerance, §9); where our rounding is deliberately
conservative and Binance's is to nearest (liquidation prices), within one tick.
"""

from decimal import Decimal
from itertools import pairwise

import msgspec
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from exchange.margin import (
    bankruptcy_price,
    bracket_for,
    initial_margin,
    leverage_allowed,
    liquidation_price,
    maintenance_margin,
    margin_ratio,
    max_leverage,
    notional,
    split_funding,
    unrealized_pnl,
    validate_brackets,
)
from exchange.market import LeverageBracket, MarketSpec
from exchange.units import RATE_ONE, rate_from_str

USDT = 10**8
"""Minor units per USDT (MarketSpec's default settle_decimals = 8)."""

# The example's prices have two decimals and its sizes three: tick 0.01, lot 0.001.
BTC = MarketSpec(symbol="BTCUSDT", tick_size="0.01", lot_size="0.001").validate()
ETH = MarketSpec(symbol="ETHUSDT", tick_size="0.01", lot_size="0.001").validate()


def usdt(text: str) -> int:
    """An exact (possibly negative) USDT amount in minor units."""
    value = Decimal(text) * USDT
    assert value == value.to_integral_value(), text
    return int(value)


def table(rows: list[tuple[str, str, str, int]]) -> tuple[LeverageBracket, ...]:
    """Brackets from (cap USDT, MMR, cum USDT, max leverage) rows."""
    return tuple(
        LeverageBracket(usdt(cap), leverage, rate_from_str(rate), usdt(cum))
        for cap, rate, cum, leverage in rows
    )


# §3.1, the historic BTCUSDT table. The reference gives no max leverage; floor(1 / (2·MMR))
# is used: 125, 100, 50, 20, 10, 5, 4, 3, 2, 1, Binance's 2021 BTCUSDT values as far as we know.
BTC_BRACKETS = table(
    [
        ("50000", "0.004", "0", 125),
        ("250000", "0.005", "50", 100),
        ("1000000", "0.01", "1300", 50),
        ("5000000", "0.025", "16300", 20),
        ("20000000", "0.05", "141300", 10),
        ("50000000", "0.10", "1141300", 5),
        ("100000000", "0.125", "2391300", 4),
        ("200000000", "0.15", "4891300", 3),
        ("300000000", "0.25", "24891300", 2),
        ("500000000", "0.50", "99891300", 1),
    ]
)

# The reference gives only the ETH tier TV-B1 uses (MMR 10 %, cum 135,365). It is not the
# first tier, so the tiers below it are needed for the cum recursion to reach 135,365; these
# are ETHUSDT's 2021 tiers as far as we know them (not from the reference). The example only
# ever touches the 2M–5M tier.
ETH_BRACKETS = table(
    [
        ("10000", "0.005", "0", 100),
        ("100000", "0.0065", "15", 75),
        ("500000", "0.01", "365", 50),
        ("1000000", "0.02", "5365", 25),
        ("2000000", "0.05", "35365", 10),
        ("5000000", "0.10", "135365", 5),
        ("10000000", "0.125", "260365", 4),
        ("20000000", "0.15", "510365", 3),
        ("50000000", "0.25", "2510365", 2),
        ("100000000", "0.50", "15010365", 1),
    ]
)

# TV-B1 / TV-B2 / TV-B3: one cross account (one-way mode) holding both legs.
WALLET = usdt("1535443.01")
BTC_SIZE = BTC.qty_to_lots("109.488")
BTC_ENTRY = notional(BTC.price_to_ticks("32481.98"), BTC_SIZE, BTC.multiplier)
BTC_MARK = BTC.price_to_ticks("31967.27")
ETH_SIZE = ETH.qty_to_lots("3683.979")
ETH_ENTRY = notional(ETH.price_to_ticks("1456.84"), ETH_SIZE, ETH.multiplier)
ETH_MARK = ETH.price_to_ticks("1335.18")


def assert_near(ours: int, published: str, unit: str) -> None:
    """Ours (minor units) lies within half of the published figure's rounding unit."""
    assert 2 * abs(ours - usdt(published)) <= usdt(unit)


# --- Brackets (§3.1, TV-B7) -----------------------------------------------------------------


@pytest.mark.parametrize("brackets", [BTC_BRACKETS, ETH_BRACKETS])
def test_published_tables_satisfy_the_cum_recursion(brackets: tuple[LeverageBracket, ...]) -> None:
    assert validate_brackets(brackets) is brackets


def test_tv_b7_cum_values_and_tier_lookup() -> None:
    assert BTC_BRACKETS[2].maint_amount == usdt("1300")
    assert BTC_BRACKETS[4].maint_amount == usdt("141300")
    assert bracket_for(BTC_BRACKETS, usdt("264000")).maint_rate == rate_from_str("0.01")
    assert bracket_for(BTC_BRACKETS, usdt("500000")).maint_amount == usdt("1300")


@pytest.mark.parametrize(
    ("index", "change", "message"),
    [
        (3, {"maint_amount": usdt("16301")}, "cum"),
        (3, {"notional_cap": usdt("1000000")}, "cap"),
        (3, {"maint_rate": rate_from_str("0.009")}, "maintenance rate"),
        (3, {"max_leverage": 60}, "max leverage"),
        (0, {"max_leverage": 250}, "1 / max leverage"),
    ],
)
def test_inconsistent_tables_are_rejected(index: int, change: dict[str, int], message: str) -> None:
    rows = list(BTC_BRACKETS)
    rows[index] = msgspec.structs.replace(rows[index], **change)
    with pytest.raises(ValueError, match=message):
        validate_brackets(rows)


def test_a_market_needs_a_bracket() -> None:
    with pytest.raises(ValueError, match="at least one"):
        validate_brackets(())


def test_a_position_at_a_cap_keeps_the_lower_tier_and_above_the_last_cap_none() -> None:
    assert bracket_for(BTC_BRACKETS, usdt("50000")) is BTC_BRACKETS[0]
    assert bracket_for(BTC_BRACKETS, usdt("50000") + 1) is BTC_BRACKETS[1]
    assert max_leverage(BTC_BRACKETS, usdt("50000")) == 125
    assert max_leverage(BTC_BRACKETS, usdt("50000") + 1) == 100
    assert leverage_allowed(BTC_BRACKETS, usdt("250000"), 100)
    assert not leverage_allowed(BTC_BRACKETS, usdt("250000") + 1, 100)
    assert not leverage_allowed(BTC_BRACKETS, usdt("100"), 0)
    assert max_leverage(BTC_BRACKETS, usdt("500000000") + 1) == 0
    assert bracket_for(BTC_BRACKETS, usdt("900000000")) is BTC_BRACKETS[-1]


# --- Margin (§3.1, TV-B3, TV-B10) -------------------------------------------------------------


def test_tv_b10_impact_margin_notional_is_200_usdt_of_initial_margin() -> None:
    assert initial_margin(usdt("25000"), 125) == usdt("200")
    assert initial_margin(usdt("4000"), 20) == usdt("200")


def test_initial_margin_rounds_up_and_needs_leverage() -> None:
    assert initial_margin(10, 3) == 4
    with pytest.raises(ValueError):
        initial_margin(10, 0)


def test_tv_b3_notionals_pnl_and_maintenance_at_the_marks() -> None:
    btc_value = notional(BTC_MARK, BTC_SIZE, BTC.multiplier)
    eth_value = notional(ETH_MARK, ETH_SIZE, ETH.multiplier)
    assert_near(btc_value, "3500032.46", "0.01")
    assert_near(eth_value, "4918775.08", "0.01")
    assert bracket_for(BTC_BRACKETS, btc_value) is BTC_BRACKETS[3]  # 1M–5M: 2.5 %, cum 16,300
    assert bracket_for(ETH_BRACKETS, eth_value).maint_amount == usdt("135365")
    assert_near(unrealized_pnl(BTC_SIZE, BTC_ENTRY, BTC_MARK, BTC.multiplier), "-56354.57", "0.01")
    assert_near(unrealized_pnl(ETH_SIZE, ETH_ENTRY, ETH_MARK, ETH.multiplier), "-448192.89", "0.01")
    # Both products are whole minor units, so these are exact: 71,200.811444, which TV-B1
    # prints to 5 places and TV-B3 to 4, and 356,512.508122, which both print to 3.
    assert maintenance_margin(BTC_BRACKETS, btc_value) == usdt("71200.811444")
    assert maintenance_margin(ETH_BRACKETS, eth_value) == usdt("356512.508122")
    assert_near(maintenance_margin(BTC_BRACKETS, btc_value), "71200.81144", "0.00001")
    assert_near(maintenance_margin(BTC_BRACKETS, btc_value), "71200.8114", "0.0001")
    assert_near(maintenance_margin(ETH_BRACKETS, eth_value), "356512.508", "0.001")


def test_maintenance_margin_rounds_the_product_up() -> None:
    one_rate = LeverageBracket(notional_cap=10**9, max_leverage=1, maint_rate=3, maint_amount=0)
    assert maintenance_margin([one_rate], RATE_ONE // 3) == 1  # exact: 0.99999999


def test_margin_ratio_is_rounded_up_and_unbounded_without_balance() -> None:
    assert margin_ratio(1, 3) == 33_333_334
    assert margin_ratio(5, 5) == RATE_ONE
    assert margin_ratio(0, 5) == 0
    assert margin_ratio(5, 0) is None
    assert margin_ratio(5, -1) is None


# --- Liquidation price (§4.1, TV-B1, TV-B2) --------------------------------------------------


def test_tv_b1_cross_liquidation_price_of_the_eth_leg() -> None:
    price = liquidation_price(
        ETH_SIZE,
        ETH_ENTRY,
        WALLET,
        ETH_BRACKETS,
        ETH.multiplier,
        other_maintenance=usdt("71200.81144"),
        other_unrealized_pnl=usdt("-56354.57"),
    )
    # Exact 115,325.646… ticks; rounded up for a long: the published 1,153.26 exactly.
    assert price == ETH.price_to_ticks("1153.26")


def test_tv_b2_cross_liquidation_price_of_the_btc_leg() -> None:
    price = liquidation_price(
        BTC_SIZE,
        BTC_ENTRY,
        WALLET,
        BTC_BRACKETS,
        BTC.multiplier,
        other_maintenance=usdt("356512.508"),
        other_unrealized_pnl=usdt("-448192.89"),
    )
    # Exact 2,631,689.33 ticks: Binance rounds to nearest (26,316.89), we round a long's up.
    assert price == BTC.price_to_ticks("26316.90")
    assert price is not None and abs(price - BTC.price_to_ticks("26316.89")) <= 1


def test_tv_b1_b2_from_our_own_maintenance_and_pnl_of_the_other_leg() -> None:
    """The same example with TMM1 and UPNL1 computed exactly here instead of copied rounded."""
    legs = {
        "BTC": (BTC_SIZE, BTC_ENTRY, BTC_MARK, BTC_BRACKETS, BTC.multiplier),
        "ETH": (ETH_SIZE, ETH_ENTRY, ETH_MARK, ETH_BRACKETS, ETH.multiplier),
    }
    expected = {"BTC": BTC.price_to_ticks("26316.89"), "ETH": ETH.price_to_ticks("1153.26")}
    for name, (size, entry, _mark, brackets, multiplier) in legs.items():
        (o_size, o_entry, o_mark, o_brackets, o_mult) = legs["ETH" if name == "BTC" else "BTC"]
        price = liquidation_price(
            size,
            entry,
            WALLET,
            brackets,
            multiplier,
            other_maintenance=maintenance_margin(o_brackets, notional(o_mark, o_size, o_mult)),
            other_unrealized_pnl=unrealized_pnl(o_size, o_entry, o_mark, o_mult),
        )
        assert price is not None and abs(price - expected[name]) <= 1


def test_isolated_one_way_formula_by_hand() -> None:
    """§4.1 one-way: long LP = (Q·EP − WB − cum) / (Q·(1 − MMR)), short with the signs flipped.

    1 BTC at 10,000 with 1,000 USDT margin (10x), tier 1 (0.4 %, cum 0): long
    9,000 / 0.996 = 9,036.144…, short 11,000 / 1.004 = 10,956.175…
    """
    size, entry = BTC.qty_to_lots("1"), usdt("10000")
    margin = usdt("1000")
    long_lp = liquidation_price(size, entry, margin, BTC_BRACKETS, BTC.multiplier)
    short_lp = liquidation_price(-size, entry, margin, BTC_BRACKETS, BTC.multiplier)
    assert long_lp == BTC.price_to_ticks("9036.15")  # rounded up
    assert short_lp == BTC.price_to_ticks("10956.17")  # rounded down


def test_no_liquidation_price_when_flat_or_fully_collateralised() -> None:
    size, entry = BTC.qty_to_lots("1"), usdt("10000")
    assert liquidation_price(0, 0, usdt("5"), BTC_BRACKETS, BTC.multiplier) is None
    assert liquidation_price(size, entry, entry, BTC_BRACKETS, BTC.multiplier) is None
    # A short already under water at every price: every mark liquidates it.
    assert liquidation_price(-size, entry, -2 * entry, BTC_BRACKETS, BTC.multiplier) == 0


def test_the_liquidation_tier_is_the_one_at_the_liquidation_price() -> None:
    """§4.1's tier iteration: 30 BTC long at 40,000 (1.2M notional, tier 4: 2.5 %, cum 16,300).

    On 150,000 of margin, tier 4 gives (1,200,000 − 150,000 − 16,300) / (30 · 0.975) =
    35,340.17…, notional 1,060,205: still tier 4, so that is the price. On 250,000 of margin
    tier 4 gives 31,921.37…, notional 957,641: tier 3 (1 %, cum 1,300), which gives
    (1,200,000 − 250,000 − 1,300) / (30 · 0.99) = 31,942.76…, notional 958,283: consistent.
    """
    size, entry = BTC.qty_to_lots("30"), usdt("1200000")
    lp4 = liquidation_price(size, entry, usdt("150000"), BTC_BRACKETS, BTC.multiplier)
    lp3 = liquidation_price(size, entry, usdt("250000"), BTC_BRACKETS, BTC.multiplier)
    assert lp4 == BTC.price_to_ticks("35340.18")
    assert lp3 == BTC.price_to_ticks("31942.77")


# --- Bankruptcy price (§4.1, derived) --------------------------------------------------------


def test_bankruptcy_price_is_entry_less_one_over_leverage() -> None:
    """BP = EP·(1 ∓ 1/L) with the initial margin as wallet: 10x at 10,000 → 9,000 / 11,000."""
    size, entry = BTC.qty_to_lots("1"), usdt("10000")
    margin = initial_margin(entry, 10)
    assert bankruptcy_price(size, entry, margin, BTC.multiplier) == BTC.price_to_ticks("9000")
    assert bankruptcy_price(-size, entry, margin, BTC.multiplier) == BTC.price_to_ticks("11000")
    # 3 lots at 1,000 ticks on 1 minor unit of margin: long 999.9996… up, short 1000.0003… down.
    assert bankruptcy_price(3, 3 * 1000 * BTC.multiplier, 1, BTC.multiplier) == 1000
    assert bankruptcy_price(-3, 3 * 1000 * BTC.multiplier, 1, BTC.multiplier) == 1000
    assert bankruptcy_price(0, 0, 1, BTC.multiplier) is None
    assert bankruptcy_price(size, entry, entry, BTC.multiplier) is None
    assert bankruptcy_price(-size, entry, -entry, BTC.multiplier) == 0


def test_cross_bankruptcy_counts_the_other_positions_pnl() -> None:
    size, entry = BTC.qty_to_lots("1"), usdt("10000")
    bp = bankruptcy_price(
        size, entry, usdt("2000"), BTC.multiplier, other_unrealized_pnl=-usdt("1000")
    )
    assert bp == BTC.price_to_ticks("9000")


# --- Funding (§2.1) -------------------------------------------------------------------------


def test_funding_longs_pay_shorts_when_the_rate_is_positive() -> None:
    # 0.01 % on 1 BTC at 10,000 is 1 USDT.
    one = BTC.qty_to_lots("1")
    mark, rate = BTC.price_to_ticks("10000"), rate_from_str("0.0001")
    payments, remainder = split_funding({"a": one, "b": -one}, mark, rate, BTC.multiplier)
    assert payments == {"a": -usdt("1"), "b": usdt("1")}
    assert remainder == 0
    payments, _ = split_funding({"a": one, "b": -one}, mark, -rate, BTC.multiplier)
    assert payments == {"a": usdt("1"), "b": -usdt("1")}


def test_funding_rounds_payers_up_receivers_down_and_keeps_the_rest() -> None:
    # The long owes 1/3 of a minor unit and pays 1; each short is owed 1/6 and gets 0; 1 is left.
    payments, remainder = split_funding(
        {"L": 2, "S1": -1, "S2": -1, "flat": 0}, 1, 1, RATE_ONE // 6
    )
    assert payments == {"L": -1, "S1": 0, "S2": 0}
    assert remainder == 1


def test_funding_without_positions_and_unbalanced_positions() -> None:
    assert split_funding({}, 100, 10_000, 1) == ({}, 0)
    with pytest.raises(ValueError, match="net to zero"):
        split_funding({"a": 1}, 100, 10_000, 1)


# --- Properties -------------------------------------------------------------------------------

SIZES = st.integers(-(10**9), 10**9).filter(bool)


@st.composite
def balanced_positions(draw: st.DrawFn) -> dict[int, int]:
    sizes = draw(st.lists(SIZES, max_size=12))
    if sum(sizes):
        sizes.append(-sum(sizes))
    return dict(enumerate(sizes))


@given(
    balanced_positions(),
    st.integers(1, 10**10),
    st.integers(-RATE_ONE, RATE_ONE),
    st.integers(1, 10**6),
)
def test_funding_is_exactly_zero_sum_with_the_remainder(
    positions: dict[int, int], mark: int, rate: int, multiplier: int
) -> None:
    payments, remainder = split_funding(positions, mark, rate, multiplier)
    assert sum(payments.values()) + remainder == 0
    assert 0 <= remainder < max(1, len(payments))
    for account, paid in payments.items():
        owed = positions[account] * mark * multiplier * rate  # exact, × RATE_ONE
        # Payers pay at least what they owe, receivers get at most theirs, within one unit.
        assert -paid * RATE_ONE >= owed > -(paid + 1) * RATE_ONE


@st.composite
def bracket_tables(draw: st.DrawFn) -> tuple[LeverageBracket, ...]:
    """Random valid tables: rising caps and rates, cum by the recursion, leverage 1/(2·MMR)."""
    caps = sorted(draw(st.sets(st.integers(1, 10**6), min_size=1, max_size=8)))
    rates = sorted(draw(st.lists(st.integers(1, 10**4), min_size=len(caps), max_size=len(caps))))
    brackets, floor, rate, cum = [], 0, 0, 0
    for cap, step_rate in zip(caps, rates, strict=True):
        new_rate = step_rate * 4_000  # 0.004 % steps keep cap × Δrate a whole number of units
        cum += floor * (new_rate - rate) // RATE_ONE
        leverage = max(1, RATE_ONE // (2 * new_rate))
        brackets.append(LeverageBracket(cap * USDT, leverage, new_rate, cum))
        floor, rate = cap * USDT, new_rate
    return tuple(validate_brackets(brackets))


@given(bracket_tables(), st.data())
def test_maintenance_margin_is_continuous_and_monotone(
    brackets: tuple[LeverageBracket, ...], data: st.DataObject
) -> None:
    """MM rises by 0 or 1 minor unit per minor unit of notional, across every cap too."""
    near_caps = [b.notional_cap + d for b in brackets for d in (-1, 0)]
    value = data.draw(st.sampled_from(near_caps) | st.integers(0, 2 * brackets[-1].notional_cap))
    assert 0 <= maintenance_margin(brackets, value + 1) - maintenance_margin(brackets, value) <= 1


@pytest.mark.parametrize("brackets", [BTC_BRACKETS, ETH_BRACKETS])
def test_both_tiers_agree_at_every_published_cap(brackets: tuple[LeverageBracket, ...]) -> None:
    for low, high in pairwise(brackets):
        cap = low.notional_cap
        by_low = -(-cap * low.maint_rate // RATE_ONE) - low.maint_amount
        by_high = -(-cap * high.maint_rate // RATE_ONE) - high.maint_amount
        assert by_low == by_high == maintenance_margin(brackets, cap)


@st.composite
def isolated_positions(draw: st.DrawFn) -> tuple[int, int, int]:
    """(size, entry notional, wallet) of a BTC position opened at an allowed leverage.

    Entry prices of at least 1,000 ticks give tier 1's 0.4 % margin room more than a tick.
    """
    entry_ticks = draw(st.integers(1_000, 10**7))
    lots = draw(st.integers(1, 10**7))
    entry = notional(entry_ticks, lots, BTC.multiplier)
    assume(entry <= BTC_BRACKETS[-1].notional_cap)
    leverage = draw(st.integers(1, max_leverage(BTC_BRACKETS, entry)))
    return lots * draw(st.sampled_from([1, -1])), entry, initial_margin(entry, leverage)


@given(isolated_positions())
def test_liquidation_is_on_the_losing_side_of_entry(position: tuple[int, int, int]) -> None:
    size, entry, wallet = position
    entry_ticks = entry // (abs(size) * BTC.multiplier)
    lp = liquidation_price(size, entry, wallet, BTC_BRACKETS, BTC.multiplier)
    bp = bankruptcy_price(size, entry, wallet, BTC.multiplier)
    if size > 0:
        assert lp is None or lp < entry_ticks
        assert lp is None or bp is None or bp <= lp
    else:
        assert lp is not None and bp is not None
        assert entry_ticks < lp <= bp


def account_ratio(size: int, entry: int, wallet: int, price: int) -> int | None:
    value = notional(price, size, BTC.multiplier)
    balance = wallet + unrealized_pnl(size, entry, price, BTC.multiplier)
    return margin_ratio(maintenance_margin(BTC_BRACKETS, value), balance)


def past(ratio: int | None) -> bool:
    return ratio is None or ratio >= RATE_ONE


def exact_surplus(size: int, entry: int, wallet: int, price: int) -> int:
    """Margin balance minus the *unrounded* maintenance margin, × RATE_ONE (sign is exact)."""
    value = notional(price, size, BTC.multiplier)
    bracket = bracket_for(BTC_BRACKETS, value)
    balance = wallet + unrealized_pnl(size, entry, price, BTC.multiplier)
    return (balance + bracket.maint_amount) * RATE_ONE - value * bracket.maint_rate


@given(isolated_positions())
def test_isolated_liquidation_price_is_where_the_margin_ratio_reaches_100(
    position: tuple[int, int, int],
) -> None:
    """One tick past the liquidation price the ratio is ≥ 100 %, one tick before it < 100 %.

    At the price itself it may be either, but the exact (unrounded) formula is not yet past
    there: the price is rounded to the side reached first, never beyond the exact price.
    """
    size, entry, wallet = position
    lp = liquidation_price(size, entry, wallet, BTC_BRACKETS, BTC.multiplier)
    assume(lp is not None and lp > 1)
    assert lp is not None
    side = 1 if size > 0 else -1
    assert past(account_ratio(size, entry, wallet, lp - side))
    assert not past(account_ratio(size, entry, wallet, lp + side))
    assert (
        exact_surplus(size, entry, wallet, lp) >= 0 > exact_surplus(size, entry, wallet, lp - side)
    )


@given(
    isolated_positions(),
    st.integers(0, 10**15),
    st.integers(-(10**15), 10**15),
)
def test_cross_liquidation_price_is_where_maintenance_meets_the_balance(
    position: tuple[int, int, int], other_maintenance: int, other_pnl: int
) -> None:
    size, entry, wallet = position
    lp = liquidation_price(
        size,
        entry,
        wallet,
        BTC_BRACKETS,
        BTC.multiplier,
        other_maintenance=other_maintenance,
        other_unrealized_pnl=other_pnl,
    )
    assume(lp is not None and lp > 1)
    assert lp is not None
    side = 1 if size > 0 else -1

    def short_of_maintenance(price: int) -> bool:
        required = other_maintenance + maintenance_margin(
            BTC_BRACKETS, notional(price, size, BTC.multiplier)
        )
        return wallet + other_pnl + unrealized_pnl(size, entry, price, BTC.multiplier) <= required

    assert short_of_maintenance(lp - side)
    assert not short_of_maintenance(lp + side)


@given(isolated_positions())
def test_bankruptcy_price_is_where_the_balance_runs_out(position: tuple[int, int, int]) -> None:
    size, entry, wallet = position
    bp = bankruptcy_price(size, entry, wallet, BTC.multiplier)
    assume(bp is not None and bp > 1)
    assert bp is not None
    side = 1 if size > 0 else -1

    def balance(price: int) -> int:
        return wallet + unrealized_pnl(size, entry, price, BTC.multiplier)

    assert balance(bp) >= 0 > balance(bp - side)
