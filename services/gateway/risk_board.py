"""The latest of the risk topic per account: its margin calls and ADL queue indicators. Pure.

The liquidation service publishes only changes (``services/risk_messages.py``), so the latest
message per margin scope, and per position, is the state now; the ``margin_calls`` and
``adl_quantile`` channels push each change to the account it concerns.
"""

from services.risk_messages import AdlQuantiles, MarginCall, PositionSide, RiskMessage

AdlKey = tuple[str, PositionSide]
"""(symbol, side) of one position's indicator."""


class RiskBoard:
    def __init__(self, symbols: frozenset[str]) -> None:
        self.symbols = symbols
        self.margin_calls: dict[int, dict[str, MarginCall]] = {}
        """Account → scope ("" cross, else the isolated position's symbol) → its latest call."""
        self.quantiles: dict[int, dict[AdlKey, tuple[int | None, int]]] = {}
        """Account → position → (indicator 0 … 4, None when closed; event time)."""

    def apply(self, message: RiskMessage) -> list[tuple[int, MarginCall | AdlKey]]:
        """Take ``message``; which accounts it changed, and what: a call, or a position's key."""
        if isinstance(message, MarginCall):
            if message.symbol and message.symbol not in self.symbols:
                return []
            self.margin_calls.setdefault(message.account, {})[message.symbol] = message
            return [(message.account, message)]
        if message.symbol not in self.symbols:
            return []
        return self._quantiles(message)

    def _quantiles(self, message: AdlQuantiles) -> list[tuple[int, MarginCall | AdlKey]]:
        changed: list[tuple[int, MarginCall | AdlKey]] = []
        for entry in message.entries:
            key = (message.symbol, entry.side)
            mine = self.quantiles.setdefault(entry.account, {})
            if entry.quantile is None:
                mine.pop(key, None)
            else:
                mine[key] = (entry.quantile, message.time)
            changed.append((entry.account, key))
        return changed
