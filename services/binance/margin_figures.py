"""An account's margin figures as Binance's ``account`` and ``positionRisk`` show them, in
integers (minor units, ticks), from the read model. Pure.

The same ``exchange.margin`` formulas the engine uses, at the engine's price (its mark, else
the last trade: ``ReadModel.price``). ``open_order_margin`` is what the engine holds for the
open orders (its ``OrderMarginChanged`` events: initial margin, fee and open loss), and
``available`` is the engine's own available balance (``risk.available_balance``), so an order
within it passes the engine's pre-trade check at the same prices.
"""

from dataclasses import dataclass, field

from exchange import margin
from exchange.engine_commands import MarginMode
from exchange.market import MarketSpec
from services.gateway import views
from services.gateway.read_model import ReadModel


@dataclass(frozen=True)
class PositionFigures:
    symbol: str
    size: int
    entry_notional: int
    price: int | None
    """The engine's price of the market (mark, else last trade), None before either."""
    notional: int
    unrealized_pnl: int
    initial_margin: int
    maintenance: int
    open_order_margin: int
    leverage: int
    mode: MarginMode
    isolated_wallet: int
    liquidation_price: int | None


@dataclass
class AccountFigures:
    wallet: int
    """The cross wallet (isolated wallets are the positions')."""
    available: int
    """The engine's available balance (``gateway.views.available``), at least 0."""
    positions: list[PositionFigures] = field(default_factory=list)

    @property
    def cross(self) -> list[PositionFigures]:
        return [p for p in self.positions if p.mode is MarginMode.CROSS]

    @property
    def unrealized_pnl(self) -> int:
        return sum(p.unrealized_pnl for p in self.positions)

    @property
    def cross_unrealized_pnl(self) -> int:
        return sum(p.unrealized_pnl for p in self.cross)

    @property
    def isolated_wallets(self) -> int:
        return sum(p.isolated_wallet for p in self.positions)

    @property
    def wallet_balance(self) -> int:
        """Binance's ``walletBalance``: the cross wallet and the isolated ones."""
        return self.wallet + self.isolated_wallets

    @property
    def margin_balance(self) -> int:
        return self.wallet_balance + self.unrealized_pnl

    @property
    def position_initial_margin(self) -> int:
        return sum(p.initial_margin for p in self.positions)

    @property
    def open_order_margin(self) -> int:
        return sum(p.open_order_margin for p in self.positions)

    @property
    def maintenance(self) -> int:
        return sum(p.maintenance for p in self.positions)


def figures(model: ReadModel, specs: dict[str, MarketSpec], account: int) -> AccountFigures:
    """Every market's figures for ``account`` (flat markets too: Binance lists them all)."""
    state = model.account(account)
    result = AccountFigures(state.wallet, max(0, views.available(model, specs, account)))
    raw = []
    for symbol, spec in specs.items():
        position = model.position(account, symbol)
        price = model.price(symbol)
        value = pnl = 0
        if position.size and price is not None:
            value = margin.notional(price, position.size, spec.multiplier)
            pnl = margin.unrealized_pnl(
                position.size, position.entry_notional, price, spec.multiplier
            )
        elif position.size:
            value = position.entry_notional
        maintenance = margin.maintenance_margin(spec.leverage_brackets, value) if value else 0
        raw.append((symbol, spec, position, price, value, pnl, maintenance))
    cross_mm = sum(r[6] for r in raw if r[2].mode is MarginMode.CROSS)
    cross_pnl = sum(r[5] for r in raw if r[2].mode is MarginMode.CROSS)
    for symbol, spec, position, price, value, pnl, maintenance in raw:
        isolated = state.isolated.get(symbol, 0)
        if position.mode is MarginMode.CROSS:
            liquidation = margin.liquidation_price(
                position.size,
                position.entry_notional,
                state.wallet,
                spec.leverage_brackets,
                spec.multiplier,
                other_maintenance=cross_mm - maintenance,
                other_unrealized_pnl=cross_pnl - pnl,
            )
        else:
            liquidation = margin.liquidation_price(
                position.size,
                position.entry_notional,
                isolated,
                spec.leverage_brackets,
                spec.multiplier,
            )
        result.positions.append(
            PositionFigures(
                symbol=symbol,
                size=position.size,
                entry_notional=position.entry_notional,
                price=price,
                notional=value if position.size >= 0 else -value,
                unrealized_pnl=pnl,
                initial_margin=margin.initial_margin(value, position.leverage),
                maintenance=maintenance,
                open_order_margin=state.order_margin.get(symbol, 0),
                leverage=position.leverage,
                mode=position.mode,
                isolated_wallet=isolated,
                liquidation_price=liquidation,
            )
        )
    return result
