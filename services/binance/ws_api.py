"""Binance's WebSocket API for USDⓈ-M futures (``/ws-fapi/v1``): a request names a method and
carries its parameters with ``apiKey``, ``timestamp`` and a signature over the parameters
sorted by name; each is answered by the same handler as its REST endpoint, so the two cannot
disagree.

Request ``{"id", "method", "params"}``; answer ``{"id", "status": 200, "result"}`` or
``{"id", "status": 4xx, "error": {"code", "msg"}}``.
"""

from collections.abc import Callable, Mapping

import msgspec

from services.binance import errors, signing
from services.binance.context import Call, Endpoint, Security
from services.binance.errors import BinanceError
from services.binance.params import Params

METHODS = {
    "order.place": ("POST", "/fapi/v1/order"),
    "order.cancel": ("DELETE", "/fapi/v1/order"),
    "order.modify": ("PUT", "/fapi/v1/order"),
    "order.status": ("GET", "/fapi/v1/order"),
    "algoOrder.place": ("POST", "/fapi/v1/algoOrder"),
    "algoOrder.cancel": ("DELETE", "/fapi/v1/algoOrder"),
    "account.position": ("GET", "/fapi/v2/positionRisk"),
    "v2/account.position": ("GET", "/fapi/v3/positionRisk"),
    "account.status": ("GET", "/fapi/v2/account"),
    "v2/account.status": ("GET", "/fapi/v3/account"),
    "account.balance": ("GET", "/fapi/v2/balance"),
    "v2/account.balance": ("GET", "/fapi/v3/balance"),
    "ticker.price": ("GET", "/fapi/v1/ticker/price"),
    "ticker.book": ("GET", "/fapi/v1/ticker/bookTicker"),
    "depth": ("GET", "/fapi/v1/depth"),
    "time": ("GET", "/fapi/v1/time"),
    "ping": ("GET", "/fapi/v1/ping"),
}
"""The WebSocket API's methods by the REST endpoint that answers them."""


class WsApiRequest(msgspec.Struct, frozen=True):
    id: str | int | None
    method: str
    params: dict[str, str | int | float | bool] = {}


_DECODER = msgspec.json.Decoder(WsApiRequest)


def decode(frame: bytes) -> WsApiRequest:
    try:
        return _DECODER.decode(frame)
    except msgspec.DecodeError as error:
        raise BinanceError(
            errors.MANDATORY_PARAM_EMPTY_OR_MALFORMED, f"Invalid request: {error}"
        ) from None


async def answer(
    request: WsApiRequest,
    endpoints: Mapping[tuple[str, str], Endpoint],
    authenticate: Callable[[Call, str | None], None],
    secret_of: Callable[[str], str],
    now: int,
) -> object:
    """The method's result (a Binance error raised as ``BinanceError``)."""
    route = METHODS.get(request.method)
    endpoint = None if route is None else endpoints.get(route)
    if endpoint is None:
        raise BinanceError(errors.INVALID_PARAMETER, f"Unknown method {request.method!r}.")
    call = Call(Params(request.params), now)
    if endpoint.security is not Security.NONE:
        authenticate(call, call.params.text("apiKey"))
        signing.check_time(call.params.text("timestamp"), call.params.text("recvWindow"), now)
        signature = call.params.text("signature")
        signing.verify(secret_of(call.api_key), signing.ws_payload(request.params), signature)
    return await endpoint.handler(call)
