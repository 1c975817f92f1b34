"""Order vocabulary shared by commands and events (names follow Binance USDⓈ-M)."""

from enum import StrEnum


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"


class OrderType(StrEnum):
    LIMIT = "limit"
    MARKET = "market"
    STOP_MARKET = "stop_market"
    STOP_LIMIT = "stop_limit"
    TAKE_PROFIT_MARKET = "take_profit_market"
    TAKE_PROFIT_LIMIT = "take_profit_limit"
    TRAILING_STOP_MARKET = "trailing_stop_market"


class TimeInForce(StrEnum):
    GTC = "GTC"
    IOC = "IOC"
    FOK = "FOK"
    GTX = "GTX"
    """Post-only: rejected if it would take."""


class TriggerBy(StrEnum):
    """Binance ``workingType``: which price a conditional order watches."""

    LAST = "last"
    MARK = "mark"


class StpMode(StrEnum):
    """Self-trade prevention, Binance names; the taker's mode decides."""

    NONE = "NONE"
    EXPIRE_TAKER = "EXPIRE_TAKER"
    EXPIRE_MAKER = "EXPIRE_MAKER"
    EXPIRE_BOTH = "EXPIRE_BOTH"


class PriceMatch(StrEnum):
    """Binance ``priceMatch``: a limit order's price taken from the book when the engine
    places it. ``OPPONENT_N`` is the N-th best price on the other side, ``QUEUE_N`` the N-th
    best on the order's own side (``OPPONENT``, ``QUEUE``: the best)."""

    OPPONENT = "OPPONENT"
    OPPONENT_5 = "OPPONENT_5"
    OPPONENT_10 = "OPPONENT_10"
    OPPONENT_20 = "OPPONENT_20"
    QUEUE = "QUEUE"
    QUEUE_5 = "QUEUE_5"
    QUEUE_10 = "QUEUE_10"
    QUEUE_20 = "QUEUE_20"

    @property
    def opponent(self) -> bool:
        return self.value.startswith("OPPONENT")

    @property
    def level(self) -> int:
        """Which level, 1 for the best."""
        _, _, number = self.value.partition("_")
        return int(number) if number else 1


LIMIT_TYPES = frozenset({OrderType.LIMIT, OrderType.STOP_LIMIT, OrderType.TAKE_PROFIT_LIMIT})
"""Types that carry a limit price."""

CONDITIONAL_TYPES = frozenset(
    {
        OrderType.STOP_MARKET,
        OrderType.STOP_LIMIT,
        OrderType.TAKE_PROFIT_MARKET,
        OrderType.TAKE_PROFIT_LIMIT,
        OrderType.TRAILING_STOP_MARKET,
    }
)
"""Types that wait for a trigger before they reach the book."""
