"""A warm ingest handler's fixed cost per file: a 1-row and a 10,000-row object.

The real handler (`iotpipe.handlers.ingest.handler`), warm (its runtime built by a first
call), against MariaDB on 127.0.0.1 and moto's S3 on 127.0.0.1, invoked with an S3 event per
new object (a new key each time, so nothing is skipped), with the ETag S3 puts in it: claim,
schema check, read, clean, encode, load, commit, report, S3 outputs. Median of N calls per
kind (interleaved), and a cProfile of the 1-row calls. Usage::

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


def s3_event(bucket: str, key: str, size: int, etag: str | None) -> dict[str, Any]:
    """The S3 notification a put of ``key`` sends (what Lambda hands the function).

    S3 always gives the new object's ETag; without one (``etag`` None: an ``s3://`` URL or a
    Batch Operations task) the handler asks S3 for it first, one more request.
    """
    obj: dict[str, Any] = {"key": key, "size": size}
    if etag is not None:
        obj["eTag"] = etag
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": "us-east-1",
                "eventName": "ObjectCreated:Put",
                "s3": {"bucket": {"name": bucket}, "object": obj},
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

            def call(rows: int, *, etag: bool = True) -> float:
                key = f"incoming/fixed/{rows}-{next(counter)}.csv"
                put = s3.put_object(Bucket=stack.bucket, Key=key, Body=files[rows])
                tag = str(put["ETag"]).strip('"') if etag else None
                event = s3_event(stack.bucket, key, len(files[rows]), tag)
                started = time.perf_counter()
                body = handler(event, LocalContext())
                took = time.perf_counter() - started
                assert body["status"] == "ok", body
                return took

            call(1)  # warm: the runtime (store, S3 client, contract) is built once
            # Interleaved, so the machine's drift falls on every kind alike.
            kinds = {
                "1 row": (1, True),
                "1 row, no eTag (one HEAD more)": (1, False),
                "10,000 rows": (10_000, True),
            }
            times: dict[str, list[float]] = {kind: [] for kind in kinds}
            for _ in range(args.calls):
                for kind, (rows, etag) in kinds.items():
                    times[kind].append(call(rows, etag=etag))
            profile = cProfile.Profile()
            profile.enable()
            for _ in range(args.calls):
                call(1)
            profile.disable()
        print("| object | warm handler ms (median) |")
        print("|---|---:|")
        for kind, took in times.items():
            print(f"| {kind} | {statistics.median(took) * 1000:.1f} |")
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
