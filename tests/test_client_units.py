"""The client's pure parts: its Decimal views against the gateway's structs, decimal input,
the local order book's gap detection, and the credentials file."""

import functools
import operator
import stat
import types
import typing
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest
from test_gateway_read_model import A, B, funded, order

from exchange.engine_commands import MarkPrice, SettleFunding
from exchange.orders import Side, TimeInForce
from services.client import Credentials, OrderBook, decimal_text, default_credentials_path
from services.client import views as client_views
from services.client.views import BookUpdate, to_builtins
from services.gateway import protocol

PAIRS: list[tuple[type, type]] = [
    (client_views.Market, protocol.MarketView),
    (client_views.Order, protocol.OrderView),
    (client_views.Fill, protocol.FillView),
    (client_views.Position, protocol.PositionView),
    (client_views.Balance, protocol.BalanceView),
    (client_views.BookUpdate, protocol.BookLevels),
    (client_views.Trade, protocol.TradeView),
    (client_views.Ticker, protocol.TickerView),
    (client_views.IndexSource, protocol.IndexSourceView),
    (client_views.Index, protocol.IndexView),
    (client_views.Mark, protocol.MarkView),
    (client_views.Funding, protocol.FundingView),
    (client_views.FundingSettlement, protocol.FundingSettlementView),
    (client_views.Liquidation, protocol.LiquidationView),
    (client_views.AdlNotice, protocol.AdlNoticeView),
    (client_views.InsuranceMovement, protocol.InsuranceMovementView),
    (client_views.InsuranceFund, protocol.InsuranceFundView),
    (client_views.LiquidationHistory, protocol.LiquidationHistoryView),
    (client_views.MarginCall, protocol.MarginCallView),
    (client_views.MarginScope, protocol.MarginScopeView),
    (client_views.MarginInfo, protocol.MarginView),
]
MIRRORS = {gateway: mine for mine, gateway in PAIRS}


def as_decimal(kind: Any) -> Any:
    """The gateway's type with ``str`` as ``Decimal`` and its structs as the client's."""
    if kind is str:
        return Decimal
    if kind in MIRRORS:
        return MIRRORS[kind]
    args = typing.get_args(kind)
    if isinstance(kind, types.UnionType):
        return functools.reduce(operator.or_, [as_decimal(arg) for arg in args])
    origin = typing.get_origin(kind)
    if origin is not None:
        return origin[tuple(as_decimal(arg) for arg in args)]
    return kind


@pytest.mark.parametrize(("mine", "gateways"), PAIRS, ids=[m.__name__ for m, _ in PAIRS])
def test_each_client_view_is_the_gateways_with_decimals(mine: type, gateways: type) -> None:
    """Same fields in the same order; each of the gateway's type, or with str as Decimal (a
    decimal string) where the client reads a number."""
    fields, theirs = msgspec.structs.fields(mine), msgspec.structs.fields(gateways)
    assert [f.name for f in fields] == [f.name for f in theirs]
    for field, their in zip(fields, theirs, strict=True):
        assert field.type in (their.type, as_decimal(their.type)), field.name


def test_the_views_decode_the_gateways_answers_and_keep_every_place() -> None:
    """The read model's answers, encoded by the gateway, decoded as the client's views and
    encoded again: byte for byte the same, so no digit (nor a trailing zero) is lost."""
    replay = funded()
    replay(order(account=A, side=Side.SELL, qty=50, price=600_000))
    replay(order(account=B, side=Side.BUY, qty=20, price=600_000, tif=TimeInForce.IOC))
    replay(MarkPrice(symbol="BTCUSDT", price=600_001))
    replay(SettleFunding(symbol="BTCUSDT", rate=-937, funding_time=60_000))
    model, views = replay.model, replay.views
    (resting,) = model.open_orders(A)
    answers: list[tuple[object, type]] = [
        (views.market(replay.engine.markets["BTCUSDT"].spec), client_views.Market),
        (views.order(resting), client_views.Order),
        (views.fill(model.account(B).fills[0]), client_views.Fill),
        (views.position(model, A, "BTCUSDT"), client_views.Position),
        (views.balance(model, B), client_views.Balance),
        (views.ticker(model, "BTCUSDT"), client_views.Ticker),
        (views.settlement(model.settlements["BTCUSDT"][0]), client_views.FundingSettlement),
    ]
    for view, mine in answers:
        wire = msgspec.json.encode(view)
        decoded = msgspec.json.decode(wire, type=mine)
        assert msgspec.json.encode(to_builtins(decoded)) == wire
    snapshot = views.book_snapshot("BTCUSDT", model.books["BTCUSDT"])
    book = msgspec.json.decode(snapshot, type=BookUpdate)
    assert book.asks == [(Decimal("60000.0"), Decimal("0.030"))]
    assert msgspec.json.encode(to_builtins(book)) == snapshot
    position = msgspec.json.decode(
        msgspec.json.encode(views.position(model, A, "BTCUSDT")), type=client_views.Position
    )
    assert position.size == Decimal("-0.020") and position.entry_price == Decimal(60_000)


