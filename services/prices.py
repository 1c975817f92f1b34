"""What travels on the price topic: index ticks from the feeds, and what the oracle and the
funding service make of them.

Prices are integers in the market's ticks, rates in ``RATE_ONE`` units (1e-8) and times in
milliseconds of event time, like everywhere else; every record is keyed by its symbol, so one
market's messages, whoever wrote them, stay in one partition in the order they were written.
That order is what lets the oracle and the funding service rebuild themselves after a restart
(docs/oracle-and-funding.md, "Services").
"""

import msgspec

from exchange.index_price import IndexBasis, SourceStatus


class IndexTick(msgspec.Struct, tag="index", tag_field="type", frozen=True, kw_only=True):
    """One source's price of a market's underlying at ``time`` (ms, event time)."""

    symbol: str
    source: str
    price: int
    time: int


class IndexPrice(msgspec.Struct, tag="index_price", tag_field="type", frozen=True, kw_only=True):
    """The oracle's index of a market at the point ``time`` (a multiple of its cadence).

    ``price`` is None only before any source was ever live; ``frozen`` means no source is live
    and ``price`` is the last index that had one. ``sources`` is every configured source's
    state then; ``changed`` names those whose state differs from the oracle's previous point.
    """

    symbol: str
    time: int
    price: int | None
    frozen: bool
    basis: IndexBasis
    sources: tuple[SourceStatus, ...]
    changed: tuple[str, ...] = ()


class MarkTick(msgspec.Struct, tag="mark", tag_field="type", frozen=True, kw_only=True):
    """The oracle's mark of a market at the point ``time`` and what it was made of: Binance's
    ``markPrice`` stream (mark, index, estimated funding rate, next funding time) with the
    median's three components and the book the oracle saw.

    ``premium`` is the premium index ``P`` of that moment (``funding_rate.premium_index`` from
    the impact bid and ask at the market's impact notional), None when a book side cannot
    absorb that notional: it is what the funding service samples. ``frozen``: the index is
    frozen, and so is the mark (it repeats the last mark made from a live index).
    """

    symbol: str
    time: int
    mark: int | None
    index: int | None
    frozen: bool
    funding_price: int | None
    """Price1: the index with the funding basis of ``funding_rate``."""
    basis_price: int | None
    """Price2: the index plus the moving average of the basis."""
    last_price: int | None
    best_bid: int | None
    best_ask: int | None
    premium: int | None
    funding_rate: int
    """The last settled rate (Binance's ``lastFundingRate``), the one Price1 uses."""
    predicted_rate: int | None
    """The funding service's latest estimate of the next settlement's rate, if any."""
    next_funding_time: int


class FundingRate(msgspec.Struct, tag="funding_rate", tag_field="type", frozen=True, kw_only=True):
    """The funding service's rate for the settlement at ``funding_time``, as of event time
    ``time``: predicted from the samples so far, or ``final`` (the rate it sent to the engine)."""

    symbol: str
    time: int
    funding_time: int
    rate: int
    uncapped_rate: int
    average_premium: int
    samples: int
    final: bool


PriceMessage = IndexTick | IndexPrice | MarkTick | FundingRate
"""Every message of the price topic, told apart by its ``type``."""

PRICE_DECODER = msgspec.msgpack.Decoder(PriceMessage)
PRICE_ENCODER = msgspec.msgpack.Encoder()
