"""``iotpipe demo``: the whole path on embedded defaults, with no servers and no AWS account.

A messy generated file is uploaded (gzipped, under a key with spaces, ``+`` and non-ASCII) to
an in-process S3 stand-in; its notification goes through SQS to the real ingest handler, which
loads SQLite; then the retrieval service answers for one device.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import logging
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from iotpipe import bootstrap
from iotpipe.sample import write_sample

DEMO_KEY = "incoming/acme usage 2024-01 + café.csv.gz"
TRUTH_KEYS = ("rows_read", "rows_valid", "rows_rejected", "rows_duplicate", "rows_conflict")


def run_demo(rows: int = 20_000, say: Callable[[str], None] = print) -> int:
    """Run the demo; return 0 when the load matches the generated file's known truth.

    Parameters
    ----------
    rows
        Lines to generate.
    say
        Where to print.

    Returns
    -------
    int
        A process exit code.
    """
    from iotpipe.local.stack import LocalStack, Poller

    started = time.monotonic()
    with (
        tempfile.TemporaryDirectory(prefix="iotpipe-demo-") as tmp,
        bootstrap.configured(database_url=f"sqlite:///{tmp}/demo.db", contract="acme_usage"),
    ):
        source = Path(tmp) / "acme.csv.gz"
        truth = write_sample(source, rows, devices=20, seed=7)
        size = source.stat().st_size
        say(f"1. generated {size:,} bytes of messy Acme data: {truth.rows_read:,} rows")
        stack = LocalStack().start()
        try:
            say(f"2. S3 + SQS stand-in (moto) on {stack.endpoint}; bucket {stack.bucket}")
            stack.upload(str(source), DEMO_KEY)
            say(f"3. uploaded s3://{stack.bucket}/{DEMO_KEY}")
            poller = Poller(stack)
            with _quiet_handler():
                poller.drain(timeout_seconds=60)
            say(f"4. S3 -> SQS -> ingest handler: {poller.invocations} invocation(s)")
            s3 = stack.client("s3")
            report = _json(s3, stack.bucket, f"reports/{DEMO_KEY}.json")
            status = _print_report(report, truth.to_dict(), say)
            rejects = _rejects(s3, stack.bucket, f"rejected/{DEMO_KEY}.csv")
            say(
                f"   rejected rows with reasons: s3://{stack.bucket}/rejected/{DEMO_KEY}.csv "
                f"({rejects:,} rows)"
            )
            _print_query(say)
        finally:
            stack.stop()
    say(f"done in {time.monotonic() - started:.1f} s")
    return status


@contextlib.contextmanager
def _quiet_handler() -> Any:
    """Keep the handler's JSON log lines and EMF metrics (one per line, on stdout) out."""
    handler_logger = logging.getLogger("iotpipe-ingest")
    level = handler_logger.level
    handler_logger.setLevel(logging.WARNING)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        handler_logger.setLevel(level)


def _json(s3: Any, bucket: str, key: str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    return body


def _rejects(s3: Any, bucket: str, key: str) -> int:
    text = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8")
    return sum(1 for _ in csv.reader(io.StringIO(text))) - 1


def _print_report(report: dict[str, Any], truth: dict[str, Any], say: Callable[[str], None]) -> int:
    say(f"5. quality report ({report['status']}, {report['seconds']:.2f} s):")
    ok = report["status"] == "loaded"
    for key in TRUTH_KEYS:
        match = report[key] == truth[key]
        ok = ok and match
        verdict = "ok" if match else "MISMATCH"
        say(f"   {key:<16}{report[key]:>10,}   known truth {truth[key]:>10,}  {verdict}")
    reasons = ", ".join(f"{k} {v}" for k, v in report["reject_reasons"].items())
    say(f"   reject reasons: {reasons}")
    nulled = ", ".join(f"{k} {v}" for k, v in report["nulled"].items())
    say(f"   values nulled: {nulled}")
    return 0 if ok else 1


def _print_query(say: Callable[[str], None]) -> None:
    from iotpipe.retrieve import answer

    runtime = bootstrap.build_retrieve_runtime()
    params = {
        "device_id": "dev-00003",
        "start": "2024-01-01T00:00:00Z",
        "end": "2024-01-01T12:00:00Z",
        "limit": "5",
    }
    try:
        body = answer(
            params, default_dataset=runtime.dataset, store=runtime.store, cursors=runtime.cursors
        )
    finally:
        runtime.store.close()
    say(
        f"6. retrieval: device {body['device_id']}, {body['start']} .. {body['end']}: "
        f"{body['count']} rows (first {len(body['rows'])} shown)"
    )
    for row in body["rows"]:
        say("   " + json.dumps(row, ensure_ascii=False))
    say("   stats over the whole range:")
    say(f"   {'column':<15}{'count':>7}{'mean':>11}{'median':>10}{'min':>10}{'max':>10}")
    for name, s in body["stats"].items():
        cells = [
            f"{s[k]:>10.2f}" if s[k] is not None else f"{'-':>10}" for k in ("median", "min", "max")
        ]
        mean = f"{s['mean']:>11.3f}" if s["mean"] is not None else f"{'-':>11}"
        say(f"   {name:<15}{s['count']:>7}{mean}{''.join(cells)}")
