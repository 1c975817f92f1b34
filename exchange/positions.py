"""One account's state in one market: position, leverage, margin mode, and its orders' margin.

Positions are one-way (net): ``size`` is signed lots, + long and − short. The entry is kept as
``entry_notional = |size| × average entry price × multiplier`` in minor units, the exact cost of
the lots still open, so no average price is ever rounded (Binance's entry price is this divided
by ``|size| × multiplier``).

Rounding rule for a reduce: the entry notional released by closing ``q`` of ``|size|`` lots is
``floor(entry_notional × q / |size|)``; what stays behind is released by the final close, so
over a position's life the realized PnL sums exactly to the cash of its fills.
"""

import msgspec

from exchange.engine_commands import MarginMode


class MarketAccount(msgspec.Struct, kw_only=True):
    """An account's state in one market, including running sums over its open orders.

    The order sums hold every live non-reduce-only order (resting or conditional) per side:
    quantity in lots, ``price × quantity`` in tick·lots, and open loss in tick·lots (fixed per
    lot when the order is placed, at the mark of that moment; see ``exchange.risk``).
    """

    leverage: int
    mode: MarginMode = MarginMode.CROSS
    size: int = 0
    entry_notional: int = 0
    buy_qty: int = 0
    buy_value: int = 0
    buy_loss: int = 0
    sell_qty: int = 0
    sell_value: int = 0
    sell_loss: int = 0
    order_margin: int = 0
    """The order margin last reported (``OrderMarginChanged``): the engine reports a change
    by comparing with it."""

    def has_orders(self) -> bool:
        return bool(self.buy_qty or self.sell_qty)


class Fill(msgspec.Struct, frozen=True):
    """What one fill did to a position: lots closed and opened, and the PnL realized."""

    closed: int
    opened: int
    realized: int
    size_before: int


def apply_fill(account: MarketAccount, signed_qty: int, price: int, multiplier: int) -> Fill:
    """Add a fill of ``signed_qty`` lots (+ buy, − sell) at ``price`` ticks to the position.

    An increase adds the fill's cost to the entry notional (so the entry price is the average);
    a reduce keeps the entry price and realizes ``side × q × (price − entry)``; a flip closes
    the whole position and opens the rest at ``price``.
    """
    size = account.size
    qty = abs(signed_qty)
    if size == 0 or (size > 0) == (signed_qty > 0):
        account.size = size + signed_qty
        account.entry_notional += price * qty * multiplier
        return Fill(0, qty, 0, size)
    held = abs(size)
    closed = min(qty, held)
    released = account.entry_notional * closed // held
    value = price * closed * multiplier
    realized = value - released if size > 0 else released - value
    account.entry_notional -= released
    opened = qty - closed
    if opened:
        account.entry_notional = price * opened * multiplier  # flat before the open: all gone
    account.size = size + signed_qty
    return Fill(closed, opened, realized, size)
