"""Binance's signed account and trade endpoints (``/fapi/v1``, ``v2``, ``v3``): each command is
the engine command the native gateway would send (``services.gateway.convert``'s and
``exchange.engine_commands``'), answered from the engine's result; each query from the read
model as of the last command applied.
"""

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import replace
from enum import StrEnum

from exchange import commands as core
from exchange import engine_commands as engine
from exchange.engine_commands import MarginMode
from exchange.engine_events import Deleveraged, Liquidation
from exchange.orders import CONDITIONAL_TYPES
from services.binance import batch_params, client_orders, errors, margin_figures, order_params
from services.binance.batch_params import Item
from services.binance.context import Call, Context, Endpoint, Security
from services.binance.errors import BinanceError
from services.binance.formats import Json, is_conditional
from services.binance.order_params import RespType
from services.gateway import results
from services.gateway.read_model import OrderState
from services.gateway.views import rate
from services.wire import CommandResult


class MarginTypeName(StrEnum):
    ISOLATED = "ISOLATED"
    CROSSED = "CROSSED"


class AutoCloseType(StrEnum):
    LIQUIDATION = "LIQUIDATION"
    ADL = "ADL"


class PrivateApi:
    def __init__(self, context: Context) -> None:
        self.c = context

    def endpoints(self) -> list[Endpoint]:
        s = Security.SIGNED
        v1, v2, v3 = "/fapi/v1", "/fapi/v2", "/fapi/v3"
        return [
            Endpoint("POST", f"{v1}/order", s, self.new_order, orders=1),
            Endpoint("POST", f"{v1}/order/test", s, self.test_order),
            Endpoint("GET", f"{v1}/order", s, self.get_order),
            Endpoint("DELETE", f"{v1}/order", s, self.cancel_order, orders=1),
            Endpoint("PUT", f"{v1}/order", s, self.modify_order, orders=1),
            Endpoint("POST", f"{v1}/batchOrders", s, self.batch_place, weight=5, orders=5),
            Endpoint("DELETE", f"{v1}/batchOrders", s, self.batch_cancel, orders=1),
            Endpoint("PUT", f"{v1}/batchOrders", s, self.batch_modify, weight=5, orders=5),
            Endpoint("GET", f"{v1}/openOrder", s, self.get_order),
            Endpoint("GET", f"{v1}/openOrders", s, self.open_orders, weight=5),
            Endpoint("GET", f"{v1}/allOrders", s, self.all_orders, weight=5),
            Endpoint("DELETE", f"{v1}/allOpenOrders", s, self.cancel_all, orders=1),
            Endpoint("POST", f"{v1}/algoOrder", s, self.new_algo_order, orders=1),
            Endpoint("GET", f"{v1}/algoOrder", s, self.get_algo_order),
            Endpoint("DELETE", f"{v1}/algoOrder", s, self.cancel_algo_order, orders=1),
            Endpoint("GET", f"{v1}/openAlgoOrders", s, self.open_algo_orders, weight=5),
            Endpoint("GET", f"{v1}/allAlgoOrders", s, self.all_algo_orders, weight=5),
            Endpoint("DELETE", f"{v1}/algoOpenOrders", s, self.cancel_all, orders=1),
            Endpoint("GET", f"{v1}/userTrades", s, self.user_trades, weight=5),
            Endpoint("GET", f"{v1}/forceOrders", s, self.force_orders, weight=20),
            Endpoint("POST", f"{v1}/leverage", s, self.leverage),
            Endpoint("POST", f"{v1}/marginType", s, self.margin_type),
            Endpoint("POST", f"{v1}/positionMargin", s, self.position_margin),
            Endpoint("GET", f"{v1}/positionMargin/history", s, self.empty),
            Endpoint("GET", f"{v1}/positionSide/dual", s, self.get_dual),
            Endpoint("POST", f"{v1}/positionSide/dual", s, self.set_dual),
            Endpoint("GET", f"{v1}/multiAssetsMargin", s, self.get_multi_assets),
            Endpoint("POST", f"{v1}/multiAssetsMargin", s, self.set_multi_assets),
            Endpoint("GET", f"{v1}/leverageBracket", s, self.leverage_bracket),
            Endpoint("GET", "/fapi/v2/leverageBracket", s, self.leverage_bracket),
            Endpoint("GET", f"{v1}/income", s, self.income, weight=30),
            Endpoint("GET", f"{v1}/accountConfig", s, self.account_config),
            Endpoint("GET", f"{v1}/symbolConfig", s, self.symbol_config),
            Endpoint("GET", f"{v1}/commissionRate", s, self.commission_rate, weight=20),
            Endpoint("GET", f"{v1}/adlQuantile", s, self.empty),
            Endpoint("GET", f"{v2}/account", s, self.account_v2, weight=5),
            Endpoint("GET", f"{v3}/account", s, self.account_v3, weight=5),
            Endpoint("GET", f"{v2}/balance", s, self.balance, weight=5),
            Endpoint("GET", f"{v3}/balance", s, self.balance, weight=5),
            Endpoint("GET", f"{v2}/positionRisk", s, self.position_risk_v2, weight=5),
            Endpoint("GET", f"{v3}/positionRisk", s, self.position_risk_v3, weight=5),
        ]

    # ------------------------------------------------------------------------------ orders

    def _order(self, state: OrderState, *, algo: bool = False) -> Json:
        return self.c.formats.algo_order(state) if algo else self.c.formats.order(state)

    def _place(self, call: Call, *, algo: bool) -> "asyncio.Future[Json]":
        """One new order sent; its answer to come (a batch sends several before it waits)."""
        params = call.params
        symbol = self.c.spec_symbol(params)
        spec = self.c.markets.specs[symbol]
        command, response = order_params.place(params, spec, call.account, algo=algo, now=call.now)
        if algo and not is_conditional_command(command):
            raise BinanceError(
                errors.INVALID_ORDER_TYPE, "algoOrder takes conditional order types only."
            )
        account, model = call.account, self.c.model

        def build(result: CommandResult) -> Json:
            order_id = results.placed(result, model, self.c.formats.views, account, symbol).order_id
            if algo:
                self.c.algo_orders.add((account, symbol, order_id))
            state = model.order(account, symbol, order_id)
            assert state is not None  # ``placed`` found it
            body = self._order(state, algo=algo)
            if response is RespType.ACK and not algo:
                body |= _as_accepted(body)
            return body

        return self.c.submit(command, build)

    async def new_order(self, call: Call) -> object:
        return await self._place(call, algo=False)

    async def new_algo_order(self, call: Call) -> object:
        algo_type = call.params.text("algoType")
        if algo_type is not None and algo_type.upper() != "CONDITIONAL":
            raise errors.bad_value("algoType", "only CONDITIONAL")
        return await self._place(call, algo=True)

    async def test_order(self, call: Call) -> object:
        """Validated like a new order, never sent (Binance's ``order/test``)."""
        symbol = self.c.spec_symbol(call.params)
        spec = self.c.markets.specs[symbol]
        order_params.place(call.params, spec, call.account, algo=False, now=call.now)
        return {}

    def _find(self, call: Call, symbol: str, *, algo: bool = False) -> int:
        """The id of the order a query or modify names, by its id or its client id as this
        instance has read the log (``client_orders.find``)."""
        named = _named(call, algo=algo)
        if isinstance(named, int):
            return named
        found = client_orders.find(self.c.model, call.account, symbol, named)
        if found is None:
            raise BinanceError(errors.NO_SUCH_ORDER, "Order does not exist.")
        return found

    async def get_order(self, call: Call) -> object:
        symbol = self.c.spec_symbol(call.params)
        state = self.c.model.order(call.account, symbol, self._find(call, symbol))
        if state is None:
            raise BinanceError(errors.NO_SUCH_ORDER, "Order does not exist.")
        return self._order(state)

    async def get_algo_order(self, call: Call) -> object:
        symbol = self._algo_symbol(call)
        state = self.c.model.order(call.account, symbol, self._find(call, symbol, algo=True))
        if state is None or not is_conditional(state):
            raise BinanceError(errors.NO_SUCH_ORDER, "Order does not exist.")
        return self._order(state, algo=True)

    def _algo_symbol(self, call: Call) -> str:
        """Binance's algo endpoints take no symbol: the order id or client id alone names the
        order. Ours are per market, so without a symbol the first market with an order under
        that id is taken (a symbol is needed when several have one); ccxt sends it anyway."""
        params, model, account = call.params, self.c.model, call.account
        if params.text("symbol"):
            return self.c.spec_symbol(params)
        algo_id, client_id = params.integer("algoId"), params.text("clientAlgoId")
        for symbol in self.c.markets.specs:
            order_id = algo_id
            if order_id is None and client_id is not None:
                order_id = client_orders.find(model, account, symbol, client_id)
            if order_id is not None and model.order(account, symbol, order_id):
                return symbol
        raise errors.mandatory("symbol")

    def _cancel(
        self, call: Call, symbol: str, target: int | str, *, algo: bool
    ) -> "asyncio.Future[Json]":
        """Cancel the order ``target`` names: its id, or its label for the engine to look up."""
        account, model = call.account, self.c.model
        if isinstance(target, int):
            cancel = core.CancelOrder(order_id=target, account=account)
        else:
            cancel = core.CancelOrder(order_id=0, account=account, client_order_id=target)
        command = engine.OrderCommand(symbol=symbol, order=cancel)

        def build(result: CommandResult) -> Json:
            view = results.order_changed(result, model, self.c.formats.views, account, symbol)
            order_id = view.order_id
            state = model.order(account, symbol, order_id)
            assert state is not None
            if algo:
                return {
                    "algoId": order_id,
                    "clientAlgoId": client_orders.shown(state),
                    "code": "200",
                    "msg": "success",
                }
            return self._order(state)

        return self.c.submit(command, build, cancelling=True)

    def _cancel_one(self, call: Call) -> "asyncio.Future[Json]":
        symbol = self.c.spec_symbol(call.params)
        return self._cancel(call, symbol, self._cancel_target(call, symbol), algo=False)

    def _cancel_target(self, call: Call, symbol: str, *, algo: bool = False) -> int | str:
        """A cancel's order: its id, else its client id as ``client_orders.cancel_target``
        sends it."""
        named = _named(call, algo=algo)
        if isinstance(named, int):
            return named
        return client_orders.cancel_target(self.c.model, call.account, symbol, named)

    async def cancel_order(self, call: Call) -> object:
        return await self._cancel_one(call)

    async def cancel_algo_order(self, call: Call) -> object:
        symbol = self._algo_symbol(call)
        target = self._cancel_target(call, symbol, algo=True)
        return await self._cancel(call, symbol, target, algo=True)

    async def modify_order(self, call: Call) -> object:
        return await self._modify(call)

    def _modify(self, call: Call) -> "asyncio.Future[Json]":
        """Binance's modify: a new price and total quantity for a resting limit order. Ours
        amends the open quantity: the new total less what has filled."""
        params = call.params
        symbol = self.c.spec_symbol(params)
        spec = self.c.markets.specs[symbol]
        order_id = self._find(call, symbol)
        state = self.c.model.order(call.account, symbol, order_id)
        if state is None:
            raise BinanceError(errors.NO_SUCH_ORDER, "Order does not exist.")
        quantity = order_params.units(params.required("quantity"), spec.lot, "quantity")
        price = order_params.units(params.required("price"), spec.tick, "price")
        if quantity <= state.filled:
            raise errors.bad_value("quantity", "not above the quantity already filled")
        account, model = call.account, self.c.model
        command = engine.OrderCommand(
            symbol=symbol,
            order=core.AmendOrder(
                order_id=order_id, account=account, price=price, qty=quantity - state.filled
            ),
        )

        def build(result: CommandResult) -> Json:
            results.order_changed(result, model, self.c.formats.views, account, symbol)
            changed = model.order(account, symbol, order_id)
            assert changed is not None
            return self._order(changed)

        return self.c.submit(command, build)

    async def batch_place(self, call: Call) -> object:
        items = batch_params.orders(call.params)
        return await self._batch(call, items, lambda one: self._place(one, algo=False))

    async def batch_cancel(self, call: Call) -> object:
        symbol = self.c.spec_symbol(call.params)
        return await self._batch(call, batch_params.cancels(call.params, symbol), self._cancel_one)

    async def batch_modify(self, call: Call) -> object:
        return await self._batch(call, batch_params.orders(call.params), self._modify)

    async def _batch(
        self, call: Call, items: list[Item], send: Callable[[Call], "asyncio.Future[Json]"]
    ) -> list[Json]:
        """Each item sent as its own request would be, every one before any is awaited (so
        they ride in one record to the engine); answered once all are, in the items' order:
        the order, or the error the single endpoint would have answered."""
        sent: list[asyncio.Future[Json]] = []
        for item in items:
            try:
                if isinstance(item, BinanceError):
                    raise item
                sent.append(send(replace(call, params=item)))
            except BinanceError as error:
                refused: asyncio.Future[Json] = asyncio.get_running_loop().create_future()
                refused.set_exception(error)
                sent.append(refused)
        outcomes = await asyncio.gather(*sent, return_exceptions=True)
        return [_item_answer(outcome) for outcome in outcomes]

    async def cancel_all(self, call: Call) -> object:
        symbol = self.c.spec_symbol(call.params)
        command = engine.OrderCommand(symbol=symbol, order=core.CancelAll(account=call.account))

        def build(result: CommandResult) -> Json:
            results.cancelled_all(result, symbol)
            return {"code": 200, "msg": "The operation of cancel all open order is done."}

        return await self.c.command(command, build)

    def _orders(self, call: Call, *, algo: bool, finished: bool) -> list[Json]:
        params = call.params
        symbol = self.c.optional_symbol(params)
        if finished and symbol is None:
            raise errors.mandatory("symbol")
        states: Iterable[OrderState] = self.c.model.open_orders(call.account, symbol)
        if finished:
            account = self.c.model.account(call.account)
            done = [o for o in account.finished.values() if o.symbol == symbol]
            states = sorted([*states, *done], key=lambda o: (o.created, o.order_id))
            start, end = params.integer("startTime"), params.integer("endTime")
            from_id = params.integer("orderId")
            states = [
                o
                for o in states
                if (start is None or o.created >= start)
                and (end is None or o.created <= end)
                and (from_id is None or o.order_id >= from_id)
            ][-params.limit(500, 1_000) :]
        shown = []
        for state in states:
            conditional = is_conditional(state)
            ref = (call.account, state.symbol, state.order_id)
            if algo and conditional:
                shown.append(self._order(state, algo=True))
            elif not algo and not (conditional and ref in self.c.algo_orders):
                shown.append(self._order(state))
        return shown

    async def open_orders(self, call: Call) -> object:
        return self._orders(call, algo=False, finished=False)

    async def all_orders(self, call: Call) -> object:
        return self._orders(call, algo=False, finished=True)

    async def open_algo_orders(self, call: Call) -> object:
        return self._orders(call, algo=True, finished=False)

    async def all_algo_orders(self, call: Call) -> object:
        return self._orders(call, algo=True, finished=True)

    async def user_trades(self, call: Call) -> object:
        params = call.params
        symbol = self.c.spec_symbol(params)
        start, end = params.integer("startTime"), params.integer("endTime")
        from_id, order_id = params.integer("fromId"), params.integer("orderId")
        fills = [
            f
            for f in reversed(self.c.model.account(call.account).fills)
            if f.symbol == symbol
            and (start is None or f.time >= start)
            and (end is None or f.time <= end)
            and (from_id is None or f.trade_id >= from_id)
            and (order_id is None or f.order_id == order_id)
        ]
        limit = params.limit(500, 1_000)
        chosen = fills[:limit] if from_id is not None or start is not None else fills[-limit:]
        return [self.c.formats.user_trade(fill) for fill in chosen]

    async def force_orders(self, call: Call) -> object:
        """The account's liquidation steps and ADLs, oldest first, from what the read model
        keeps of them (``EXCHANGE_GATEWAY_HISTORY``, the latest 1,000)."""
        params = call.params
        symbol = self.c.optional_symbol(params)
        kind = params.choice("autoCloseType", AutoCloseType)
        start, end = params.integer("startTime"), params.integer("endTime")
        wanted = {
            None: (Liquidation, Deleveraged),
            AutoCloseType.LIQUIDATION: (Liquidation,),
            AutoCloseType.ADL: (Deleveraged,),
        }[kind]
        steps = [
            s
            for s in reversed(self.c.model.account(call.account).liquidations)
            if isinstance(s.event, wanted)
            and (symbol is None or s.event.symbol == symbol)
            and (start is None or s.time >= start)
            and (end is None or s.time <= end)
        ]
        return [self.c.formats.force_order(s) for s in steps[-params.limit(50, 100) :]]

    # --------------------------------------------------------------------- account settings

    async def leverage(self, call: Call) -> object:
        params = call.params
        symbol = self.c.spec_symbol(params)
        leverage = params.required_integer("leverage", low=1, high=1_000)
        spec = self.c.markets.specs[symbol]
        command = engine.SetLeverage(account=call.account, symbol=symbol, leverage=leverage)

        def build(result: CommandResult) -> Json:
            set_to = results.leverage_set(result)
            cap = max(
                (
                    b.notional_cap
                    for b in spec.leverage_brackets
                    if b.max_leverage >= set_to.leverage
                ),
                default=0,
            )
            return {
                "leverage": set_to.leverage,
                "maxNotionalValue": self.c.formats.money(cap),
                "symbol": symbol,
            }

        return await self.c.command(command, build)

    async def margin_type(self, call: Call) -> object:
        params = call.params
        symbol = self.c.spec_symbol(params)
        wanted = params.choice("marginType", MarginTypeName)
        if wanted is None:
            raise errors.mandatory("marginType")
        mode = MarginMode.ISOLATED if wanted is MarginTypeName.ISOLATED else MarginMode.CROSS
        if self.c.model.position(call.account, symbol).mode is mode:
            raise BinanceError(
                errors.NO_NEED_TO_CHANGE_MARGIN_TYPE, "No need to change margin type."
            )
        command = engine.SetMarginMode(account=call.account, symbol=symbol, mode=mode)

        def build(result: CommandResult) -> Json:
            results.margin_mode_set(result)
            return {"code": 200, "msg": "success"}

        return await self.c.command(command, build)

    async def position_margin(self, call: Call) -> object:
        params = call.params
        symbol = self.c.spec_symbol(params)
        amount_text = params.required("amount")
        amount = order_params.units(amount_text, self.c.markets.money_step, "amount")
        direction = params.required_integer("type", low=1, high=2)
        signed = amount if direction == 1 else -amount
        command = engine.AdjustMargin(account=call.account, symbol=symbol, amount=signed)

        def build(result: CommandResult) -> Json:
            results.margin_adjusted(
                result, self.c.model, self.c.formats.views, call.account, symbol
            )
            return {
                "amount": self.c.formats.money(amount),
                "code": 200,
                "msg": "Successfully modify position margin.",
                "type": direction,
            }

        return await self.c.command(command, build)

    async def empty(self, call: Call) -> object:
        return []

    async def get_dual(self, call: Call) -> object:
        return {"dualSidePosition": False}

    async def set_dual(self, call: Call) -> object:
        """One-way mode only (every position is ``BOTH``)."""
        if call.params.boolean("dualSidePosition"):
            raise BinanceError(
                errors.INVALID_DUAL_SIDE, "Hedge mode is not supported here: one-way mode only."
            )
        raise BinanceError(
            errors.NO_NEED_TO_CHANGE_POSITION_SIDE, "No need to change position side."
        )

    async def get_multi_assets(self, call: Call) -> object:
        return {"multiAssetsMargin": False}

    async def set_multi_assets(self, call: Call) -> object:
        """Single-asset margin only (every market settles in one asset)."""
        if call.params.boolean("multiAssetsMargin"):
            raise BinanceError(
                errors.MULTI_ASSETS_NOT_SUPPORTED, "Multi-assets mode is not supported here."
            )
        return {"code": 200, "msg": "success"}

    async def leverage_bracket(self, call: Call) -> object:
        symbol = self.c.optional_symbol(call.params)
        specs = self.c.markets.specs
        chosen = [specs[symbol]] if symbol is not None else list(specs.values())
        return [self.c.formats.leverage_brackets(spec) for spec in chosen]

    async def income(self, call: Call) -> object:
        params = call.params
        symbol = self.c.optional_symbol(params)
        kind = params.text("incomeType")
        start, end = params.integer("startTime"), params.integer("endTime")
        rows = [
            i
            for i in self.c.income.history(call.account)
            if (symbol is None or i.symbol == symbol)
            and (kind is None or i.kind == kind.upper())
            and (start is None or i.time >= start)
            and (end is None or i.time <= end)
        ]
        limit = params.limit(100, 1_000)
        rows = rows[:limit] if start is not None else rows[-limit:]
        return [
            {
                "symbol": i.symbol,
                "incomeType": i.kind,
                "income": self.c.formats.money(i.amount),
                "asset": self.c.formats.asset,
                "info": i.kind,
                "time": i.time,
                "tranId": i.tran_id,
                "tradeId": "" if i.trade_id is None else str(i.trade_id),
            }
            for i in rows
        ]

    async def account_config(self, call: Call) -> object:
        return {
            "feeTier": 0,
            "canTrade": True,
            "canDeposit": True,
            "canWithdraw": True,
            "dualSidePosition": False,
            "updateTime": 0,
            "multiAssetsMargin": False,
            "tradeGroupId": -1,
        }

    async def symbol_config(self, call: Call) -> object:
        symbol = self.c.optional_symbol(call.params)
        symbols = [symbol] if symbol is not None else list(self.c.markets.specs)
        figures = self._figures(call)
        rows = []
        for position in figures.positions:
            if position.symbol in symbols:
                risk = self.c.formats.position_risk(position, self.c.model.time)
                rows.append(
                    {
                        "symbol": position.symbol,
                        "marginType": "ISOLATED"
                        if position.mode is MarginMode.ISOLATED
                        else "CROSSED",
                        "isAutoAddMargin": False,
                        "leverage": position.leverage,
                        "maxNotionalValue": risk["maxNotionalValue"],
                    }
                )
        return rows

    async def commission_rate(self, call: Call) -> object:
        symbol = self.c.spec_symbol(call.params)
        spec = self.c.markets.specs[symbol]
        return {
            "symbol": symbol,
            "makerCommissionRate": rate(spec.maker_fee),
            "takerCommissionRate": rate(spec.taker_fee),
        }

    # ------------------------------------------------------------------- account, positions

    def _figures(self, call: Call) -> margin_figures.AccountFigures:
        return margin_figures.figures(self.c.model, self.c.markets.specs, call.account)

    async def account_v2(self, call: Call) -> object:
        return self.c.formats.account(self._figures(call), self.c.model.time, open_only=False)

    async def account_v3(self, call: Call) -> object:
        return self.c.formats.account(self._figures(call), self.c.model.time, open_only=True)

    async def balance(self, call: Call) -> object:
        return self.c.formats.balance(self._figures(call), self.c.model.time)

    def _risk(self, call: Call, *, open_only: bool) -> list[Json]:
        symbol = self.c.optional_symbol(call.params)
        return [
            self.c.formats.position_risk(position, self.c.model.time)
            for position in self._figures(call).positions
            if (symbol is None or position.symbol == symbol) and (position.size or not open_only)
        ]

    async def position_risk_v2(self, call: Call) -> object:
        return self._risk(call, open_only=False)

    async def position_risk_v3(self, call: Call) -> object:
        return self._risk(call, open_only=True)


