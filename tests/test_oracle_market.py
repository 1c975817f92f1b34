"""The oracle's logic without a broker: the book it rebuilds from the engine's deltas, the points
it closes on event time, freezing, and the premium and mark it publishes.

Why apart from the service tests: which points a tick closes and what each holds is the contract
the funding service's sampling rests on (services/oracle_market.py), and here it can be checked
point by point.
"""

import random

import pytest

from exchange.commands import PlaceOrder
from exchange.default_markets import BTCUSDT
from exchange.events import BookDelta
from exchange.funding_rate import impact_margin_notional
from exchange.funding_schedule import FundingSchedule
from exchange.index_price import IndexConfig, IndexSource, SourceChange, SourceState
from exchange.mark_price import MarkConfig
from exchange.matching import MatchingEngine
from exchange.orders import Side, TimeInForce
from services.l2_book import L2Book
from services.oracle_market import OracleMarket, OraclePoint

IMN = impact_margin_notional(BTCUSDT)  # 25,000 USDT


def market(*sources: str, stale_after_ms: int = 10_000) -> OracleMarket:
    config = IndexConfig(
        sources=tuple(IndexSource(name) for name in sources), stale_after_ms=stale_after_ms
    )
    return OracleMarket(BTCUSDT, config, FundingSchedule(), MarkConfig(), publish_ms=1_000)


def times(points: list[OraclePoint]) -> list[int]:
    return [point.mark.time for point in points]


def test_the_book_follows_the_engines_deltas_and_measures_impact_as_the_engine() -> None:
    """Random orders through the real matching core; the L2 book rebuilt from its deltas has
    the same best prices and the same impact prices for several notionals."""
    rng = random.Random(6)
    engine, book = MatchingEngine(BTCUSDT), L2Book()
    for order_id in range(1, 400):
        side = rng.choice((Side.BUY, Side.SELL))
        price = 600_000 + rng.randint(-300, 300)
        qty = rng.randint(1, 400)
        tif = rng.choice((TimeInForce.GTC, TimeInForce.IOC))
        events = engine.process(
            PlaceOrder(
                order_id=order_id,
                account=rng.randint(1, 5),
                side=side,
                qty=qty,
                price=price,
                tif=tif,
            )
        )
        for event in events:
            if isinstance(event, BookDelta):
                assert book.apply(event)
        assert (book.best_bid, book.best_ask) == (engine.best_bid(), engine.best_ask())
        for notional in (IMN // 100, IMN, 10 * IMN):
            for side in Side:
                expected = engine.impact_price(side, notional)
                assert book.impact_price(side, notional, BTCUSDT.multiplier) == expected


def test_a_gap_in_update_ids_is_reported() -> None:
    book = L2Book()
    assert book.apply(BookDelta(1, ((600_000, 5),), ()))
    assert not book.apply(BookDelta(3, (), ((600_100, 5),)))
    assert book.apply(BookDelta(4, ((600_000, 0),), ()))
    assert (book.best_bid, book.best_ask) == (None, 600_100)


def test_ticks_close_the_points_they_pass_first_and_last_of_a_quiet_stretch() -> None:
    oracle = market("a")
    assert times(oracle.tick("a", 600_000, 10_000)) == [10_000]  # a tick on a point closes it
    assert oracle.tick("a", 600_100, 10_500) == []  # 11 s is not known yet
    points = oracle.tick("a", 600_200, 15_000)
    # 11 s … 14 s have the state after the tick at 10.5 s: the first and the last of them
    assert times(points) == [11_000, 14_000, 15_000]
    assert [p.index.price for p in points] == [600_100, 600_100, 600_200]
    assert times(oracle.tick("a", 600_300, 17_500)) == [16_000, 17_000]
    assert oracle.tick("a", 600_000, 12_000) == []  # older than what was closed: nothing
    assert times(oracle.tick("a", 600_400, 18_000)) == [18_000]
    assert [p.mark.next_funding_time for p in points] == [8 * 3_600_000] * 3


def test_a_source_not_configured_or_a_bad_price_changes_nothing() -> None:
    oracle = market("a")
    oracle.tick("a", 600_000, 1_000)
    with pytest.raises(ValueError, match="no index source 'b'"):
        oracle.tick("b", 600_000, 5_000)
    with pytest.raises(ValueError):
        oracle.tick("a", 0, 5_000)
    assert times(oracle.tick("a", 600_100, 3_000)) == [2_000, 3_000]


def test_a_stale_source_leaves_and_all_stale_freezes_index_and_mark() -> None:
    oracle = market("a", "b")
    oracle.tick("a", 600_000, 0)
    oracle.tick("b", 601_000, 500)
    oracle.tick("b", 601_000, 5_500)
    (_, at_10s, at_11s) = oracle.tick("b", 601_200, 11_000)  # a is 11 s old at 11 s
    assert at_10s.index.price == 600_500 and at_10s.mark.mark == 600_500
    assert at_11s.index.price == 601_200 and at_11s.index.changed == ("a",)
    assert at_11s.changes == (
        SourceChange(source="a", before=SourceState.INCLUDED, after=SourceState.STALE),
    )
    first, last, back = oracle.tick("b", 601_400, 30_000)
    assert (first.index.frozen, first.index.price) == (False, 601_200)
    # at 29 s b is 18 s old too: no source is live, the index and the mark keep their last value
    assert (last.index.frozen, last.index.price, last.mark.mark) == (True, 601_200, 601_200)
    assert last.mark.frozen and last.froze is True and last.mark.premium is None
    assert {s.source: s.state for s in last.index.sources} == {
        "a": SourceState.STALE,
        "b": SourceState.STALE,
    }
    assert (back.index.frozen, back.index.price, back.froze) == (False, 601_400, False)


def test_premium_and_mark_from_the_book_and_the_last_trade() -> None:
    """Bids at 60,300.0 and asks at 60,400.0, 1 BTC each, over an index of 60,000.0: the impact
    bid is 60,300.0, so P = 0.5 %; the mark is the median of Price1 (the index: no funding rate
    yet), Price2 (index + basis 350.0) and the last trade."""
    oracle = market("a")
    oracle.book.apply(BookDelta(1, ((603_000, 1_000),), ((604_000, 1_000),)))
    (point,) = oracle.tick("a", 600_000, 0)
    assert point.mark.premium == 500_000  # (60,300 − 60,000) / 60,000 in 1e-8
    assert (point.mark.best_bid, point.mark.best_ask) == (603_000, 604_000)
    assert (point.mark.funding_price, point.mark.basis_price) == (600_000, 603_500)
    assert point.mark.mark == 600_000  # no trade yet: Price1 stands in for the last price
    oracle.trade(604_000)
    (point,) = oracle.tick("a", 600_000, 1_000)
    assert (point.mark.last_price, point.mark.mark) == (604_000, 603_500)
    oracle.book.apply(BookDelta(2, ((603_000, 0),), ()))  # no bids: no premium, no basis
    (_, point) = oracle.tick("a", 600_000, 3_000)
    assert point.mark.premium is None and point.mark.best_bid is None
