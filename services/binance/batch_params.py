"""The batch endpoints' lists (``/fapi/v1/batchOrders``) as one request's parameters per item,
so that each item goes through the single-order endpoint's code and succeeds or fails on its
own, as on Binance. Pure.

``batchOrders`` is a JSON list of at most 5 objects with the single endpoint's fields (strings
in Binance's docs; numbers and booleans are read too). A cancel names its orders by
``orderIdList`` or ``origClientOrderIdList``, JSON lists of at most 10 ids.
"""

from collections.abc import Mapping

from services.binance import errors
from services.binance.errors import BinanceError
from services.binance.params import Params

MAX_ORDERS = 5
MAX_IDS = 10

Item = Params | BinanceError
"""One item's parameters, or why they cannot be read (that item's answer)."""


def orders(params: Params) -> list[Item]:
    """``batchOrders``' orders (new or modified): ``-4082`` for none or more than 5, ``-1130``
    when it is no JSON list of objects."""
    items = params.json_list(("batchOrders",))
    if items is None:
        raise errors.mandatory("batchOrders")
    if not 1 <= len(items) <= MAX_ORDERS:
        raise BinanceError(
            errors.INVALID_BATCH_PLACE_ORDER_SIZE, "Invalid number of batch place orders."
        )
    objects = [item for item in items if isinstance(item, dict)]
    if len(objects) < len(items):
        raise errors.bad_value("batchOrders", "a JSON list of order objects expected")
    return [_item(item) for item in objects]


def cancels(params: Params, symbol: str) -> list[Item]:
    """One cancel's parameters per id of ``orderIdList`` or ``origClientOrderIdList`` (one of
    the two, 1 to 10 ids)."""
    order_ids = params.json_list(("orderIdList", "orderidlist"))
    client_ids = params.json_list(("origClientOrderIdList", "origclientorderidlist"))
    if order_ids is not None:
        if client_ids is not None:
            raise errors.bad_value("origClientOrderIdList", "not with orderIdList")
        name, ids = "orderId", order_ids
    elif client_ids is not None:
        name, ids = "origClientOrderId", client_ids
    else:
        raise errors.mandatory("orderIdList or origClientOrderIdList")
    if not 1 <= len(ids) <= MAX_IDS:
        raise errors.bad_value(f"{name}List", f"1 to {MAX_IDS} ids")
    return [_item({"symbol": symbol, name: order}) for order in ids]


def _item(values: Mapping[str, object]) -> Item:
    try:
        return Params(values)
    except BinanceError as error:
        return error
