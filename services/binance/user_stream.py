"""Binance's user-data stream: listen keys (``/fapi/v1/listenKey``, API key only) and the events
of an account's websockets: ``ORDER_TRADE_UPDATE``, ``ALGO_UPDATE``, ``ACCOUNT_UPDATE``,
``MARGIN_CALL`` and ``listenKeyExpired``.

A listen key names one account's stream for 60 minutes of the front's clock, extended by each
``PUT``; an account has one key at a time (a second ``POST`` returns it and extends it, as on
Binance). Keys are this instance's: a client reconnects with a fresh one after a restart, which
is what Binance clients do on ``listenKeyExpired`` anyway.

Every event is built from the read model right after the command that caused it was applied,
so a client sees its orders' changes in command order, after the REST answer of the same
command (the answer is resolved before the pushes of its record).
"""

import secrets
from dataclasses import dataclass

import msgspec

from exchange.engine import MarginLevel
from exchange.engine_events import TransferReason
from services.binance import margin_figures
from services.binance.context import Context
from services.binance.formats import (
    ORDER_TYPES,
    WORKING_TYPES,
    Json,
    side,
    time_in_force,
)
from services.binance.ws_streams import WsClient
from services.gateway.protocol import OrderStatus
from services.gateway.read_model import Changes, FillState, OrderState
from services.risk_messages import MarginCall, RiskMessage

VALIDITY_MS = 3_600_000
_REASONS = {
    TransferReason.FUNDING: "FUNDING_FEE",
    TransferReason.DEPOSIT: "DEPOSIT",
    TransferReason.WITHDRAWAL: "WITHDRAW",
    TransferReason.ISOLATED_MARGIN: "MARGIN_TRANSFER",
}


@dataclass
class _Key:
    account: int
    expires: int


