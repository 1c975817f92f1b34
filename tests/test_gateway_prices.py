"""The gateway's side of the price topic, no broker: which messages the board takes, and the
index and mark as the protocol writes them.

Why: the ``index``, ``mark`` and ``funding`` channels push exactly what the board takes, so
what it ignores (a feed's raw tick, a final rate, a second writer's older copy, a market not
served) is what a subscriber never sees.
"""

import msgspec

from exchange.default_markets import DEFAULT_MARKETS
from exchange.index_price import IndexBasis, SourceState, SourceStatus
from services.gateway.convert import Markets
from services.gateway.price_board import PriceBoard, PriceKind
from services.gateway.views import Views
from services.prices import FundingRate, IndexPrice, IndexTick, MarkTick

VIEWS = Views(Markets(DEFAULT_MARKETS))

INDEX = IndexPrice(
    symbol="BTCUSDT",
    time=2_000,
    price=600_005,
    frozen=False,
    basis=IndexBasis.WEIGHTED_AVERAGE,
    sources=(
        SourceStatus(source="a", state=SourceState.INCLUDED, weight=2, price=600_005, time=1_900),
        SourceStatus(source="b", state=SourceState.STALE, weight=1, price=590_000, time=10),
        SourceStatus(source="c", state=SourceState.NO_DATA, weight=1, price=None, time=None),
    ),
    changed=("b",),
)
MARK = MarkTick(
    symbol="BTCUSDT",
    time=2_000,
    mark=600_010,
    index=600_005,
    frozen=False,
    funding_price=600_005,
    basis_price=600_010,
    last_price=600_100,
    best_bid=None,
    best_ask=None,
    premium=None,
    funding_rate=10_000,
    predicted_rate=-937,
    next_funding_time=28_800_000,
)
ESTIMATE = FundingRate(
    symbol="BTCUSDT",
    time=2_000,
    funding_time=28_800_000,
    rate=937,
    uncapped_rate=937,
    average_premium=0,
    samples=1,
    final=False,
)


def test_the_board_takes_the_newest_index_mark_and_estimate_and_nothing_else() -> None:
    board = PriceBoard(["BTCUSDT"])
    tick = IndexTick(symbol="BTCUSDT", source="a", price=600_000, time=3_000)
    assert board.apply(tick) is None  # one source's price is not the index
    assert board.apply(INDEX) is PriceKind.INDEX
    assert board.apply(MARK) is PriceKind.MARK
    assert board.apply(ESTIMATE) is PriceKind.FUNDING
    assert board.apply(msgspec.structs.replace(ESTIMATE, time=3_000, final=True)) is None
    assert board.apply(msgspec.structs.replace(MARK, mark=1)) is None  # same point, again
    assert board.apply(msgspec.structs.replace(INDEX, time=1_000)) is None
    assert board.apply(msgspec.structs.replace(MARK, symbol="DOGEUSDT", time=9_000)) is None
    assert (board.index["BTCUSDT"], board.mark["BTCUSDT"]) == (INDEX, MARK)
    assert board.predicted["BTCUSDT"] == ESTIMATE
    later = msgspec.structs.replace(MARK, time=3_000)
    assert board.apply(later) is PriceKind.MARK and board.mark["BTCUSDT"] == later


def test_index_and_mark_views_write_prices_on_the_grid_and_rates_as_fractions() -> None:
    index = msgspec.json.decode(msgspec.json.encode(VIEWS.index(INDEX)))
    assert index == {
        "symbol": "BTCUSDT",
        "time": 2_000,
        "price": "60000.5",
        "frozen": False,
        "sources": [
            {"source": "a", "state": "included", "weight": 2, "price": "60000.5", "time": 1_900},
            {"source": "b", "state": "stale", "weight": 1, "price": "59000.0", "time": 10},
            {"source": "c", "state": "no_data", "weight": 1, "price": None, "time": None},
        ],
    }
    mark = msgspec.json.decode(msgspec.json.encode(VIEWS.mark(MARK)))
    assert mark == {
        "symbol": "BTCUSDT",
        "time": 2_000,
        "mark": "60001.0",
        "index": "60000.5",
        "frozen": False,
        "last_rate": "0.0001",
        "predicted_rate": "-0.00000937",
        "next_funding_time": 28_800_000,
    }
    before_any = msgspec.structs.replace(MARK, mark=None, index=None, predicted_rate=None)
    view = VIEWS.mark(before_any)
    assert (view.mark, view.index, view.predicted_rate) == (None, None, None)
