"""From the venue's decimals to our market's grid: prices in ticks, quantities in lots. Pure.

A recording's grid need not be ours (Binance's BTCUSDT perpetual had a 0.01 tick in 2020; ours
is 0.1), so every conversion says which way it rounds, and why:

* **an index price** (a kline's O/H/L/C, a mid, a trade price used as the index): to the
  nearest tick, half to even, the oracle's own rule for prices (docs/oracle-and-funding.md);
* **a bid level's price**: down, so that a bid never becomes better than recorded and a rounded
  book never crosses; **an ask level's price**: up, for the same reason;
* **a quantity** (of a level or a trade): to the nearest lot, half to even, so a book's size
  stays as close as the grid allows; a level that rounds to 0 lots is not placed.

Several recorded levels can fall on one of our ticks when our tick is coarser: their quantities
are added first and the sum is rounded once.
"""

from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Context, Decimal, localcontext

from exchange.market import MarketSpec

_EXACT = Context(prec=80)


_CACHED = 100_000
"""Conversions remembered per kind: a recording repeats the same few thousand prices and
quantities, and an exact Decimal division costs a microsecond."""


class Grid:
    """The tick and lot of one market, and the conversions onto them."""

    def __init__(self, spec: MarketSpec) -> None:
        self.tick = spec.tick
        self.lot = spec.lot
        self._cache: dict[tuple[Decimal, Decimal, str], int] = {}

    def _units(self, value: Decimal, step: Decimal, rounding: str) -> int:
        key = (value, step, rounding)
        units = self._cache.get(key)
        if units is None:
            with localcontext(_EXACT):
                units = int((value / step).to_integral_value(rounding=rounding))
            if len(self._cache) >= _CACHED:
                self._cache.clear()
            self._cache[key] = units
        return units

    def nearest_tick(self, price: Decimal) -> int:
        return self._units(price, self.tick, ROUND_HALF_EVEN)

    def bid_tick(self, price: Decimal) -> int:
        return self._units(price, self.tick, ROUND_FLOOR)

    def ask_tick(self, price: Decimal) -> int:
        return self._units(price, self.tick, ROUND_CEILING)

    def lots(self, qty: Decimal) -> int:
        return self._units(qty, self.lot, ROUND_HALF_EVEN)

    def mid_tick(self, bid: Decimal, ask: Decimal) -> int:
        """The exact mid of a bid and an ask, to the nearest tick (half to even)."""
        with localcontext(_EXACT):
            return self._units((bid + ask) / 2, self.tick, ROUND_HALF_EVEN)
