"""Which orders went in through the algo endpoints (``/fapi/v1/algoOrder``): this instance's
memory. Pure.

Why kept at all: newer ccxt sends conditional orders there and looks them up there only, and
Binance lists an algo order by the algo endpoints alone and streams it as ``ALGO_UPDATE``; a
conditional order placed through ``/fapi/v1/order`` (ccxt 4.4) is an ordinary order. Why here:
the engine's ``PlaceOrder`` has no field for the way an order came in, nor should it (the
core knows no Binance endpoints). Limitation, written in docs/binance-api.md: an algo order
placed through another instance or before a restart is here an ordinary conditional order,
listed by both kinds of endpoint and streamed as ``ORDER_TRADE_UPDATE``.
"""

OrderRef = tuple[int, str, int]
"""(account, symbol, order id)."""


class AlgoOrders:
    """The latest ``keep`` algo orders placed through this instance."""

    def __init__(self, keep: int = 200_000) -> None:
        self._refs: dict[OrderRef, None] = {}
        self._keep = keep

    def add(self, ref: OrderRef) -> None:
        self._refs[ref] = None
        while len(self._refs) > self._keep:
            del self._refs[next(iter(self._refs))]

    def __contains__(self, ref: OrderRef) -> bool:
        return ref in self._refs
