"""Lambda handlers: cold import times, and the ingest handler's peak RSS on large S3 objects.

The S3 stand-in (moto's server) runs in this process; each handler invocation runs in a fresh
child process pointed at it, so the child's peak RSS (VmHWM) is the handler's alone. Objects
are gzipped generated files at 1x and 4x rows, loaded into MariaDB on 127.0.0.1. Usage::

    .venv/bin/python -m bench.lambda_ingest --rows 500000
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench import peak_rss_mb
from bench.ingest import drop_database, fresh_database

IMPORT_PROBE = (
    "import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
)


def cold_import_seconds(module: str, runs: int) -> float:
    samples = []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", IMPORT_PROBE.format(module=module)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        samples.append(float(out.strip().splitlines()[-1]))
    return statistics.median(samples)


def child(event_path: Path) -> None:
    from iotpipe.handlers.ingest import handler
    from iotpipe.local.stack import LocalContext

    event = json.loads(event_path.read_text())
    started = time.perf_counter()
    result = handler(event, LocalContext())
    seconds = time.perf_counter() - started
    print(json.dumps({"result": result, "seconds": seconds, "peak_rss_mb": peak_rss_mb()}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=500_000)
    parser.add_argument("--factor", type=int, default=4)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/iotpipe-bench"))
    parser.add_argument("--child", type=Path, default=None, help="internal")
    args = parser.parse_args()
    if args.child is not None:
        child(args.child)
        return

    from iotpipe.local.stack import LocalStack
    from iotpipe.sample import write_sample

    for module in ("iotpipe.handlers.ingest", "iotpipe.handlers.retrieve"):
        seconds = cold_import_seconds(module, 5)
        print(f"cold import of {module}: {seconds:.2f} s (median of 5)")
    args.dir.mkdir(parents=True, exist_ok=True)
    stack = LocalStack().start()
    try:
        print("| rows in object | object MB (gzip) | seconds | peak RSS MB |")
        print("|---:|---:|---:|---:|")
        for rows in (args.rows, args.rows * args.factor):
            path = args.dir / f"lambda_{rows}.csv.gz"
            if not path.exists():
                write_sample(path, rows, devices=200, seed=3)
            key = f"bench/{path.name}"
            stack.upload(str(path), key)
            etag = stack.client("s3").head_object(Bucket=stack.bucket, Key=key)["ETag"].strip('"')
            event = {
                "Records": [
                    {
                        "eventSource": "aws:s3",
                        "eventName": "ObjectCreated:Put",
                        "s3": {
                            "bucket": {"name": stack.bucket},
                            "object": {"key": key, "eTag": etag},
                        },
                    }
                ]
            }
            event_path = args.dir / "event.json"
            event_path.write_text(json.dumps(event))
            name = "iotpipe_bench_lambda"
            url = fresh_database(name)
            env = {
                **os.environ,
                "IOTPIPE_DATABASE_URL": url,
                "POWERTOOLS_METRICS_DISABLED": "true",
                "POWERTOOLS_LOG_LEVEL": "WARNING",
            }
            try:
                out = subprocess.run(
                    [sys.executable, "-m", "bench.lambda_ingest", "--child", str(event_path)],
                    env=env,
                    check=True,
                    capture_output=True,
                    text=True,
                ).stdout
            finally:
                drop_database(name)
            result = json.loads(out.strip().splitlines()[-1])
            assert result["result"]["status"] == "ok", result
            print(
                f"| {rows:,} | {path.stat().st_size / 1e6:.1f} | {result['seconds']:.1f} "
                f"| {result['peak_rss_mb']:.0f} |"
            )
    finally:
        stack.stop()


if __name__ == "__main__":
    main()
