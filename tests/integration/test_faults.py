"""Fault injection with real servers (moto's S3/SQS on 127.0.0.1, MariaDB over TCP).

After each fault the invariant holds: the table holds exactly the file's truth (or nothing,
while the file is not loaded), the ledger says what happened, and no row is lost or doubled.
"""

from __future__ import annotations

import errno
import threading
from pathlib import Path
from typing import Any

import pytest
from urllib3.exceptions import ProtocolError

from iotpipe import bootstrap
from iotpipe.aws.s3 import S3Objects, S3RejectSink
from iotpipe.contract import load_contract
from iotpipe.handlers.ingest import handler
from iotpipe.local.stack import LocalContext, LocalStack, Poller
from iotpipe.model import RejectedRow
from iotpipe.sample import SampleTruth, write_sample
from iotpipe.storage.ledger import Ledger
from iotpipe.storage.mysql import MySQLParams
from tests.integration.conftest import fetch_all, scalar, table_rows
from tests.integration.test_ingest_lambda import _notification, _sqs_event, expected
from tests.integration.test_mysql_faults import KillingStore

ACME = load_contract("acme_usage")


def install(
    stack: LocalStack, store: Any, objects: S3Objects | None = None, batch_rows: int = 3000
) -> None:
    settings = bootstrap.current_settings(batch_rows=batch_rows)
    bootstrap.use_ingest_runtime(
        bootstrap.build_ingest_runtime(
            settings, store=store, objects=objects or S3Objects(stack.client("s3"))
        )
    )


def upload(stack: LocalStack, tmp_path: Path, key: str, rows: int, seed: int) -> SampleTruth:
    path = tmp_path / Path(key).name
    truth = write_sample(path, rows, devices=10, seed=seed, keep_rows=True)
    stack.upload(str(path), key)
    return truth


class _BrokenBody:
    """A StreamingBody whose connection breaks after ``limit`` bytes."""

    def __init__(self, body: Any, limit: int) -> None:
        self._body, self._left = body, limit

    def read(self, n: int = -1) -> bytes:
        if self._left <= 0:
            raise ProtocolError("Connection broken: IncompleteRead")
        data: bytes = self._body.read(min(n, self._left) if n and n > 0 else self._left)
        self._left -= len(data)
        return data

    def close(self) -> None:
        self._body.close()


class FlakyS3:
    """A real S3 client whose first ``failures`` object reads break mid-stream."""

    def __init__(self, client: Any, limit: int, failures: int = 1) -> None:
        self._client, self._limit, self.failures = client, limit, failures

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def get_object(self, **kwargs: Any) -> Any:
        response = self._client.get_object(**kwargs)
        if self.failures > 0:
            self.failures -= 1
            response["Body"] = _BrokenBody(response["Body"], self._limit)
        return response


