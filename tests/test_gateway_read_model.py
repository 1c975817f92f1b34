"""The gateway's read model, fed the results of the real engine state machine, no broker.

Why the real engine: the read model's contract is to agree with the engine (open orders,
wallets, positions, books) from the engine's own events; results written by hand would only
test the author's idea of them.
"""

import itertools

import msgspec

from exchange.commands import AmendOrder, CancelAll, CancelOrder, PlaceOrder
from exchange.default_markets import DEFAULT_MARKETS, USDT
from exchange.engine import Engine
from exchange.engine_commands import (
    AdjustMargin,
    CreateAccount,
    Deposit,
    EngineCommand,
    MarginMode,
    MarkPrice,
    OrderCommand,
    SetLeverage,
    SetMarginMode,
    SettleFunding,
)
from exchange.engine_events import PositionUpdate
from exchange.ledger import isolated_wallet, wallet
from exchange.orders import OrderType, Side, StpMode, TimeInForce
from services.gateway.convert import Markets
from services.gateway.price_board import PriceBoard
from services.gateway.protocol import OrderStatus
from services.gateway.read_model import Changes, ReadModel
from services.gateway.views import Views
from services.prices import FundingRate
from services.wire import CommandResult

A, B = 1 << 20, (1 << 20) + 1
HASH_A, HASH_B = "a" * 64, "b" * 64


class Replay:
    """Commands through an engine and its results into a read model, as the gateway does."""

    def __init__(self, **model_options: int) -> None:
        self.engine = Engine(DEFAULT_MARKETS, faucet_cap=100_000 * USDT)
        self.model = ReadModel(DEFAULT_MARKETS, default_leverage=20, **model_options)
        self.views = Views(Markets(DEFAULT_MARKETS))
        self._ids = itertools.count(1)
        self.time = 1_000

    def __call__(self, command: EngineCommand, *, duplicate: bool = False) -> Changes:
        self.time += 1
        result = CommandResult(f"c{next(self._ids)}", self.engine.process(command), duplicate)
        return self.model.apply(result, self.time)


def order(symbol: str = "BTCUSDT", **fields: object) -> OrderCommand:
    place = PlaceOrder(**({"order_id": 0, "qty": 10, "price": 600_000} | fields))  # type: ignore[arg-type]
    return OrderCommand(symbol=symbol, order=place)


def funded() -> Replay:
    replay = Replay()
    replay(CreateAccount(key_hash=HASH_A))
    replay(CreateAccount(key_hash=HASH_B))
    replay(Deposit(account=A, amount=10_000 * USDT))
    replay(Deposit(account=B, amount=10_000 * USDT))
    return replay


def test_accounts_and_wallets_follow_the_engine() -> None:
    replay = funded()
    assert replay.model.accounts == {HASH_A: A, HASH_B: B}
    assert replay.model.account(A).wallet == replay.engine.ledger.balance(wallet(A))
    balance = replay.views.balance(replay.model, A)
    assert (balance.asset, balance.wallet, balance.isolated) == (
        "USDT",
        "10000.00000000",
        "0.00000000",
    )


def test_orders_fills_and_positions_of_a_trade() -> None:
    replay = funded()
    placed = replay(order(account=A, side=Side.SELL, qty=30))
    (key,) = placed.orders
    assert key == (A, "BTCUSDT", 1)  # the engine assigned id 1
    assert [o.order_id for o in replay.model.open_orders(A)] == [1]
    changes = replay(order(account=B, side=Side.BUY, qty=10, price=600_100, tif=TimeInForce.IOC))
    assert list(changes.orders) == [(B, "BTCUSDT", 2), (A, "BTCUSDT", 1)]
    assert [(account, fill.maker) for account, fill in changes.fills] == [(B, False), (A, True)]
    assert set(changes.positions) >= {(A, "BTCUSDT"), (B, "BTCUSDT")}
    assert set(changes.balances) == {A, B}  # fees

    maker = replay.model.order(A, "BTCUSDT", 1)
    assert maker is not None
    assert (maker.status, maker.open, maker.filled) == (OrderStatus.PARTIALLY_FILLED, 20, 10)
    taker = replay.model.order(B, "BTCUSDT", 2)
    assert taker is not None and taker.status is OrderStatus.FILLED
    assert list(replay.model.open_orders(B)) == []

    view = replay.views.order(maker)
    assert (view.qty, view.open_qty, view.filled_qty, view.avg_price) == (
        "0.030",
        "0.020",
        "0.010",
        "60000.00000",
    )
    position = replay.views.position(replay.model, B, "BTCUSDT")
    assert (position.size, position.entry_price, position.entry_notional) == (
        "0.010",
        "60000.00000",
        "600.00000000",
    )
    assert replay.views.position(replay.model, A, "BTCUSDT").size == "-0.010"
    fill = replay.views.fill(replay.model.account(B).fills[0])
    assert (fill.role, fill.side, fill.price, fill.qty, fill.fee) == (
        "taker",
        Side.BUY,
        "60000.0",
        "0.010",
        "0.30000000",
    )
    for account in (A, B):
        assert replay.model.account(account).wallet == replay.engine.ledger.balance(wallet(account))


