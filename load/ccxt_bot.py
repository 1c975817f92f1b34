"""An example bot for bot authors: ccxt's async ``binanceusdm``, unchanged and configured through
its configuration dict alone, trading a perpetual on this exchange's Binance front.

Why it exists: the front promises that a bot written for Binance trades here with only its URLs
changed (README, *Bots written for Binance*); this is such a bot, small enough to copy, and
``tests/test_ccxt_bot.py`` runs it against a market that ``exchange replay`` rebuilds from a
Binance recording. Run it against ``exchange up`` (docs/binance-api.md, *An example bot*)::

    python -m load.ccxt_bot --url http://127.0.0.1:8766 --symbol BTC/USDT:USDT --duration 60

The strategy is a mean-reversion quote, one position at a time. Each step reads the book and
the last public trades: when flat, it quotes one post-only order a tick inside the spread, a
bid when the mid is at or below the recent trades' average (it expects the price to come back
up), else an ask; a quote left unfilled for ``stale_steps`` steps is cancelled. When it holds a
position it rests a reduce-only post-only close at the other side's best, and after
``hold_steps`` steps closes at market (reduce-only). Every fill is logged with the realized
PnL and fees the bot counts from its own trades; at the end it cancels its orders, closes its
position and logs the balance the exchange reports beside its own count.
"""

import argparse
import asyncio
import hashlib
import hmac
import signal
import time
from dataclasses import dataclass, field
from typing import Any

import ccxt.async_support as ccxt
import structlog

from services.logs import configure_logging

log = structlog.get_logger("ccxt_bot")


def ccxt_config(url: str, api_key: str, secret: str) -> dict[str, Any]:
    """The README's configuration dict: every URL ccxt's ``binanceusdm`` uses, pointed at
    ``url`` (the Binance front, e.g. ``http://127.0.0.1:8766``)."""
    ws = url.replace("http", "ws", 1)
    return {
        "apiKey": api_key,
        "secret": secret,
        "urls": {
            "api": {
                "fapiPublic": f"{url}/fapi/v1",
                "fapiPrivate": f"{url}/fapi/v1",
                "fapiPublicV2": f"{url}/fapi/v2",
                "fapiPrivateV2": f"{url}/fapi/v2",
                "fapiPublicV3": f"{url}/fapi/v3",
                "fapiPrivateV3": f"{url}/fapi/v3",
                "fapiData": f"{url}/futures/data",
                "public": f"{url}/api/v3",
                "private": f"{url}/api/v3",
                "sapi": f"{url}/sapi/v1",
                "ws": {  # ccxt >= 4.5 reads "linear", 4.4 "future"
                    "linear": f"{ws}/ws",
                    "future": f"{ws}/ws",
                    "ws-api": {"linear": f"{ws}/ws-fapi/v1", "future": f"{ws}/ws-fapi/v1"},
                },
            }
        },
        "options": {"defaultType": "swap"},
    }


@dataclass
class BotConfig:
    """What the bot trades and how much. An empty ``api_key`` makes a new paper account with
    ``deposit`` USDT (the front's ``/paper/v1`` endpoints, not Binance's)."""

    url: str
    symbol: str = "BTC/USDT:USDT"
    api_key: str = ""
    secret: str = ""
    deposit: str = "10000"
    amount: float = 0.002  # 0.002 BTC: above the 100 USDT minimum notional at 50,000+
    leverage: int = 5
    window: int = 50  # public trades averaged for the fair price
    stale_steps: int = 3
    hold_steps: int = 5
    interval_s: float = 1.0
    duration_s: float = 60.0
    max_orders: int = 100


@dataclass
class Ledger:
    """The bot's own count of its fills: position, average entry, realized PnL and fees, so a
    bot author can compare it with the balance the exchange reports."""

    position: float = 0.0  # signed contracts
    entry: float = 0.0
    realized: float = 0.0
    fees: float = 0.0
    fills: int = 0
    seen: set[str] = field(default_factory=set)

    def fill(self, side: str, amount: float, price: float, fee: float) -> None:
        """Average-cost accounting, as Binance's position: a fill against the position realizes
        (price - entry) on the part it closes, a fill past flat opens the rest at its price.
        The count starts flat: a key's position from before the bot is not in it."""
        signed = amount if side == "buy" else -amount
        if self.position * signed < 0:  # reduces (or flips) the position
            closed = min(abs(signed), abs(self.position))
            direction = 1 if self.position > 0 else -1
            self.realized += closed * (price - self.entry) * direction
            if abs(signed) > abs(self.position):
                self.entry = price
        else:
            self.entry = (self.entry * abs(self.position) + price * amount) / (
                abs(self.position) + amount
            )
        self.position = round(self.position + signed, 12)
        if self.position == 0:
            self.entry = 0.0
        self.fees += fee
        self.fills += 1


