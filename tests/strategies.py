"""Random command streams for one market, for the differential and property tests.

One generator (``CommandGenerator``) describes the distribution; it draws every choice through
a single ``draw(low, high)`` function, so the same code serves hypothesis (which can then
shrink a failing stream) and a plain ``random.Random`` (fast enough for 100k-command runs).
The distribution is tuned to make things *happen*: few accounts (self-trades, reduce-only
against real positions), prices in a narrow band (orders cross often), ids that are reused and
cancels/amends that mostly target recent orders, and a steady trickle of invalid values.
"""

import random
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import msgspec
from hypothesis import strategies as st

from exchange.commands import (
    AmendOrder,
    CancelAll,
    CancelOrder,
    MatchingCommand,
    PlaceOrder,
    SetMarkPrice,
)
from exchange.market import MarketSpec
from exchange.orders import LIMIT_TYPES, OrderType, Side, StpMode, TimeInForce, TriggerBy
from exchange.reference import ReferenceEngine
from exchange.units import RATE_ONE

T = TypeVar("T")

Draw = Callable[[int, int], int]
"""Returns an integer in ``low..high`` inclusive; smaller values are the "simpler" ones."""

BASE_SPEC = MarketSpec(
    symbol="TEST",
    tick_size="0.1",
    lot_size="0.001",
    settle_decimals=4,
    min_qty=1,
    max_qty=20,
    max_price=1_000,
    min_notional=100,
    price_band_up=5 * RATE_ONE // 100,
    price_band_down=5 * RATE_ONE // 100,
    market_protection=3 * RATE_ONE // 100,
    maker_fee=200_000,
    taker_fee=500_000,
)
"""Multiplier 1 (0.1 × 0.001 × 10⁴), so fees of 0.2 % / 0.5 % on ~100-tick trades round.

Prices around 100 ticks: qty 1 below 100 ticks fails the 100 minimum notional; the 5 % band
around a mark of 100 is 95..105; market orders stop 3 % from the reference price."""

SPECS: dict[str, MarketSpec] = {
    "banded": BASE_SPEC,
    "rebate": msgspec.structs.replace(BASE_SPEC, maker_fee=-100_000, min_qty=2),
    "plain": msgspec.structs.replace(
        BASE_SPEC,
        settle_decimals=8,
        min_notional=0,
        price_band_up=0,
        price_band_down=0,
        market_protection=0,
    ),
}
"""``rebate``: a negative maker fee and qty 1 below minimum; ``plain``: multiplier 10 000, no
band, no protection, no minimum notional (market orders sweep the whole book)."""


def make_spec(variant: str = "banded") -> MarketSpec:
    """One of the test market specs, validated."""
    return SPECS[variant].validate()


_PLACE_KINDS: list[tuple[OrderType, int]] = [
    (OrderType.LIMIT, 30),
    (OrderType.MARKET, 6),
    (OrderType.STOP_MARKET, 4),
    (OrderType.STOP_LIMIT, 4),
    (OrderType.TAKE_PROFIT_MARKET, 3),
    (OrderType.TAKE_PROFIT_LIMIT, 3),
    (OrderType.TRAILING_STOP_MARKET, 4),
]
_OTHER_KINDS: list[tuple[str, int]] = [
    ("cancel", 7),
    ("amend", 8),
    ("mark", 8),
    ("cancel_all", 1),
]
_TIFS = [(TimeInForce.GTC, 50), (TimeInForce.GTX, 20), (TimeInForce.IOC, 15), (TimeInForce.FOK, 15)]
_STP_MODES = [StpMode.EXPIRE_TAKER, StpMode.NONE, StpMode.EXPIRE_MAKER, StpMode.EXPIRE_BOTH]
_RECENT = 8
"""How many recent placements are remembered for reusing ids and aiming at finished orders."""


def _no_draw(low: int, high: int) -> int:
    """Stands in for ``draw`` between commands, so that a stray draw fails loudly."""
    raise RuntimeError("CommandGenerator draws only inside next()")


