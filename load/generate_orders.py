"""Synthetic order streams that look like a busy perpetual market, reproducible from a seed.

The mix per row: about 67 % passive limit orders clustered near the touch, 25 % cancels, 3 %
amends (smaller size, or a new price) and 5 % marketable orders that sweep a few levels. A
"fair price" random-walks and anchors the passive quotes; marketable flow leans towards it, so
the book follows the walk. Account activity is skewed (a few market makers, a long tail).

To aim cancels and amends at orders that are really live, and sweeps at real levels, the
generator runs its own copy of the book (``BaselineBook``, which matches exactly like the engine
on these streams). Cancels are uniform among the live orders; about 1 % deliberately name an
order that just died, like a client that lost the race against a fill.
"""

import argparse
import math
import random
from dataclasses import dataclass
from decimal import Decimal
from itertools import accumulate
from pathlib import Path

from exchange.commands import AmendOrder, CancelOrder, PlaceOrder
from exchange.market import MarketSpec
from exchange.orders import OrderType, Side, TimeInForce
from load.baseline_book import BaselineBook, to_baseline
from load.orderstream import OrderStreamWriter, StreamCommand, open_text

P_CANCEL = 0.25
P_AMEND = 0.03
P_MARKETABLE = 0.05
"""The rest (67 %) are passive limit orders."""
P_STALE_CANCEL = 0.01
P_POST_ONLY = 0.3
"""Share of passive orders sent as GTX (post-only), as market makers do."""
START_TS_NS = 1_700_000_000_000_000_000
MEAN_GAP_NS = 20_000
START_PRICE = "60000.0"
DEFAULT_TICK_SIZE = "0.1"
DEFAULT_LOT_SIZE = "0.001"
ACCOUNTS = 500
FIRST_ACCOUNT = 1001
MIN_FAIR_TICKS = 1000
"""A floor for the walk, far enough above zero that no quote falls off the grid."""
MEAN_DEPTH_TICKS = 10.0
"""Mean distance of a passive order behind the fair price, in ticks (geometric)."""


@dataclass(frozen=True, slots=True)
class GeneratorSpec:
    """The market grid the stream is written on (the replay must be given the same)."""

    tick_size: str = DEFAULT_TICK_SIZE
    lot_size: str = DEFAULT_LOT_SIZE

    def market(self) -> MarketSpec:
        return MarketSpec(
            symbol="SYNTH", tick_size=self.tick_size, lot_size=self.lot_size
        ).validate()


class _LiveIds:
    """Orders the generator believes live, as ``(order_id, account)``, sampled uniformly.

    The book is the truth: an order found dead (filled) when drawn is dropped and the draw
    repeated, so a pick is uniform among the orders that are really live.
    """

    def __init__(self, book: BaselineBook) -> None:
        self._book = book
        self._orders: list[tuple[int, int]] = []
        self.last_dead: tuple[int, int] | None = None
        """The latest order found filled or picked for cancelling."""

    def add(self, order_id: int, account: int) -> None:
        self._orders.append((order_id, account))

    def pick(self, rng: random.Random, *, remove: bool) -> tuple[int, int] | None:
        orders = self._orders
        while orders:
            i = rng.randrange(len(orders))
            picked = orders[i]
            alive = picked[0] in self._book.orders
            if not alive or remove:
                orders[i] = orders[-1]
                orders.pop()
                self.last_dead = picked
            if alive:
                return picked
        return None


