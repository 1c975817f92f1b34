"""What every endpoint of the front reads and sends through, in one place: the native gateway's
parts (read model, price board, command sender, views) and the front's own memory (public
history, which orders are algo orders, income), and the request they are answering (``Call``).
"""

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import Enum
from typing import TypeVar

import structlog

from exchange.engine_commands import EngineCommand
from services.binance import errors
from services.binance.algo_orders import AlgoOrders
from services.binance.errors import BinanceError
from services.binance.formats import Formats
from services.binance.income import IncomeBook
from services.binance.market_history import MarketHistory
from services.binance.params import Params
from services.gateway.command_sender import CommandSender
from services.gateway.convert import Markets
from services.gateway.price_board import PriceBoard
from services.gateway.protocol import Failure
from services.gateway.read_model import ReadModel
from services.wire import CommandResult

T = TypeVar("T")
log = structlog.get_logger("binance")


class Security(Enum):
    """Binance's endpoint security types: none, the API key header alone, or signed."""

    NONE = "NONE"
    USER_STREAM = "USER_STREAM"
    SIGNED = "SIGNED"


@dataclass
class Call:
    """One request being answered: its parameters, the front's clock, and for a keyed or
    signed endpoint the account."""

    params: Params
    now: int
    account: int = 0
    api_key: str = ""


Handler = Callable[[Call], Awaitable[object]]


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    security: Security
    handler: Handler
    weight: int = 1
    orders: int = 0
    """What it counts against the account's order rate limit (``-1015``): Binance's count on
    its 10-second order limit, 1 for an order's endpoint, 5 for a batch placing or modifying
    up to 5."""


@dataclass
class Context:
    model: ReadModel
    board: PriceBoard
    markets: Markets
    formats: Formats
    sender: CommandSender
    history: dict[str, MarketHistory]
    algo_orders: AlgoOrders
    income: IncomeBook

    def spec_symbol(self, params: Params) -> str:
        """The ``symbol`` parameter, a market served here (``-1121`` otherwise)."""
        symbol = params.required("symbol").upper()
        if symbol not in self.markets.specs:
            raise BinanceError(errors.BAD_SYMBOL, "Invalid symbol.")
        return symbol

    def optional_symbol(self, params: Params) -> str | None:
        return None if params.text("symbol") is None else self.spec_symbol(params)

    async def command(
        self,
        command: EngineCommand,
        build: Callable[[CommandResult], T],
        *,
        cancelling: bool = False,
    ) -> T:
        """Send ``command`` and return ``build`` of the engine's result, called in the step that
        applied it (so it reads the model exactly as that command left it); a refusal or a
        ``Failure`` from ``build`` as Binance's error."""
        return await self.submit(command, build, cancelling=cancelling)

    def submit(
        self,
        command: EngineCommand,
        build: Callable[[CommandResult], T],
        *,
        cancelling: bool = False,
    ) -> "asyncio.Future[T]":
        """``command`` sent, and the future of its answer (as ``command`` returns it). Not a
        coroutine: a batch queues each of its commands at once, so they ride in one record."""
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()

        def answer(outcome: CommandResult | Failure) -> None:
            if future.done():
                return
            try:
                if isinstance(outcome, Failure):
                    raise outcome
                future.set_result(build(outcome))
            except Failure as failure:
                future.set_exception(errors.from_failure(failure, cancelling=cancelling))
            except BinanceError as error:
                future.set_exception(error)
            except Exception:  # a bug must cost one answer, never the loop that folds the log
                log.exception("binance_answer_failed")
                future.set_exception(
                    BinanceError(errors.UNKNOWN, "the front failed to answer", status=500)
                )

        self.sender.submit(command, answer)
        return future
