"""Random command streams for the whole engine: two markets, a few accounts, and every command.

Order flow for each market comes from ``strategies.CommandGenerator`` (the matching core's
distribution); around it this adds the ledger's commands: deposits (some over the faucet cap,
some invalid), withdrawals, leverage and margin-mode changes, isolated margin moves, funding
settlements (some repeated), deleveraging between random accounts, deficit cover and insurance
funding. Deposits are small next to order sizes, so the pre-trade check rejects often. Half
the orders carry a client order id from a pool of three, so duplicates of live ones come up,
and a third of the cancels name an order by one of them; a quarter of the orders carry an
expiry time (``time_at``).
As there, every choice goes through one ``draw(low, high)``, for hypothesis and seeded runs.
"""

import random
from collections.abc import Callable

import msgspec
from hypothesis import strategies as st
from strategies import BASE_SPEC, SPECS, CommandGenerator

from exchange.commands import CancelOrder, PlaceOrder, SetMarkPrice
from exchange.engine_commands import (
    AdjustMargin,
    Deposit,
    EngineCommand,
    FundInsurance,
    Liquidate,
    MarginMode,
    MarkPrice,
    OrderCommand,
    SetLeverage,
    SetMarginMode,
    SettleFunding,
    Withdraw,
)
from exchange.market import LeverageBracket
from exchange.units import RATE_ONE

Draw = Callable[[int, int], int]

BRACKETS = (
    LeverageBracket(1_000, 20, 2 * RATE_ONE // 100, 0),
    LeverageBracket(5_000, 10, 5 * RATE_ONE // 100, 30),
    LeverageBracket(100_000, 2, 20 * RATE_ONE // 100, 780),
)
"""Caps in minor units; with multiplier 1 and ~100-tick prices, 10 lots is ~1,000."""

MARKETS = (
    msgspec.structs.replace(BASE_SPEC, symbol="AAA", leverage_brackets=BRACKETS),
    msgspec.structs.replace(SPECS["rebate"], symbol="BBB", leverage_brackets=BRACKETS),
)
FAUCET_CAP = 400
ACCOUNTS = 4
LABELS = ("a", "b", "c")
"""Client order ids: few, so that a label is often still live when it comes again."""
STEP_MS = 1_000


def time_at(step: int) -> int:
    """The event time of the ``step``-th command (from 1) of a stream: the runs advance the
    engine's clock to it before the command, so that orders with an ``expire_time`` (a quarter
    of them, from just past to 30 steps ahead) expire at a later mark price."""
    return step * STEP_MS


class EngineCommandGenerator:
    def __init__(self) -> None:
        self._orders = {spec.symbol: CommandGenerator(spec, accounts=ACCOUNTS) for spec in MARKETS}
        self._funding_time = {spec.symbol: 0 for spec in MARKETS}
        self._draw: Draw | None = None
        self._count = 0

    def next(self, draw: Draw) -> EngineCommand:
        self._count += 1
        roll = draw(0, 99)
        symbol = MARKETS[draw(0, len(MARKETS) - 1)].symbol
        if roll < 72:
            cmd = self._orders[symbol].next(draw)
            if isinstance(cmd, SetMarkPrice):
                return MarkPrice(symbol=symbol, price=cmd.price)
            if isinstance(cmd, PlaceOrder) and draw(0, 1):
                cmd = msgspec.structs.replace(cmd, client_order_id=LABELS[draw(0, len(LABELS) - 1)])
            if isinstance(cmd, CancelOrder) and not draw(0, 2):  # by label instead
                label = LABELS[draw(0, len(LABELS) - 1)]
                cmd = CancelOrder(order_id=0, account=cmd.account, client_order_id=label)
            if isinstance(cmd, PlaceOrder) and not draw(0, 3):
                expire_time = time_at(self._count) + draw(-1, 30) * STEP_MS
                cmd = msgspec.structs.replace(cmd, expire_time=expire_time)
            return OrderCommand(symbol=symbol, order=cmd)
        account = draw(1, ACCOUNTS)
        if roll < 80:
            amount = draw(-1, FAUCET_CAP // 4) if draw(0, 9) else FAUCET_CAP + 1
            return Deposit(account=account, amount=amount)
        if roll < 83:
            return Withdraw(account=account, amount=draw(-1, 150))
        if roll < 86:
            return SetLeverage(account=account, symbol=symbol, leverage=draw(0, 22))
        if roll < 89:
            mode = MarginMode.ISOLATED if draw(0, 1) else MarginMode.CROSS
            return SetMarginMode(account=account, symbol=symbol, mode=mode)
        if roll < 92:
            return AdjustMargin(account=account, symbol=symbol, amount=draw(-60, 60))
        if roll < 95:
            last = self._funding_time[symbol]
            at = last + draw(0, 2)  # sometimes the same boundary again: a duplicate
            self._funding_time[symbol] = at
            rate = draw(-RATE_ONE // 200, RATE_ONE // 200)
            return SettleFunding(symbol=symbol, rate=rate, funding_time=at)
        if roll < 98:
            return Liquidate(account=account, symbol=symbol if draw(0, 1) else "")
        return FundInsurance(amount=draw(0, 200))


def random_engine_commands(rng: random.Random, n: int) -> list[EngineCommand]:
    generator = EngineCommandGenerator()
    return [generator.next(rng.randint) for _ in range(n)]


def engine_streams(*, max_size: int = 120) -> st.SearchStrategy[list[EngineCommand]]:
    """Hypothesis strategy of engine command lists that shrink command by command."""

    @st.composite
    def one(draw: st.DrawFn, generator: EngineCommandGenerator) -> EngineCommand:
        return generator.next(lambda low, high: draw(st.integers(low, high)))

    @st.composite
    def streams(draw: st.DrawFn) -> list[EngineCommand]:
        generator = EngineCommandGenerator()
        commands: list[EngineCommand] = []
        while len(commands) < max_size and draw(st.integers(0, max_size // 2)) != 0:
            commands.append(draw(one(generator)))
        return commands

    return streams()