class UserStreams:
    def __init__(self, context: Context) -> None:
        self.c = context
        self._keys: dict[str, _Key] = {}
        self._by_account: dict[int, str] = {}
        self._clients: dict[int, set[WsClient]] = {}
        self._swept = 0

    # -------------------------------------------------------------------------- listen keys

    def open(self, account: int, now: int) -> str:
        key = self._by_account.get(account)
        if key is None or key not in self._keys:
            key = secrets.token_urlsafe(48)[:64]
            self._by_account[account] = key
        self._keys[key] = _Key(account, now + VALIDITY_MS)
        return key

    def keep_alive(self, account: int, now: int) -> str | None:
        key = self._by_account.get(account)
        if key is None or key not in self._keys:
            return None
        self._keys[key].expires = now + VALIDITY_MS
        return key

    def close(self, account: int) -> None:
        key = self._by_account.pop(account, None)
        if key is not None:
            self._keys.pop(key, None)

    def account_of(self, key: str, now: int) -> int | None:
        held = self._keys.get(key)
        return None if held is None or held.expires < now else held.account

    def connected(self) -> int:
        """How many user-stream websockets are open."""
        return sum(len(clients) for clients in self._clients.values())

    def attach(self, client: WsClient, key: str, account: int) -> None:
        client.account, client.listen_key = account, key
        self._clients.setdefault(account, set()).add(client)

    def drop(self, client: WsClient) -> None:
        if client.account is not None:
            clients = self._clients.get(client.account)
            if clients is not None:
                clients.discard(client)
                if not clients:
                    del self._clients[client.account]

    def expire(self, now: int) -> None:
        """Tell the clients of keys past their hour (``listenKeyExpired``) and forget them;
        at most once a second."""
        if now - self._swept < 1_000:
            return
        self._swept = now
        for key, held in list(self._keys.items()):
            if held.expires >= now:
                continue
            del self._keys[key]
            self._by_account.pop(held.account, None)
            payload = msgspec.json.encode({"e": "listenKeyExpired", "E": now, "listenKey": key})
            for client in list(self._clients.get(held.account, ())):
                if client.listen_key == key:
                    client.event(key, payload)
                    client.connection.abort()

    # ------------------------------------------------------------------------------ events

    def _send(self, account: int, payload: Json) -> None:
        clients = self._clients.get(account)
        if not clients:
            return
        data = msgspec.json.encode(payload)
        for client in list(clients):
            client.event(client.listen_key or "", data)

    def publish(self, changes: Changes) -> None:
        if not self._clients:
            return
        model, time = self.c.model, self.c.model.time
        fills: dict[tuple[int, str, int], list[FillState]] = {}
        for account, filled in changes.fills:
            fills.setdefault((account, filled.symbol, filled.order_id), []).append(filled)
        for account, symbol, order_id in changes.orders:
            if account not in self._clients:
                continue
            state = model.order(account, symbol, order_id)
            if state is None:
                continue
            ref = (account, symbol, order_id)
            if ref in self.c.algo_orders:
                self._send(account, self._algo_update(state, time))
                if not state.triggered:
                    continue
            made: list[FillState | None] = [*fills.get(ref, [])] or [None]
            for each in made:
                self._send(account, self._order_update(state, each, time))
        reasons: dict[int, str] = {}
        for transfer in changes.transfers:
            reason = _REASONS.get(transfer.reason, "ORDER")
            for address in (transfer.source, transfer.target):
                if address.startswith("u:"):
                    reasons.setdefault(int(address.split(":")[1]), reason)
        accounts = dict.fromkeys([*changes.balances, *(a for a, _ in changes.positions)])
        for account in accounts:
            if account in self._clients:
                symbols = [s for a, s in changes.positions if a == account]
                self._account_update(account, symbols, reasons.get(account, "ORDER"), time)

    def publish_risk(self, message: RiskMessage) -> None:
        """A margin call (a scope reaching the warning level) as Binance's ``MARGIN_CALL``."""
        if not isinstance(message, MarginCall) or message.level is not MarginLevel.WARNING:
            return
        if message.account not in self._clients:
            return
        figures = margin_figures.figures(self.c.model, self.c.markets.specs, message.account)
        formats = self.c.formats
        positions = [
            p
            for p in figures.positions
            if p.size
            and (p.symbol == message.symbol or (not message.symbol and p.mode.value == "cross"))
        ]
        self._send(
            message.account,
            {
                "e": "MARGIN_CALL",
                "E": message.time,
                "cw": formats.money(figures.wallet),
                "p": [
                    {
                        "s": p.symbol,
                        "ps": "BOTH",
                        "pa": self.c.markets.specs[p.symbol].lots_to_str(p.size),
                        "mt": p.mode.value.upper(),
                        "iw": formats.money(p.isolated_wallet),
                        "mp": formats.price(self.c.markets.specs[p.symbol], p.price),
                        "up": formats.money(p.unrealized_pnl),
                        "mm": formats.money(p.maintenance),
                    }
                    for p in positions
                ],
            },
        )

    def _order_update(self, state: OrderState, fill: FillState | None, time: int) -> Json:
        formats = self.c.formats
        spec = self.c.markets.specs[state.symbol]
        body = formats.order(state)
        if fill is not None:
            execution = "TRADE"
        elif state.status is OrderStatus.CANCELLED:
            execution = "CANCELED"
        elif state.status is OrderStatus.EXPIRED:
            execution = "EXPIRED"
        elif state.created == state.updated and not state.filled:
            execution = "NEW"
        else:
            execution = "AMENDMENT"
        terms = state.terms
        return {
            "e": "ORDER_TRADE_UPDATE",
            "E": time,
            "T": time,
            "o": {
                "s": state.symbol,
                "c": body["clientOrderId"],
                "S": side(terms.side),
                "o": ORDER_TYPES[terms.type],
                "f": time_in_force(terms),
                "q": body["origQty"],
                "p": body["price"],
                "ap": body["avgPrice"],
                "sp": body["stopPrice"],
                "x": execution,
                "X": body["status"],
                "i": state.order_id,
                "l": "0" if fill is None else spec.lots_to_str(fill.qty),
                "z": body["executedQty"],
                "L": "0" if fill is None else spec.ticks_to_str(fill.price),
                "N": formats.asset,
                "n": "0" if fill is None else formats.money(fill.fee),
                "T": time,
                "t": 0 if fill is None else fill.trade_id,
                "b": "0",
                "a": "0",
                "m": False if fill is None else fill.maker,
                "R": terms.reduce_only,
                "wt": WORKING_TYPES[terms.trigger],
                "ot": ORDER_TYPES[terms.type],
                "ps": "BOTH",
                "cp": body["closePosition"],
                "rp": "0" if fill is None else formats.money(fill.realized_pnl),
                "pP": False,
                "si": 0,
                "ss": 0,
                "V": terms.stp.value,
                "pm": body["priceMatch"],
                "gtd": terms.expire_time or 0,
            },
        }

    def _algo_update(self, state: OrderState, time: int) -> Json:
        algo = self.c.formats.algo_order(state)
        return {
            "e": "ALGO_UPDATE",
            "T": time,
            "E": time,
            "o": {
                "caid": algo["clientAlgoId"],
                "aid": algo["algoId"],
                "at": "CONDITIONAL",
                "o": algo["orderType"],
                "s": algo["symbol"],
                "S": algo["side"],
                "ps": "BOTH",
                "f": algo["timeInForce"],
                "q": algo["quantity"],
                "X": algo["algoStatus"],
                "ai": algo["actualOrderId"],
                "ap": algo["actualPrice"],
                "aq": self.c.markets.specs[state.symbol].lots_to_str(state.filled),
                "act": "0",
                "tp": algo["triggerPrice"],
                "p": algo["price"],
                "V": algo["selfTradePreventionMode"],
                "wt": algo["workingType"],
                "pm": algo["priceMatch"],
                "cp": algo["closePosition"],
                "pP": False,
                "R": algo["reduceOnly"],
                "tt": algo["triggerTime"],
                "gtd": algo["goodTillDate"],
                "rm": "",
            },
        }

    def _account_update(self, account: int, symbols: list[str], reason: str, time: int) -> None:
        formats, specs = self.c.formats, self.c.markets.specs
        figures = margin_figures.figures(self.c.model, specs, account)
        positions = []
        for p in figures.positions:
            if p.symbol not in symbols:
                continue
            risk = formats.position_risk(p, time)
            position = self.c.model.position(account, p.symbol)
            positions.append(
                {
                    "s": p.symbol,
                    "pa": risk["positionAmt"],
                    "ep": risk["entryPrice"],
                    "bep": risk["breakEvenPrice"],
                    "cr": formats.money(position.realized_pnl),
                    "up": risk["unRealizedProfit"],
                    "mt": p.mode.value,
                    "iw": risk["isolatedWallet"],
                    "ps": "BOTH",
                    "ma": formats.asset,
                }
            )
        self._send(
            account,
            {
                "e": "ACCOUNT_UPDATE",
                "E": time,
                "T": time,
                "a": {
                    "m": reason,
                    "B": [
                        {
                            "a": formats.asset,
                            "wb": formats.money(figures.wallet_balance),
                            "cw": formats.money(figures.wallet),
                            "bc": "0",
                        }
                    ],
                    "P": positions,
                },
            },
        )
