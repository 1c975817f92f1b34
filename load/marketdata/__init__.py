"""Readers of the market data users have: Binance public-data kline, aggTrades and trades CSVs
(plain, ``.gz`` or ``.zip``; with or without a header; ms or µs times), OHLCV CSVs with dates,
and raw Binance websocket captures (depth snapshot, ``depthUpdate``, ``trade``,
``bookTicker``; bare or combined-stream messages).

Pure: they read the file and nothing else, and yield exact records (``records.py``). Anything
they cannot read is a ``MarketDataError`` naming the file, line, column and field.
"""

from load.marketdata.files import FORMATS, MarketDataFile, detect_format
from load.marketdata.records import (
    BookTicker,
    DepthSnapshot,
    DepthUpdate,
    Kline,
    MarketDataError,
    MarketRecord,
    OtherMessage,
    TradeRecord,
)

__all__ = [
    "FORMATS",
    "BookTicker",
    "DepthSnapshot",
    "DepthUpdate",
    "Kline",
    "MarketDataError",
    "MarketDataFile",
    "MarketRecord",
    "OtherMessage",
    "TradeRecord",
    "detect_format",
]