def test_amend_cancel_and_cancel_all_end_orders() -> None:
    replay = funded()
    for price in (590_000, 591_000, 592_000):
        replay(order(account=A, side=Side.BUY, price=price))
    replay(OrderCommand(symbol="BTCUSDT", order=AmendOrder(order_id=1, account=A, qty=4)))
    amended = replay.model.order(A, "BTCUSDT", 1)
    assert amended is not None and (amended.qty, amended.open) == (4, 4)
    replay(OrderCommand(symbol="BTCUSDT", order=CancelOrder(order_id=2, account=A)))
    cancelled = replay.model.order(A, "BTCUSDT", 2)
    assert cancelled is not None
    assert (cancelled.status, cancelled.end_reason, cancelled.qty) == (
        OrderStatus.CANCELLED,
        "user",
        10,
    )
    changes = replay(OrderCommand(symbol="BTCUSDT", order=CancelAll(account=A)))
    assert [key[2] for key in changes.orders] == [1, 3]
    assert list(replay.model.open_orders(A)) == []
    assert replay.model.order(B, "BTCUSDT", 1) is None  # another account's id: unknown


def test_conditional_orders_trigger_and_expire() -> None:
    replay = funded()
    replay(MarkPrice(symbol="BTCUSDT", price=600_001))
    replay(order(account=A, side=Side.SELL, qty=5, price=600_000))
    stop = order(
        account=B, side=Side.BUY, qty=5, price=None, type=OrderType.STOP_MARKET, stop_price=600_000
    )
    replay(stop)
    # B's stop triggers on the next trade at 60,000.0 or above, and takes A's rest
    replay(order(account=A, side=Side.SELL, qty=2, price=600_000))
    replay(order(account=B, side=Side.BUY, qty=2, price=600_000, tif=TimeInForce.IOC))
    stopped = replay.model.order(B, "BTCUSDT", 2)
    assert stopped is not None and stopped.triggered
    assert stopped.status is OrderStatus.FILLED


def test_leverage_margin_mode_and_isolated_margin() -> None:
    replay = funded()
    assert replay.views.position(replay.model, A, "BTCUSDT").leverage == 20
    replay(SetLeverage(account=A, symbol="BTCUSDT", leverage=5))
    replay(SetMarginMode(account=A, symbol="BTCUSDT", mode=MarginMode.ISOLATED))
    replay(order(account=B, side=Side.SELL, qty=10))
    replay(order(account=A, side=Side.BUY, qty=10, tif=TimeInForce.IOC))
    changes = replay(AdjustMargin(account=A, symbol="BTCUSDT", amount=50 * USDT))
    assert (A, "BTCUSDT") in changes.positions and A in changes.balances
    position = replay.views.position(replay.model, A, "BTCUSDT")
    assert (position.leverage, position.margin_mode) == (5, MarginMode.ISOLATED)
    held = replay.engine.ledger.balance(isolated_wallet(A, "BTCUSDT"))
    assert replay.model.account(A).isolated["BTCUSDT"] == held
    assert position.isolated_wallet == replay.views.money(held)


def test_a_duplicate_result_changes_nothing_and_history_is_bounded() -> None:
    replay = Replay(finished_orders=2, recent_fills=3)
    replay(CreateAccount(key_hash=HASH_A))
    replay(Deposit(account=A, amount=100 * USDT), duplicate=True)
    assert replay.model.account(A).wallet == 0
    replay(Deposit(account=A, amount=10_000 * USDT))
    replay(CreateAccount(key_hash=HASH_B))
    replay(Deposit(account=B, amount=10_000 * USDT))
    for _ in range(4):
        replay(order(account=A, side=Side.SELL, qty=2))
        replay(order(account=B, side=Side.BUY, qty=2, tif=TimeInForce.IOC))
    assert len(replay.model.account(A).finished) == 2
    assert len(replay.model.account(B).fills) == 3


