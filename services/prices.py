"""What travels on the price topic: index ticks from the feeds (and, with the oracle, marks).

Prices are integers in the market's ticks and times are milliseconds of event time, like
everywhere else; records are keyed by symbol, so one market's ticks stay in order.
"""

import msgspec


class IndexTick(msgspec.Struct, tag="index", tag_field="type", frozen=True, kw_only=True):
    """One source's price of a market's underlying at ``time`` (ms, event time)."""

    symbol: str
    source: str
    price: int
    time: int


PriceMessage = IndexTick
"""Every message of the price topic (a union once the oracle publishes marks too)."""

PRICE_DECODER = msgspec.msgpack.Decoder(PriceMessage)
PRICE_ENCODER = msgspec.msgpack.Encoder()