def test_s3_read_error_mid_stream_is_retried(
    stack: LocalStack, mariadb_url: str, tmp_path: Path
) -> None:
    key = "incoming/flaky.csv.gz"
    truth = upload(stack, tmp_path, key, 20_000, seed=71)
    size = stack.client("s3").head_object(Bucket=stack.bucket, Key=key)["ContentLength"]
    flaky = FlakyS3(stack.client("s3"), limit=size // 2)
    install(stack, bootstrap.build_store(mariadb_url), S3Objects(flaky), batch_rows=2000)
    Poller(stack).drain()
    assert flaky.failures == 0
    assert table_rows(mariadb_url, ACME) == expected(truth)
    assert fetch_all(mariadb_url, "SELECT status, attempts FROM iotpipe_ledger") == [("loaded", 2)]
    assert (
        stack.client("s3").list_objects_v2(Bucket=stack.bucket, Prefix="quarantine/")["KeyCount"]
        == 0
    )


class _FullDiskSink(S3RejectSink):
    def write(self, rows: list[RejectedRow]) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")


class FullDiskOnce(S3Objects):
    """The first load's rejects file hits a full disk."""

    full = True

    def rejects_sink(self, bucket: str, key: str) -> S3RejectSink:
        if self.full:
            self.full = False
            return _FullDiskSink(self.client, bucket, f"rejected/{key}.csv")
        return super().rejects_sink(bucket, key)


def test_full_disk_for_the_rejects_file(
    stack: LocalStack, mariadb_url: str, tmp_path: Path
) -> None:
    s3 = stack.client("s3")
    s3.put_bucket_notification_configuration(Bucket=stack.bucket, NotificationConfiguration={})
    key = "incoming/disk.csv"
    truth = upload(stack, tmp_path, key, 8000, seed=72)
    objects = FullDiskOnce(s3)
    install(stack, bootstrap.build_store(mariadb_url), objects)
    body = _notification(stack, key)
    # The first delivery fails: nothing of the file is stored, and the ledger says why.
    assert handler(_sqs_event(body, "m1"), LocalContext()) == {
        "batchItemFailures": [{"itemIdentifier": "m1"}]
    }
    assert scalar(mariadb_url, "SELECT COUNT(*) FROM device_usage") == 0
    status, error = fetch_all(mariadb_url, "SELECT status, error FROM iotpipe_ledger")[0]
    assert status == "failed" and "No space left on device" in error
    assert s3.list_objects_v2(Bucket=stack.bucket, Prefix="quarantine/")["KeyCount"] == 0
    # The redelivery, with space again, loads exactly.
    assert handler(_sqs_event(body, "m2"), LocalContext()) == {"batchItemFailures": []}
    assert table_rows(mariadb_url, ACME) == expected(truth)
    assert fetch_all(mariadb_url, "SELECT status, attempts FROM iotpipe_ledger") == [("loaded", 2)]


def test_same_object_delivered_to_four_workers_at_once(
    stack: LocalStack, mariadb_url: str, tmp_path: Path
) -> None:
    s3 = stack.client("s3")
    s3.put_bucket_notification_configuration(Bucket=stack.bucket, NotificationConfiguration={})
    key = "incoming/four workers.csv"
    truth = upload(stack, tmp_path, key, 30_000, seed=73)
    body = _notification(stack, key)
    results: list[dict[str, Any]] = []
    barrier = threading.Barrier(4)

    def worker(n: int) -> None:  # each thread is its own "container": its own runtime
        barrier.wait()
        results.append(handler(_sqs_event(body, f"w{n}"), LocalContext()))
        bootstrap.use_ingest_runtime(None)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 4
    assert table_rows(mariadb_url, ACME) == expected(truth)
    assert fetch_all(mariadb_url, "SELECT status, attempts FROM iotpipe_ledger") == [("loaded", 1)]
    # Whoever was told "busy" is retried by SQS and then skips.
    retried = [f["itemIdentifier"] for r in results for f in r["batchItemFailures"]]
    for message in retried:
        assert handler(_sqs_event(body, message), LocalContext()) == {"batchItemFailures": []}
    assert scalar(mariadb_url, "SELECT attempts FROM iotpipe_ledger") == 1


class _KillingLedger(Ledger):
    def __init__(self, store: KillingStore) -> None:
        super().__init__(store.db, store.locks)
        self._store = store

    def mark_loaded(self, cursor: Any, claim: Any, report: Any) -> None:
        if not self._store.killed:
            self._store.kill(cursor)
        super().mark_loaded(cursor, claim, report)


class KillAtCommit(KillingStore):
    """Kills the connection just before the ledger row is marked loaded (inside the txn)."""

    def __init__(self, params: MySQLParams, kill_after: int) -> None:
        super().__init__(params, kill_after)
        self.ledger = _KillingLedger(self)

    def after_batch(self, cursor: Any) -> None:
        pass


@pytest.mark.parametrize("where", ["first batch", "third batch", "before commit"])
def test_database_connection_dropped_at_points_of_a_load(
    stack: LocalStack, mariadb_url: str, tmp_path: Path, where: str
) -> None:
    params = MySQLParams.from_url(mariadb_url)
    store: KillingStore = (
        KillAtCommit(params, kill_after=1)
        if where == "before commit"
        else KillingStore(params, kill_after=1 if where == "first batch" else 3)
    )
    install(stack, store, batch_rows=1500)
    truth = upload(stack, tmp_path, "incoming/kill.csv", 9000, seed=74)
    Poller(stack).drain()
    assert store.killed == 1
    # At the moment of the kill, another connection saw nothing committed and no "loaded":
    # the batches written so far (or all of them, before commit) were one open transaction.
    assert store.observed == [(0, "loading")]
    assert table_rows(mariadb_url, ACME) == expected(truth)
    assert fetch_all(mariadb_url, "SELECT status, attempts FROM iotpipe_ledger") == [("loaded", 2)]
