"""Client order ids (``newClientOrderId``, ``clientAlgoId``), which Binance clients set and look
orders up by: checked here, carried by the engine. Pure.

Why the engine's: the label travels in the ``PlaceOrder`` into the command log, so every front
instance, and this one after a restart, shows it and finds the order by it, and the engine
refuses a label one of the account's live orders in the market holds (``-4116``), exactly,
whichever instance sent either order. An order placed without one is shown as
``paper-<orderId>`` and found by that too: a function of the order id, so the same everywhere.
"""

import re

from exchange.commands import CLIENT_ORDER_ID_PATTERN
from services.binance import errors
from services.binance.errors import BinanceError
from services.gateway.read_model import OrderState, ReadModel

_VALID = re.compile(CLIENT_ORDER_ID_PATTERN)
_MADE_UP = re.compile(r"paper-([0-9]{1,18})")
"""``paper-<orderId>``, an id within the order ids' range."""


def check(client_id: str, name: str) -> str:
    """``client_id`` if it keeps Binance's rule (``-1100`` naming the parameter otherwise), so
    the command the engine decodes never fails on it."""
    if not _VALID.match(client_id):
        raise BinanceError(
            errors.ILLEGAL_CHARS,
            f"Illegal characters found in parameter '{name}'; legal range is "
            "'^[\\.A-Z\\:/a-z0-9_-]{1,36}$'.",
        )
    return client_id


def shown(state: OrderState) -> str:
    """The order's client id: its label, else ``paper-<orderId>``."""
    return state.terms.client_order_id or f"paper-{state.order_id}"


def cancel_target(model: ReadModel, account: int, symbol: str, client_id: str) -> int | str:
    """What a cancel by client id sends the engine: the label itself, which the engine looks up
    among the account's live orders (so an order placed a moment ago, its answer not read here
    yet, is found too), or the order id a made-up ``paper-<orderId>`` of no labelled order
    names."""
    made_up = _MADE_UP.fullmatch(client_id)
    if made_up is not None and model.order_by_label(account, symbol, client_id) is None:
        return int(made_up.group(1))
    return client_id


def find(model: ReadModel, account: int, symbol: str, client_id: str) -> int | None:
    """The id of the account's order in ``symbol`` with this client id: the latest order
    labelled so (open or recently finished), else the order a ``paper-<orderId>`` names."""
    labelled = model.order_by_label(account, symbol, client_id)
    if labelled is not None:
        return labelled.order_id
    made_up = _MADE_UP.fullmatch(client_id)
    return None if made_up is None else int(made_up.group(1))
