"""Market specifications: the grid, limits, bands and fees of one perpetual contract."""

from decimal import Decimal

import msgspec

from exchange.units import RATE_ONE, from_units, to_units


class LeverageBracket(msgspec.Struct, frozen=True):
    """One maintenance-margin tier (Binance "leverage bracket").

    ``notional_cap`` is the upper bound of the tier's position notional in settlement minor
    units; ``maint_rate`` is in rate units; ``maint_amount`` (Binance "cum") in minor units.
    """

    notional_cap: int
    max_leverage: int
    maint_rate: int
    maint_amount: int


class MarketSpec(msgspec.Struct, frozen=True, kw_only=True):
    """Everything the matching core needs to know about one market.

    Prices are in ticks and quantities in lots. A trade of one lot at one tick is worth
    ``multiplier`` minor units of the settlement asset, so tick × lot must be a whole number
    of minor units (checked by ``validate``).
    """

    symbol: str
    base_asset: str = "BTC"
    quote_asset: str = "USDT"
    settle_asset: str = "USDT"
    settle_decimals: int = 8
    tick_size: str = "0.1"
    lot_size: str = "0.001"
    min_qty: int = 1
    max_qty: int = 1_000_000_000
    max_price: int = 10_000_000_000
    min_notional: int = 0
    """Minimum price × quantity of an order with a limit price, in minor units (0: none)."""
    price_band_up: int = 0
    """Binance PERCENT_PRICE: a limit price above mark × (1 + up) is rejected (0: no band)."""
    price_band_down: int = 0
    """A limit price below mark × (1 − down) is rejected (0: no band)."""
    market_protection: int = 0
    """A market order fills no further than this rate from the mark (or the touch) (0: off)."""
    maker_fee: int = 0
    taker_fee: int = 0
    liquidation_fee: int = 0
    """Binance's liquidation clearance fee rate, on what a liquidation closes (to the fund)."""
    min_callback_rate: int = RATE_ONE // 1000
    """Trailing-stop callback rate limits, Binance's 0.1 % … 10 %."""
    max_callback_rate: int = RATE_ONE // 10
    leverage_brackets: tuple[LeverageBracket, ...] = ()

    @property
    def tick(self) -> Decimal:
        return Decimal(self.tick_size)

    @property
    def lot(self) -> Decimal:
        return Decimal(self.lot_size)

    @property
    def multiplier(self) -> int:
        """Minor units of settlement asset per (tick × lot)."""
        value = self.tick * self.lot * (Decimal(10) ** self.settle_decimals)
        if value != value.to_integral_value() or value <= 0:
            raise ValueError(
                f"{self.symbol}: tick {self.tick_size} × lot {self.lot_size} is not a whole "
                f"number of minor units at {self.settle_decimals} decimals"
            )
        return int(value)

    def validate(self) -> "MarketSpec":
        """Raise ``ValueError`` for an inconsistent spec; return self so it can be chained."""
        if self.tick <= 0 or self.lot <= 0:
            raise ValueError(f"{self.symbol}: tick and lot size must be positive")
        _ = self.multiplier
        if not 0 < self.min_qty <= self.max_qty:
            raise ValueError(f"{self.symbol}: need 0 < min_qty <= max_qty")
        return self

    def price_to_ticks(self, text: str) -> int:
        return to_units(text, self.tick, "price")

    def qty_to_lots(self, text: str) -> int:
        return to_units(text, self.lot, "quantity")

    def ticks_to_str(self, ticks: int) -> str:
        return from_units(ticks, self.tick_size)

    def lots_to_str(self, lots: int) -> str:
        return from_units(lots, self.lot_size)
