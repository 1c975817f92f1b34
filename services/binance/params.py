"""A request's parameters, read strictly: each one by name, as the type the endpoint needs, and a
Binance error naming it when it is missing or malformed.

Binance takes parameters from the query string and from a form body alike, so both are merged
(the body wins a name given twice). Parameters an endpoint does not know are ignored, as
Binance does: ccxt sends a few of its own. Decimals stay strings here; they become ticks, lots
and minor units through the markets' grids (``services.gateway.convert``), never a float.
"""

import json
from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import TypeVar
from urllib.parse import parse_qsl

from services.binance import errors
from services.binance.errors import BinanceError

E = TypeVar("E", bound=StrEnum)

_MAX_TEXT = 256
_MAX_LIST = 4_096
_LISTS = frozenset(
    {"batchOrders", "orderIdList", "orderidlist", "origClientOrderIdList", "origclientorderidlist"}
)
"""The batch endpoints' JSON lists, longer than any single value (five orders' fields); ccxt
spells the id lists in lower case."""


def parse(query: str, body: str) -> dict[str, str]:
    """The merged parameters of a query string and a form body."""
    merged: dict[str, str] = {}
    for raw in (query, body):
        try:
            pairs = parse_qsl(raw, keep_blank_values=True, strict_parsing=False, max_num_fields=100)
        except ValueError as error:
            raise BinanceError(errors.ILLEGAL_CHARS, f"Illegal characters found: {error}") from None
        merged.update(pairs)
    return merged


class Params:
    """Typed access to one request's parameters."""

    def __init__(self, values: Mapping[str, object]) -> None:
        self.values: dict[str, str] = {}
        for key, value in values.items():
            text = _as_text(value)
            if len(text) > (_MAX_LIST if key in _LISTS else _MAX_TEXT):
                raise errors.bad_value(key, "too long")
            self.values[key] = text

    def text(self, name: str) -> str | None:
        """The parameter, None if absent or empty."""
        value = self.values.get(name)
        return value if value else None

    def required(self, name: str) -> str:
        value = self.text(name)
        if value is None:
            raise errors.mandatory(name)
        return value

    def first(self, names: Iterable[str]) -> str | None:
        """The first of ``names`` present (Binance renamed some: ``stopPrice`` is
        ``triggerPrice`` on algo orders)."""
        for name in names:
            value = self.text(name)
            if value is not None:
                return value
        return None

    def json_list(self, names: tuple[str, ...]) -> list[object] | None:
        """The first of ``names`` present, a JSON list (the batch endpoints' parameters); None
        if absent."""
        text = self.first(names)
        if text is None:
            return None
        try:
            value = json.loads(text)
        except ValueError:
            raise errors.bad_value(names[0], "not JSON") from None
        if not isinstance(value, list):
            raise errors.bad_value(names[0], "not a JSON list")
        return value

    def integer(self, name: str, *, low: int = 0, high: int = 2**63 - 1) -> int | None:
        value = self.text(name)
        if value is None:
            return None
        if not value.isascii() or not value.lstrip("-").isdigit() or len(value) > 19:
            raise errors.mandatory(name)
        number = int(value)
        if not low <= number <= high:
            raise errors.bad_value(name, f"must be within {low} and {high}")
        return number

    def required_integer(self, name: str, *, low: int = 0, high: int = 2**63 - 1) -> int:
        value = self.integer(name, low=low, high=high)
        if value is None:
            raise errors.mandatory(name)
        return value

    def boolean(self, name: str, default: bool = False) -> bool:
        value = self.text(name)
        if value is None:
            return default
        lowered = value.lower()
        if lowered not in ("true", "false"):
            raise errors.bad_value(name, "expected true or false")
        return lowered == "true"

    def choice(self, name: str, kind: type[E], code: int = errors.INVALID_PARAMETER) -> E | None:
        value = self.text(name)
        if value is None:
            return None
        try:
            return kind(value.upper())
        except ValueError:
            allowed = ", ".join(member.value for member in kind)
            raise BinanceError(code, f"Invalid {name} {value!r} (one of {allowed}).") from None

    def limit(self, default: int, maximum: int) -> int:
        """``limit``: default when absent, at most ``maximum``."""
        value = self.integer("limit", low=1, high=2**31)
        return default if value is None else min(value, maximum)


def _as_text(value: object) -> str:
    """A websocket API parameter (JSON) as the text a REST one would be."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    raise errors.bad_value("parameter", f"unsupported JSON value {type(value).__name__}")
