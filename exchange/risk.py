"""How much of an account's money its positions and open orders hold: Binance's order cost.

Binance (FAQ "How to Calculate Cost Required to Open a Position"): an order costs its initial
margin ``notional / leverage`` plus its *open loss* ``qty × max(0, side × (order price − mark))``,
the loss it would book against the mark the moment it filled. In one-way mode an order on the
side opposite the position first closes it, and that part needs no initial margin; with orders
on both sides the account pays initial margin for the larger side only, since at most one
side's fills can add to the exposure at a time.

How this implementation makes that exact and cheap, and where it adds to it:

* The orders of one side are held as running sums (``exchange.positions.MarketAccount``), so a
  pre-trade check is O(1) however many orders the account has. The closing part of a side is
  taken pro rata from the side's initial margin.
* Fee and open loss do not net: every order reserves its own, on both sides (Binance nets the
  whole cost). The difference is small for a quoting bot (fees are hundredths of a percent, and
  a passive order has no open loss), and it is what lets a fill never cost more than what its
  order reserved: with netted losses, a fill on the smaller side could book a loss that nothing
  had reserved.
* The open loss per lot is fixed when the order is placed (or amended), at that moment's mark;
  it is not re-priced as the mark moves, which is what keeps the sums O(1).
* The reservation adds the fee of the order at the higher of the market's two fee rates, so
  that filling an order that passed the check cannot push the account's available balance below
  zero by its fee.
* A market order is costed at the prices it would actually take from the book, within its
  protection band (Binance estimates with ``ask × 1.0005``; the engine can be exact).
* Reduce-only orders reserve nothing: they can only close.

Rounding: every requirement rounds up (``ceil_div``), so the exchange is never under-margined
by rounding.
"""

from collections.abc import Iterable
from typing import NamedTuple

from exchange.positions import MarketAccount
from exchange.units import RATE_ONE, ceil_div


def open_loss_per_lot(is_buy: bool, price: int, mark: int | None) -> int:
    """Ticks lost per lot if an order at ``price`` filled now, judged at the mark (Binance)."""
    if mark is None:
        return 0
    loss = price - mark if is_buy else mark - price
    return loss if loss > 0 else 0


def order_margin(
    account: MarketAccount,
    multiplier: int,
    fee_rate: int,
    extra: tuple[bool, int, int, int] | None = None,
) -> int:
    """Margin held by the account's open orders in one market.

    ``max(IM of the buy side's opening part, IM of the sell side's opening part)`` plus the fee
    and open loss of every order on both sides, in one rounding up. Only initial margin nets
    (against the position and across sides); a fee or a loss against the mark is paid by
    whichever order fills, so each order reserves its own.

    ``extra`` = ``(is_buy, qty, value, loss)`` adds a hypothetical order (the pre-trade check).
    """
    buy_qty, buy_value, buy_loss = account.buy_qty, account.buy_value, account.buy_loss
    sell_qty, sell_value, sell_loss = account.sell_qty, account.sell_value, account.sell_loss
    if extra is not None:
        is_buy, qty, value, loss = extra
        if is_buy:
            buy_qty, buy_value, buy_loss = buy_qty + qty, buy_value + value, buy_loss + loss
        else:
            sell_qty, sell_value, sell_loss = sell_qty + qty, sell_value + value, sell_loss + loss
    if not buy_qty and not sell_qty:
        return 0
    size = account.size
    leverage = account.leverage
    # initial margin of each side's opening share, scaled by qty_b·qty_s·leverage·RATE_ONE
    buys = _opening_value(buy_qty, buy_value, -size if size < 0 else 0) * (sell_qty or 1)
    sells = _opening_value(sell_qty, sell_value, size if size > 0 else 0) * (buy_qty or 1)
    scale = (buy_qty or 1) * (sell_qty or 1)
    initial = (buys if buys > sells else sells) * multiplier * RATE_ONE
    fees = (buy_value + sell_value) * multiplier * fee_rate * leverage * scale
    losses = (buy_loss + sell_loss) * multiplier * RATE_ONE * leverage * scale
    return ceil_div(initial + fees + losses, scale * RATE_ONE * leverage)


def _opening_value(qty: int, value: int, closable: int) -> int:
    """``value × opening / qty`` times ``qty``: the side's value (tick·lots) on its opening
    share, still multiplied by ``qty`` so that no division happens before the last one."""
    opening = qty - closable
    return value * opening if opening > 0 else 0


def position_margin(account: MarketAccount) -> int:
    """Initial margin of the position: entry notional / leverage, rounded up.

    At the entry price rather than the mark (Binance shows the mark-based figure): the margin a
    position holds should not change with every tick, and for an isolated position it is
    exactly what was moved into the isolated wallet when it opened.
    """
    return ceil_div(account.entry_notional, account.leverage)


def projected_notional(account: MarketAccount, is_buy: bool, multiplier: int) -> int:
    """Position notional (minor units, at entry and order prices) if every order on one side
    filled: what the leverage brackets limit (Binance "maximum position at current leverage")."""
    size = account.size
    if is_buy:
        qty, value, closable = account.buy_qty, account.buy_value, (-size if size < 0 else 0)
    else:
        qty, value, closable = account.sell_qty, account.sell_value, (size if size > 0 else 0)
    same_side = size > 0 if is_buy else size < 0
    held = account.entry_notional if same_side else 0
    opening = qty - closable
    if opening <= 0:
        return held
    return held + ceil_div(value * multiplier * opening, qty)


class Holding(NamedTuple):
    """One market of an account, as ``available_balance`` counts it: the engine builds these
    from its state, the gateway from the event log, so both show the same figure."""

    order_margin: int
    cross: bool
    size: int
    entry_notional: int
    leverage: int
    unrealized_pnl: int
    isolated_wallet: int
    """0 for a cross position."""


def available_balance(wallet: int, holdings: Iterable[Holding], *, with_profit: bool = True) -> int:
    """Cross wallet + cross unrealized PnL − cross position margin − every order's margin.

    What a new order may cost (Binance ``availableBalance``); negative when the mark has moved
    against the account. An isolated position whose wallet plus unrealized PnL is below zero
    counts with that deficit, because closing it settles the deficit from the cross wallet
    (until the liquidation service and the insurance fund step in). ``with_profit=False``
    leaves unrealized profit out, which is what may be withdrawn.
    """
    total = wallet
    for holding in holdings:
        total -= holding.order_margin
        if not holding.size:
            continue
        pnl = holding.unrealized_pnl
        if holding.cross:
            total += pnl if with_profit or pnl < 0 else 0
            total -= ceil_div(holding.entry_notional, holding.leverage)  # ``position_margin``
        else:
            total += min(0, holding.isolated_wallet + pnl)
    return total
