"""The order-stream format: parsing, malformed rows, writing, and the synthetic generator."""

from itertools import pairwise
from pathlib import Path

import pytest

from exchange.commands import AmendOrder, CancelOrder, PlaceOrder
from exchange.market import MarketSpec
from exchange.orders import OrderType, Side, StpMode, TimeInForce
from load.generate_orders import GeneratorSpec, OrderGenerator, generate
from load.orderstream import (
    HEADER,
    KEPT_ERRORS,
    OrderStreamError,
    OrderStreamWriter,
    StreamCommand,
    open_text,
    parse_lines,
    read_order_stream,
)

SPEC = MarketSpec(symbol="TEST", tick_size="0.1", lot_size="0.001")


def parse(*rows: str) -> list[object]:
    stream = parse_lines([HEADER, *rows], SPEC)
    assert stream.malformed_rows == 0, stream.errors
    return list(stream.commands)


def test_new_limit_order() -> None:
    (order,) = parse("5,new,7,42,buy,limit,100.5,0.250,GTX")
    assert order == PlaceOrder(
        order_id=7,
        account=42,
        side=Side.BUY,
        qty=250,
        type=OrderType.LIMIT,
        price=1005,
        tif=TimeInForce.GTX,
    )
    assert order.stp is StpMode.EXPIRE_TAKER


def test_new_market_order_with_and_without_tif() -> None:
    plain, with_tif = parse("1,new,1,2,sell,market,,0.003,", "2,new,2,2,sell,market,,0.003,IOC")
    assert plain == PlaceOrder(
        order_id=1, account=2, side=Side.SELL, qty=3, type=OrderType.MARKET, tif=TimeInForce.GTC
    )
    assert isinstance(with_tif, PlaceOrder)
    assert with_tif.type is OrderType.MARKET and with_tif.tif is TimeInForce.IOC


def test_cancel() -> None:
    assert parse("9,cancel,3,4,,,,,") == [CancelOrder(order_id=3, account=4)]


def test_amend_variants() -> None:
    assert parse(
        "1,amend,3,4,,,99.9,0.002,",
        "2,amend,3,4,,,99.8,,",
        "3,amend,3,4,,,,0.001,",
        "4,amend,3,4,,,,0,",
        "5,amend,3,4,,,,0.000,",
        "6,amend,3,4,,,,,",
    ) == [
        AmendOrder(order_id=3, account=4, price=999, qty=2),
        AmendOrder(order_id=3, account=4, price=998),
        AmendOrder(order_id=3, account=4, qty=1),
        AmendOrder(order_id=3, account=4, qty=0),
        AmendOrder(order_id=3, account=4, qty=0),
        AmendOrder(order_id=3, account=4),
    ]