class OrderGenerator:
    """Produces ``(ts_ns, command)`` rows; ``next_row`` also applies the command to its book."""

    def __init__(self, seed: int, spec: GeneratorSpec) -> None:
        market = spec.market()
        self._rng = random.Random(seed)
        self._book = BaselineBook()
        self._live = _LiveIds(self._book)
        self._fair = max(MIN_FAIR_TICKS, int(Decimal(START_PRICE) / market.tick))
        self._ts = START_TS_NS
        self._next_id = 1
        weights = [1.0 / (rank + 1) ** 1.1 for rank in range(ACCOUNTS)]
        self._account_cum = list(accumulate(weights))
        self._accounts = list(range(FIRST_ACCOUNT, FIRST_ACCOUNT + ACCOUNTS))

    def next_row(self) -> tuple[int, StreamCommand]:
        rng = self._rng
        self._ts += 1 + int(rng.expovariate(1.0 / MEAN_GAP_NS))
        if rng.random() < 0.1:
            self._fair = max(MIN_FAIR_TICKS, self._fair + rng.choice((-1, 1)))
        u = rng.random()
        command: StreamCommand | None = None
        if u < P_CANCEL:
            command = self._cancel()
        elif u < P_CANCEL + P_AMEND:
            command = self._amend()
        elif u < P_CANCEL + P_AMEND + P_MARKETABLE:
            command = self._marketable()
        if command is None:
            command = self._passive()
        self._book.run(to_baseline((command,)))
        return self._ts, command

    def _account(self) -> int:
        return self._rng.choices(self._accounts, cum_weights=self._account_cum)[0]

    def _new_id(self) -> int:
        order_id = self._next_id
        self._next_id += 1
        return order_id

    def _size(self) -> int:
        """Lots of a passive order: log-normal, median 12 lots, capped."""
        return min(5000, max(1, int(self._rng.lognormvariate(2.5, 1.0))))

    def _passive_price(self, side: Side) -> int:
        """A price behind the fair price by a geometric number of ticks, never crossing."""
        depth = 1 + int(self._rng.expovariate(1.0 / MEAN_DEPTH_TICKS))
        book = self._book
        if side is Side.BUY:
            ask = book.best_ask()
            price = max(1, self._fair - depth)
            return price if ask is None or ask == 1 else min(price, ask - 1)
        bid = book.best_bid()
        price = self._fair + depth
        return price if bid is None else max(price, bid + 1)

    def _passive(self) -> PlaceOrder:
        rng = self._rng
        side = Side.BUY if rng.random() < 0.5 else Side.SELL
        order = PlaceOrder(
            order_id=self._new_id(),
            account=self._account(),
            side=side,
            qty=self._size(),
            price=self._passive_price(side),
            tif=TimeInForce.GTX if rng.random() < P_POST_ONLY else TimeInForce.GTC,
        )
        self._live.add(order.order_id, order.account)
        return order

    def _cancel(self) -> CancelOrder | None:
        live = self._live
        if live.last_dead is not None and self._rng.random() < P_STALE_CANCEL:
            picked: tuple[int, int] | None = live.last_dead
        else:
            picked = live.pick(self._rng, remove=True)
        if picked is None:
            return None
        return CancelOrder(order_id=picked[0], account=picked[1])

    def _amend(self) -> AmendOrder | None:
        picked = self._live.pick(self._rng, remove=False)
        if picked is None:
            return None
        order_id = picked[0]
        order = self._book.orders[order_id]
        if order.qty > 1 and self._rng.random() < 0.5:
            qty = self._rng.randint(1, order.qty - 1)
            return AmendOrder(order_id=order_id, account=order.account, qty=qty)
        side = Side.BUY if order.is_buy else Side.SELL
        price = self._passive_price(side)
        if price == order.price:
            price += -1 if order.is_buy else 1
        return AmendOrder(order_id=order_id, account=order.account, price=price)

    def _marketable(self) -> PlaceOrder | None:
        """An order that sweeps 1 + geometric levels, leaning towards the fair price."""
        rng = self._rng
        book = self._book
        bid, ask = book.best_bid(), book.best_ask()
        if bid is None or ask is None:
            return None
        lean = max(-0.3, min(0.3, (self._fair - (bid + ask) / 2) / 10))
        is_buy = rng.random() < 0.5 + lean
        side = book.asks if is_buy else book.bids
        levels = 1 + int(rng.expovariate(0.6))
        prices = list(side.islice(0, levels) if is_buy else side.islice(-levels, None))
        available = sum(o.qty for price in prices for o in side[price].values())
        worst = prices[-1] if is_buy else prices[0]
        order_id, account = self._new_id(), self._account()
        kind = rng.random()
        if kind < 0.4:
            return PlaceOrder(
                order_id=order_id,
                account=account,
                side=Side.BUY if is_buy else Side.SELL,
                qty=max(1, math.floor(available * rng.uniform(0.6, 1.0))),
                type=OrderType.MARKET,
            )
        tif = TimeInForce.IOC if kind < 0.7 else TimeInForce.GTC if kind < 0.95 else TimeInForce.FOK
        if tif is TimeInForce.GTC:
            self._live.add(order_id, account)
        return PlaceOrder(
            order_id=order_id,
            account=account,
            side=Side.BUY if is_buy else Side.SELL,
            qty=max(1, math.floor(available * rng.uniform(0.7, 1.3))),
            price=worst,
            tif=tif,
        )


def generate(path: str | Path, rows: int, seed: int, spec: GeneratorSpec | None = None) -> None:
    """Write ``rows`` rows to ``path`` (gzip if it ends in .gz)."""
    spec = spec or GeneratorSpec()
    generator = OrderGenerator(seed, spec)
    with open_text(path, "w") as out:
        writer = OrderStreamWriter(out, spec.market())
        for _ in range(rows):
            writer.write(*generator.next_row())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, required=True)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", required=True, help="output file; .gz compresses")
    parser.add_argument("--tick-size", default=DEFAULT_TICK_SIZE)
    parser.add_argument("--lot-size", default=DEFAULT_LOT_SIZE)
    args = parser.parse_args(argv)
    generate(args.out, args.rows, args.seed, GeneratorSpec(args.tick_size, args.lot_size))


if __name__ == "__main__":
    main()
