"""The read model's state in Binance USDⓈ-M's JSON shapes. Pure.

Binance's field names, decimals as strings on each market's grid (through the native gateway's
``Views``, so both fronts write the same figures), times in ms of event time. Where Binance
has a field we have no counterpart for, it gets Binance's neutral value (``positionSide``
``BOTH``, ``priceProtect`` false) and docs/binance-api.md says so.
"""

from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import msgspec

from exchange.commands import PlaceOrder
from exchange.engine_events import Liquidation
from exchange.events import ExpireReason
from exchange.market import MarketSpec
from exchange.orders import CONDITIONAL_TYPES, OrderType, Side, TriggerBy
from exchange.units import RATE_ONE
from services.binance import client_orders
from services.binance.margin_figures import AccountFigures, PositionFigures
from services.binance.market_history import Candle, PublicTrade
from services.gateway.protocol import OrderStatus
from services.gateway.read_model import FillState, OrderState, ReadModel, Stamped
from services.gateway.views import Views, rate

Json = dict[str, Any]

ORDER_TYPES = {
    OrderType.LIMIT: "LIMIT",
    OrderType.MARKET: "MARKET",
    OrderType.STOP_LIMIT: "STOP",
    OrderType.STOP_MARKET: "STOP_MARKET",
    OrderType.TAKE_PROFIT_LIMIT: "TAKE_PROFIT",
    OrderType.TAKE_PROFIT_MARKET: "TAKE_PROFIT_MARKET",
    OrderType.TRAILING_STOP_MARKET: "TRAILING_STOP_MARKET",
}
"""Our order types by Binance's names (a stop-limit is Binance's ``STOP``)."""
FROM_BINANCE_TYPE = {name: kind for kind, name in ORDER_TYPES.items()}

STATUSES = {
    OrderStatus.NEW: "NEW",
    OrderStatus.PARTIALLY_FILLED: "PARTIALLY_FILLED",
    OrderStatus.FILLED: "FILLED",
    OrderStatus.CANCELLED: "CANCELED",
    OrderStatus.EXPIRED: "EXPIRED",
}
WORKING_TYPES = {TriggerBy.LAST: "CONTRACT_PRICE", TriggerBy.MARK: "MARK_PRICE"}
_EXTRA_PLACES = 4
FAR_FUTURE_MS = 4_133_404_800_000
"""Binance's ``deliveryDate`` of a perpetual (2100-12-25)."""


def side(value: Side) -> str:
    return "BUY" if value is Side.BUY else "SELL"


def closes_position(terms: PlaceOrder, spec: MarketSpec) -> bool:
    """Whether an order is a ``closePosition=true`` one (``order_params``): a reduce-only stop-
    or take-profit-market order for the market's largest quantity. One placed by hand with
    that quantity and ``reduceOnly`` is the same order, and is shown so too."""
    return (
        terms.reduce_only
        and terms.qty == spec.max_qty
        and terms.type in (OrderType.STOP_MARKET, OrderType.TAKE_PROFIT_MARKET)
    )


def status(state: OrderState, spec: MarketSpec) -> str:
    """Binance's order status. A close-position order that closed the position is ``FILLED``,
    as on Binance, though the engine expired the rest of its (largest) quantity."""
    if (
        state.status is OrderStatus.EXPIRED
        and state.end_reason == ExpireReason.REDUCE_ONLY
        and state.filled
        and closes_position(state.terms, spec)
    ):
        return "FILLED"
    return STATUSES[state.status]


def price_match(terms: PlaceOrder) -> str:
    return "NONE" if terms.price_match is None else terms.price_match.value


def time_in_force(terms: PlaceOrder) -> str:
    """Binance's ``timeInForce``: ``GTD`` for an order with an expiry time (the engine's GTC
    with an ``expire_time``), else the engine's own."""
    return "GTD" if terms.expire_time is not None else terms.tif.value


