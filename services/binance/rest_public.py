"""Binance's public market-data endpoints (``/fapi/v1``), answered from the read model, the price
board and the front's market history, and the empty answers to the spot, margin, coin-M and
options routes that generic clients probe when they load markets.
"""

from services.binance import errors
from services.binance.context import Call, Context, Endpoint, Security
from services.binance.errors import BinanceError
from services.binance.market_history import INTERVALS_MS
from services.binance.params import Params
from services.gateway.views import rate


class PublicApi:
    def __init__(self, context: Context) -> None:
        self.c = context

    def endpoints(self) -> list[Endpoint]:
        none = Security.NONE
        v1 = "/fapi/v1"
        return [
            Endpoint("GET", f"{v1}/ping", none, self.ping),
            Endpoint("GET", f"{v1}/time", none, self.time),
            Endpoint("GET", f"{v1}/exchangeInfo", none, self.exchange_info),
            Endpoint("GET", f"{v1}/depth", none, self.depth, weight=5),
            Endpoint("GET", f"{v1}/trades", none, self.trades, weight=5),
            Endpoint("GET", f"{v1}/historicalTrades", none, self.trades, weight=20),
            Endpoint("GET", f"{v1}/aggTrades", none, self.agg_trades, weight=20),
            Endpoint("GET", f"{v1}/klines", none, self.klines, weight=5),
            Endpoint("GET", f"{v1}/continuousKlines", none, self.klines, weight=5),
            Endpoint("GET", f"{v1}/markPriceKlines", none, self.mark_klines, weight=5),
            Endpoint("GET", f"{v1}/indexPriceKlines", none, self.mark_klines, weight=5),
            Endpoint("GET", f"{v1}/premiumIndex", none, self.premium_index),
            Endpoint("GET", f"{v1}/fundingRate", none, self.funding_rate),
            Endpoint("GET", f"{v1}/fundingInfo", none, self.funding_info),
            Endpoint("GET", f"{v1}/ticker/24hr", none, self.ticker_24h, weight=5),
            Endpoint("GET", f"{v1}/ticker/price", none, self.ticker_price),
            Endpoint("GET", "/fapi/v2/ticker/price", none, self.ticker_price),
            Endpoint("GET", f"{v1}/ticker/bookTicker", none, self.book_ticker),
            Endpoint("GET", f"{v1}/openInterest", none, self.open_interest),
            # the other Binance markets, which generic clients list: none here
            Endpoint("GET", "/api/v3/ping", none, self.ping),
            Endpoint("GET", "/api/v3/time", none, self.time),
            Endpoint("GET", "/api/v3/exchangeInfo", none, self.no_markets),
            Endpoint("GET", "/dapi/v1/exchangeInfo", none, self.no_markets),
            Endpoint("GET", "/eapi/v1/exchangeInfo", none, self.no_options),
            Endpoint("GET", "/sapi/v1/margin/allPairs", none, self.empty),
            Endpoint("GET", "/sapi/v1/margin/isolated/allPairs", none, self.empty),
            Endpoint("GET", "/sapi/v1/capital/config/getall", none, self.coins),
        ]

    async def ping(self, call: Call) -> object:
        return {}

    async def time(self, call: Call) -> object:
        return {"serverTime": call.now}

    async def exchange_info(self, call: Call) -> object:
        return self.c.formats.exchange_info(call.now)

    async def no_markets(self, call: Call) -> object:
        return {
            "timezone": "UTC",
            "serverTime": call.now,
            "rateLimits": [],
            "exchangeFilters": [],
            "symbols": [],
        }

    async def no_options(self, call: Call) -> object:
        return {"timezone": "UTC", "serverTime": call.now, "optionSymbols": [], "rateLimits": []}

    async def empty(self, call: Call) -> object:
        return []

    async def coins(self, call: Call) -> object:
        """Binance's coin list (ccxt builds its currencies from it when it has a key, and
        ccxt 4.4 needs the settlement asset among them to account fees): the assets of the
        markets, with no deposit, withdrawal or network, since money here is paper."""
        specs = self.c.markets.specs.values()
        assets = sorted({a for s in specs for a in (s.base_asset, s.quote_asset, s.settle_asset)})
        return [
            {
                "coin": asset,
                "name": asset,
                "depositAllEnable": False,
                "withdrawAllEnable": False,
                "free": "0",
                "locked": "0",
                "freeze": "0",
                "withdrawing": "0",
                "ipoing": "0",
                "ipoable": "0",
                "storage": "0",
                "isLegalMoney": False,
                "trading": True,
                "networkList": [],
            }
            for asset in assets
        ]

    async def depth(self, call: Call) -> object:
        symbol = self.c.spec_symbol(call.params)
        return self.c.formats.depth(self.c.model, symbol, call.params.limit(500, 1_000))

    async def trades(self, call: Call) -> object:
        params = call.params
        symbol = self.c.spec_symbol(params)
        spec = self.c.markets.specs[symbol]
        chosen = self.c.history[symbol].recent(
            params.limit(500, 1_000), from_id=params.integer("fromId")
        )
        return [self.c.formats.public_trade(spec, trade) for trade in chosen]

    async def agg_trades(self, call: Call) -> object:
        params = call.params
        symbol = self.c.spec_symbol(params)
        spec = self.c.markets.specs[symbol]
        chosen = self.c.history[symbol].recent(
            params.limit(500, 1_000),
            from_id=params.integer("fromId"),
            start=params.integer("startTime"),
            end=params.integer("endTime"),
        )
        return [self.c.formats.agg_trade(spec, trade) for trade in chosen]

    def _candles(self, params: Params, *, mark: bool) -> object:
        symbol = self.c.spec_symbol(params) if params.text("symbol") else self._pair(params)
        spec = self.c.markets.specs[symbol]
        interval = params.required("interval")
        interval_ms = INTERVALS_MS.get(interval)
        if interval_ms is None:
            raise BinanceError(errors.INVALID_PARAMETER, "Invalid interval.")
        history = self.c.history[symbol]
        candles = (history.mark_candles if mark else history.candles).query(
            interval_ms,
            params.integer("startTime"),
            params.integer("endTime"),
            params.limit(500, 1_500),
        )
        return [self.c.formats.kline(spec, candle, interval_ms) for candle in candles]

    def _pair(self, params: Params) -> str:
        """``continuousKlines`` and ``indexPriceKlines`` name the market ``pair``."""
        pair = params.required("pair").upper()
        if pair not in self.c.markets.specs:
            raise BinanceError(errors.BAD_SYMBOL, "Invalid symbol.")
        return pair

    async def klines(self, call: Call) -> object:
        return self._candles(call.params, mark=False)

    async def mark_klines(self, call: Call) -> object:
        return self._candles(call.params, mark=True)

    def _premium(self, symbol: str, now: int) -> dict[str, object]:
        c = self.c
        spec = c.markets.specs[symbol]
        mark = c.board.mark.get(symbol)
        funding = c.formats.views.funding(c.model, c.board, symbol)
        mark_price = None if mark is None else mark.mark
        if mark_price is None:
            mark_price = c.model.price(symbol)
        return {
            "symbol": symbol,
            "markPrice": c.formats.price(spec, mark_price),
            "indexPrice": c.formats.price(spec, None if mark is None else mark.index),
            "estimatedSettlePrice": c.formats.price(spec, None if mark is None else mark.index),
            "lastFundingRate": funding.predicted_rate or funding.last_rate or "0",
            "interestRate": "0.0001",
            "nextFundingTime": funding.next_funding_time or 0,
            "time": now if mark is None else mark.time,
        }

    async def premium_index(self, call: Call) -> object:
        symbol = self.c.optional_symbol(call.params)
        if symbol is not None:
            return self._premium(symbol, call.now)
        return [self._premium(s, call.now) for s in self.c.markets.specs]

    async def funding_rate(self, call: Call) -> object:
        params = call.params
        symbols = [self.c.spec_symbol(params)] if params.text("symbol") else self.c.markets.specs
        start, end = params.integer("startTime"), params.integer("endTime")
        rows = []
        for symbol in symbols:
            spec = self.c.markets.specs[symbol]
            for settlement in self.c.model.settlements[symbol]:
                if (start is None or settlement.funding_time >= start) and (
                    end is None or settlement.funding_time <= end
                ):
                    rows.append(
                        {
                            "symbol": symbol,
                            "fundingRate": rate(settlement.rate),
                            "fundingTime": settlement.funding_time,
                            "markPrice": spec.ticks_to_str(settlement.mark),
                        }
                    )
        rows.sort(key=lambda row: (int(str(row["fundingTime"])), str(row["symbol"])))
        limit = params.limit(100, 1_000)
        return rows[:limit] if start is not None else rows[-limit:]

    async def funding_info(self, call: Call) -> object:
        return [
            {
                "symbol": symbol,
                "adjustedFundingRateCap": "0.03",
                "adjustedFundingRateFloor": "-0.03",
                "fundingIntervalHours": 8,
                "disclaimer": False,
            }
            for symbol in self.c.markets.specs
        ]

    async def ticker_24h(self, call: Call) -> object:
        symbol = self.c.optional_symbol(call.params)
        if symbol is not None:
            return self.c.formats.ticker_24h(self.c.model, symbol)
        return [self.c.formats.ticker_24h(self.c.model, s) for s in self.c.markets.specs]

    def _price(self, symbol: str) -> dict[str, object]:
        spec = self.c.markets.specs[symbol]
        last = self.c.model.last.get(symbol)
        return {
            "symbol": symbol,
            "price": self.c.formats.price(spec, None if last is None else last[0]),
            "time": self.c.model.time,
        }

    async def ticker_price(self, call: Call) -> object:
        symbol = self.c.optional_symbol(call.params)
        if symbol is not None:
            return self._price(symbol)
        return [self._price(s) for s in self.c.markets.specs]

    async def open_interest(self, call: Call) -> object:
        """Σ of the open long positions, base quantity, as the front has read the log."""
        symbol = self.c.spec_symbol(call.params)
        spec = self.c.markets.specs[symbol]
        return {
            "openInterest": spec.lots_to_str(self.c.model.open_interest[symbol]),
            "symbol": symbol,
            "time": self.c.model.time,
        }

    async def book_ticker(self, call: Call) -> object:
        symbol = self.c.optional_symbol(call.params)
        if symbol is not None:
            return self.c.formats.book_ticker(self.c.model, symbol)
        return [self.c.formats.book_ticker(self.c.model, s) for s in self.c.markets.specs]
