"""The latest of the price topic per market: the oracle's index and mark, the funding service's
estimate. Pure, no I/O.

Why only the latest: the ``index``, ``mark`` and ``funding`` channels show the current value
and then each new one, and nothing asks for their past (settlements, which users do query, are
the engine's events: ``read_model``). Why the oracle's index and not the feeds' ``IndexTick``:
a tick is one source's price, the index is what the oracle made of every source, and it is the
one the mark and the engine use.

A message is taken only if it is later (by its event time) than the one held: one partition
keeps a market's messages in order, so this only drops a second writer's copies (two oracles, or
two funding services, both publish everything).
"""

from collections.abc import Iterable
from enum import StrEnum
from typing import TypeVar

from services.prices import FundingRate, IndexPrice, MarkTick, PriceMessage

M = TypeVar("M", IndexPrice, MarkTick, FundingRate)


class PriceKind(StrEnum):
    """What a price message changed: the channel kind it is pushed on."""

    INDEX = "index"
    MARK = "mark"
    FUNDING = "funding"


class PriceBoard:
    """Per market served, the latest ``IndexPrice``, ``MarkTick`` and predicted ``FundingRate``."""

    def __init__(self, symbols: Iterable[str]) -> None:
        self.symbols = frozenset(symbols)
        self.index: dict[str, IndexPrice] = {}
        self.mark: dict[str, MarkTick] = {}
        self.predicted: dict[str, FundingRate] = {}
        """The funding service's latest estimate (``final`` ones are not kept: what the engine
        applied is the settlement, read from its events)."""

    def apply(self, message: PriceMessage) -> PriceKind | None:
        """Take ``message`` if it is newer; what it changed, None if it changed nothing."""
        if message.symbol not in self.symbols:
            return None
        if isinstance(message, IndexPrice):
            return PriceKind.INDEX if _newer(self.index, message) else None
        if isinstance(message, MarkTick):
            return PriceKind.MARK if _newer(self.mark, message) else None
        if isinstance(message, FundingRate) and not message.final:
            return PriceKind.FUNDING if _newer(self.predicted, message) else None
        return None  # a feed's IndexTick, or a final rate


def _newer(held: dict[str, M], message: M) -> bool:
    """Keep ``message`` if it is later than the one held for its market."""
    current = held.get(message.symbol)
    if current is not None and message.time <= current.time:
        return False
    held[message.symbol] = message
    return True