class CcxtBot:
    """The bot: ``start`` once, ``step`` as often as wanted, ``finish`` once, ``close``.
    ``run`` is that loop on the wall clock; a test calls the steps itself."""

    def __init__(self, config: BotConfig) -> None:
        self.config = config
        self.exchange: Any = None
        self.ledger = Ledger()
        self.orders_placed = 0
        self.steps = 0
        self._placed_at: dict[str, int] = {}  # open order id -> step it was placed in
        self._position_since: int | None = None

    async def start(self) -> None:
        """A paper account if none was given, the markets, and the leverage."""
        c = self.config
        if not c.api_key:
            c.api_key, c.secret = await self._paper_account()
        self.exchange = ccxt.binanceusdm(ccxt_config(c.url, c.api_key, c.secret))
        await self.exchange.load_markets()
        await self.exchange.set_leverage(c.leverage, c.symbol)
        balance = await self.exchange.fetch_balance()
        log.info("started", symbol=c.symbol, leverage=c.leverage, usdt=balance["USDT"]["total"])

    async def _paper_account(self) -> tuple[str, str]:
        """``POST /paper/v1/account``, then a deposit signed as Binance signs a request (HMAC
        SHA-256 of the query string), through ccxt's own HTTP client."""
        c = self.config
        plain = ccxt.binanceusdm()
        try:
            created = await plain.fetch(f"{c.url}/paper/v1/account", "POST")
            key, secret = created["apiKey"], created["secretKey"]
            query = f"amount={c.deposit}&timestamp={int(time.time() * 1000)}"
            signature = hmac.new(secret.encode(), query.encode(), hashlib.sha256).hexdigest()
            await plain.fetch(
                f"{c.url}/paper/v1/deposit?{query}&signature={signature}",
                "POST",
                {"X-MBX-APIKEY": key},
            )
        finally:
            await plain.close()
        log.info("paper_account", account=created["account"], deposit=c.deposit)
        return str(key), str(secret)

    async def step(self) -> None:
        """One look at the market and the account, and the orders that follow from it."""
        c, ex = self.config, self.exchange
        self.steps += 1
        await self._read_fills()
        book = await ex.fetch_order_book(c.symbol, 5)
        if not book["bids"] or not book["asks"]:
            log.info("no_market", step=self.steps)
            return
        bid, ask = float(book["bids"][0][0]), float(book["asks"][0][0])
        trades = await ex.fetch_trades(c.symbol, limit=c.window)
        mid = (bid + ask) / 2
        fair = sum(float(t["price"]) for t in trades) / len(trades) if trades else mid
        await self._cancel_stale()
        positions = await ex.fetch_positions([c.symbol])
        held = sum(
            float(p["contracts"] or 0) * (1 if p["side"] == "long" else -1) for p in positions
        )
        if held:
            await self._close(held, bid, ask)
        else:
            self._position_since = None
            if not self._placed_at:
                await self._quote(bid, ask, mid, fair)

    async def _quote(self, bid: float, ask: float, mid: float, fair: float) -> None:
        """A post-only entry a tick inside the spread (at the best if the spread is a tick)."""
        c, ex = self.config, self.exchange
        tick = float(ex.market(c.symbol)["precision"]["price"])
        side = "buy" if mid <= fair else "sell"
        if side == "buy":
            price = bid + tick if bid + tick < ask else bid
        else:
            price = ask - tick if ask - tick > bid else ask
        price = float(ex.price_to_precision(c.symbol, price))  # a float sum is off the grid
        await self._place(
            side, "limit", price, {"postOnly": True}, mid=round(mid, 2), fair=round(fair, 2)
        )

    async def _close(self, held: float, bid: float, ask: float) -> None:
        """A reduce-only close: resting at the other side's best, at market once held long."""
        c = self.config
        if self._position_since is None:
            self._position_since = self.steps
        side = "sell" if held > 0 else "buy"
        if self.steps - self._position_since >= c.hold_steps:
            await self._cancel_all()
            await self._place(side, "market", None, {"reduceOnly": True}, amount=abs(held))
        elif not self._placed_at:
            price = ask if side == "sell" else bid
            params = {"reduceOnly": True, "postOnly": True}
            await self._place(side, "limit", price, params, amount=abs(held))

    async def _place(
        self,
        side: str,
        kind: str,
        price: float | None,
        params: dict[str, Any],
        amount: float | None = None,
        **why: Any,
    ) -> None:
        c, ex = self.config, self.exchange
        if self.orders_placed >= c.max_orders:
            return
        size = amount if amount is not None else c.amount
        self.orders_placed += 1
        try:
            order = await ex.create_order(c.symbol, kind, side, size, price, params)
        except ccxt.ExchangeError as error:  # e.g. -5022: the market moved onto a post-only price
            log.info("order_refused", side=side, type=kind, price=price, error=str(error))
            return
        log.info(
            "order", id=order["id"], side=side, type=kind, price=price, amount=size, **params, **why
        )
        if order["status"] == "open":
            self._placed_at[order["id"]] = self.steps
        await self._read_fills()

    async def _cancel_stale(self) -> None:
        """Cancel quotes older than ``stale_steps``; forget orders that are no longer open."""
        c, ex = self.config, self.exchange
        open_ids = {o["id"] for o in await ex.fetch_open_orders(c.symbol)}
        self._placed_at = {i: s for i, s in self._placed_at.items() if i in open_ids}
        for order_id, placed in list(self._placed_at.items()):
            if self.steps - placed >= c.stale_steps:
                try:
                    await ex.cancel_order(order_id, c.symbol)
                    log.info("cancelled_stale", id=order_id, age_steps=self.steps - placed)
                except ccxt.OrderNotFound:  # filled meanwhile
                    pass
                del self._placed_at[order_id]

    async def _cancel_all(self) -> None:
        await self.exchange.cancel_all_orders(self.config.symbol)
        self._placed_at.clear()

    async def _read_fills(self) -> None:
        """The bot's trades it has not seen yet, into its ledger and the log."""
        for trade in await self.exchange.fetch_my_trades(self.config.symbol):
            if trade["id"] in self.ledger.seen:
                continue
            self.ledger.seen.add(trade["id"])
            fee = float((trade.get("fee") or {}).get("cost") or 0)
            side, amount, price = trade["side"], float(trade["amount"]), float(trade["price"])
            self.ledger.fill(side, amount, price, fee)
            log.info(
                "fill",
                order=trade["order"],
                side=side,
                amount=amount,
                price=price,
                role=trade["takerOrMaker"],
                fee=fee,
                position=self.ledger.position,
                realized_pnl=round(self.ledger.realized, 8),
            )

    async def finish(self) -> dict[str, Any]:
        """Orders cancelled, position closed at market; the exchange's balance beside the
        bot's count (deposit + realized PnL - fees when nothing else moved the wallet)."""
        c, ex = self.config, self.exchange
        await self._cancel_all()
        positions = await ex.fetch_positions([c.symbol])
        for p in positions:
            if float(p["contracts"] or 0):
                side = "sell" if p["side"] == "long" else "buy"
                order = await ex.create_order(
                    c.symbol, "market", side, p["contracts"], None, {"reduceOnly": True}
                )
                log.info("closed", id=order["id"], side=side, amount=p["contracts"])
        await self._read_fills()
        balance = await ex.fetch_balance()
        summary = {
            "steps": self.steps,
            "orders": self.orders_placed,
            "fills": self.ledger.fills,
            "position": self.ledger.position,
            "realized_pnl": round(self.ledger.realized, 8),
            "fees": round(self.ledger.fees, 8),
            "usdt": balance["USDT"]["total"],
        }
        log.info("finished", **summary)
        return summary

    async def close(self) -> None:
        if self.exchange is not None:
            await self.exchange.close()

    async def run(self, stop: asyncio.Event | None = None) -> dict[str, Any]:
        """Steps every ``interval_s`` until ``duration_s``, ``max_orders`` or ``stop``, then
        ``finish``: a bot stopped early still leaves no order and no position behind."""
        c = self.config
        stop = stop or asyncio.Event()
        try:
            await self.start()
            end = time.monotonic() + c.duration_s
            while time.monotonic() < end and self.orders_placed < c.max_orders:
                await self.step()
                try:
                    await asyncio.wait_for(stop.wait(), c.interval_s)
                    break
                except TimeoutError:
                    pass
            return await self.finish()
        finally:
            await self.close()