def places(step: str) -> int:
    exponent = Decimal(step).normalize().as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def percent(fraction_units: int) -> str:
    """A rate (1e-8 units) in percent, as Binance writes a trailing stop's ``priceRate``."""
    return format((Decimal(fraction_units) * 100 / RATE_ONE).normalize(), "f")


def average(numerator: int, denominator: int, spec: MarketSpec) -> str:
    """``numerator / denominator`` ticks as a price, half-even, four places below the tick
    (the native gateway's rounding of average prices)."""
    if not denominator:
        return "0"
    digits = places(spec.tick_size) + _EXTRA_PLACES
    value = Decimal(numerator) * spec.tick / Decimal(denominator)
    return format(value.quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_EVEN), "f")


def number(text: str) -> msgspec.Raw:
    """A decimal string as a JSON number, digit for digit (Binance writes some figures, such
    as the leverage brackets, as numbers): no float ever holds it."""
    return msgspec.Raw(text.encode())


class Formats:
    """Binance shapes for one set of markets."""

    def __init__(self, views: Views) -> None:
        self.views = views
        self.markets = views.markets
        self.asset = views.markets.settle_asset

    def money(self, units: int) -> str:
        return self.views.money(units)

    def price(self, spec: MarketSpec, ticks: int | None) -> str:
        return "0" if ticks is None else spec.ticks_to_str(ticks)

    # ------------------------------------------------------------------------ market data

    def symbol_info(self, spec: MarketSpec) -> Json:
        up = Decimal(1) + Decimal(spec.price_band_up) / RATE_ONE
        down = Decimal(1) - Decimal(spec.price_band_down) / RATE_ONE
        filters: list[Json] = [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": spec.tick_size,
                "maxPrice": spec.ticks_to_str(spec.max_price),
                "tickSize": spec.tick_size,
            },
            {
                "filterType": "LOT_SIZE",
                "minQty": spec.lots_to_str(spec.min_qty),
                "maxQty": spec.lots_to_str(spec.max_qty),
                "stepSize": spec.lot_size,
            },
            {
                "filterType": "MARKET_LOT_SIZE",
                "minQty": spec.lots_to_str(spec.min_qty),
                "maxQty": spec.lots_to_str(spec.max_qty),
                "stepSize": spec.lot_size,
            },
            {"filterType": "MAX_NUM_ORDERS", "limit": 200},
            {"filterType": "MAX_NUM_ALGO_ORDERS", "limit": 10},
            {"filterType": "MIN_NOTIONAL", "notional": self.money(spec.min_notional)},
        ]
        if spec.price_band_up or spec.price_band_down:
            filters.append(
                {
                    "filterType": "PERCENT_PRICE",
                    "multiplierUp": format(up.normalize(), "f"),
                    "multiplierDown": format(down.normalize(), "f"),
                    "multiplierDecimal": "4",
                }
            )
        brackets = spec.leverage_brackets
        return {
            "symbol": spec.symbol,
            "pair": spec.symbol,
            "contractType": "PERPETUAL",
            "deliveryDate": FAR_FUTURE_MS,
            "onboardDate": 0,
            "status": "TRADING",
            "maintMarginPercent": percent(brackets[0].maint_rate) if brackets else "0",
            "requiredMarginPercent": (
                format(Decimal(100) / brackets[0].max_leverage, "f") if brackets else "0"
            ),
            "baseAsset": spec.base_asset,
            "quoteAsset": spec.quote_asset,
            "marginAsset": spec.settle_asset,
            "pricePrecision": places(spec.tick_size),
            "quantityPrecision": places(spec.lot_size),
            "baseAssetPrecision": 8,
            "quotePrecision": 8,
            "underlyingType": "COIN",
            "underlyingSubType": [],
            "triggerProtect": "0",
            "liquidationFee": rate(spec.liquidation_fee),
            "marketTakeBound": rate(spec.market_protection),
            "maxMoveOrderLimit": 10000,
            "filters": filters,
            "orderTypes": list(ORDER_TYPES.values()),
            "timeInForce": ["GTC", "IOC", "FOK", "GTX", "GTD"],
        }

    def exchange_info(self, now: int) -> Json:
        return {
            "timezone": "UTC",
            "serverTime": now,
            "futuresType": "U_MARGINED",
            "rateLimits": [],
            "exchangeFilters": [],
            "assets": [
                {"asset": self.asset, "marginAvailable": True, "autoAssetExchange": "-10000"}
            ],
            "symbols": [self.symbol_info(spec) for spec in self.markets.specs.values()],
        }

    def depth(self, model: ReadModel, symbol: str, limit: int) -> Json:
        spec = self.markets.specs[symbol]
        book = model.books[symbol]
        bids = list(reversed(book.bids.items()))[:limit]
        asks = list(book.asks.items())[:limit]
        return {
            "lastUpdateId": book.update_id,
            "E": model.time,
            "T": model.time,
            "bids": [[spec.ticks_to_str(p), spec.lots_to_str(q)] for p, q in bids],
            "asks": [[spec.ticks_to_str(p), spec.lots_to_str(q)] for p, q in asks],
        }

    def public_trade(self, spec: MarketSpec, trade: PublicTrade) -> Json:
        return {
            "id": trade.trade_id,
            "price": spec.ticks_to_str(trade.price),
            "qty": spec.lots_to_str(trade.qty),
            "quoteQty": self.money(trade.price * trade.qty * spec.multiplier),
            "time": trade.time,
            "isBuyerMaker": trade.taker_side is Side.SELL,
        }

    def agg_trade(self, spec: MarketSpec, trade: PublicTrade) -> Json:
        """Each trade is its own aggregate: ``a`` is the trade id."""
        return {
            "a": trade.trade_id,
            "p": spec.ticks_to_str(trade.price),
            "q": spec.lots_to_str(trade.qty),
            "f": trade.trade_id,
            "l": trade.trade_id,
            "T": trade.time,
            "m": trade.taker_side is Side.SELL,
        }

    def kline(self, spec: MarketSpec, candle: Candle, interval_ms: int) -> list[object]:
        return [
            candle.open_time,
            spec.ticks_to_str(candle.open),
            spec.ticks_to_str(candle.high),
            spec.ticks_to_str(candle.low),
            spec.ticks_to_str(candle.close),
            spec.lots_to_str(candle.volume),
            candle.open_time + interval_ms - 1,
            self.money(candle.notional * spec.multiplier),
            candle.count,
            spec.lots_to_str(candle.taker_buy_volume),
            self.money(candle.taker_buy_notional * spec.multiplier),
            "0",
        ]

    def ticker_24h(self, model: ReadModel, symbol: str) -> Json:
        spec = self.markets.specs[symbol]
        day = model.stats_24h[symbol].stats()
        last = model.last.get(symbol)
        time = model.time
        if day is None:
            return {
                "symbol": symbol,
                "priceChange": "0",
                "priceChangePercent": "0",
                "weightedAvgPrice": "0",
                "lastPrice": self.price(spec, None if last is None else last[0]),
                "lastQty": "0" if last is None else spec.lots_to_str(last[1]),
                "openPrice": "0",
                "highPrice": "0",
                "lowPrice": "0",
                "volume": "0",
                "quoteVolume": "0",
                "openTime": time - 86_400_000,
                "closeTime": time,
                "firstId": -1,
                "lastId": -1,
                "count": 0,
            }
        view = self.views.ticker(model, symbol)
        assert last is not None
        return {
            "symbol": symbol,
            "priceChange": view.price_change,
            "priceChangePercent": view.price_change_percent,
            "weightedAvgPrice": average(day.notional, day.volume, spec),
            "lastPrice": spec.ticks_to_str(last[0]),
            "lastQty": spec.lots_to_str(last[1]),
            "openPrice": view.open,
            "highPrice": view.high,
            "lowPrice": view.low,
            "volume": view.volume,
            "quoteVolume": view.quote_volume,
            "openTime": time - 86_400_000,
            "closeTime": time,
            "firstId": 0,
            "lastId": 0,
            "count": day.count,
        }

    def book_ticker(self, model: ReadModel, symbol: str) -> Json:
        spec = self.markets.specs[symbol]
        book = model.books[symbol]
        bid = book.bids.peekitem(-1) if book.bids else (None, 0)
        ask = book.asks.peekitem(0) if book.asks else (None, 0)
        return {
            "symbol": symbol,
            "bidPrice": self.price(spec, bid[0]),
            "bidQty": spec.lots_to_str(bid[1]),
            "askPrice": self.price(spec, ask[0]),
            "askQty": spec.lots_to_str(ask[1]),
            "time": model.time,
            "lastUpdateId": book.update_id,
        }

    # ------------------------------------------------------------------------------ orders

    def order(self, state: OrderState) -> Json:
        spec = self.markets.specs[state.symbol]
        terms = state.terms
        kind = ORDER_TYPES[terms.type]
        close = closes_position(terms, spec)
        body: Json = {
            "orderId": state.order_id,
            "symbol": state.symbol,
            "status": status(state, spec),
            "clientOrderId": client_orders.shown(state),
            "price": self.price(spec, state.price),
            "avgPrice": average(state.filled_value, state.filled, spec),
            "origQty": spec.lots_to_str(0 if close else state.qty),
            "executedQty": spec.lots_to_str(state.filled),
            "cumQty": spec.lots_to_str(state.filled),
            "cumQuote": self.money(state.filled_value * spec.multiplier),
            "timeInForce": time_in_force(terms),
            "type": kind,
            "reduceOnly": terms.reduce_only,
            "closePosition": close,
            "side": side(terms.side),
            "positionSide": "BOTH",
            "stopPrice": self.price(spec, terms.stop_price),
            "workingType": WORKING_TYPES[terms.trigger],
            "priceProtect": False,
            "origType": kind,
            "priceMatch": price_match(terms),
            "selfTradePreventionMode": terms.stp.value,
            "goodTillDate": terms.expire_time or 0,
            "time": state.created,
            "updateTime": state.updated,
        }
        if terms.type is OrderType.TRAILING_STOP_MARKET:
            body["activatePrice"] = self.price(spec, terms.activation_price)
            body["priceRate"] = percent(terms.callback_rate or 0)
        return body

    def algo_order(self, state: OrderState) -> Json:
        """A conditional order as Binance's algo service shows it (``/fapi/v1/algoOrder``): our
        order id is its ``algoId`` and, once triggered, its ``actualOrderId`` too."""
        spec = self.markets.specs[state.symbol]
        terms = state.terms
        close = closes_position(terms, spec)
        shown = status(state, spec)
        if shown in ("CANCELED", "EXPIRED"):
            algo_status = shown
        elif shown == "FILLED":
            algo_status = "FINISHED"
        else:
            algo_status = "TRIGGERED" if state.triggered else "NEW"
        return {
            "algoId": state.order_id,
            "clientAlgoId": client_orders.shown(state),
            "algoType": "CONDITIONAL",
            "orderType": ORDER_TYPES[terms.type],
            "symbol": state.symbol,
            "side": side(terms.side),
            "positionSide": "BOTH",
            "timeInForce": time_in_force(terms),
            "quantity": spec.lots_to_str(0 if close else state.qty),
            "algoStatus": algo_status,
            "actualOrderId": str(state.order_id) if state.triggered else "",
            "actualPrice": average(state.filled_value, state.filled, spec),
            "triggerPrice": self.price(spec, terms.stop_price),
            "price": self.price(spec, state.price),
            "icebergQuantity": None,
            "tpTriggerPrice": "0",
            "tpPrice": "0",
            "slTriggerPrice": "0",
            "slPrice": "0",
            "tpOrderType": "",
            "selfTradePreventionMode": terms.stp.value,
            "workingType": WORKING_TYPES[terms.trigger],
            "priceMatch": price_match(terms),
            "closePosition": close,
            "priceProtect": False,
            "reduceOnly": terms.reduce_only,
            "activatePrice": self.price(spec, terms.activation_price),
            "callbackRate": percent(terms.callback_rate or 0),
            "createTime": state.created,
            "updateTime": state.updated,
            "triggerTime": state.updated if state.triggered else 0,
            "goodTillDate": terms.expire_time or 0,
        }

    def force_order(self, stamped: Stamped) -> Json:
        """An account's liquidation step, or an ADL that closed part of its position, as
        Binance's ``forceOrders`` shows them: an IOC limit order, ``autoclose-<orderId>`` for a
        liquidation (the step's order: its book fills, and for a full step the rest deleveraged
        at the bankruptcy price), ``adl_autoclose`` for an ADL (no order of the engine's: its
        ``orderId`` is 0)."""
        event = stamped.event
        spec = self.markets.specs[event.symbol]
        if isinstance(event, Liquidation):
            executed = event.filled + event.deleveraged
            value = event.filled_value + event.deleveraged * event.bankruptcy_price
            order_id, client_id = event.order_id, f"autoclose-{event.order_id}"
            order_side = Side.SELL if event.size > 0 else Side.BUY
            price, qty = event.limit_price, event.qty
        else:
            executed, value = event.qty, event.qty * event.price
            order_id, client_id = 0, f"adl_autoclose-{stamped.time}"
            order_side, price, qty = event.side, event.price, event.qty
        return {
            "orderId": order_id,
            "symbol": event.symbol,
            "status": "FILLED" if executed == qty else "EXPIRED",
            "clientOrderId": client_id,
            "price": spec.ticks_to_str(price),
            "avgPrice": average(value, executed, spec),
            "origQty": spec.lots_to_str(qty),
            "executedQty": spec.lots_to_str(executed),
            "cumQuote": self.money(value * spec.multiplier),
            "timeInForce": "IOC",
            "type": "LIMIT",
            "reduceOnly": False,
            "closePosition": False,
            "side": side(order_side),
            "positionSide": "BOTH",
            "stopPrice": "0",
            "workingType": "CONTRACT_PRICE",
            "origType": "LIMIT",
            "time": stamped.time,
            "updateTime": stamped.time,
        }

    def user_trade(self, fill: FillState) -> Json:
        spec = self.markets.specs[fill.symbol]
        return {
            "buyer": fill.side is Side.BUY,
            "commission": self.money(fill.fee),
            "commissionAsset": self.asset,
            "id": fill.trade_id,
            "maker": fill.maker,
            "orderId": fill.order_id,
            "price": spec.ticks_to_str(fill.price),
            "qty": spec.lots_to_str(fill.qty),
            "quoteQty": self.money(fill.price * fill.qty * spec.multiplier),
            "realizedPnl": self.money(fill.realized_pnl),
            "side": side(fill.side),
            "positionSide": "BOTH",
            "symbol": fill.symbol,
            "time": fill.time,
        }

    # ------------------------------------------------------------------- account, positions

    def position_risk(self, position: PositionFigures, time: int) -> Json:
        spec = self.markets.specs[position.symbol]
        entry = "0"
        if position.size:
            entry = average(position.entry_notional, abs(position.size) * spec.multiplier, spec)
        brackets = spec.leverage_brackets
        isolated = position.isolated_wallet + (
            position.unrealized_pnl if position.mode.value == "isolated" else 0
        )
        return {
            "symbol": position.symbol,
            "positionSide": "BOTH",
            "positionAmt": spec.lots_to_str(position.size),
            "entryPrice": entry,
            "breakEvenPrice": entry,
            "markPrice": self.price(spec, position.price),
            "unRealizedProfit": self.money(position.unrealized_pnl),
            "liquidationPrice": self.price(spec, position.liquidation_price),
            "leverage": str(position.leverage),
            "maxNotionalValue": self.money(
                max(
                    (b.notional_cap for b in brackets if b.max_leverage >= position.leverage),
                    default=0,
                )
            ),
            "marginType": position.mode.value,
            "isolatedMargin": self.money(isolated),
            "isAutoAddMargin": "false",
            "notional": self.money(position.notional),
            "isolatedWallet": self.money(position.isolated_wallet),
            "marginAsset": self.asset,
            "initialMargin": self.money(position.initial_margin + position.open_order_margin),
            "maintMargin": self.money(position.maintenance),
            "positionInitialMargin": self.money(position.initial_margin),
            "openOrderInitialMargin": self.money(position.open_order_margin),
            "adl": 0,
            "bidNotional": "0",
            "askNotional": "0",
            "updateTime": time,
        }

    def account(self, figures: AccountFigures, time: int, *, open_only: bool | None = True) -> Json:
        """``/fapi/v2|v3/account``: v2 lists every market's position, v3 the open ones only
        (``open_only``), the balance endpoints none (None)."""
        m = self.money
        available = figures.available
        cross_wallet = figures.wallet
        asset = {
            "asset": self.asset,
            "walletBalance": m(figures.wallet_balance),
            "unrealizedProfit": m(figures.unrealized_pnl),
            "marginBalance": m(figures.margin_balance),
            "maintMargin": m(figures.maintenance),
            "initialMargin": m(figures.position_initial_margin + figures.open_order_margin),
            "positionInitialMargin": m(figures.position_initial_margin),
            "openOrderInitialMargin": m(figures.open_order_margin),
            "crossWalletBalance": m(cross_wallet),
            "crossUnPnl": m(figures.cross_unrealized_pnl),
            "availableBalance": m(available),
            "maxWithdrawAmount": m(min(available, cross_wallet)),
            "marginAvailable": True,
            "updateTime": time,
        }
        body: Json = {
            "feeTier": 0,
            "canTrade": True,
            "canDeposit": True,
            "canWithdraw": True,
            "updateTime": 0,
            "multiAssetsMargin": False,
            "tradeGroupId": -1,
            "totalInitialMargin": asset["initialMargin"],
            "totalMaintMargin": asset["maintMargin"],
            "totalWalletBalance": asset["walletBalance"],
            "totalUnrealizedProfit": asset["unrealizedProfit"],
            "totalMarginBalance": asset["marginBalance"],
            "totalPositionInitialMargin": asset["positionInitialMargin"],
            "totalOpenOrderInitialMargin": asset["openOrderInitialMargin"],
            "totalCrossWalletBalance": asset["crossWalletBalance"],
            "totalCrossUnPnl": asset["crossUnPnl"],
            "availableBalance": asset["availableBalance"],
            "maxWithdrawAmount": asset["maxWithdrawAmount"],
            "assets": [asset],
        }
        if open_only is not None:
            body["positions"] = [
                self.position_risk(p, time) for p in figures.positions if p.size or not open_only
            ]
        return body

    def balance(self, figures: AccountFigures, time: int) -> list[Json]:
        """``/fapi/v2|v3/balance``."""
        account = self.account(figures, time, open_only=None)["assets"][0]
        return [
            {
                "accountAlias": "paper",
                "asset": self.asset,
                "balance": account["walletBalance"],
                "crossWalletBalance": account["crossWalletBalance"],
                "crossUnPnl": account["crossUnPnl"],
                "availableBalance": account["availableBalance"],
                "maxWithdrawAmount": account["maxWithdrawAmount"],
                "marginAvailable": True,
                "updateTime": time,
            }
        ]

    def leverage_brackets(self, spec: MarketSpec) -> Json:
        floor = 0
        brackets = []
        for index, bracket in enumerate(spec.leverage_brackets, start=1):
            brackets.append(
                {
                    "bracket": index,
                    "initialLeverage": bracket.max_leverage,
                    "notionalCap": number(self.money(bracket.notional_cap)),
                    "notionalFloor": number(self.money(floor)),
                    "maintMarginRatio": number(rate(bracket.maint_rate)),
                    "cum": number(self.money(bracket.maint_amount)),
                }
            )
            floor = bracket.notional_cap
        return {"symbol": spec.symbol, "notionalCoef": number("1"), "brackets": brackets}


def is_conditional(state: OrderState) -> bool:
    return state.terms.type in CONDITIONAL_TYPES