def test_decimal_input_is_exact_and_never_a_float() -> None:
    assert decimal_text(Decimal("6E+4")) == "60000"
    assert decimal_text(Decimal("0.050")) == "0.050"
    assert decimal_text("60000.1") == "60000.1"
    assert decimal_text(5) == "5"
    with pytest.raises(TypeError, match="qty must be a Decimal"):
        decimal_text(0.1, "qty")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        decimal_text(True)
    with pytest.raises(ValueError):
        decimal_text(Decimal("NaN"))


def update(
    kind: str, update_id: int, bids: Any = (), asks: Any = (), first: int | None = None
) -> BookUpdate:
    """A book push covering updates ``first`` (``update_id`` if None) … ``update_id``."""

    def levels(pairs: Any) -> list[tuple[Decimal, Decimal]]:
        return [(Decimal(price), Decimal(qty)) for price, qty in pairs]

    first_id = update_id if first is None else first
    return BookUpdate(kind, "BTCUSDT", first_id, update_id, levels(bids), levels(asks))


def test_the_local_book_applies_deltas_in_order_and_asks_for_a_snapshot_after_a_gap() -> None:
    book = OrderBook("BTCUSDT")
    assert not book.synced and book.best_bid is None
    assert not book.apply(update("delta", 1, bids=[("100.0", "1.000")]))  # no snapshot yet
    snapshot = update(
        "snapshot", 7, bids=[("100.0", "1.000"), ("99.0", "2.000")], asks=[("101.0", "0.500")]
    )
    assert book.apply(snapshot) and book.synced and book.update_id == 7
    assert book.best_bid == (Decimal("100"), Decimal("1"))
    assert book.best_ask == (Decimal("101"), Decimal("0.5"))
    assert (book.spread, book.mid) == (Decimal("1.0"), Decimal("100.5"))

    assert book.apply(update("delta", 8, bids=[("100.0", "0.000"), ("99.5", "3.000")]))
    assert book.apply(update("delta", 9, asks=[("100.5", "1.000")]))
    assert book.depth() == (
        [(Decimal("99.5"), Decimal("3")), (Decimal("99.0"), Decimal("2"))],
        [(Decimal("100.5"), Decimal("1")), (Decimal("101.0"), Decimal("0.5"))],
    )
    assert book.depth(1) == ([(Decimal("99.5"), Decimal("3"))], [(Decimal("100.5"), Decimal("1"))])

    # update 10 never came: 11 is refused, the book is no longer synced, and so is 12
    assert not book.apply(update("delta", 11, bids=[("99.5", "0.000")]))
    assert not book.synced and book.update_id is None
    assert book.best_bid == (Decimal("99.5"), Decimal("3"))  # refused: nothing applied
    assert not book.apply(update("delta", 12))
    assert not book.apply(update("delta", 9))  # nor an old one
    assert book.apply(update("snapshot", 12, bids=[("98.0", "1.000")]))
    assert book.depth() == ([(Decimal("98.0"), Decimal("1"))], [])
    assert book.apply(update("delta", 13, asks=[("102.0", "1.000")]))
    # a delta that merges several updates (14 … 16) follows on from 13
    assert book.apply(update("delta", 16, bids=[("98.0", "0.000")], first=14))
    assert book.update_id == 16 and book.depth() == ([], [(Decimal("102.0"), Decimal("1"))])
    # one that starts inside the updates applied (15 … 17) or past the next (18 … 19) does not
    assert not book.apply(update("delta", 17, first=15))
    assert book.apply(update("snapshot", 17))
    assert not book.apply(update("delta", 19, first=19))
    with pytest.raises(ValueError):
        book.apply(BookUpdate("delta", "ETHUSDT", 14, 14, [], []))


def test_credentials_are_kept_for_their_owner_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    path = default_credentials_path()
    assert path == tmp_path / "config" / "exchange" / "credentials.json"
    kept = Credentials(api_key="k" * 48, api_secret="s" * 64, account=1 << 20, url="ws://x/ws")
    kept.save(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert Credentials.load(path) == kept
    with pytest.raises(FileExistsError):
        Credentials(api_key="other", api_secret="other").save(path)
    assert Credentials.load(path) == kept
    Credentials(api_key="other", api_secret="other").save(path, overwrite=True)
    assert Credentials.load(path).api_key == "other" and Credentials.load(path).account is None
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["credentials.json"]
    path.write_text("{}")
    with pytest.raises(ValueError, match="holds no credentials"):
        Credentials.load(path)