async def _run_until_signalled(config: BotConfig) -> None:
    """The bot, with Ctrl-C or SIGTERM ending it through ``finish`` rather than mid-step."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await CcxtBot(config).run(stop)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m load.ccxt_bot",
        description="An example ccxt bot quoting a perpetual on the Binance front "
        "(docs/binance-api.md, An example bot). Logs JSON lines on stderr.",
    )
    parser.add_argument("--url", default="http://127.0.0.1:8766", help="the Binance front")
    parser.add_argument("--symbol", default="BTC/USDT:USDT", help="a ccxt symbol")
    parser.add_argument("--api-key", default="", help="default: a new paper account")
    parser.add_argument("--secret", default="")
    parser.add_argument("--deposit", default="10000", help="USDT for a new paper account")
    parser.add_argument("--amount", type=float, default=0.002, help="contracts per quote")
    parser.add_argument("--leverage", type=int, default=5)
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between steps")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds")
    parser.add_argument("--max-orders", type=int, default=100)
    args = parser.parse_args(argv)
    configure_logging()
    config = BotConfig(
        url=args.url.rstrip("/"),
        symbol=args.symbol,
        api_key=args.api_key,
        secret=args.secret,
        deposit=args.deposit,
        amount=args.amount,
        leverage=args.leverage,
        interval_s=args.interval,
        duration_s=args.duration,
        max_orders=args.max_orders,
    )
    asyncio.run(_run_until_signalled(config))


if __name__ == "__main__":
    main()
