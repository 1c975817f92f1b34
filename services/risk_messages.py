"""What the risk topic carries: the liquidation service's margin calls and ADL queue indicators.

The liquidation service (``services/liquidator.py``) is the only writer. It publishes a change,
never a state it has published before: a ``MarginCall`` when a margin scope's level differs
from the last one it published for that scope, an ``AdlQuantiles`` with the positions whose
indicator differs from the last one published (at most one per market per
``EXCHANGE_LIQUIDATOR_ADL_INTERVAL_MS`` of event time). A reader that applies every message of
the topic in order therefore holds every scope's current level and every position's current
indicator; the service itself does exactly that on start, so a restart repeats nothing.

Keys: a ``MarginCall`` is keyed by its account (decimal), an ``AdlQuantiles`` by its symbol, so
one account's calls, and one market's indicators, stay in order in one partition.

Units as everywhere: money in minor units of the settlement asset, ratios in ``RATE_ONE``
units (1e-8; 100 % is 100,000,000), times in ms of event time (the engine's event records'
``time``). Encoding: msgpack through ``RISK_ENCODER`` / ``RISK_DECODER``, told apart by
``type``. Examples of each: docs/liquidation.md.
"""

from enum import StrEnum

import msgspec

from exchange.engine import MarginLevel


class PositionSide(StrEnum):
    LONG = "long"
    SHORT = "short"


class MarginCall(msgspec.Struct, tag="margin_call", tag_field="type", frozen=True, kw_only=True):
    """A margin scope's level changed: ``symbol`` "" is the account's cross margin (its cross
    wallet and every cross position), otherwise its isolated position in that market.

    ``level``: ``warning`` when the margin ratio reached the warning ratio (80 % by default:
    Binance's margin call), ``liquidation`` when it reached 100 % or the margin balance ran out
    (a ``Liquidate`` command follows), ``safe`` when it is below the warning ratio again, or
    when the scope holds no position any more (then every figure is 0 and ``ratio`` None).
    ``ratio`` is maintenance / margin balance, rounded up, None when the balance is not
    positive; ``margin_balance`` is wallet plus unrealized PnL. ``time`` is the event time of
    the engine's record after which the level was this.
    """

    account: int
    symbol: str
    level: MarginLevel
    ratio: int | None
    margin_balance: int
    maintenance: int
    time: int


class AdlEntry(msgspec.Struct, frozen=True, array_like=True):
    """One position's ADL queue indicator: 0 … 4, 4 first in line to be auto-deleveraged
    (Binance ``adlQuantile``); None when the account has no position on that side any more.
    Encoded as an array ``[account, side, quantile]`` (tens of thousands ride in a message)."""

    account: int
    side: PositionSide
    quantile: int | None


class AdlQuantiles(
    msgspec.Struct, tag="adl_quantiles", tag_field="type", frozen=True, kw_only=True
):
    """Positions of ``symbol`` whose ADL indicator changed, as of event time ``time``: their
    place in the engine's ADL order (``exchange.liquidation.adl_order``, per side), in fifths.

    Only the changed ones: apply them over the previous messages. One change may span several
    messages of the same ``time`` (at most ``ADL_ENTRIES_PER_MESSAGE`` entries each).
    """

    symbol: str
    time: int
    entries: list[AdlEntry]


ADL_ENTRIES_PER_MESSAGE = 10_000
"""About 20 bytes an entry: a message stays far below the broker's 1 MB."""

RiskMessage = MarginCall | AdlQuantiles
"""Every message of the risk topic, told apart by its ``type``."""

RISK_DECODER = msgspec.msgpack.Decoder(RiskMessage)
RISK_ENCODER = msgspec.msgpack.Encoder()
