"""Retrieval latency on a 10k-row range, with the table at 1M and 10M rows (MariaDB).

In the same run, for the same device and range:

1. ``iotpipe``: the retrieval handler, direct invocation, warm (count + stats of the whole
   range + the first page of 1,000 rows, serialised);
2. ``same_sql``, the like-for-like baseline: the same work written by hand on a bare PyMySQL
   connection (one aggregate query, one median query per numeric column, the same page of
   1,001 rows, ``json.dumps``). Its numbers are checked equal to iotpipe's before timing;
3. ``fetch_all``, for context: a bare indexed ``SELECT`` of every row of the range plus
   Python's ``statistics`` (what a handler that fetched rows would do).

Median of 20 runs each, the three run interleaved.

Then, for dashboards (issue "Retrieval for dashboards and ML"), on the same table plus one
device with 30 days of readings a minute (43,200 rows):

4. ``buckets``: the handler (direct invocation: it returns the body, which the Lambda
   runtime serialises) with ``bucket=1h`` over those 30 days (720 buckets), against a bare
   ``GROUP BY`` of the same hourly buckets written by hand on PyMySQL (checked equal); and
   the handler plus ``json.dumps`` of its body, for the whole cost;
5. the listing endpoints through the handler: ``datasets`` (every dataset with its span:
   a walk over all devices), ``devices`` (a page of 100) and ``categories``.

Usage::

    .venv/bin/python -m bench.retrieve --sizes 1000000,10000000
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import polars as pl
import pymysql

from bench.ingest import drop_database, fresh_database
from iotpipe import bootstrap
from iotpipe.contract import load_contract
from iotpipe.storage.dialect import quote
from iotpipe.storage.mysql import write_load_csv
from iotpipe.times import iso_z

ROWS_PER_DEVICE = 10_000
CHUNK = 1_000_000
START = dt.datetime(2024, 1, 1)
DASHBOARD_DEVICE = "dash-00000"
DASHBOARD_DAYS = 30


def fill(url: str, rows: int) -> None:
    """Fill the table with ``rows`` rows of 10,000 per device, then the dashboard device."""
    _fill(
        url,
        rows,
        lambda i: pl.format("dev-{}", (i // ROWS_PER_DEVICE).cast(pl.String).str.zfill(5)),
        lambda i: pl.lit(START) + pl.duration(seconds=(i % ROWS_PER_DEVICE) * 60),
    )
    minutes = DASHBOARD_DAYS * 1440
    _fill(
        url,
        minutes,
        lambda i: pl.lit(DASHBOARD_DEVICE),
        lambda i: pl.lit(START) + pl.duration(seconds=i * 60),
    )


def _fill(url: str, rows: int, device: Any, ts: Any) -> None:
    contract = load_contract("acme_usage")
    store = bootstrap.build_store(url)
    store.ensure_schema(contract)
    store.close()
    conn = pymysql.connect(
        host="127.0.0.1",
        user="root",
        password="",
        database=url.rsplit("/", 1)[1],
        local_infile=True,
    )
    names = ", ".join(quote(c) for c in contract.output_columns)
    for offset in range(0, rows, CHUNK):
        n = min(CHUNK, rows - offset)
        i = pl.col("i")
        fields = {f.name for f in contract.fields}
        encoded = [c for c in contract.output_columns[2:] if c not in fields]
        frame = pl.DataFrame({"i": pl.int_range(offset, offset + n, eager=True)}).select(
            device(i).alias("device_id"),
            ts(i).alias("ts"),
            *(
                pl.lit(None, dtype=pl.String).alias(c)
                for c in ("device_type", "firmware_version", "region", "status")
            ),
            ((i * 7919 % 1000) / 10).alias("battery_pct"),
            ((i * 104729 % 1250) / 10 - 40).alias("temperature_c"),
            ((i * 1299709 % 500000) / 100).alias("power_w"),
            ((i * 15485863 % 14400) / 10).alias("usage_minutes"),
            (-(i * 32452843 % 1300) / 10).alias("signal_dbm"),
            (i * 49979687 % 7).alias("error_count"),
            *(
                pl.lit(None, dtype=pl.Int32).alias(c)
                if c.endswith("_code")
                else pl.lit(0, dtype=pl.Int8).alias(c)
                for c in encoded
            ),
        )
        with tempfile.NamedTemporaryFile(suffix=".csv") as chunk:
            write_load_csv(frame, chunk.name)
            with conn.cursor() as cur:
                cur.execute(
                    f"LOAD DATA LOCAL INFILE %s INTO TABLE device_usage CHARACTER SET utf8mb4 "
                    "FIELDS TERMINATED BY ',' OPTIONALLY ENCLOSED BY '\"' ESCAPED BY '' "
                    f"LINES TERMINATED BY '\\n' ({names})",
                    (chunk.name,),
                )
            conn.commit()
    with conn.cursor() as cur:
        cur.execute("ANALYZE TABLE device_usage")
    conn.close()


def time_medians(*fns: Any, runs: int = 20) -> list[float]:
    """Median seconds of each function, run interleaved (ABCABC...) after one warm call each,
    so background work of the server (purge after the fill) falls on all of them alike."""
    for fn in fns:
        fn()
    samples: list[list[float]] = [[] for _ in fns]
    for _ in range(runs):
        for fn, times in zip(fns, samples, strict=True):
            started = time.perf_counter()
            fn()
            times.append(time.perf_counter() - started)
    return [statistics.median(times) for times in samples]


def measure(url: str, size: int) -> tuple[float, float, float]:
    from iotpipe.handlers.retrieve import handler
    from iotpipe.local.stack import LocalContext

    bootstrap.configure(database_url=url)
    os.environ["POWERTOOLS_LOG_LEVEL"] = "WARNING"  # Powertools' own setting: no log per call
    device = f"dev-{size // ROWS_PER_DEVICE // 2:05d}"  # a device in the middle of the table
    end = START + dt.timedelta(seconds=(ROWS_PER_DEVICE - 1) * 60)
    event = {
        "device_id": device,
        "date_range": {"start": START.isoformat(), "end": end.isoformat()},
    }

    def ours() -> None:
        body = handler(event, LocalContext())
        assert body["count"] == ROWS_PER_DEVICE
        json.dumps(body)

    contract = load_contract("acme_usage")
    numeric = [f.name for f in contract.numeric_fields]
    columns = ["ts", *(f.name for f in contract.fields)]
    conn = pymysql.connect(
        host="127.0.0.1", user="root", password="", database=url.rsplit("/", 1)[1]
    )
    where = "device_id = %s AND ts BETWEEN %s AND %s"
    params = (device, START, end)
    aggregates = ", ".join(
        f"COUNT({quote(c)}), AVG({quote(c)} + 0E0), MIN({quote(c)}), MAX({quote(c)})"
        for c in numeric
    )

    def same_sql() -> dict[str, Any]:
        with conn.cursor() as cur:
            cur.execute(f"SELECT COUNT(*), {aggregates} FROM device_usage WHERE {where}", params)
            row: Any = cur.fetchone()
            stats: dict[str, Any] = {}
            for i, name in enumerate(numeric):
                count, mean, low, high = row[1 + 4 * i : 5 + 4 * i]
                take = 1 if count % 2 else 2
                cur.execute(
                    f"SELECT {quote(name)} FROM device_usage WHERE {where} AND "
                    f"{quote(name)} IS NOT NULL ORDER BY {quote(name)} "
                    f"LIMIT {take} OFFSET {(count - 1) // 2}",
                    params,
                )
                middle = [float(r[0]) for r in cur.fetchall()]
                stats[name] = {
                    "count": count,
                    "mean": float(mean),
                    "median": sum(middle) / len(middle),
                    "min": float(low),
                    "max": float(high),
                }
            cur.execute(
                f"SELECT {', '.join(quote(c) for c in columns)} FROM device_usage WHERE {where} "
                "ORDER BY ts LIMIT 1001",
                params,
            )
            page = cur.fetchall()
        conn.commit()
        rows = [
            {"timestamp": iso_z(r[0]), **dict(zip(columns[1:], r[1:], strict=True))}
            for r in page[:1000]
        ]
        body = {"count": row[0], "rows": rows, "stats": stats}
        json.dumps(body)
        return body

    def fetch_all() -> None:
        with conn.cursor() as cur:
            cur.execute(
                f"SELECT {', '.join(quote(c) for c in columns)} FROM device_usage "
                f"WHERE {where} ORDER BY ts",
                params,
            )
            rows = cur.fetchall()
        conn.commit()
        assert len(rows) == ROWS_PER_DEVICE
        for name in numeric:
            values = [r[columns.index(name)] for r in rows if r[columns.index(name)] is not None]
            (statistics.fmean(values), statistics.median(values), min(values), max(values))

    # Like for like: the same numbers, the same page.
    body, hand = handler(event, LocalContext()), same_sql()
    assert body["count"] == hand["count"] and body["rows"] == hand["rows"]
    for name, stats in hand["stats"].items():
        for key, value in stats.items():
            assert body["stats"][name][key] == value, (name, key, body["stats"][name][key], value)
    result = time_medians(ours, same_sql, fetch_all)
    conn.close()
    bootstrap.use_retrieve_runtime(None)
    return result[0], result[1], result[2]


def measure_dashboard(url: str) -> dict[str, float]:
    """Time the bucketed query against a bare GROUP BY, and the three listings."""
    from iotpipe.handlers.retrieve import handler
    from iotpipe.local.stack import LocalContext

    bootstrap.configure(database_url=url)
    os.environ["POWERTOOLS_LOG_LEVEL"] = "WARNING"
    contract = load_contract("acme_usage")
    numeric = [f.name for f in contract.numeric_fields]
    end = START + dt.timedelta(days=DASHBOARD_DAYS) - dt.timedelta(microseconds=1)
    event = {
        "device_id": DASHBOARD_DEVICE,
        "date_range": {"start": START.isoformat(), "end": end.isoformat()},
        "bucket": "1h",
    }

    def ours() -> dict[str, Any]:
        body: dict[str, Any] = handler(event, LocalContext())
        return body

    def ours_json() -> None:
        json.dumps(handler(event, LocalContext()))

    conn = pymysql.connect(
        host="127.0.0.1", user="root", password="", database=url.rsplit("/", 1)[1]
    )
    aggregates = ", ".join(
        f"COUNT({quote(c)}), AVG({quote(c)} + 0E0), MIN({quote(c)}), MAX({quote(c)})"
        for c in numeric
    )
    bare = (
        f"SELECT TIMESTAMPDIFF(SECOND, '1970-01-01', ts) DIV 3600 AS b, COUNT(*), {aggregates} "
        "FROM device_usage WHERE device_id = %s AND ts BETWEEN %s AND %s GROUP BY b ORDER BY b"
    )

    def group_by() -> list[Any]:
        with conn.cursor() as cur:
            cur.execute(bare, (DASHBOARD_DEVICE, START, end))
            rows = list(cur.fetchall())
        conn.commit()
        return rows

    body, hand = ours(), group_by()
    assert len(body["buckets"]) == len(hand) == DASHBOARD_DAYS * 24
    for bucket, row in zip(body["buckets"], hand, strict=True):
        assert bucket["count"] == row[1]
        for i, name in enumerate(numeric):
            stat = bucket["stats"][name]
            count, mean, low, high = row[2 + 4 * i : 6 + 4 * i]
            assert (stat["count"], stat["min"], stat["max"]) == (count, low, high), name
            assert abs(stat["mean"] - float(mean)) <= 1e-9 * max(1.0, abs(float(mean)))
    mine, theirs, with_json = time_medians(ours, group_by, ours_json)

    def listing(action: str, **extra: Any) -> Any:
        return lambda: json.dumps(handler({"action": action, **extra}, LocalContext()))

    datasets, devices, categories = time_medians(
        listing("datasets"), listing("devices", limit=100), listing("categories")
    )
    conn.close()
    bootstrap.use_retrieve_runtime(None)
    return {
        "buckets": mine,
        "group_by": theirs,
        "buckets_json": with_json,
        "datasets": datasets,
        "devices": devices,
        "categories": categories,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1000000,10000000")
    args = parser.parse_args()
    readings, dashboards = [], []
    for size in (int(s) for s in args.sizes.split(",")):
        name = "iotpipe_bench_retrieve"
        url = fresh_database(name)
        try:
            started = time.perf_counter()
            fill(url, size)
            filled = time.perf_counter() - started
            # The handler prints its metrics (EMF) as in Lambda: timed, but not shown.
            with Path(os.devnull).open("w") as sink, contextlib.redirect_stdout(sink):
                ours, same, fetched = measure(url, size)
                dash = measure_dashboard(url)
        finally:
            drop_database(name)
        readings.append(
            f"| {size:,} | {ours:.4f} | {same:.4f} | {ours / same:.2f} | {fetched:.4f} |"
        )
        dashboards.append(
            f"| {size:,} | {dash['buckets'] * 1000:.1f} | {dash['group_by'] * 1000:.1f} "
            f"| {dash['buckets'] / dash['group_by']:.2f} | {dash['buckets_json'] * 1000:.1f} "
            f"| {dash['datasets'] * 1000:.1f} "
            f"| {dash['devices'] * 1000:.1f} | {dash['categories'] * 1000:.1f} |"
        )
        print(f"(table of {size:,} rows filled in {filled:.0f} s)", file=sys.stderr)
    print(
        "| table rows | iotpipe s | same SQL by hand s | iotpipe / same SQL "
        "| fetch every row + statistics s |"
    )
    print("|---:|---:|---:|---:|---:|")
    print("\n".join(readings))
    print()
    print(
        "| table rows | handler, 30 days at bucket=1h ms | bare GROUP BY ms | ratio "
        "| handler + json.dumps ms | /datasets ms | /devices ms | /datasets/{d}/categories ms |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    print("\n".join(dashboards))


if __name__ == "__main__":
    main()
