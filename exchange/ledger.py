"""Balances of every account, and the one way money moves: a transfer between two addresses.

An address names one balance of the settlement asset:

=====================  ==========================================================================
``u:<account>``         a user's cross wallet (deposits, fees, realized PnL of cross positions)
``u:<account>:<SYM>``   the isolated wallet of that user's position in market ``SYM``
``fees``                trading fees collected (and maker rebates paid)
``insurance``           the insurance fund: funding remainders, deficits covered, liquidation
``pnl:<SYM>``           the market's clearing account: realized PnL is paid from and into it
``funding:<SYM>``       the market's funding pool, zero between settlements
``external``            the world outside: deposits come from it and withdrawals go to it
=====================  ==========================================================================

Because every change is a transfer, the balances always sum to exactly zero; ``external`` is
minus the net deposits, so everything inside the exchange sums to the net deposits. The clearing
account of a market holds exactly the sum of its open positions' unrealized PnL (at any price,
because positions net to zero): profits realized by one trader are owed by the open positions
of others until they close.
"""

from collections.abc import Iterator

from exchange.engine_events import Transfer, TransferReason

FEES = "fees"
INSURANCE = "insurance"
EXTERNAL = "external"


def wallet(account: int) -> str:
    return f"u:{account}"


def isolated_wallet(account: int, symbol: str) -> str:
    return f"u:{account}:{symbol}"


def clearing(symbol: str) -> str:
    return f"pnl:{symbol}"


def funding_pool(symbol: str) -> str:
    return f"funding:{symbol}"


class Ledger:
    """Integer balances by address; ``transfer`` is the only way to change one."""

    __slots__ = ("balances",)

    def __init__(self, balances: dict[str, int] | None = None) -> None:
        self.balances: dict[str, int] = dict(balances or {})

    def balance(self, address: str) -> int:
        return self.balances.get(address, 0)

    def transfer(
        self,
        source: str,
        target: str,
        amount: int,
        reason: TransferReason,
        out: list[Transfer],
    ) -> None:
        """Move ``amount`` from ``source`` to ``target`` and record it in ``out``.

        A negative amount moves the other way, so callers can pass a signed PnL; zero is a
        no-op and records nothing.
        """
        if amount == 0:
            return
        if amount < 0:
            source, target, amount = target, source, -amount
        balances = self.balances
        balances[source] = balances.get(source, 0) - amount
        balances[target] = balances.get(target, 0) + amount
        out.append(Transfer(source, target, amount, reason))

    def total(self) -> int:
        """Sum of every balance: zero, always (the conservation check)."""
        return sum(self.balances.values())

    def items(self) -> Iterator[tuple[str, int]]:
        """Non-zero balances in address order (deterministic, for snapshots and reports)."""
        for address in sorted(self.balances):
            amount = self.balances[address]
            if amount:
                yield address, amount