def test_each_fill_carries_the_realized_pnl_the_engine_gave_its_side() -> None:
    replay = funded()
    replay(order(account=A, side=Side.SELL, qty=30))
    opened = replay(order(account=B, side=Side.BUY, qty=30, tif=TimeInForce.IOC))
    assert [fill.realized_pnl for _, fill in opened.fills] == [0, 0]  # both open a position
    replay(order(account=B, side=Side.SELL, qty=20, price=601_000))
    command = order(account=A, side=Side.BUY, qty=20, price=601_000, tif=TimeInForce.IOC)
    time = replay.time + 1
    events = replay.engine.process(command)
    realized = {e.account: e.realized_pnl for e in events if isinstance(e, PositionUpdate)}
    replay.time = time
    closed = replay.model.apply(CommandResult("close", events), time)
    by_account = {account: fill.realized_pnl for account, fill in closed.fills}
    assert by_account == realized
    assert realized[A] < 0 < realized[B]  # A shorted at 60,000 and bought back at 60,100
    assert replay.model.account(A).fills[0].realized_pnl == realized[A]


def test_open_interest_is_the_sum_of_the_long_positions_the_engine_holds() -> None:
    replay = funded()
    steps = [
        (A, Side.SELL, 30, None),  # A rests 0.030
        (B, Side.BUY, 10, TimeInForce.IOC),  # B long 10, A short 10
        (B, Side.BUY, 20, TimeInForce.IOC),  # B long 30
        (A, Side.BUY, 5, None),  # A rests a bid
        (B, Side.SELL, 15, None),  # B sells 5 to A (A reduces), 10 rest
        (A, Side.BUY, 10, TimeInForce.IOC),  # A buys B's rest: A short 15, B long 15
    ]
    for account, side, qty, tif in steps:
        fields = {"tif": tif} if tif is not None else {}
        changes = replay(order(account=account, side=side, qty=qty, **fields))
        longs = sum(max(a.size, 0) for _, a in replay.engine.accounts_in("BTCUSDT"))
        assert replay.model.open_interest["BTCUSDT"] == longs
        if changes.fills:
            assert "BTCUSDT" in changes.tickers  # the ticker shows it
    assert replay.model.open_interest == {"BTCUSDT": 15, "ETHUSDT": 0}
    assert replay.views.ticker(replay.model, "BTCUSDT").open_interest == "0.015"


def test_a_self_trade_gives_each_of_its_fills_its_own_realized_pnl() -> None:
    replay = funded()
    replay(order(account=A, side=Side.SELL, qty=10))
    replay(order(account=B, side=Side.BUY, qty=10, tif=TimeInForce.IOC))  # A is short 10
    replay(order(account=A, side=Side.SELL, qty=5, price=600_500))
    changes = replay(
        order(account=A, side=Side.BUY, qty=5, price=600_500, stp=StpMode.NONE, tif=TimeInForce.IOC)
    )
    taker, maker = (fill for _, fill in changes.fills)
    assert (taker.maker, maker.maker) == (False, True)
    # the taker's buy closes 5 of the short at a loss; the maker's sell then reopens them
    assert taker.realized_pnl < 0 and maker.realized_pnl == 0


def test_an_order_is_found_by_its_client_order_id_live_then_finished_then_forgotten() -> None:
    replay = Replay(finished_orders=1)
    for key_hash, account in ((HASH_A, A), (HASH_B, B)):
        replay(CreateAccount(key_hash=key_hash))
        replay(Deposit(account=account, amount=10_000 * USDT))
    replay(order(account=A, side=Side.SELL, qty=2, client_order_id="q-1"))
    found = replay.model.order_by_label(A, "BTCUSDT", "q-1")
    assert found is not None and (found.order_id, found.status) == (1, OrderStatus.NEW)
    assert replay.model.order_by_label(B, "BTCUSDT", "q-1") is None  # another account's
    assert replay.model.order_by_label(A, "ETHUSDT", "q-1") is None
    replay(order(account=B, side=Side.BUY, qty=2, tif=TimeInForce.IOC))
    found = replay.model.order_by_label(A, "BTCUSDT", "q-1")
    assert found is not None and (found.order_id, found.status) == (1, OrderStatus.FILLED)
    replay(order(account=A, side=Side.SELL, qty=2, client_order_id="q-1"))  # the label again
    found = replay.model.order_by_label(A, "BTCUSDT", "q-1")
    assert found is not None and (found.order_id, found.status) == (3, OrderStatus.NEW)
    replay(OrderCommand(symbol="BTCUSDT", order=CancelOrder(order_id=3, account=A)))
    replay(order(account=A, side=Side.SELL, qty=2))  # ends, and pushes order 3 out of history
    replay(order(account=B, side=Side.BUY, qty=2, tif=TimeInForce.IOC))
    assert replay.model.order_by_label(A, "BTCUSDT", "q-1") is None


