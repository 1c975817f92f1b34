"""Each account's income history (Binance ``/fapi/v1/income``): realized PnL, funding fees,
commissions and transfers, from the ledger transfers and fills of the event log. Pure.

Why the front keeps it: the read model keeps balances, not their history, and ccxt's
``fetch_funding_history`` and freqtrade's funding accounting read this endpoint. Bounded per
account (the latest ``keep``); rebuilt from the log after a restart, like everything else.
"""

from collections import deque
from dataclasses import dataclass

from exchange.engine_events import Transfer, TransferReason
from services.gateway.read_model import Changes

_TYPES = {
    TransferReason.REALIZED_PNL: "REALIZED_PNL",
    TransferReason.FUNDING: "FUNDING_FEE",
    TransferReason.DEPOSIT: "TRANSFER",
    TransferReason.WITHDRAWAL: "TRANSFER",
    TransferReason.LIQUIDATION_FEE: "INSURANCE_CLEAR",
}
"""Binance's ``incomeType`` of the transfers shown (fees are shown from the fills instead,
which name their market and trade; isolated-margin moves are no income)."""


@dataclass(frozen=True)
class Income:
    symbol: str
    kind: str
    amount: int
    """Signed, minor units: what the account received (negative: paid)."""
    time: int
    tran_id: int
    trade_id: int | None = None


class IncomeBook:
    def __init__(self, keep: int = 1_000) -> None:
        self._keep = keep
        self._accounts: dict[int, deque[Income]] = {}
        self._next = 0

    def history(self, account: int) -> list[Income]:
        """Oldest first."""
        return list(self._accounts.get(account, ()))

    def apply(self, changes: Changes, time: int) -> None:
        for transfer in changes.transfers:
            self._transfer(transfer, time)
        for account, fill in changes.fills:
            if fill.fee:
                self._add(
                    account,
                    Income(fill.symbol, "COMMISSION", -fill.fee, time, self._id(), fill.trade_id),
                )

    def _transfer(self, transfer: Transfer, time: int) -> None:
        kind = _TYPES.get(transfer.reason)
        if kind is None:
            return
        for address, sign, other in (
            (transfer.target, 1, transfer.source),
            (transfer.source, -1, transfer.target),
        ):
            owner = _user(address)
            if owner is None:
                continue
            account, symbol = owner
            market = symbol or _market(other)
            self._add(account, Income(market, kind, sign * transfer.amount, time, self._id()))

    def _id(self) -> int:
        self._next += 1
        return self._next

    def _add(self, account: int, income: Income) -> None:
        history = self._accounts.get(account)
        if history is None:
            history = self._accounts[account] = deque(maxlen=self._keep)
        history.append(income)


def _user(address: str) -> tuple[int, str] | None:
    """``u:<account>`` or ``u:<account>:<SYMBOL>`` (exchange/ledger.py)."""
    if not address.startswith("u:"):
        return None
    _, account, *symbol = address.split(":", 2)
    return int(account), symbol[0] if symbol else ""


def _market(address: str) -> str:
    """The market of ``pnl:<SYMBOL>`` or ``funding:<SYMBOL>``; "" for the others."""
    prefix, _, symbol = address.partition(":")
    return symbol if prefix in ("pnl", "funding") else ""
