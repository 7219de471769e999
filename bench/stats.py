"""Range stats over 100k rows: SQL aggregates + exact medians in SQL, against fetching every value.

Both compute count/mean/median/min/max of every numeric field of one device's 100k rows in
MariaDB, in the same run:

1. ``sql``: what `SqlStore.count_and_stats` does: one aggregate pass, then per column
   ``ORDER BY col LIMIT 1|2 OFFSET (n-1)/2`` for the exact median;
2. ``fetch``: select the numeric columns of every row and summarise in Python
   (`iotpipe.stats.summarize`, exact by construction).

Usage::

    .venv/bin/python -m bench.stats --rows 100000
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import statistics
import time

import pymysql

from iotpipe.bootstrap import build_store
from iotpipe.contract import load_contract
from iotpipe.model import ReadingsQuery
from iotpipe.stats import summarize
from iotpipe.storage.dialect import quote

DB = "iotpipe_bench_stats"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    admin = pymysql.connect(host="127.0.0.1", user="root", password="", autocommit=True)
    with admin.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {DB}")
        cur.execute(f"CREATE DATABASE {DB}")
    contract = load_contract("acme_usage")
    store = build_store(f"mysql://root@127.0.0.1:3306/{DB}")
    store.ensure_schema(contract)
    rng = random.Random(1)
    start = dt.datetime(2024, 1, 1)
    numeric = [f.name for f in contract.numeric_fields]
    conn = pymysql.connect(host="127.0.0.1", user="root", password="", database=DB)
    with conn.cursor() as cur:
        rows = [
            (
                "dev-1",
                start + dt.timedelta(seconds=i),
                *(round(rng.uniform(0, 100), 2) for _ in numeric),
            )
            for i in range(args.rows)
        ]
        names = ", ".join(quote(c) for c in ["device_id", "ts", *numeric])
        marks = ", ".join(["%s"] * (2 + len(numeric)))
        cur.executemany(f"INSERT INTO device_usage ({names}) VALUES ({marks})", rows)
    conn.commit()
    end = start + dt.timedelta(seconds=args.rows)

    def sql() -> dict[str, float | None]:
        query = ReadingsQuery("dev-1", start, end, limit=1, dataset=contract.name)
        _, stats = store.count_and_stats(contract, query)
        return {k: v.median for k, v in stats.items()}

    def fetch() -> dict[str, float | None]:
        with conn.cursor() as cur:
            cols = ", ".join(quote(c) for c in numeric)
            cur.execute(
                f"SELECT {cols} FROM device_usage WHERE device_id = %s AND ts BETWEEN %s AND %s",
                ("dev-1", start, end),
            )
            data = cur.fetchall()
        conn.commit()
        return {c: summarize(r[i] for r in data).median for i, c in enumerate(numeric)}

    timings = {}
    answers = {}
    for name, fn in (("sql", sql), ("fetch", fetch)):
        samples = []
        for _ in range(args.repeat):
            t = time.perf_counter()
            answers[name] = fn()
            samples.append(time.perf_counter() - t)
        timings[name] = statistics.median(samples)
    assert answers["sql"] == answers["fetch"], "the two methods disagree"
    print(
        f"{args.rows:,} rows in range, {len(numeric)} numeric columns, median of {args.repeat} runs"
    )
    print("| method | seconds | vs fetch |")
    print("|---|---:|---:|")
    for name, seconds in timings.items():
        print(f"| {name} | {seconds:.3f} | {seconds / timings['fetch']:.2f} |")
    store.close()
    conn.close()
    with admin.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {DB}")


if __name__ == "__main__":
    main()
