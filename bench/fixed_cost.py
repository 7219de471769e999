"""A warm ingest handler's fixed cost per file: a 1-row and a 10,000-row object.

The real handler (`iotpipe.handlers.ingest.handler`), warm (its runtime built by a first
call), against MariaDB on 127.0.0.1 and moto's S3 on 127.0.0.1, invoked with an S3 event per
new object (a new key each time, so nothing is skipped): claim, schema check, read, clean,
encode, load, commit, report, S3 outputs. Median of N calls per size, and a cProfile of the
1-row calls grouped by what they wait on. Usage::

    .venv/bin/python -m bench.fixed_cost --calls 30
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.ingest import drop_database, fresh_database
from iotpipe import bootstrap
from iotpipe.local.stack import LocalContext, LocalStack
from iotpipe.sample import write_sample


def s3_event(bucket: str, key: str, size: int) -> dict[str, Any]:
    """The S3 notification a put of ``key`` sends (what Lambda hands the function)."""
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": "us-east-1",
                "eventName": "ObjectCreated:Put",
                "s3": {"bucket": {"name": bucket}, "object": {"key": key, "size": size}},
            }
        ]
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=30)
    args = parser.parse_args()
    os.environ["POWERTOOLS_LOG_LEVEL"] = "WARNING"
    os.environ["POWERTOOLS_METRICS_DISABLED"] = "true"
    url = fresh_database("iotpipe_bench_fixed")
    stack = LocalStack().start()
    try:
        from iotpipe.handlers.ingest import handler

        s3 = stack.client("s3")
        with bootstrap.configured(database_url=url), tempfile.TemporaryDirectory() as scratch:
            files = {}
            for rows in (1, 10_000):
                path = Path(scratch) / f"f{rows}.csv"
                write_sample(path, rows, devices=5, seed=rows)
                files[rows] = path.read_bytes()
            counter = iter(range(1_000_000))

            def call(rows: int) -> float:
                key = f"incoming/fixed/{rows}-{next(counter)}.csv"
                s3.put_object(Bucket=stack.bucket, Key=key, Body=files[rows])
                event = s3_event(stack.bucket, key, len(files[rows]))
                started = time.perf_counter()
                body = handler(event, LocalContext())
                took = time.perf_counter() - started
                assert body["status"] == "ok", body
                return took

            call(1)  # warm: the runtime (store, S3 client, contract) is built once
            results = {}
            for rows in (1, 10_000):
                results[rows] = statistics.median(call(rows) for _ in range(args.calls))
            profile = cProfile.Profile()
            profile.enable()
            for _ in range(args.calls):
                call(1)
            profile.disable()
        print("| object | warm handler ms (median) |")
        print("|---|---:|")
        for rows, seconds in results.items():
            print(f"| {rows:,} row{'s' if rows > 1 else ''} | {seconds * 1000:.1f} |")
        out = io.StringIO()
        stats = pstats.Stats(profile, stream=out)
        stats.sort_stats("cumulative").print_stats(25)
        print(f"\ncProfile of {args.calls} one-row calls (cumulative):")
        print("\n".join(out.getvalue().splitlines()[:60]))
    finally:
        bootstrap.use_ingest_runtime(None)
        stack.stop()
        drop_database("iotpipe_bench_fixed")


if __name__ == "__main__":
    main()
