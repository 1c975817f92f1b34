"""Price match (Binance's ``priceMatch``): a limit order placed without a price takes one from
the book as the engine places it. Market and helpers: ``test_engine``."""

import pytest
from test_engine import engine, order, rejections, run

from exchange.engine import Engine
from exchange.engine_events import MarketEvent, OrderPlaced
from exchange.events import Rejected, RejectReason, Trade
from exchange.orders import OrderType, PriceMatch, Side, TimeInForce

BUY, SELL = Side.BUY, Side.SELL
FUNDS = 100_000_00


def booked() -> Engine:
    """Bids at 99, 98, 97 and asks at 101, 102, 103, 1 lot each, of account 2."""
    e = engine((1, FUNDS), (2, FUNDS))
    for n, price in enumerate((99, 98, 97, 101, 102, 103), start=1):
        run(e, order(2, BUY if price < 100 else SELL, 1, price, order_id=100 + n))
    return e


@pytest.mark.parametrize(
    ("side", "match", "price"),
    [
        (BUY, PriceMatch.QUEUE, 99),  # the best bid: joins its queue
        (SELL, PriceMatch.QUEUE, 101),
        (BUY, PriceMatch.OPPONENT, 101),  # the best ask: takes it
        (SELL, PriceMatch.OPPONENT, 99),
    ],
)
def test_the_price_comes_from_the_book(side: Side, match: PriceMatch, price: int) -> None:
    e = booked()
    events = run(e, order(1, side, 1, order_id=1, type=OrderType.LIMIT, price_match=match))
    (placed,) = [x for x in events if isinstance(x, OrderPlaced)]
    assert placed.order.price == price and placed.order.price_match is match
    traded = [x.event for x in events if isinstance(x, MarketEvent) and type(x.event) is Trade]
    assert bool(traded) == match.opponent


def test_the_fifth_level_needs_five_levels() -> None:
    e = booked()
    fifth = order(1, BUY, 1, order_id=1, type=OrderType.LIMIT, price_match=PriceMatch.QUEUE_5)
    (refusal,) = rejections(run(e, fifth))
    assert isinstance(refusal, Rejected) and refusal.reason is RejectReason.INVALID_ORDER
    assert refusal.message == "no level 5 on that side of the book for QUEUE_5"
    for n, price in enumerate((96, 95), start=1):
        run(e, order(2, BUY, 1, price, order_id=200 + n))
    events = run(
        e, order(1, BUY, 1, order_id=2, type=OrderType.LIMIT, price_match=PriceMatch.QUEUE_5)
    )
    assert [x.order.price for x in events if isinstance(x, OrderPlaced)] == [95]


@pytest.mark.parametrize(
    "fields",
    [
        {"price": 100},  # a price of its own
        {"type": OrderType.MARKET},
        {"type": OrderType.STOP_LIMIT, "price": None, "stop_price": 95},
    ],
)
def test_only_a_limit_order_without_a_price_matches(fields: dict[str, object]) -> None:
    e = booked()
    before = e.state_hash()
    price = fields.pop("price", None)
    cmd = order(1, BUY, 1, price, order_id=1, price_match=PriceMatch.QUEUE, **fields)  # type: ignore[arg-type]
    (refusal,) = rejections(run(e, cmd))
    assert isinstance(refusal, Rejected) and refusal.reason is RejectReason.INVALID_ORDER
    assert e.state_hash() == before


def test_a_post_only_match_of_the_other_side_is_refused_as_a_taker() -> None:
    e = booked()
    cmd = order(
        1,
        BUY,
        1,
        order_id=1,
        type=OrderType.LIMIT,
        tif=TimeInForce.GTX,
        price_match=PriceMatch.OPPONENT,
    )
    (refusal,) = rejections(run(e, cmd))
    assert isinstance(refusal, Rejected) and refusal.reason is RejectReason.POST_ONLY_WOULD_TAKE