def test_the_book_follows_every_delta_and_the_ticker_reads_it() -> None:
    replay = funded()
    replay(order(account=A, side=Side.SELL, qty=3, price=601_000))
    replay(order(account=A, side=Side.SELL, qty=2, price=602_000))
    replay(order(account=A, side=Side.BUY, qty=4, price=599_000))
    replay(order(account=B, side=Side.BUY, qty=2, price=601_000, tif=TimeInForce.IOC))
    book = replay.model.books["BTCUSDT"]
    assert book.update_id == replay.engine.markets["BTCUSDT"].book.update_id
    assert replay.model.gaps == 0
    depth = replay.engine.markets["BTCUSDT"].book.depth(10)
    assert list(reversed(book.bids.items())) == list(depth[0])
    assert list(book.asks.items()) == list(depth[1])
    ticker = replay.views.ticker(replay.model, "BTCUSDT")
    assert (ticker.best_bid, ticker.best_ask, ticker.best_ask_qty, ticker.last) == (
        "59900.0",
        "60100.0",
        "0.001",
        "60100.0",
    )
    snapshot = replay.views.book_snapshot("BTCUSDT", book)
    assert b'"asks":[["60100.0","0.001"],["60200.0","0.002"]]' in snapshot


def test_a_settlement_is_kept_with_its_totals_and_shown_with_the_estimate() -> None:
    """The engine's ``FundingSettled`` with the totals of its funding transfers, and the funding
    view: the last settlement, and the estimate only while it is for a later boundary."""
    replay = funded()
    replay(order(account=A, side=Side.SELL, qty=10))
    replay(order(account=B, side=Side.BUY, qty=10, tif=TimeInForce.IOC))
    replay(MarkPrice(symbol="BTCUSDT", price=600_001))
    changes = replay(SettleFunding(symbol="BTCUSDT", rate=937, funding_time=60_000))
    assert list(changes.funding) == ["BTCUSDT"]
    (settlement,) = replay.model.settlements["BTCUSDT"]
    view = replay.views.settlement(settlement)
    # 0.010 BTC at a mark of 60,000.1 is 600.001 USDT, × 0.00000937 = 0.00562200937 USDT: the
    # long pays it rounded up to the unit (1e-8), the short receives it rounded down, the unit
    # between goes to the insurance fund
    assert (view.funding_time, view.rate, view.mark, view.positions) == (
        60_000,
        "0.00000937",
        "60000.1",
        2,
    )
    assert (view.paid, view.received, view.remainder) == ("0.00562201", "0.00562200", "0.00000001")
    for account in (A, B):
        assert replay.model.account(account).wallet == replay.engine.ledger.balance(wallet(account))

    board = PriceBoard(["BTCUSDT"])
    funding = replay.views.funding(replay.model, board, "BTCUSDT")
    assert (funding.predicted_rate, funding.next_funding_time) == (None, None)
    assert (funding.last_rate, funding.last_funding_time) == ("0.00000937", 60_000)
    estimate = FundingRate(
        symbol="BTCUSDT",
        time=59_000,
        funding_time=60_000,
        rate=900,
        uncapped_rate=900,
        average_premium=0,
        samples=11,
        final=False,
    )
    board.apply(estimate)  # for the boundary just settled: not shown
    assert replay.views.funding(replay.model, board, "BTCUSDT") == funding
    board.apply(msgspec.structs.replace(estimate, time=61_000, funding_time=120_000, rate=-25))
    funding = replay.views.funding(replay.model, board, "BTCUSDT")
    assert (funding.predicted_rate, funding.next_funding_time) == ("-0.00000025", 120_000)
