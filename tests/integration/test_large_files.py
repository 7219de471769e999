"""A file too long for one invocation: it fails fast with the reason and the way out, and the
parts `iotpipe split` makes load to the table a one-pass load gives (moto S3/SQS, the real
handler through the poller, MariaDB)."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from iotpipe.cli import main
from iotpipe.contract import load_contract
from iotpipe.local.stack import LocalStack, Poller
from iotpipe.sample import write_sample
from tests.integration.conftest import fetch_all, scalar, table_rows
from tests.integration.test_backfill import queue_depth

ACME = load_contract("acme_usage")
KEY = "incoming/big.csv.gz"


def test_a_file_too_long_for_its_invocation_fails_fast_and_its_parts_load_exactly(
    stack: LocalStack, mariadb_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "big.csv.gz"
    truth = write_sample(path, 300_000, devices=40, seed=12, keep_rows=True)
    stack.upload(str(path), KEY)

    # A function with a one-second timeout: loading 300,000 rows takes several.
    started = time.monotonic()
    Poller(stack, timeout_seconds=1.0).drain(timeout_seconds=60)
    assert time.monotonic() - started < 30
    (status, error, attempts), *rest = fetch_all(
        mariadb_url, "SELECT status, error, attempts FROM iotpipe_ledger"
    )
    assert not rest
    assert (status, attempts) == ("failed", 1)  # failed once: not retried into the DLQ
    assert error.startswith("too long for one invocation")
    match = re.search(r"iotpipe split FILE --rows (\d+) --out DIR", error)
    assert match, error
    assert scalar(mariadb_url, f"SELECT COUNT(*) FROM `{ACME.table}`") == 0  # rolled back
    s3 = stack.client("s3")
    report = json.loads(
        s3.get_object(Bucket=stack.bucket, Key=f"reports/{KEY}.json")["Body"].read()
    )
    assert report["status"] == "failed" and report["error"] == error
    assert "quarantine" not in report["outputs"]  # not a bad file: nothing copied
    assert s3.list_objects_v2(Bucket=stack.bucket, Prefix="quarantine/").get("KeyCount") == 0
    assert queue_depth(stack, stack.queue_url) == 0
    assert queue_depth(stack, stack.dlq_url) == 0

    # The way out the error names: split, upload the parts (in order), each loads in time.
    parts = tmp_path / "parts"
    assert main(["split", str(path), "--rows", "100000", "--out", str(parts)]) == 0
    capsys.readouterr()
    names = sorted(p.name for p in parts.iterdir())
    assert names == [f"big.part-000{i}.csv.gz" for i in (1, 2, 3)]
    poller = Poller(stack)
    for name in names:
        stack.upload(str(parts / name), f"incoming/parts/{name}")
        poller.drain(timeout_seconds=120)
    loaded = fetch_all(
        mariadb_url, "SELECT status FROM iotpipe_ledger WHERE source LIKE '%/parts/%'"
    )
    assert loaded == [("loaded",)] * len(names)
    assert truth.rows is not None
    assert table_rows(mariadb_url, ACME) == sorted(truth.rows.values(), key=lambda r: (r[0], r[1]))
