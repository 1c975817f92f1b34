"""Binance ``trades`` and ``aggTrades`` CSVs from the trade messages of a websocket capture.

How ``btcusdt-trades-20240808-head.csv`` and ``btcusdt-aggtrades-20240808-head.csv`` were made
(tests/data/README.md): the first N ``trade`` messages of the capture, written in Binance's
public-data layouts. Trades keep their id, price, quantity, time and side; ``quote_qty`` is
price × quantity, exactly. Aggregate trades group consecutive trades of one taker order as
Binance does (same time, price and side); the capture has no aggregate ids, so they are
numbered from 1.

    python tests/data/make_trade_csvs.py CAPTURE.gz 400 TRADES.csv AGGTRADES.csv
"""

import gzip
import json
import sys
from decimal import Decimal
from typing import Any


def main(capture_path: str, count: int, trades_path: str, agg_path: str) -> None:
    trades: list[dict[str, Any]] = []
    with gzip.open(capture_path, "rt") as capture:
        for line in capture:
            message = json.loads(line.split(" ", 1)[1])
            data = message.get("data", message)
            if data.get("e") == "trade":
                trades.append(data)
            if len(trades) == count:
                break
    with open(trades_path, "w") as out:
        out.write("id,price,qty,quote_qty,time,is_buyer_maker\n")
        for t in trades:
            quote = Decimal(t["p"]) * Decimal(t["q"])
            out.write(f"{t['t']},{t['p']},{t['q']},{quote},{t['T']},{str(t['m']).lower()}\n")
    groups: list[list[dict[str, Any]]] = []
    for t in trades:
        last = groups[-1] if groups else None
        if last and (last[0]["T"], last[0]["p"], last[0]["m"]) == (t["T"], t["p"], t["m"]):
            last.append(t)
        else:
            groups.append([t])
    with open(agg_path, "w") as out:  # no header, like Binance's older files
        for number, group in enumerate(groups, start=1):
            qty = sum(Decimal(t["q"]) for t in group)
            first = group[0]
            out.write(
                f"{number},{first['p']},{qty},{first['t']},{group[-1]['t']},{first['T']},"
                f"{str(first['m']).lower()}\n"
            )


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4])
