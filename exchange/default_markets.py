"""The markets ``exchange up`` lists by default: BTCUSDT and ETHUSDT perpetuals, Binance-like.

Grids, filters and fees follow Binance USDⓈ-M's published exchangeInfo for these symbols
(tick 0.1 / 0.01, lot 0.001, ``PERCENT_PRICE`` ±5 %, ``marketTakeBound`` 5 %, maker 0.02 %,
taker 0.05 %). The brackets are the historic tables of perp-mechanics.md §3.1 for BTCUSDT; for
ETHUSDT the table is reconstructed so that its sixth tier's ``cum`` (135,365) is the one in
Binance's own cross-margin example (TV-B1), with every ``cum`` following the §3.1 recursion.
Money is USDT at 8 decimals.
"""

from exchange.market import LeverageBracket, MarketSpec
from exchange.units import RATE_ONE

USDT = 10**8
"""Minor units per USDT."""

_PERCENT = RATE_ONE // 100
_BASIS_POINT = RATE_ONE // 10_000


def _brackets(rows: list[tuple[int, int, int]]) -> tuple[LeverageBracket, ...]:
    """Brackets from (cap in USDT, max leverage, MMR in hundredths of a percent) rows, with
    ``cum`` derived by the recursion, so that maintenance margin is continuous."""
    brackets = []
    floor = rate = cum = 0
    for cap, leverage, mmr in rows:
        maint_rate = mmr * _BASIS_POINT
        cum += floor * (maint_rate - rate) // RATE_ONE
        brackets.append(LeverageBracket(cap * USDT, leverage, maint_rate, cum))
        floor, rate = cap * USDT, maint_rate
    return tuple(brackets)


BTCUSDT = MarketSpec(
    symbol="BTCUSDT",
    base_asset="BTC",
    tick_size="0.1",
    lot_size="0.001",
    max_qty=1_000_000,
    max_price=100_000_000,
    min_notional=100 * USDT,
    price_band_up=5 * _PERCENT,
    price_band_down=5 * _PERCENT,
    market_protection=5 * _PERCENT,
    maker_fee=2 * _BASIS_POINT,
    taker_fee=5 * _BASIS_POINT,
    liquidation_fee=125 * _BASIS_POINT,
    leverage_brackets=_brackets(
        [
            (50_000, 125, 40),
            (250_000, 100, 50),
            (1_000_000, 50, 100),
            (5_000_000, 20, 250),
            (20_000_000, 10, 500),
            (50_000_000, 5, 1000),
            (100_000_000, 4, 1250),
            (200_000_000, 3, 1500),
            (300_000_000, 2, 2500),
            (500_000_000, 1, 5000),
        ]
    ),
)

ETHUSDT = MarketSpec(
    symbol="ETHUSDT",
    base_asset="ETH",
    tick_size="0.01",
    lot_size="0.001",
    max_qty=10_000_000,
    max_price=1_000_000_000,
    min_notional=20 * USDT,
    price_band_up=5 * _PERCENT,
    price_band_down=5 * _PERCENT,
    market_protection=5 * _PERCENT,
    maker_fee=2 * _BASIS_POINT,
    taker_fee=5 * _BASIS_POINT,
    liquidation_fee=125 * _BASIS_POINT,
    leverage_brackets=_brackets(
        [
            (10_000, 100, 50),
            (100_000, 75, 65),
            (500_000, 50, 100),
            (1_000_000, 25, 200),
            (2_000_000, 10, 500),
            (5_000_000, 5, 1000),
            (10_000_000, 4, 1250),
            (20_000_000, 3, 1500),
            (50_000_000, 2, 2500),
        ]
    ),
)

DEFAULT_MARKETS = (BTCUSDT, ETHUSDT)
