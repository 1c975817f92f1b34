"""The drill's market maker: a post-only ladder around the index that thins as the price falls.

The default maker (``services/market_maker.py``) quotes a fixed ladder on the live clock; a
drill needs depth that follows its scenario (``[liquidity]``) on event time, so the drill quotes
its own from the ``MAKER`` account: every ``requote_s`` of event time, and as soon as the index
has moved a ladder step (``step_bps``) from the one it quoted around (a maker pulls its quotes in
a gap rather than be filled far off the market), it cancels its ladder and places a new one
around the latest index, ``levels`` a side, each level's size scaled by
``depth_factor_bps`` (``path.py``). A level worth less than the market's minimum notional is
left out, so a crash can empty the book entirely (``crash_depth_pct = 0``).

Prices: a bid ``⌊index·(10⁴ − spread/2 − i·step)/10⁴⌋``, an ask the same rounded up with ``+``,
so the ladder never quotes inside the spread it was asked for. Sizes: ``⌊lots·factor/10⁴⌋``.

**Flow.** Without trades the last price stays where the setup left it, and the mark (the median
of two index-based prices and the last price, perp-mechanics.md §1) lags the index by as much
as the market moves: unlike any real market. So after each ladder the ``TAKER`` account takes
the smallest order the market accepts (the minimum notional, rounded up to a lot) from the
ladder's best level, selling when the index fell since the previous quote and buying otherwise:
the last price follows the index, from the side the market is moving to.
"""

from exchange.commands import CancelAll, PlaceOrder
from exchange.engine_commands import EngineCommand, OrderCommand
from exchange.market import MarketSpec
from exchange.orders import Side, TimeInForce
from exchange.units import ceil_div
from load.drill.population import MAKER, TAKER
from load.drill.scenario import Liquidity


def ladder(
    spec: MarketSpec, liquidity: Liquidity, index: int, factor_bps: int
) -> list[EngineCommand]:
    """Cancel the maker's orders and quote a new ladder around ``index`` (ticks)."""
    symbol = spec.symbol
    commands: list[EngineCommand] = [OrderCommand(symbol=symbol, order=CancelAll(account=MAKER))]
    lots = spec.qty_to_lots(str(liquidity.level_size)) * factor_bps // 10_000
    if lots <= 0:
        return commands
    half = liquidity.spread_bps // 2
    for level in range(liquidity.levels):
        offset = half + level * liquidity.step_bps
        bid = index * (10_000 - offset) // 10_000
        ask = ceil_div(index * (10_000 + offset), 10_000)
        for side, price in ((Side.BUY, bid), (Side.SELL, ask)):
            if price <= 0 or lots * price * spec.multiplier < spec.min_notional:
                continue
            place = PlaceOrder(
                order_id=0, account=MAKER, side=side, qty=lots, price=price, tif=TimeInForce.GTX
            )
            commands.append(OrderCommand(symbol=symbol, order=place))
    return commands


def flow_order(spec: MarketSpec, liquidity: Liquidity, index: int, sell: bool) -> EngineCommand:
    """The taker's IOC order against the ladder's best level (module docstring)."""
    offset = liquidity.spread_bps // 2
    bid, ask = index * (10_000 - offset) // 10_000, ceil_div(index * (10_000 + offset), 10_000)
    price = bid if sell else ask
    lots = max(spec.min_qty, ceil_div(spec.min_notional, price * spec.multiplier))
    side = Side.SELL if sell else Side.BUY
    place = PlaceOrder(
        order_id=0, account=TAKER, side=side, qty=lots, price=price, tif=TimeInForce.IOC
    )
    return OrderCommand(symbol=spec.symbol, order=place)


def ladder_notional(spec: MarketSpec, liquidity: Liquidity, index: int) -> int:
    """Minor units of one full-depth side of the ladder (what the maker's margin must carry)."""
    lots = spec.qty_to_lots(str(liquidity.level_size))
    return liquidity.levels * lots * index * spec.multiplier
