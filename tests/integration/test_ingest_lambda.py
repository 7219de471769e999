"""The ingest Lambda through the real notification path: moto's server on 127.0.0.1 (S3 -> SQS),
the poller, the handler in-process, and the real MariaDB over TCP."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from boto3.s3.transfer import TransferConfig

from iotpipe import bootstrap
from iotpipe.aws.s3 import S3Objects
from iotpipe.contract import load_contract
from iotpipe.handlers.ingest import handler
from iotpipe.local.stack import LocalContext, LocalStack, Poller, free_port
from iotpipe.model import ObjectRef
from iotpipe.sample import SampleTruth, write_sample
from iotpipe.storage.mysql import MySQLParams
from iotpipe.storage.store import new_owner
from tests.integration.conftest import fetch_all, scalar, table_rows
from tests.integration.test_mysql_faults import KillingStore

ACME = load_contract("acme_usage")
ODD_KEY = "incoming/acme usage + 2024 é/part 1.csv.gz"


def expected(truth: SampleTruth) -> list[tuple[Any, ...]]:
    assert truth.rows is not None
    return sorted(truth.rows.values(), key=lambda r: (r[0], r[1]))


def read_json(stack: LocalStack, key: str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(
        stack.client("s3").get_object(Bucket=stack.bucket, Key=key)["Body"].read()
    )
    return body


def keys(stack: LocalStack, prefix: str) -> list[str]:
    listing = stack.client("s3").list_objects_v2(Bucket=stack.bucket, Prefix=prefix)
    return [o["Key"] for o in listing.get("Contents", [])]


def test_gzipped_multipart_upload_under_an_odd_key_loads_exactly(
    stack: LocalStack, mariadb_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "big.csv.gz"
    truth = write_sample(path, 250_000, devices=50, seed=41, keep_rows=True)
    assert path.stat().st_size > 5 * 1024 * 1024
    config = TransferConfig(
        multipart_threshold=5 * 1024 * 1024, multipart_chunksize=5 * 1024 * 1024
    )
    stack.client("s3").upload_file(str(path), stack.bucket, ODD_KEY, Config=config)
    etag = stack.client("s3").head_object(Bucket=stack.bucket, Key=ODD_KEY)["ETag"].strip('"')
    assert etag.endswith("-2")  # really a multipart upload
    Poller(stack).drain(timeout_seconds=120)

    assert table_rows(mariadb_url, ACME) == expected(truth)
    ledger = fetch_all(mariadb_url, "SELECT source, version, status, attempts FROM iotpipe_ledger")
    assert ledger == [(f"s3://{stack.bucket}/{ODD_KEY}", etag, "loaded", 1)]
    report = read_json(stack, f"reports/{ODD_KEY}.json")
    assert report["status"] == "loaded"
    for key in ("rows_read", "rows_valid", "rows_rejected", "rows_duplicate", "rows_conflict"):
        assert report[key] == getattr(truth, key), key
    assert report["reject_reasons"] == dict(sorted(truth.reject_reasons.items()))
    rejects = (
        stack.client("s3")
        .get_object(Bucket=stack.bucket, Key=f"rejected/{ODD_KEY}.csv")["Body"]
        .read()
    )
    rows = list(csv.DictReader(io.StringIO(rejects.decode("utf-8"))))
    assert len(rows) == truth.rows_rejected
    assert {r["reason"] for r in rows} == set(truth.reject_reasons)
    assert all(r["line"].isdigit() and r["detail"] for r in rows)


def test_a_loaded_file_s_rejects_and_report_land_beside_it(
    stack: LocalStack, mariadb_url: str, tmp_path: Path
) -> None:
    # The quick form of the test above (which mutation testing leaves out for its size): the
    # rejects CSV is uploaded and named in the report, whatever the file's size.
    path = tmp_path / "r.csv"
    truth = write_sample(path, 2000, seed=49, keep_rows=True)
    assert truth.rows_rejected > 0
    key = "incoming/with rejects.csv"
    stack.upload(str(path), key)
    Poller(stack).drain()
    assert table_rows(mariadb_url, ACME) == expected(truth)
    report = read_json(stack, f"reports/{key}.json")
    # (the report cannot name itself: it is the last output written)
    assert report["outputs"] == {"rejects": f"s3://{stack.bucket}/rejected/{key}.csv"}
    body = stack.client("s3").get_object(Bucket=stack.bucket, Key=f"rejected/{key}.csv")["Body"]
    rows = list(csv.DictReader(io.StringIO(body.read().decode("utf-8"))))
    assert len(rows) == truth.rows_rejected
    assert Counter(r["reason"] for r in rows) == truth.reject_reasons


def _notification(stack: LocalStack, key: str, bucket: str | None = None) -> str:
    s3 = stack.client("s3")
    bucket = bucket or stack.bucket
    head = s3.head_object(Bucket=bucket, Key=key)
    from urllib.parse import quote_plus

    return json.dumps(
        {
            "Records": [
                {
                    "eventSource": "aws:s3",
                    "eventName": "ObjectCreated:Put",
                    "s3": {
                        "bucket": {"name": bucket},
                        "object": {
                            "key": quote_plus(key),
                            "eTag": head["ETag"].strip('"'),
                            "size": head["ContentLength"],
                        },
                    },
                }
            ]
        }
    )


def _sqs_event(body: str, message_id: str) -> dict[str, Any]:
    return {
        "Records": [
            {"messageId": message_id, "receiptHandle": "r", "body": body, "eventSource": "aws:sqs"}
        ]
    }


def test_duplicate_delivery_is_skipped(stack: LocalStack, mariadb_url: str, tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    truth = write_sample(path, 3000, seed=42, keep_rows=True)
    key = "incoming/dup.csv"
    stack.upload(str(path), key)
    poller = Poller(stack)
    poller.drain()
    # The same notification delivered again (at-least-once delivery).
    stack.client("sqs").send_message(
        QueueUrl=stack.queue_url, MessageBody=_notification(stack, key)
    )
    result = handler(_sqs_event(_notification(stack, key), "again"), LocalContext())
    assert result == {"batchItemFailures": []}
    poller.drain()
    assert table_rows(mariadb_url, ACME) == expected(truth)
    assert fetch_all(mariadb_url, "SELECT status, attempts FROM iotpipe_ledger") == [("loaded", 1)]


def test_two_concurrent_deliveries_load_once(
    stack: LocalStack, mariadb_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "c.csv"
    truth = write_sample(path, 40_000, seed=43, keep_rows=True)
    key = "incoming/concurrent.csv"
    s3 = stack.client("s3")
    # Upload without the notification racing us: a key outside incoming/, then copy the event.
    s3.put_bucket_notification_configuration(Bucket=stack.bucket, NotificationConfiguration={})
    stack.upload(str(path), key)
    body = _notification(stack, key)
    results: list[dict[str, Any]] = []
    barrier = threading.Barrier(2)

    def deliver(n: int) -> None:
        barrier.wait()  # both deliveries race for the claim
        results.append(handler(_sqs_event(body, f"m{n}"), LocalContext()))
        bootstrap.use_ingest_runtime(None)

    threads = [threading.Thread(target=deliver, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 2
    # Exactly once: one claim went through (attempts 1) and the table is the file's truth;
    # the other delivery was busy (reported failed, for SQS to retry) or, if it came late
    # enough, found the version loaded (skipped).
    assert table_rows(mariadb_url, ACME) == expected(truth)
    assert fetch_all(mariadb_url, "SELECT status, attempts FROM iotpipe_ledger") == [("loaded", 1)]
    failures = [f["itemIdentifier"] for r in results for f in r["batchItemFailures"]]
    assert len(failures) in (0, 1)
    # The retried delivery is then skipped.
    assert handler(_sqs_event(body, "m2"), LocalContext()) == {"batchItemFailures": []}
    assert scalar(mariadb_url, "SELECT attempts FROM iotpipe_ledger") == 1


def test_garbage_is_quarantined_reported_and_acknowledged_not_dead_lettered(
    stack: LocalStack, mariadb_url: str, tmp_path: Path
) -> None:
    # Issue "Trust": a file that fails as a whole is quarantined with its report and the
    # ledger entry, and acknowledged: retrying it five times into the DLQ helped nobody.
    key = "incoming/garbage.csv"
    stack.client("s3").put_object(
        Bucket=stack.bucket, Key=key, Body=b"\x89PNG\r\n\x1a\n\x00\x00" + os.urandom(2000)
    )
    direct = json.loads(_notification(stack, key))
    assert handler(direct, LocalContext()) == {"status": "ok", "objects": 1}
    status, error = fetch_all(mariadb_url, "SELECT status, error FROM iotpipe_ledger")[0]
    assert status == "failed" and "binary" in error
    assert keys(stack, "quarantine/") == [f"quarantine/{key}"]
    report = read_json(stack, f"reports/{key}.json")
    assert report["status"] == "failed" and report["outputs"]["quarantine"].endswith(
        f"quarantine/{key}"
    )
    # Through SQS: acknowledged on the first receive; nothing reaches the DLQ.
    Poller(stack).drain(timeout_seconds=60, idle_polls=3)
    dead = stack.client("sqs").receive_message(QueueUrl=stack.dlq_url, MaxNumberOfMessages=10)
    assert dead.get("Messages", []) == []
    assert scalar(mariadb_url, "SELECT attempts FROM iotpipe_ledger") == 2  # direct + SQS
    assert scalar(mariadb_url, "SELECT COUNT(*) FROM device_usage") == 0


def test_an_unreachable_database_is_retried_then_dead_lettered(
    stack: LocalStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The counterpart: what a retry can fix is still retried, and then dead-lettered.
    closed = free_port()  # nothing listens there
    monkeypatch.setenv("IOTPIPE_DATABASE_URL", f"mysql://root@127.0.0.1:{closed}/iotpipe")
    bootstrap.use_ingest_runtime(None)
    path = tmp_path / "u.csv"
    write_sample(path, 200, seed=46)
    stack.upload(str(path), "incoming/unreachable.csv")
    poller = Poller(stack)
    poller.drain(timeout_seconds=120, idle_polls=8)
    dead = stack.client("sqs").receive_message(QueueUrl=stack.dlq_url, MaxNumberOfMessages=10)
    assert len(dead.get("Messages", [])) == 1
    assert poller.invocations >= 3  # every receive was reported failed


def test_missing_required_column_fails_the_file(stack: LocalStack, mariadb_url: str) -> None:
    key = "incoming/no timestamp.csv"
    stack.client("s3").put_object(
        Bucket=stack.bucket, Key=key, Body=b"device_id,battery_pct\nd1,50\n"
    )
    result = handler(_sqs_event(_notification(stack, key), "x"), LocalContext())
    assert result == {"batchItemFailures": []}  # failed as a whole: acknowledged
    error = scalar(mariadb_url, "SELECT error FROM iotpipe_ledger")
    assert "required column(s) missing: 'timestamp' (timestamp.source)" in error
    assert keys(stack, "quarantine/") == [f"quarantine/{key}"]


def test_database_outage_mid_file_ends_with_exact_rows(
    stack: LocalStack, mariadb_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "o.csv.gz"
    truth = write_sample(path, 20_000, seed=44, keep_rows=True)
    killing = KillingStore(MySQLParams.from_url(mariadb_url), kill_after=2)
    runtime = bootstrap.build_ingest_runtime(
        bootstrap.current_settings(batch_rows=4000),
        store=killing,
        objects=S3Objects(stack.client("s3")),
    )
    bootstrap.use_ingest_runtime(runtime)
    stack.upload(str(path), "incoming/outage.csv.gz")
    Poller(stack).drain()
    assert killing.killed == 1
    assert table_rows(mariadb_url, ACME) == expected(truth)
    assert fetch_all(mariadb_url, "SELECT status, attempts FROM iotpipe_ledger") == [("loaded", 2)]


@pytest.mark.parametrize("connection", ["closed", "still open"])
def test_timed_out_lambda_lease_is_taken_over(
    stack: LocalStack, mariadb_url: str, tmp_path: Path, connection: str
) -> None:
    path = tmp_path / "t.csv"
    truth = write_sample(path, 3000, seed=45, keep_rows=True)
    key = "incoming/timeout.csv"
    s3 = stack.client("s3")
    s3.put_bucket_notification_configuration(Bucket=stack.bucket, NotificationConfiguration={})
    stack.upload(str(path), key)
    etag = s3.head_object(Bucket=stack.bucket, Key=key)["ETag"].strip('"')
    # A first invocation claimed the object and died (timeout) without finishing.
    store = bootstrap.build_store(mariadb_url)
    store.ensure_schema(ACME)
    ref = ObjectRef(f"s3://{stack.bucket}/{key}", etag, path.stat().st_size)
    assert store.claim(ref, "acme_usage", 0.5, new_owner()).status == "claimed"
    body = _notification(stack, key)
    if connection == "closed":
        # Its connection closed (the process is gone): the server released its lock, so the
        # next delivery takes over at once, lease or not (issue "Trust", finding 5).
        store.close()
    else:
        # A frozen container whose connection stays open: the lock is held, so the lease
        # decides. Within it the delivery is busy; once it runs out, taken over.
        assert handler(_sqs_event(body, "early"), LocalContext()) == {
            "batchItemFailures": [{"itemIdentifier": "early"}]
        }
        import time

        time.sleep(0.6)  # the dead invocation's lease runs out
    assert handler(_sqs_event(body, "later"), LocalContext()) == {"batchItemFailures": []}
    assert table_rows(mariadb_url, ACME) == expected(truth)
    assert fetch_all(mariadb_url, "SELECT status, attempts FROM iotpipe_ledger") == [("loaded", 2)]
    store.close()


def test_eventbridge_invocation(stack: LocalStack, mariadb_url: str, tmp_path: Path) -> None:
    path = tmp_path / "e.csv"
    truth = write_sample(path, 2000, seed=46, keep_rows=True)
    key = "incoming/event bridge+1.csv"
    s3 = stack.client("s3")
    s3.put_bucket_notification_configuration(Bucket=stack.bucket, NotificationConfiguration={})
    stack.upload(str(path), key)
    head = s3.head_object(Bucket=stack.bucket, Key=key)
    event = {
        "detail-type": "Object Created",
        "source": "aws.s3",
        "detail": {
            "bucket": {"name": stack.bucket},
            "object": {"key": key, "etag": head["ETag"].strip('"'), "size": head["ContentLength"]},
            "reason": "PutObject",
        },
    }
    assert handler(event, LocalContext())["status"] == "ok"
    assert table_rows(mariadb_url, ACME) == expected(truth)
    assert isinstance(scalar(mariadb_url, "SELECT finished_at FROM iotpipe_ledger"), dt.datetime)


def test_cli_ingests_an_s3_url(
    stack: LocalStack, mariadb_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from iotpipe.cli import main

    s3 = stack.client("s3")
    s3.put_bucket_notification_configuration(Bucket=stack.bucket, NotificationConfiguration={})
    path = tmp_path / "cli.csv.gz"
    truth = write_sample(path, 3000, seed=47, keep_rows=True)
    key = "incoming/cli + upload.csv.gz"
    stack.upload(str(path), key)
    assert (
        main(["ingest", f"s3://{stack.bucket}/{key}", "--database-url", mariadb_url, "--json"]) == 0
    )
    body = json.loads(capsys.readouterr().out)
    assert body["status"] == "loaded" and body["rows_loaded"] == truth.rows_valid
    assert body["outputs"]["report"] == f"s3://{stack.bucket}/reports/{key}.json"
    assert table_rows(mariadb_url, ACME) == expected(truth)
    s3.put_object(Bucket=stack.bucket, Key="incoming/junk.csv", Body=b"a,b\n1,2\n")
    assert (
        main(
            [
                "ingest",
                f"s3://{stack.bucket}/incoming/junk.csv",
                "--database-url",
                mariadb_url,
                "--json",
            ]
        )
        == 1
    )
    failed = json.loads(capsys.readouterr().out)
    assert failed["status"] == "failed" and "required column(s) missing" in failed["error"]
    assert failed["outputs"]["quarantine"] == f"s3://{stack.bucket}/quarantine/incoming/junk.csv"


def test_only_the_input_bucket_and_prefix_are_ingested(
    stack: LocalStack, mariadb_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Issue "Trust", finding 16: the handler read any bucket and key it was told about, and
    # wrote its outputs into that bucket.
    s3 = stack.client("s3")
    s3.put_bucket_notification_configuration(Bucket=stack.bucket, NotificationConfiguration={})
    s3.create_bucket(Bucket="someone-elses")
    path = tmp_path / "x.csv"
    write_sample(path, 300, seed=47)
    s3.upload_file(str(path), "someone-elses", "incoming/x.csv")
    s3.upload_file(str(path), stack.bucket, "elsewhere/x.csv")
    monkeypatch.setenv("IOTPIPE_INPUT_BUCKETS", stack.bucket)
    bootstrap.use_ingest_runtime(None)
    for bucket, key in (("someone-elses", "incoming/x.csv"), (stack.bucket, "elsewhere/x.csv")):
        body = json.loads(_notification(stack, key, bucket=bucket))
        assert handler(_sqs_event(json.dumps(body), "m"), LocalContext()) == {
            "batchItemFailures": []
        }  # logged and acknowledged
    tables = "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE()"
    assert scalar(mariadb_url, tables) == 0  # not even a ledger entry: nothing was read
    assert (
        keys(stack, "reports/") == []
        and s3.list_objects_v2(Bucket="someone-elses")["KeyCount"] == 1
    )


class _BrokenBulk:
    def stage(self, rows: Any, directory: Path) -> Path | None:
        return None

    def upsert(
        self, cursor: Any, table: str, rows: Any, *, whole_rows: bool, staged: Path | None = None
    ) -> None:
        raise RuntimeError("a bug nobody foresaw")


def test_an_unforeseen_failure_still_gets_a_report_and_a_ledger_entry(
    stack: LocalStack, mariadb_url: str, tmp_path: Path
) -> None:
    # Issue "Trust", finding 11: such a file got only retries.
    s3 = stack.client("s3")
    s3.put_bucket_notification_configuration(Bucket=stack.bucket, NotificationConfiguration={})
    key = "incoming/unforeseen.csv"
    path = tmp_path / "u.csv"
    write_sample(path, 500, seed=48)
    stack.upload(str(path), key)
    store = bootstrap.build_store(mariadb_url)
    store.bulk = _BrokenBulk()
    bootstrap.use_ingest_runtime(bootstrap.build_ingest_runtime(store=store, objects=S3Objects(s3)))
    result = handler(_sqs_event(_notification(stack, key), "m"), LocalContext())
    assert result == {"batchItemFailures": [{"itemIdentifier": "m"}]}  # retried, then DLQ
    report = read_json(stack, f"reports/{key}.json")
    assert report["status"] == "failed"
    assert report["error"] == "unexpected RuntimeError: a bug nobody foresaw"
    status, error = fetch_all(mariadb_url, "SELECT status, error FROM iotpipe_ledger")[0]
    assert status == "failed" and "RuntimeError: a bug nobody foresaw" in error
    assert keys(stack, "quarantine/") == []  # not the file's fault