def test_ids_up_to_64_bits_and_timestamps_kept() -> None:
    big = 2**64 - 1
    stream = parse_lines([HEADER, f"123,cancel,{big},{big},,,,,", "456,cancel,0,0,,,,,"], SPEC)
    assert stream.commands == [
        CancelOrder(order_id=big, account=big),
        CancelOrder(order_id=0, account=0),
    ]
    assert list(stream.timestamps) == [123, 456]


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ("1,new,1,2,buy,limit,100.0,0.001", "column_count"),
        ("1,new,1,2,buy,limit,100.0,0.001,GTC,", "column_count"),
        ("x,new,1,2,buy,limit,100.0,0.001,GTC", "bad_ts_ns"),
        ("-1,new,1,2,buy,limit,100.0,0.001,GTC", "bad_ts_ns"),
        (f"{2**63},new,1,2,buy,limit,100.0,0.001,GTC", "bad_ts_ns"),
        ("1,new,-1,2,buy,limit,100.0,0.001,GTC", "bad_order_id"),
        ("1,new,+1,2,buy,limit,100.0,0.001,GTC", "bad_order_id"),
        (f"1,new,{2**64},2,buy,limit,100.0,0.001,GTC", "bad_order_id"),
        ("1,new,1,2.5,buy,limit,100.0,0.001,GTC", "bad_account"),
        ("1,replace,1,2,buy,limit,100.0,0.001,GTC", "unknown_op"),
        ("1,new,1,2,BUY,limit,100.0,0.001,GTC", "unknown_side"),
        ("1,new,1,2,buy,stop_limit,100.0,0.001,GTC", "unknown_type"),
        ("1,new,1,2,buy,limit,100.0,0.001,DAY", "unknown_tif"),
        ("1,new,1,2,buy,limit,100.0,0.001,", "unknown_tif"),
        ("1,new,1,2,buy,limit,,0.001,GTC", "missing_price"),
        ("1,new,1,2,buy,market,100.0,0.001,", "unexpected_price"),
        ("1,new,1,2,buy,limit,100.0,,GTC", "missing_qty"),
        ("1,new,1,2,buy,limit,abc,0.001,GTC", "price_not_a_number"),
        ("1,new,1,2,buy,limit,NaN,0.001,GTC", "price_not_a_number"),
        ("1,new,1,2,buy,limit,inf,0.001,GTC", "price_not_a_number"),
        ("1,new,1,2,buy,limit,-100.0,0.001,GTC", "price_not_positive"),
        ("1,new,1,2,buy,limit,0,0.001,GTC", "price_not_positive"),
        ("1,new,1,2,buy,limit,100.05,0.001,GTC", "price_off_grid"),
        ("1,new,1,2,buy,limit,1e40,0.001,GTC", "price_too_large"),
        ("1,new,1,2,buy,limit,1e30,0.001,GTC", "price_too_large"),
        ("1,new,1,2,buy,limit,100.0,NaN,GTC", "qty_not_a_number"),
        ("1,new,1,2,buy,limit,100.0,0,GTC", "qty_not_positive"),
        ("1,new,1,2,buy,limit,100.0,-0.001,GTC", "qty_not_positive"),
        ("1,new,1,2,buy,limit,100.0,0.0005,GTC", "qty_off_grid"),
        ("1,new,1,2,buy,limit,100.0,99999999999999999,GTC", "qty_too_large"),
        ("1,cancel,1,2,buy,,,,", "unexpected_field"),
        ("1,cancel,1,2,,,,0.001,", "unexpected_field"),
        ("1,amend,1,2,,,,,GTC", "unexpected_field"),
        ("1,amend,1,2,,,,-0.001,", "qty_not_positive"),
        ("1,amend,1,2,,,100.01,,", "price_off_grid"),
        ("1,new,1,2,buy,limit,100.0,0.001,GTC\ufffd", "unknown_tif"),
    ],
)
def test_malformed_row_is_counted_with_line_and_reason(row: str, reason: str) -> None:
    good = "9,cancel,1,2,,,,,"
    stream = parse_lines([HEADER, good, row, good], SPEC)
    assert stream.malformed_rows == 1
    assert [(e.line, e.reason) for e in stream.errors] == [(3, reason)]
    assert len(stream.commands) == 2


def test_only_the_first_errors_are_kept() -> None:
    stream = parse_lines([HEADER] + ["garbage"] * (KEPT_ERRORS + 5), SPEC)
    assert stream.malformed_rows == KEPT_ERRORS + 5
    assert len(stream.errors) == KEPT_ERRORS
    assert stream.errors[-1].line == KEPT_ERRORS + 1


def test_blank_lines_crlf_and_bom_are_tolerated() -> None:
    stream = parse_lines(["\ufeff" + HEADER + "\r\n", "\r\n", "1,cancel,1,2,,,,,\r\n", ""], SPEC)
    assert stream.malformed_rows == 0
    assert stream.commands == [CancelOrder(order_id=1, account=2)]


@pytest.mark.parametrize("first", ["", "ts_ns,op,order_id", "1,cancel,1,2,,,,,"])
def test_a_file_without_the_header_is_refused(first: str) -> None:
    with pytest.raises(OrderStreamError):
        parse_lines([first, "1,cancel,1,2,,,,,"], SPEC)


