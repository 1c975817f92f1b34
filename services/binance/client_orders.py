"""Client order ids, which Binance clients set and look orders up by, and which the engine does
not carry (its orders are numbered by the engine alone). Pure.

Why here: a client order id is a client's label, not exchange state, so the core stays without
it. The front remembers the id it was given for each order it placed, and whether the order
went in through the algo endpoints (newer ccxt sends conditional orders there and looks them up
there only). Limitation, written in docs/binance-api.md: the memory is this instance's, so an
order placed through another instance or before a restart shows a made-up id,
``paper-<orderId>``, and cannot be found by its original one.
"""

import re
from collections import OrderedDict

from services.binance import errors
from services.binance.errors import BinanceError

_VALID = re.compile(r"^[.A-Z:/a-z0-9_-]{1,36}$")
"""Binance's rule for ``newClientOrderId``."""

OrderRef = tuple[int, str, int]
"""(account, symbol, order id)."""


def default_id(order_id: int) -> str:
    return f"paper-{order_id}"


def check(client_id: str) -> str:
    if not _VALID.match(client_id):
        raise BinanceError(
            errors.ILLEGAL_CHARS,
            "Illegal characters found in parameter 'newClientOrderId'; legal range is "
            "'^[\\.A-Z\\:/a-z0-9_-]{1,36}$'.",
        )
    return client_id


class ClientOrders:
    """The latest ``keep`` orders placed through this instance: their client ids, and which of
    them are algo orders."""

    def __init__(self, keep: int = 200_000) -> None:
        self._ids: OrderedDict[OrderRef, str] = OrderedDict()
        self._by_id: dict[tuple[int, str, str], int] = {}
        self._algo: set[OrderRef] = set()
        self._keep = keep

    def remember(self, ref: OrderRef, client_id: str, *, algo: bool) -> None:
        account, symbol, order_id = ref
        self._ids[ref] = client_id
        self._by_id[account, symbol, client_id] = order_id
        if algo:
            self._algo.add(ref)
        while len(self._ids) > self._keep:
            (old_account, old_symbol, old_id), old_client = self._ids.popitem(last=False)
            self._by_id.pop((old_account, old_symbol, old_client), None)
            self._algo.discard((old_account, old_symbol, old_id))

    def client_id(self, ref: OrderRef) -> str:
        return self._ids.get(ref) or default_id(ref[2])

    def find(self, account: int, symbol: str, client_id: str) -> int | None:
        """The order id of an account's client id in a market (the made-up ids too)."""
        found = self._by_id.get((account, symbol, client_id))
        if found is None and client_id.startswith("paper-") and client_id[6:].isdigit():
            return int(client_id[6:])
        return found

    def is_algo(self, ref: OrderRef) -> bool:
        return ref in self._algo