def is_conditional_command(command: engine.OrderCommand) -> bool:
    order = command.order
    return isinstance(order, core.PlaceOrder) and order.type in CONDITIONAL_TYPES


def _item_answer(outcome: Json | BaseException) -> Json:
    """A batch item's answer: its order, or its error's body (any other exception is a bug and
    fails the request, as it would a single order's)."""
    if isinstance(outcome, BinanceError):
        return outcome.body()
    if isinstance(outcome, BaseException):
        raise outcome
    return outcome


def _as_accepted(body: Json) -> Json:
    """``ACK``: the order as the engine accepted it, before any fill (Binance's ACK shows
    ``NEW`` and nothing executed)."""
    return {
        "status": "NEW",
        "executedQty": "0",
        "cumQty": "0",
        "cumQuote": "0",
        "avgPrice": "0",
        "updateTime": body["time"],
    }


def _named(call: Call, *, algo: bool) -> int | str:
    """The order a request names: ``orderId`` (an algo order's ``algoId``), else its client id
    (``origClientOrderId``, ``clientAlgoId``), one of them mandatory."""
    id_name, client_name = ("algoId", "clientAlgoId") if algo else ("orderId", "origClientOrderId")
    order_id = call.params.integer(id_name)
    if order_id is not None:
        return order_id
    client_id = call.params.text(client_name)
    if client_id is None:
        raise errors.mandatory(f"{id_name} or {client_name}")
    return client_id
