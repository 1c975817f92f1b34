"""The market maker's ladder: prices, rounding, the grid's edges and the inventory limit.

Pure: no broker. Why it matters: every quote goes to an engine that refuses what is off its
grid or below its minimums, and a ladder that ignored the inventory could take the maker past
its margin.
"""

from hypothesis import given
from hypothesis import strategies as st

from exchange.default_markets import BTCUSDT
from exchange.market import MarketSpec
from exchange.orders import Side
from services.quotes import LadderParams, Quote, ladder, moved

BUY, SELL = Side.BUY, Side.SELL
PARAMS = LadderParams(levels=3, spread_bps=10, step_bps=5, level_qty=20, max_position=500)
PLAIN = MarketSpec(symbol="PLAIN")
"""No minimum notional, so that tiny indices can be quoted."""


def prices(quotes: list[Quote], side: Side) -> list[int]:
    return [quote.price for quote in quotes if quote.side is side]


def test_levels_around_the_index() -> None:
    # 60,000.0: half the spread is 5 bp = 30.0 = 300 ticks, a step 5 bp
    assert ladder(600_000, 0, PARAMS, BTCUSDT) == [
        Quote(BUY, 599_700, 20),
        Quote(BUY, 599_400, 20),
        Quote(BUY, 599_100, 20),
        Quote(SELL, 600_300, 20),
        Quote(SELL, 600_600, 20),
        Quote(SELL, 600_900, 20),
    ]


def test_prices_round_away_from_the_index() -> None:
    params = PARAMS._replace(spread_bps=1, levels=1)
    # 600,001 × (1 ∓ 0.5 bp) = 600,001 ∓ 30.00005 ticks
    assert ladder(600_001, 0, params, BTCUSDT) == [
        Quote(BUY, 599_970, 20),
        Quote(SELL, 600_032, 20),
    ]


def test_levels_on_a_coarse_grid_stay_one_tick_apart() -> None:
    quotes = ladder(100, 0, PARAMS, PLAIN)
    assert prices(quotes, BUY) == [99, 98, 97]
    assert prices(quotes, SELL) == [101, 102, 103]


def test_an_index_near_zero_gives_no_bid_at_or_below_zero() -> None:
    assert prices(ladder(2, 0, PARAMS, PLAIN), BUY) == [1]
    assert prices(ladder(1, 0, PARAMS, PLAIN), BUY) == []
    assert prices(ladder(1, 0, PARAMS, PLAIN), SELL) == [2, 3, 4]
    wide = PARAMS._replace(spread_bps=5_000, step_bps=1_000)
    assert prices(ladder(1_000, 0, wide, PLAIN), BUY) == [750, 650, 550]
    assert prices(ladder(1_000, 0, PARAMS._replace(step_bps=10_000), PLAIN), BUY) == [999]


def test_an_index_near_the_largest_price_gives_no_ask_above_it() -> None:
    top = BTCUSDT.max_price
    quotes = ladder(top - 10, 0, PARAMS, BTCUSDT)
    assert prices(quotes, SELL) == [] and len(prices(quotes, BUY)) == 3


def test_inventory_limits_the_side_that_adds_to_it() -> None:
    params = PARAMS._replace(max_position=50)
    assert [q.qty for q in ladder(600_000, 0, params, BTCUSDT)] == [20, 20, 10, 20, 20, 10]
    assert [q.qty for q in ladder(600_000, 35, params, BTCUSDT) if q.side is BUY] == [15]
    assert [q.qty for q in ladder(600_000, -35, params, BTCUSDT) if q.side is SELL] == [15]


def test_at_the_limit_only_the_reducing_side_is_quoted() -> None:
    params = PARAMS._replace(max_position=50)
    for position in (50, 80):  # at the limit, and past it (fills the maker had not seen)
        quotes = ladder(600_000, position, params, BTCUSDT)
        assert {q.side for q in quotes} == {SELL}
        assert prices(ladder(600_000, -position, params, BTCUSDT), SELL) == []


def test_levels_below_the_minimum_notional_are_left_out() -> None:
    # 1 lot at 60,000 is 60 USDT, below BTCUSDT's 100
    assert ladder(600_000, 0, PARAMS._replace(level_qty=1), BTCUSDT) == []
    assert len(ladder(600_000, 0, PARAMS._replace(level_qty=2), BTCUSDT)) == 6
    # the room left after a full level is a single lot: too small, so not quoted
    params = PARAMS._replace(max_position=21)
    assert [q.qty for q in ladder(600_000, 0, params, BTCUSDT) if q.side is BUY] == [20]


def test_moved_is_a_distance_in_basis_points() -> None:
    assert moved(600_000, 600_120, 2) and moved(600_000, 599_880, 2)
    assert not moved(600_000, 600_119, 2) and not moved(600_000, 599_881, 2)


@given(
    index=st.integers(1, 2_000_000),
    position=st.integers(-300, 300),
    levels=st.integers(1, 8),
    spread=st.integers(1, 5_000),
    step=st.integers(0, 1_000),
    qty=st.integers(1, 100),
    limit=st.integers(1, 200),
)
def test_every_ladder_is_valid(
    index: int, position: int, levels: int, spread: int, step: int, qty: int, limit: int
) -> None:
    """Bids strictly below the index and falling, asks strictly above and rising, every quote
    on the grid and above the minimums, and neither side more than its room."""
    spec = MarketSpec(symbol="T", max_price=1_000_000, min_notional=10_000_000)
    params = LadderParams(levels, spread, step, qty, limit)
    quotes = ladder(index, position, params, spec)
    bids, asks = prices(quotes, BUY), prices(quotes, SELL)
    assert quotes == [q for q in quotes if q.side is BUY] + [q for q in quotes if q.side is SELL]
    assert all(1 <= p < index for p in bids) and bids == sorted(set(bids), reverse=True)
    assert all(index < p <= spec.max_price for p in asks) and asks == sorted(set(asks))
    assert len(bids) <= levels and len(asks) <= levels
    assert all(
        q.qty >= 1 and q.price * q.qty * spec.multiplier >= spec.min_notional for q in quotes
    )
    assert sum(q.qty for q in quotes if q.side is BUY) <= max(0, limit - position)
    assert sum(q.qty for q in quotes if q.side is SELL) <= max(0, limit + position)
