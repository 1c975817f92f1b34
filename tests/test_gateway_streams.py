"""The gateway's pushes, fed the real engine's results through the read model, no broker.

What is checked here and not end to end: which frames one *step* (the records of one poll of
the log) gives. A test through the broker cannot choose how commands fall into polls.
"""

import json
from typing import Any

from test_gateway_read_model import A, B, funded, order

from exchange.default_markets import DEFAULT_MARKETS
from exchange.orders import Side, TimeInForce
from services.gateway.connection import Connection
from services.gateway.convert import Markets
from services.gateway.price_board import PriceBoard
from services.gateway.rate_limit import TokenBucket
from services.gateway.streams import Streams
from services.gateway.views import Views


async def _never(_: bytes) -> None:
    raise AssertionError("nothing is written in these tests")


def subscriber(streams: Streams, *channels: str, account: int | None = None) -> Connection:
    connection = Connection(
        _never,
        lambda: None,
        send_buffer_bytes=1 << 20,
        limiter=TokenBucket(1_000, 1_000, 0),
    )
    if account is not None:
        connection.account = account
        streams.logged_in(connection)
    for channel in channels:
        streams.subscribe(connection, channel)
        streams.start(connection, channel)
    return connection


def frames(connection: Connection) -> list[dict[str, Any]]:
    """What is queued for ``connection``, decoded, and the queue emptied."""
    queued = [json.loads(frame) for frame in connection._queue]
    connection._queue.clear()
    return queued


def test_a_step_gives_one_book_delta_one_trade_list_and_private_pushes_per_command() -> None:
    replay = funded()
    streams = Streams(
        replay.model,
        PriceBoard(["BTCUSDT", "ETHUSDT"]),
        Views(Markets(DEFAULT_MARKETS)),
        Markets(DEFAULT_MARKETS),
    )
    watcher = subscriber(streams, "book.BTCUSDT", "trades.BTCUSDT", "ticker.BTCUSDT")
    owner = subscriber(streams, "orders", account=A)
    [snapshot, ticker] = frames(watcher)
    assert snapshot["data"]["type"] == "snapshot" and ticker["channel"] == "ticker.BTCUSDT"
    start = snapshot["data"]["update_id"]

    # one step: A rests two bids at one price and one lower, B sells into the best of them
    for command in (
        order(account=A, side=Side.BUY, qty=10, price=600_000),
        order(account=A, side=Side.BUY, qty=5, price=600_000),
        order(account=A, side=Side.BUY, qty=7, price=599_990),
        order(account=B, side=Side.SELL, qty=12, price=600_000, tif=TimeInForce.IOC),
    ):
        streams.publish(replay(command))
    # A's own pushes came per command, as it went: three placed, then two traded by B's sell
    statuses = [(push["channel"], push["data"]["status"]) for push in frames(owner)]
    assert statuses == [
        *[("orders", "new")] * 3,
        ("orders", "filled"),
        ("orders", "partially_filled"),
    ]
    assert frames(watcher) == []  # the public channels wait for the step's end

    streams.end_step()
    book, trades, ticker = frames(watcher)
    assert book["seq"] == 2 and book["data"]["type"] == "delta"
    assert (book["data"]["first_update_id"], book["data"]["update_id"]) == (start + 1, start + 4)
    # each level once, at its quantity after the step: 15 lots at 60000.0 less the 12 sold
    assert book["data"]["bids"] == [["60000.0", "0.003"], ["59999.0", "0.007"]]
    assert book["data"]["asks"] == []
    assert trades["channel"] == "trades.BTCUSDT" and trades["seq"] == 1  # no first push
    assert [(t["price"], t["qty"], t["taker_side"]) for t in trades["data"]] == [
        ("60000.0", "0.010", "sell"),
        ("60000.0", "0.002", "sell"),
    ]
    assert [t["trade_id"] for t in trades["data"]] == sorted(t["trade_id"] for t in trades["data"])
    assert ticker["data"]["last"] == "60000.0" and ticker["seq"] == 2

    # a step with nothing public changed pushes nothing; the next delta follows on
    streams.end_step()
    assert frames(watcher) == []
    streams.publish(replay(order(account=A, side=Side.BUY, qty=5, price=599_000)))
    streams.end_step()
    [book] = frames(watcher)  # below the best bid: the ticker did not change
    assert book["data"]["first_update_id"] == start + 5 == book["data"]["update_id"]
    assert book["data"]["bids"] == [["59900.0", "0.005"]] and book["seq"] == 3
