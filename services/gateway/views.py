"""The read model's integers as the protocol's decimal strings. Pure.

Exact where the value is exact (prices, quantities, amounts on their grids); an average price
or an entry price, a ratio that need not end, is rounded half-even to four places below the
tick, and the exact figure beside it (``entry_notional``) is there for whoever needs it.
"""

from collections.abc import Iterable, Mapping
from decimal import ROUND_HALF_EVEN, Decimal

from exchange import margin
from exchange.engine_commands import MarginMode
from exchange.engine_events import Deleveraged, Liquidation
from exchange.events import Trade
from exchange.market import MarketSpec
from exchange.risk import Holding, available_balance
from exchange.units import RATE_ONE, from_units
from services.gateway import protocol
from services.gateway.convert import Markets
from services.gateway.price_board import PriceBoard
from services.gateway.read_model import (
    FillState,
    InsuranceMovement,
    OrderState,
    PositionState,
    ReadModel,
    SettlementState,
    Stamped,
)
from services.gateway.risk_board import AdlKey, RiskBoard
from services.l2_book import L2Book
from services.prices import IndexPrice, MarkTick
from services.risk_messages import MarginCall

_EXTRA_PLACES = 4


class Views:
    """Formats state for one set of markets."""

    def __init__(self, markets: Markets) -> None:
        self.markets = markets

    def money(self, amount: int) -> str:
        return from_units(amount, self.markets.money_step)

    def price(self, spec: MarketSpec, ticks: int | None) -> str | None:
        return None if ticks is None else spec.ticks_to_str(ticks)

    def market(self, spec: MarketSpec) -> protocol.MarketView:
        brackets = spec.leverage_brackets
        return protocol.MarketView(
            symbol=spec.symbol,
            base_asset=spec.base_asset,
            quote_asset=spec.quote_asset,
            settle_asset=spec.settle_asset,
            tick_size=spec.tick_size,
            lot_size=spec.lot_size,
            min_qty=spec.lots_to_str(spec.min_qty),
            max_qty=spec.lots_to_str(spec.max_qty),
            max_price=spec.ticks_to_str(spec.max_price),
            min_notional=self.money(spec.min_notional),
            maker_fee=rate(spec.maker_fee),
            taker_fee=rate(spec.taker_fee),
            max_leverage=brackets[0].max_leverage if brackets else 0,
        )

    def order(self, order: OrderState) -> protocol.OrderView:
        spec = self.markets.specs[order.symbol]
        terms = order.terms
        average = None
        if order.filled:
            average = _ratio(order.filled_value, order.filled, spec.tick)
        return protocol.OrderView(
            symbol=order.symbol,
            order_id=order.order_id,
            client_order_id=terms.client_order_id,
            side=terms.side,
            type=terms.type,
            status=order.status,
            qty=spec.lots_to_str(order.qty),
            open_qty=spec.lots_to_str(order.open),
            filled_qty=spec.lots_to_str(order.filled),
            avg_price=average,
            price=self.price(spec, order.price),
            stop_price=self.price(spec, terms.stop_price),
            activation_price=self.price(spec, terms.activation_price),
            callback_rate=None if terms.callback_rate is None else rate(terms.callback_rate),
            tif=terms.tif,
            trigger=terms.trigger,
            reduce_only=terms.reduce_only,
            stp=terms.stp,
            expire_time=terms.expire_time,
            price_match=terms.price_match,
            triggered=order.triggered,
            end_reason=order.end_reason,
            created=order.created,
            updated=order.updated,
        )

    def fill(self, fill: FillState) -> protocol.FillView:
        spec = self.markets.specs[fill.symbol]
        return protocol.FillView(
            symbol=fill.symbol,
            trade_id=fill.trade_id,
            order_id=fill.order_id,
            side=fill.side,
            role="maker" if fill.maker else "taker",
            price=spec.ticks_to_str(fill.price),
            qty=spec.lots_to_str(fill.qty),
            fee=self.money(fill.fee),
            realized_pnl=self.money(fill.realized_pnl),
            time=fill.time,
        )

    def position(self, model: ReadModel, account: int, symbol: str) -> protocol.PositionView:
        spec = self.markets.specs[symbol]
        position: PositionState = model.position(account, symbol)
        entry = None
        if position.size:
            # entry_notional is |size| × price × multiplier minor units: the price in ticks is
            # entry_notional / (|size| × multiplier)
            entry = _ratio(position.entry_notional, abs(position.size) * spec.multiplier, spec.tick)
        return protocol.PositionView(
            symbol=symbol,
            size=spec.lots_to_str(position.size),
            entry_price=entry,
            entry_notional=self.money(position.entry_notional),
            realized_pnl=self.money(position.realized_pnl),
            isolated_wallet=self.money(model.account(account).isolated.get(symbol, 0)),
            margin_mode=position.mode,
            leverage=position.leverage,
        )

    def balance(self, model: ReadModel, account: int) -> protocol.BalanceView:
        state = model.account(account)
        return protocol.BalanceView(
            asset=self.markets.settle_asset,
            wallet=self.money(state.wallet),
            isolated=self.money(sum(state.isolated.values())),
            order_margin=self.money(sum(state.order_margin.values())),
            available=self.money(available(model, self.markets.specs, account)),
        )

    def book(
        self,
        symbol: str,
        kind: str,
        update_id: int,
        bids: Iterable[tuple[int, int]],
        asks: Iterable[tuple[int, int]],
        *,
        first: int | None = None,
    ) -> bytes:
        """A ``book.<SYMBOL>`` payload, encoded once for every subscriber: levels as
        ``[price, qty]`` strings, ``bids`` given highest first and ``asks`` lowest first.
        ``first``: the first update a delta covers (``update_id`` if it covers one)."""
        spec = self.markets.specs[symbol]
        levels = protocol.BookLevels(
            type=kind,
            symbol=symbol,
            first_update_id=update_id if first is None else first,
            update_id=update_id,
            bids=[_level(spec, price, qty) for price, qty in bids],
            asks=[_level(spec, price, qty) for price, qty in asks],
        )
        return protocol.ENCODER.encode(levels)

    def book_snapshot(self, symbol: str, book: L2Book) -> bytes:
        bids, asks = book.bids.items(), book.asks.items()
        return self.book(symbol, "snapshot", book.update_id, reversed(bids), asks)

    def trade(self, symbol: str, trade: Trade, time: int) -> protocol.TradeView:
        spec = self.markets.specs[symbol]
        return protocol.TradeView(
            symbol=symbol,
            trade_id=trade.trade_id,
            price=spec.ticks_to_str(trade.price),
            qty=spec.lots_to_str(trade.qty),
            taker_side=trade.taker_side,
            time=time,
        )

    def ticker(self, model: ReadModel, symbol: str) -> protocol.TickerView:
        spec = self.markets.specs[symbol]
        book = model.books[symbol]
        bid = book.bids.peekitem(-1) if book.bids else None
        ask = book.asks.peekitem(0) if book.asks else None
        last = model.last.get(symbol)
        day = model.stats_24h[symbol].stats()
        change = None if day is None else day.close - day.open
        return protocol.TickerView(
            symbol=symbol,
            best_bid=None if bid is None else spec.ticks_to_str(bid[0]),
            best_bid_qty=None if bid is None else spec.lots_to_str(bid[1]),
            best_ask=None if ask is None else spec.ticks_to_str(ask[0]),
            best_ask_qty=None if ask is None else spec.lots_to_str(ask[1]),
            last=None if last is None else spec.ticks_to_str(last[0]),
            open=None if day is None else spec.ticks_to_str(day.open),
            high=None if day is None else spec.ticks_to_str(day.high),
            low=None if day is None else spec.ticks_to_str(day.low),
            volume=spec.lots_to_str(0 if day is None else day.volume),
            quote_volume=self.money(0 if day is None else day.notional * spec.multiplier),
            price_change=None if change is None else spec.ticks_to_str(change),
            price_change_percent=None if day is None else _percent(day.close, day.open),
            count=0 if day is None else day.count,
            open_interest=spec.lots_to_str(model.open_interest[symbol]),
            time=model.time,
        )

    def index(self, index: IndexPrice) -> protocol.IndexView:
        spec = self.markets.specs[index.symbol]
        return protocol.IndexView(
            symbol=index.symbol,
            time=index.time,
            price=self.price(spec, index.price),
            frozen=index.frozen,
            sources=[
                protocol.IndexSourceView(
                    source=source.source,
                    state=source.state,
                    weight=source.weight,
                    price=self.price(spec, source.price),
                    time=source.time,
                )
                for source in index.sources
            ],
        )

    def mark(self, mark: MarkTick) -> protocol.MarkView:
        spec = self.markets.specs[mark.symbol]
        predicted = mark.predicted_rate
        return protocol.MarkView(
            symbol=mark.symbol,
            time=mark.time,
            mark=self.price(spec, mark.mark),
            index=self.price(spec, mark.index),
            frozen=mark.frozen,
            last_rate=rate(mark.funding_rate),
            predicted_rate=None if predicted is None else rate(predicted),
            next_funding_time=mark.next_funding_time,
        )

    def funding(self, model: ReadModel, board: PriceBoard, symbol: str) -> protocol.FundingView:
        """The funding service's estimate with the engine's last settlement. An estimate for a
        boundary already settled is shown as none: the two come from different topics, so the
        settlement can be read before the estimate for the next boundary."""
        settlements = model.settlements[symbol]
        last = settlements[-1] if settlements else None
        estimate = board.predicted.get(symbol)
        if estimate is not None and last is not None and estimate.funding_time <= last.funding_time:
            estimate = None
        return protocol.FundingView(
            symbol=symbol,
            predicted_rate=None if estimate is None else rate(estimate.rate),
            next_funding_time=None if estimate is None else estimate.funding_time,
            last_rate=None if last is None else rate(last.rate),
            last_funding_time=None if last is None else last.funding_time,
        )

    def settlement(self, settlement: SettlementState) -> protocol.FundingSettlementView:
        spec = self.markets.specs[settlement.symbol]
        return protocol.FundingSettlementView(
            symbol=settlement.symbol,
            funding_time=settlement.funding_time,
            rate=rate(settlement.rate),
            mark=spec.ticks_to_str(settlement.mark),
            positions=settlement.positions,
            paid=self.money(settlement.paid),
            received=self.money(settlement.received),
            remainder=self.money(settlement.remainder),
        )

    def liquidation(self, stamped: Stamped) -> protocol.LiquidationView:
        step = stamped.event
        assert isinstance(step, Liquidation)
        spec = self.markets.specs[step.symbol]
        return protocol.LiquidationView(
            symbol=step.symbol,
            margin_mode=step.mode,
            step=step.step.value,
            position=spec.lots_to_str(step.size),
            filled_qty=spec.lots_to_str(step.filled),
            deleveraged_qty=spec.lots_to_str(step.deleveraged),
            mark_price=self.price(spec, step.mark),
            bankruptcy_price=spec.ticks_to_str(step.bankruptcy_price),
            limit_price=spec.ticks_to_str(step.limit_price),
            fee=self.money(step.fee),
            time=stamped.time,
        )

    def adl_notice(self, stamped: Stamped) -> protocol.AdlNoticeView:
        notice = stamped.event
        assert isinstance(notice, Deleveraged)
        spec = self.markets.specs[notice.symbol]
        return protocol.AdlNoticeView(
            symbol=notice.symbol,
            side=notice.side,
            qty=spec.lots_to_str(notice.qty),
            price=spec.ticks_to_str(notice.price),
            rank=notice.rank,
            time=stamped.time,
        )

    def liquidation_history(
        self, model: ReadModel, account: int, limit: int
    ) -> protocol.LiquidationHistoryView:
        history = list(model.account(account).liquidations)
        steps = [s for s in history if isinstance(s.event, Liquidation)][:limit]
        notices = [s for s in history if isinstance(s.event, Deleveraged)][:limit]
        return protocol.LiquidationHistoryView(
            liquidations=[self.liquidation(s) for s in steps],
            adl=[self.adl_notice(s) for s in notices],
        )

    def insurance_movement(self, movement: InsuranceMovement) -> protocol.InsuranceMovementView:
        return protocol.InsuranceMovementView(
            balance=self.money(movement.balance),
            change=self.money(movement.change),
            reason=movement.reason.value,
            time=movement.time,
        )

    def insurance_fund(self, model: ReadModel, limit: int) -> protocol.InsuranceFundView:
        movements = list(model.insurance_movements)[:limit]
        return protocol.InsuranceFundView(
            asset=self.markets.settle_asset,
            balance=self.money(model.insurance),
            movements=[self.insurance_movement(m) for m in movements],
        )

    def margin_call(self, call: MarginCall) -> protocol.MarginCallView:
        return protocol.MarginCallView(
            symbol=call.symbol,
            level=call.level.value,
            ratio=None if call.ratio is None else rate(call.ratio),
            margin_balance=self.money(call.margin_balance),
            maintenance=self.money(call.maintenance),
            time=call.time,
        )

    def adl_quantile(self, board: RiskBoard, account: int, key: AdlKey) -> protocol.AdlQuantileView:
        quantile, time = board.quantiles.get(account, {}).get(key, (None, 0))
        symbol, side = key
        return protocol.AdlQuantileView(
            symbol=symbol, side=side.value, quantile=quantile, time=time
        )

    def margin(self, model: ReadModel, board: RiskBoard, account: int) -> protocol.MarginView:
        """Every margin scope as ``Engine.margin_status`` reckons it (the cross account first,
        then each isolated position), from the positions, wallets and prices of the event log,
        with the same ``exchange.margin`` functions."""
        state = model.account(account)
        calls = board.margin_calls.get(account, {})
        cross: tuple[int, int] | None = None
        isolated: list[tuple[str, int, int]] = []
        for symbol, position in sorted(state.positions.items()):
            if not position.size:
                continue
            spec = self.markets.specs[symbol]
            multiplier = spec.multiplier
            price = model.price(symbol)
            if price is None:
                value, pnl = position.entry_notional, 0
            else:
                value = margin.notional(price, position.size, multiplier)
                pnl = margin.unrealized_pnl(
                    position.size, position.entry_notional, price, multiplier
                )
            mm = margin.maintenance_margin(spec.leverage_brackets, value)
            if position.mode is MarginMode.CROSS:
                held, balance = cross or (0, state.wallet)
                cross = (held + mm, balance + pnl)
            else:
                isolated.append((symbol, mm, state.isolated.get(symbol, 0) + pnl))
        scopes = [("", *cross)] if cross is not None else []
        views = []
        for symbol, mm, balance in scopes + isolated:
            call = calls.get(symbol)
            ratio = margin.margin_ratio(mm, balance)
            views.append(
                protocol.MarginScopeView(
                    symbol=symbol,
                    margin_balance=self.money(balance),
                    maintenance=self.money(mm),
                    ratio=None if ratio is None else rate(ratio),
                    level="safe" if call is None else call.level.value,
                )
            )
        adl = [
            self.adl_quantile(board, account, key)
            for key in sorted(board.quantiles.get(account, {}))
        ]
        return protocol.MarginView(views, adl)


