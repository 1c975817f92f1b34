"""The drill's accounts and the commands that set them up. Pure and deterministic.

**Who.** ``draw_population`` draws every trader from one ``random.Random(seed)`` with integer
draws only (weights, percentages in basis points, lots), so a seed gives the same population on
every machine and Python version. Traders are accounts 1..N; the drill's own tools are
``HOUSE`` (the counterparty the positions are opened against) and ``MAKER`` (the liquidity),
both below the engine's first created account (``1 << 20``) and apart from the replay's.

**How positions open.** With an empty book (before any liquidity), the house rests one order
(split at the market's ``max_qty``) at the start price for everything the longs buy, the longs
take it with IOC orders at that price, then the same for the shorts; the house's remainder, if
a trader was refused, is cancelled. So every trader opens at the start price and the house
holds the population's net, at leverage 1 with twice its notional in its wallet: it is never
the one liquidated, and with the largest wallet it is last in every ADL queue.

**Money**, in minor units, rounded up where the exchange is owed (``ceil_div``): a trader's
deposit is its initial margin ``⌈notional / leverage⌉``, plus a buffer of a drawn share of it
(floored), plus twice the taker fee of its opening order (the order's margin holds a fee, the
fill charges one).
"""

import random
from bisect import bisect_right
from itertools import accumulate

import msgspec

from exchange.commands import CancelAll, PlaceOrder
from exchange.engine import max_notional
from exchange.engine_commands import (
    AdjustMargin,
    Deposit,
    EngineCommand,
    FundInsurance,
    MarginMode,
    OrderCommand,
    SetLeverage,
    SetMarginMode,
)
from exchange.market import MarketSpec
from exchange.orders import Side, TimeInForce
from exchange.units import RATE_ONE, ceil_div
from load.drill.scenario import Population

HOUSE = 990_001
"""The counterparty every trader opens against."""
MAKER = 990_002
"""The drill's market maker (``liquidity.py``)."""
TAKER = 990_003
"""The drill's flow: a small taker order at every requote, so the last price follows the
index as it does in a market with trading (``liquidity.py``)."""


class Trader(msgspec.Struct, frozen=True):
    """One drawn account: ``lots`` long or short at ``leverage``, with ``deposit`` minor units
    of which ``buffer`` is above the initial margin and fees."""

    account: int
    long: bool
    lots: int
    leverage: int
    isolated: bool
    deposit: int
    buffer: int


def draw_population(
    population: Population, spec: MarketSpec, price: int, seed: int
) -> list[Trader]:
    """The traders of ``population`` opening at ``price`` (ticks), drawn from ``seed``."""
    rng = random.Random(seed)
    leverages = sorted(population.leverage)
    bounds = list(accumulate(population.leverage[x] for x in leverages))
    long_bps = int(population.long_pct * 100)
    isolated_bps = int(population.isolated_pct * 100)
    buffer_bps = int(population.buffer_pct_max * 100)
    size_min = spec.qty_to_lots(str(population.size_min))
    size_max = spec.qty_to_lots(str(population.size_max))
    multiplier = spec.multiplier
    least = max(size_min, ceil_div(spec.min_notional, price * multiplier))
    traders = []
    for account in range(1, population.accounts + 1):
        leverage = leverages[bisect_right(bounds, rng.randrange(bounds[-1]))]
        long = rng.randrange(10_000) < long_bps
        isolated = rng.randrange(10_000) < isolated_bps
        lots = max(least, rng.randint(size_min, size_max))
        notional = lots * price * multiplier
        margin = ceil_div(notional, leverage)
        buffer = margin * rng.randint(0, buffer_bps) // 10_000
        fee = ceil_div(notional * spec.taker_fee, RATE_ONE)
        deposit = margin + buffer + 2 * fee
        traders.append(Trader(account, long, lots, leverage, isolated, deposit, buffer))
    return traders


def house_deposit(traders: list[Trader], spec: MarketSpec, price: int) -> int:
    """Twice the notional of the larger side, at leverage 1 (module docstring)."""
    longs = sum(t.lots for t in traders if t.long)
    shorts = sum(t.lots for t in traders if not t.long)
    return 2 * max(longs, shorts) * price * spec.multiplier + 1


def setup_commands(
    traders: list[Trader], spec: MarketSpec, price: int, insurance_fund: int
) -> list[EngineCommand]:
    """Every command that funds the traders and opens their positions, in order (module
    docstring); then the insurance fund's starting balance."""
    symbol = spec.symbol
    commands: list[EngineCommand] = [
        Deposit(account=HOUSE, amount=house_deposit(traders, spec, price)),
        SetLeverage(account=HOUSE, symbol=symbol, leverage=1),
    ]
    for trader in traders:
        commands.append(Deposit(account=trader.account, amount=trader.deposit))
        commands.append(
            SetLeverage(account=trader.account, symbol=symbol, leverage=trader.leverage)
        )
        if trader.isolated:
            commands.append(
                SetMarginMode(account=trader.account, symbol=symbol, mode=MarginMode.ISOLATED)
            )
    for long in (True, False):
        side = [t for t in traders if t.long is long]
        total = sum(t.lots for t in side)
        house_side = Side.SELL if long else Side.BUY
        while total > 0:
            qty = min(total, spec.max_qty)
            total -= qty
            commands.append(_order(symbol, HOUSE, house_side, qty, price, TimeInForce.GTC))
        for trader in side:
            taker = Side.BUY if long else Side.SELL
            commands.append(
                _order(symbol, trader.account, taker, trader.lots, price, TimeInForce.IOC)
            )
        commands.append(OrderCommand(symbol=symbol, order=CancelAll(account=HOUSE)))
    for trader in traders:
        if trader.isolated and trader.buffer:
            commands.append(
                AdjustMargin(account=trader.account, symbol=symbol, amount=trader.buffer)
            )
    if insurance_fund:
        commands.append(FundInsurance(amount=insurance_fund))
    return commands


def faucet_cap(traders: list[Trader], spec: MarketSpec, price: int, maker_deposit: int) -> int:
    """The largest deposit of the drill: the engine refuses a deposit above its faucet cap."""
    largest = max(t.deposit for t in traders)
    return max(largest, house_deposit(traders, spec, price), maker_deposit)


def maker_leverage(spec: MarketSpec, notional: int) -> int:
    """The highest leverage at which the maker may hold ``notional`` (minor units)."""
    for leverage in range(spec.leverage_brackets[0].max_leverage, 0, -1):
        if max_notional(spec, leverage) >= notional:
            return leverage
    return 1


def _order(
    symbol: str, account: int, side: Side, qty: int, price: int, tif: TimeInForce
) -> OrderCommand:
    """An order with the engine's own id (``order_id`` 0): ids are per market, not ours."""
    place = PlaceOrder(order_id=0, account=account, side=side, qty=qty, price=price, tif=tif)
    return OrderCommand(symbol=symbol, order=place)
