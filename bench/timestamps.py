"""Timestamp parsing speed on the seven shapes real loggers mix (issue "Speed on files we did
not generate"): ISO with ``Z``, naive ``YYYY-MM-DD HH:MM:SS``, ISO with ``+09:00``, epoch
seconds, epoch milliseconds, ``YYYY/MM/DD HH:MM:SS`` and ISO ``.000+00:00``, evenly mixed.

`parse_timestamps` reads the canonical shapes with Polars' strptime in one pass and sends the
rest to the general (regular-expression) parser; this measures how much of a mixed column
takes the fast path. Median of 5 runs. Usage::

    .venv/bin/python -m bench.timestamps --rows 700000
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import time
from collections.abc import Callable

import polars as pl

from iotpipe.timestamps import parse_timestamps

START = dt.datetime(2024, 1, 1)
SHAPES: dict[str, Callable[[dt.datetime], str]] = {
    "ISO Z": lambda t: t.strftime("%Y-%m-%dT%H:%M:%SZ"),
    "naive": lambda t: t.strftime("%Y-%m-%d %H:%M:%S"),
    "ISO +09:00": lambda t: t.strftime("%Y-%m-%dT%H:%M:%S+09:00"),
    "epoch s": lambda t: str(int(t.replace(tzinfo=dt.UTC).timestamp())),
    "epoch ms": lambda t: str(int(t.replace(tzinfo=dt.UTC).timestamp() * 1000)),
    "slashes": lambda t: t.strftime("%Y/%m/%d %H:%M:%S"),
    "ISO .000+00:00": lambda t: t.strftime("%Y-%m-%dT%H:%M:%S.000+00:00"),
}


def seconds(values: pl.Series, runs: int = 5) -> float:
    parse_timestamps(values)
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        parsed = parse_timestamps(values)
        times.append(time.perf_counter() - started)
    assert parsed.null_count() == 0
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=700_000)
    args = parser.parse_args()
    makers = list(SHAPES.values())
    mixed = pl.Series(
        "ts", [makers[i % 7](START + dt.timedelta(seconds=i)) for i in range(args.rows)]
    )
    print("| values | rows | seconds | rows/s |")
    print("|---|---:|---:|---:|")
    took = seconds(mixed)
    print(f"| seven shapes mixed | {args.rows:,} | {took:.3f} | {args.rows / took:,.0f} |")
    for name, make in SHAPES.items():
        one = pl.Series(
            "ts", [make(START + dt.timedelta(seconds=i)) for i in range(args.rows // 7)]
        )
        took = seconds(one)
        print(f"| {name} only | {one.len():,} | {took:.3f} | {one.len() / took:,.0f} |")


if __name__ == "__main__":
    main()