def available(model: ReadModel, specs: Mapping[str, MarketSpec], account: int) -> int:
    """The account's available balance as the engine reckons it (``risk.available_balance``),
    from the event log's positions, wallets and order margins at its prices
    (``ReadModel.price``): what the native gateway and the Binance front both show."""
    state = model.account(account)
    holdings = [
        Holding(held, True, 0, 0, 1, 0, 0)  # orders in a market it holds no position in
        for symbol, held in state.order_margin.items()
        if symbol not in state.positions
    ]
    for symbol, position in state.positions.items():
        price = model.price(symbol)
        pnl = 0
        if price is not None and position.size:
            multiplier = specs[symbol].multiplier
            pnl = margin.unrealized_pnl(position.size, position.entry_notional, price, multiplier)
        holdings.append(
            Holding(
                state.order_margin.get(symbol, 0),
                position.mode is MarginMode.CROSS,
                position.size,
                position.entry_notional,
                position.leverage,
                pnl,
                state.isolated.get(symbol, 0),
            )
        )
    return available_balance(state.wallet, holdings)


def rate(units: int) -> str:
    """A rate (1e-8 units) as a plain fraction: 20_000 is ``"0.0002"``, -937 is
    ``"-0.00000937"``."""
    value = (Decimal(units) / RATE_ONE).normalize()
    return format(value, "f")


def _percent(last: int, first: int) -> str:
    """``(last − first) / first`` in percent, half-even to three places (Binance's)."""
    value = (Decimal(last - first) * 100 / Decimal(first)).quantize(
        Decimal("0.001"), rounding=ROUND_HALF_EVEN
    )
    return format(value if value else value.copy_abs(), "f")  # no "-0.000"


def _level(spec: MarketSpec, price: int, qty: int) -> tuple[str, str]:
    return spec.ticks_to_str(price), spec.lots_to_str(qty)


def _ratio(numerator: int, denominator: int, tick: Decimal) -> str:
    """``numerator / denominator`` ticks as a price, half-even, four places below the tick."""
    exponent = tick.as_tuple().exponent
    places = (-exponent if isinstance(exponent, int) and exponent < 0 else 0) + _EXTRA_PLACES
    value = Decimal(numerator) * tick / Decimal(denominator)
    return format(value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN), "f")