class CommandGenerator:
    """Produces one command at a time.

    To aim cancels, amends and duplicate ids at orders that are actually live, it feeds every
    command it makes to its own ``ReferenceEngine`` (the *scout*) and asks it which orders are
    live; the scout is deterministic, so a stream is still a pure function of the draws.
    """

    def __init__(
        self,
        spec: MarketSpec,
        *,
        accounts: int = 4,
        low: int = 95,
        high: int = 105,
    ) -> None:
        self._spec = spec
        self._draw: Draw = _no_draw
        self._accounts = accounts
        self._low = low
        self._high = high
        self._next_id = 1
        self._recent: list[tuple[int, int]] = []
        """(order id, account) of recent placements, newest last (most of them are dead)."""
        self._scout = ReferenceEngine(spec)

    def next(self, draw: Draw) -> MatchingCommand:
        """The next command, every choice made by ``draw``."""
        self._draw = draw
        try:
            cmd = self._make()
        finally:
            self._draw = _no_draw
        self._scout.process(cmd)
        return cmd

    def _make(self) -> MatchingCommand:
        kind = self._weighted([*_PLACE_KINDS, *_OTHER_KINDS])
        if isinstance(kind, OrderType):
            return self._place(kind)
        if kind == "cancel":
            order_id, account = self._target()
            return CancelOrder(order_id=order_id, account=account)
        if kind == "amend":
            return self._amend()
        if kind == "mark":
            return SetMarkPrice(price=self._mark_price())
        return CancelAll(account=self._account())

    def _live(self) -> list[tuple[int, int]]:
        """(order id, account) of every live order, per the scout."""
        return [
            (order_id, account)
            for account in range(1, self._accounts + 1)
            for order_id in self._scout.open_orders(account)
        ]

    # -------------------------------------------------------------- choices

    def _chance(self, percent: int) -> bool:
        """True with ``percent`` % probability; shrinks towards False."""
        return self._draw(0, 99) >= 100 - percent

    def _pick(self, items: Sequence[T]) -> T:
        return items[self._draw(0, len(items) - 1)]

    def _pick_newest(self, items: Sequence[T]) -> T:
        """Like ``_pick`` but counted from the end, so it shrinks towards the newest item and
        keeps aiming at the same order when the shrinker drops older commands."""
        return items[len(items) - 1 - self._draw(0, len(items) - 1)]

    def _weighted(self, items: Sequence[tuple[T, int]]) -> T:
        """A weighted choice; shrinks towards the first item."""
        roll = self._draw(0, sum(weight for _, weight in items) - 1)
        for item, weight in items:
            if roll < weight:
                return item
            roll -= weight
        raise AssertionError("unreachable: the roll is below the total weight")

    def _account(self) -> int:
        return self._draw(1, self._accounts)

    def _price(self, side: Side | None = None) -> int:
        """A price in ``low..high``; a limit price leans away from the other side (buys low,
        sells high) so that the book has some depth while most prices still cross."""
        if side == Side.BUY:
            return self._draw(self._low, self._high - 3)
        if side == Side.SELL:
            return self._draw(self._low + 3, self._high)
        return self._draw(self._low, self._high)

    def _mark_price(self) -> int:
        if self._chance(3):
            return self._pick([0, -1, self._spec.max_price + 1])
        return self._draw(self._low + 3, self._high - 3)

    def _qty(self) -> int:
        low = self._spec.min_qty
        return self._draw(low, min(low + 7, self._spec.max_qty))

    def _order_id(self) -> int:
        """Mostly a fresh id; sometimes a live one (duplicate) or a recent one (often reuse of
        a finished id)."""
        live = self._live()
        if live and self._chance(5):
            return self._pick_newest(live)[0]
        if self._recent and self._chance(5):
            return self._pick_newest(self._recent)[0]
        self._next_id += 1
        return self._next_id - 1

    def _target(self) -> tuple[int, int]:
        """An (order id, account) for cancel/amend: mostly a live order by its owner;
        sometimes by another account, a recent (likely finished) order, or an unused id."""
        live = self._live()
        if self._chance(8):
            return self._next_id + 1_000, self._account()
        if live and not self._chance(15):
            order_id, account = self._pick_newest(live)
        elif self._recent:
            order_id, account = self._pick_newest(self._recent)
        else:
            return self._next_id + 1_000, self._account()
        if self._accounts > 1 and self._chance(12):
            account = account % self._accounts + 1
        return order_id, account

    # -------------------------------------------------------------- commands

    def _place(self, order_type: OrderType) -> PlaceOrder:
        spec = self._spec
        stop_like = order_type not in (OrderType.LIMIT, OrderType.MARKET)
        trailing = order_type == OrderType.TRAILING_STOP_MARKET
        rates = [
            spec.min_callback_rate,
            spec.max_callback_rate,
            RATE_ONE // 100,
            2 * RATE_ONE // 100,
            5 * RATE_ONE // 100,
        ]
        side = self._pick([Side.BUY, Side.SELL])
        cmd = PlaceOrder(
            order_id=self._order_id(),
            account=self._account(),
            side=side,
            qty=self._qty(),
            type=order_type,
            price=self._price(side) if order_type in LIMIT_TYPES else None,
            tif=self._weighted(_TIFS),
            stop_price=self._price() if stop_like and not trailing else None,
            activation_price=self._price() if trailing and self._chance(50) else None,
            callback_rate=self._pick(rates) if trailing else None,
            trigger=self._pick([TriggerBy.LAST, TriggerBy.MARK]),
            reduce_only=self._chance(20),
            stp=self._pick(_STP_MODES),
        )
        if self._chance(8):
            cmd = self._corrupt(cmd)
        self._recent = [*self._recent, (cmd.order_id, cmd.account)][-_RECENT:]
        return cmd

    def _corrupt(self, cmd: PlaceOrder) -> PlaceOrder:
        """One invalid value or shape error, so every rejection path is exercised."""
        spec = self._spec
        limit_type = cmd.type in LIMIT_TYPES
        valid_price = self._low
        changes: list[dict[str, Any]] = [
            {"qty": 0},
            {"qty": -1},
            {"qty": spec.max_qty + 1},
            {"qty": spec.min_qty - 1},
            {"price": None if limit_type else valid_price},
            {"price": 0} if limit_type else {"stop_price": 0, "activation_price": 0},
            {"price": spec.max_price + 1} if limit_type else {"stop_price": spec.max_price + 1},
            {"stop_price": None if cmd.stop_price is not None else valid_price},
            {"callback_rate": spec.min_callback_rate - 1},
            {"callback_rate": spec.max_callback_rate + 1},
            {"activation_price": valid_price},
        ]
        return msgspec.structs.replace(cmd, **self._pick(changes))

    def _amend(self) -> AmendOrder:
        """Price change, qty down, qty up, both, to zero, nothing, or invalid values."""
        order_id, account = self._target()
        spec = self._spec
        variant = self._weighted(
            [
                ("price", 30),
                ("down", 20),
                ("up", 15),
                ("both", 10),
                ("zero", 8),
                ("nothing", 3),
                ("bad_qty", 3),
                ("bad_price", 3),
            ]
        )
        price: int | None = None
        qty: int | None = None
        if variant in ("price", "both"):
            price = self._price()
        if variant == "down":
            qty = self._draw(1, 3)
        elif variant == "up":
            qty = self._draw(4, spec.max_qty)
        elif variant == "both":
            qty = self._qty()
        elif variant == "zero":
            qty = 0
        elif variant == "bad_qty":
            qty = self._pick([-1, spec.max_qty + 1])
        elif variant == "bad_price":
            price = self._pick([0, spec.max_price + 1])
        return AmendOrder(order_id=order_id, account=account, price=price, qty=qty)


