"""Regenerate the market feed's bundled sample from the raw Binance websocket capture.

    python -m load.make_feed_sample [--capture PATH] [--out PATH] [--every-ms 250]

The capture's lines are ``<local receive time, ns> <JSON message>``; its ``bookTicker``
messages carry the best bid and ask. One row is kept per ``--every-ms`` of the venue's event
time (``E``): the last top of book received in that interval, with its own event time. The
output (``services/feed_sample.py`` format) is written with a fixed gzip timestamp, so the same
capture always gives the same bytes, and is read back with the feed's own parser before it is
kept.
"""

import argparse
import gzip
import json
from collections.abc import Iterable
from pathlib import Path

from exchange.default_markets import BTCUSDT
from services.feed_sample import BUNDLED_SAMPLE, HEADER, read_sample

CAPTURE = Path("/work/shared/data/binance-usdm-ws-capture/btcusdt_20240808.gz")


def sample_rows(lines: Iterable[str], every_ms: int) -> list[tuple[int, str, str]]:
    """``(event time ms, bid, ask)`` of the last ``bookTicker`` in each ``every_ms`` interval,
    in time order. Prices stay the venue's own decimal strings."""
    last: dict[int, tuple[int, str, str]] = {}
    for line in lines:
        _receive_ns, _, text = line.partition(" ")
        message = json.loads(text)
        data = message.get("data", message)
        if isinstance(data, dict) and data.get("e") == "bookTicker":
            time_ms = int(data["E"])
            last[time_ms // every_ms] = (time_ms, data["b"], data["a"])
    return [last[bucket] for bucket in sorted(last)]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Regenerate the market feed's bundled sample.")
    parser.add_argument("--capture", type=Path, default=CAPTURE)
    parser.add_argument("--out", type=Path, default=BUNDLED_SAMPLE)
    parser.add_argument("--every-ms", type=int, default=250)
    args = parser.parse_args(argv)
    with gzip.open(args.capture, "rt", encoding="utf-8") as capture:
        rows = sample_rows(capture, args.every_ms)
    body = "".join(f"{time_ms},{bid},{ask}\n" for time_ms, bid, ask in rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as out:
        out.write(f"{HEADER}\n{body}".encode())
    points = read_sample(args.out, BTCUSDT)
    print(f"{args.out}: {len(points)} rows, {args.out.stat().st_size} bytes")


if __name__ == "__main__":
    main()
