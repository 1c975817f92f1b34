"""Reading the replay's fixtures, and an independent reading of a capture's depth stream:
shared by tests/test_replay_plan.py and tests/test_replay.py."""

from decimal import Decimal
from pathlib import Path

from exchange.default_markets import BTCUSDT
from load.marketdata import DepthSnapshot, DepthUpdate, MarketDataFile, MarketRecord
from load.replay.grid import Grid

DATA = Path(__file__).parent / "data"
CAPTURE = DATA / "btcusdt-ws-20240808-head.gz"
TRADES = DATA / "btcusdt-trades-20240808-head.csv"
AGG_TRADES = DATA / "btcusdt-aggtrades-20240808-head.csv"
KLINES = DATA / "btcusdt-1m-20200312-crash.csv"


def records(path: Path) -> tuple[str, list[MarketRecord]]:
    """A fixture's format and records."""
    with MarketDataFile(path) as data:
        return data.format or "", list(data.records())


def depth_reference(items: list[MarketRecord], until: int) -> tuple[int | None, int | None]:
    """The best bid and ask of the depth stream alone up to event time ``until`` (Binance's
    rules, no trades), on our grid: an independent reading of the recording."""
    grid = Grid(BTCUSDT)
    bids: dict[Decimal, Decimal] = {}
    asks: dict[Decimal, Decimal] = {}
    snapshot = next(r for r in items if isinstance(r, DepthSnapshot))
    for price, qty in snapshot.bids:
        bids[price] = qty
    for price, qty in snapshot.asks:
        asks[price] = qty
    updates = sorted(
        (r for r in items if isinstance(r, DepthUpdate) and r.last_id >= snapshot.last_update_id),
        key=lambda r: r.last_id,
    )
    for update in updates:
        if update.time > until:
            break
        for side, levels in ((bids, update.bids), (asks, update.asks)):
            for price, qty in levels:
                if qty:
                    side[price] = qty
                else:
                    side.pop(price, None)
    return (
        grid.bid_tick(max(bids)) if bids else None,
        grid.ask_tick(min(asks)) if asks else None,
    )