COMMANDS: list[StreamCommand] = [
    PlaceOrder(order_id=1, account=7, side=Side.SELL, qty=5, price=1000, tif=TimeInForce.FOK),
    PlaceOrder(order_id=2, account=7, side=Side.BUY, qty=1500, type=OrderType.MARKET),
    CancelOrder(order_id=1, account=7),
    AmendOrder(order_id=3, account=8, price=999),
    AmendOrder(order_id=3, account=8, qty=0),
    AmendOrder(order_id=3, account=8, price=998, qty=4),
]


@pytest.mark.parametrize("name", ["stream.csv", "stream.csv.gz"])
def test_writer_and_reader_round_trip(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    with open_text(path, "w") as out:
        writer = OrderStreamWriter(out, SPEC)
        for ts, command in enumerate(COMMANDS, start=100):
            writer.write(ts, command)
    assert path.read_bytes().startswith(b"\x1f\x8b") == name.endswith(".gz")
    stream = read_order_stream(path, SPEC)
    assert stream.malformed_rows == 0
    assert stream.commands == COMMANDS
    assert list(stream.timestamps) == list(range(100, 100 + len(COMMANDS)))


@pytest.mark.parametrize(
    "order",
    [
        PlaceOrder(order_id=1, account=1, side=Side.BUY, qty=1, price=10, reduce_only=True),
        PlaceOrder(order_id=1, account=1, side=Side.BUY, qty=1, price=10, stp=StpMode.NONE),
        PlaceOrder(order_id=1, account=1, side=Side.BUY, qty=1),
        PlaceOrder(order_id=1, account=1, side=Side.BUY, qty=1, type=OrderType.MARKET, price=10),
        PlaceOrder(
            order_id=1,
            account=1,
            side=Side.BUY,
            qty=1,
            type=OrderType.STOP_MARKET,
            stop_price=10,
        ),
    ],
)
def test_writer_refuses_what_the_format_cannot_express(tmp_path: Path, order: PlaceOrder) -> None:
    with open_text(tmp_path / "x.csv", "w") as out:
        writer = OrderStreamWriter(out, SPEC)
        with pytest.raises(ValueError):
            writer.write(1, order)


def test_generator_is_reproducible_and_well_formed(tmp_path: Path) -> None:
    first, second = tmp_path / "a.csv.gz", tmp_path / "b.csv.gz"
    generate(first, 3000, seed=7)
    generate(second, 3000, seed=7)
    assert first.read_bytes() == second.read_bytes()
    stream = read_order_stream(first, GeneratorSpec().market())
    assert stream.malformed_rows == 0
    assert len(stream.commands) == 3000
    stamps = list(stream.timestamps)
    assert all(a < b for a, b in pairwise(stamps))


def test_generator_mix() -> None:
    generator = OrderGenerator(seed=3, spec=GeneratorSpec())
    commands = [generator.next_row()[1] for _ in range(20_000)]
    share = {
        kind: sum(isinstance(c, kind) for c in commands) / len(commands)
        for kind in (PlaceOrder, CancelOrder, AmendOrder)
    }
    assert 0.22 < share[CancelOrder] < 0.28
    assert 0.02 < share[AmendOrder] < 0.04
    marketable = [c for c in commands if isinstance(c, PlaceOrder) and c.tif is not TimeInForce.GTX]
    market = sum(c.type is OrderType.MARKET for c in marketable)
    ioc_fok = sum(c.tif in (TimeInForce.IOC, TimeInForce.FOK) for c in marketable)
    assert 0.01 < market / len(commands) < 0.03
    assert 0.01 < ioc_fok / len(commands) < 0.03
    assert len({c.account for c in commands}) > 300
    amends = [c for c in commands if isinstance(c, AmendOrder)]
    assert any(a.qty is not None for a in amends) and any(a.price is not None for a in amends)