def random_commands(
    rng: random.Random,
    n: int,
    spec: MarketSpec = BASE_SPEC,
    *,
    accounts: int = 4,
    low: int = 95,
    high: int = 105,
) -> list[MatchingCommand]:
    """``n`` commands from the same distribution as ``command_streams``, without hypothesis
    (for long seeded runs where shrinking would cost more than it helps)."""
    generator = CommandGenerator(spec, accounts=accounts, low=low, high=high)
    return [generator.next(rng.randint) for _ in range(n)]


@st.composite
def _next_command(draw: st.DrawFn, generator: CommandGenerator) -> MatchingCommand:
    """One command as its own hypothesis span, so the shrinker can drop it whole."""
    return generator.next(lambda low, high: draw(st.integers(low, high)))


def command_streams(
    spec: MarketSpec,
    *,
    mean_size: int = 40,
    max_size: int = 80,
    accounts: int = 4,
) -> st.SearchStrategy[list[MatchingCommand]]:
    """Hypothesis strategy: a list of commands for one market with ``spec``.

    Built like ``st.lists`` (a "one more?" draw before each command, about ``mean_size``
    commands on average) rather than drawing the length first, so that the shrinker can cut
    commands anywhere in the stream without shifting every later draw.
    """

    @st.composite
    def streams(draw: st.DrawFn) -> list[MatchingCommand]:
        generator = CommandGenerator(spec, accounts=accounts)
        commands: list[MatchingCommand] = []
        while len(commands) < max_size and draw(st.integers(0, mean_size - 1)) != 0:
            commands.append(draw(_next_command(generator)))
        return commands

    return streams()


def specs_and_streams(
    *, max_size: int = 60
) -> st.SearchStrategy[tuple[MarketSpec, list[MatchingCommand]]]:
    """Hypothesis strategy: one of the test specs and a command stream for it."""
    return st.sampled_from(sorted(SPECS)).flatmap(
        lambda name: st.tuples(
            st.just(SPECS[name]), command_streams(SPECS[name], max_size=max_size)
        )
    )
