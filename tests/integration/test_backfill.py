"""`iotpipe backfill` through the real path: moto's S3 and SQS servers on 127.0.0.1, the CLI,
the poller handing SQS batches to the real ingest handler, and the real MariaDB."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote_plus

import pytest

from iotpipe import bootstrap
from iotpipe.cli import main
from iotpipe.contract import load_contract
from iotpipe.local.stack import LocalStack, Poller
from tests.integration.conftest import fetch_all, scalar

ACME = load_contract("acme_usage")
OBJECTS = 1000
HEADER = "device_id,timestamp,device_type,status,battery_pct,error_count\n"


def object_text(i: int) -> str:
    """Three readings of one device per object; the truth is the text itself."""
    return HEADER + "".join(
        f"dev-{i:04d},2025-03-0{day}T10:00:00Z,sensor,active,{(i + day) % 100},{day}\n"
        for day in (1, 2, 3)
    )


class RefusingSqs:
    """An SQS client whose SendMessageBatch fails (as a network error would) after ``allowed``
    successful calls."""

    def __init__(self, client: Any, allowed: int) -> None:
        self._client = client
        self.allowed = allowed
        self.calls = 0

    def send_message_batch(self, **kwargs: Any) -> Any:
        self.calls += 1
        if self.calls > self.allowed:
            raise ConnectionError("queue endpoint unreachable")
        return self._client.send_message_batch(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any]]:
    code = main(args)
    out = capsys.readouterr().out.strip().splitlines()
    return code, json.loads(out[-1])


def queue_depth(stack: LocalStack, url: str) -> int:
    attrs = stack.client("sqs").get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]) + int(
        attrs["ApproximateNumberOfMessagesNotVisible"]
    )


def test_backfill_of_a_thousand_objects_resumed_once_loads_each_exactly_once(
    stack: LocalStack, mariadb_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    s3 = stack.client("s3")
    # The objects predate the notification: uploading them announces nothing.
    s3.put_bucket_notification_configuration(Bucket=stack.bucket, NotificationConfiguration={})
    keys = [f"incoming/2025/03/gw-{i % 7}/part {i:04d}+x.csv" for i in range(OBJECTS)]
    for i, key in enumerate(keys):
        s3.put_object(Bucket=stack.bucket, Key=key, Body=object_text(i).encode())
    s3.put_object(Bucket=stack.bucket, Key="reports/incoming/old.csv.json", Body=b"{}")
    stack.client("sqs").purge_queue(QueueUrl=stack.queue_url)  # S3's configuration test event
    assert queue_depth(stack, stack.queue_url) == 0

    # A dry run lists and counts, and sends nothing.
    code, body = run_cli(
        ["backfill", f"s3://{stack.bucket}/incoming/", "--queue-url", stack.queue_url,
         "--dry-run", "--json"],
        capsys,
    )  # fmt: skip
    assert code == 0
    assert (body["status"], body["listed"], body["sent"]) == ("dry-run", OBJECTS, OBJECTS)
    assert queue_depth(stack, stack.queue_url) == 0

    # The first run loses the queue after 40 batches: it stops at a resume point.
    refusing: dict[str, RefusingSqs] = {}

    def factory(service: str) -> Any:
        client = stack.client(service)
        if service == "sqs":
            refusing["sqs"] = RefusingSqs(client, allowed=40)
            return refusing["sqs"]
        return client

    with bootstrap.configured(aws_client=factory):
        code, stopped = run_cli(
            ["backfill", f"s3://{stack.bucket}/incoming/", "--queue-url", stack.queue_url,
             "--json"],
            capsys,
        )  # fmt: skip
    assert code == 1
    assert stopped["status"] == "stopped"
    assert "queue endpoint unreachable" in stopped["error"]
    assert stopped["sent"] == 400
    ordered = sorted(keys)
    assert stopped["resume_after"] == ordered[399]
    assert f"--start-after {ordered[399]}" in stopped["error"]

    # Meanwhile the function works through what was sent.
    poller = Poller(stack)
    poller.drain(timeout_seconds=240)
    assert scalar(mariadb_url, "SELECT COUNT(*) FROM iotpipe_ledger") == 400

    # Resumed from an earlier key than needed (an operator's overlap): the ledger skips those.
    overlap_from = ordered[389]
    code, resumed = run_cli(
        ["backfill", f"s3://{stack.bucket}/incoming/", "--queue-url", stack.queue_url,
         "--start-after", overlap_from, "--json"],
        capsys,
    )  # fmt: skip
    assert code == 0
    assert (resumed["status"], resumed["sent"]) == ("sent", OBJECTS - 390)
    assert resumed["resume_after"] == ordered[-1]
    poller.drain(timeout_seconds=300)

    # Every object loaded exactly once, through the queue; nothing left or dead-lettered.
    ledger = fetch_all(mariadb_url, "SELECT source, status, attempts FROM iotpipe_ledger")
    assert sorted(ledger) == sorted((f"s3://{stack.bucket}/{k}", "loaded", 1) for k in keys)
    stored = fetch_all(
        mariadb_url,
        f"SELECT device_id, DATE_FORMAT(ts, '%Y-%m-%dT%H:%i:%sZ'), battery_pct, error_count"
        f" FROM `{ACME.table}` ORDER BY device_id, ts",
    )
    truth = [
        (f"dev-{i:04d}", f"2025-03-0{day}T10:00:00Z", float((i + day) % 100), day)
        for i in range(OBJECTS)
        for day in (1, 2, 3)
    ]
    assert stored == truth
    assert queue_depth(stack, stack.queue_url) == 0
    assert queue_depth(stack, stack.dlq_url) == 0


def test_backfill_since_skips_older_objects_and_never_announces_outputs(
    stack: LocalStack, mariadb_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    s3 = stack.client("s3")
    s3.put_bucket_notification_configuration(Bucket=stack.bucket, NotificationConfiguration={})
    s3.put_object(Bucket=stack.bucket, Key="incoming/a.csv", Body=object_text(1).encode())
    s3.put_object(Bucket=stack.bucket, Key="rejected/incoming/a.csv.csv", Body=b"x")
    stack.client("sqs").purge_queue(QueueUrl=stack.queue_url)
    code, body = run_cli(
        ["backfill", f"s3://{stack.bucket}", "--queue-url", stack.queue_url,
         "--since", "2999-01-01", "--json"],
        capsys,
    )  # fmt: skip
    assert code == 0
    assert (body["listed"], body["sent"], body["skipped_older"], body["skipped_outputs"]) == (
        2,
        0,
        1,
        1,
    )
    code, body = run_cli(
        ["backfill", f"s3://{stack.bucket}", "--queue-url", stack.queue_url,
         "--since", "2000-01-01T00:00:00Z", "--json"],
        capsys,
    )  # fmt: skip
    assert (code, body["sent"], body["skipped_outputs"]) == (0, 1, 1)
    Poller(stack).drain(timeout_seconds=30)
    assert fetch_all(mariadb_url, "SELECT source, status FROM iotpipe_ledger") == [
        (f"s3://{stack.bucket}/incoming/a.csv", "loaded")
    ]


def test_s3_batch_operations_tasks_are_answered_per_task(
    stack: LocalStack, mariadb_url: str
) -> None:
    from iotpipe.handlers.ingest import handler
    from iotpipe.local.stack import LocalContext

    s3 = stack.client("s3")
    s3.put_bucket_notification_configuration(Bucket=stack.bucket, NotificationConfiguration={})
    s3.put_bucket_versioning(Bucket=stack.bucket, VersioningConfiguration={"Status": "Enabled"})
    old = s3.put_object(Bucket=stack.bucket, Key="incoming/v.csv", Body=object_text(7).encode())
    s3.put_object(Bucket=stack.bucket, Key="incoming/v.csv", Body=object_text(8).encode())
    s3.put_object(Bucket=stack.bucket, Key="incoming/good one.csv", Body=object_text(1).encode())
    garbage = s3.put_object(
        Bucket=stack.bucket, Key="incoming/garbage.csv", Body=b"\x00\x01 not a csv"
    )
    # A good version after it: the task names the garbage one, which is what is quarantined.
    s3.put_object(Bucket=stack.bucket, Key="incoming/garbage.csv", Body=object_text(9).encode())

    def tasks(*items: tuple[str, str | None]) -> dict[str, Any]:
        return {
            "invocationSchemaVersion": "2.0",
            "invocationId": "inv-1",
            "job": {"id": "job-1", "userArguments": {}},
            "tasks": [
                {"taskId": f"t{i}", "s3Bucket": stack.bucket, "s3Key": quote_plus(key),
                 "s3VersionId": version}
                for i, (key, version) in enumerate(items)
            ],
        }  # fmt: skip

    event = tasks(
        ("incoming/good one.csv", None),
        ("incoming/v.csv", old["VersionId"]),  # an older version, named by the manifest
        ("incoming/garbage.csv", garbage["VersionId"]),
        ("incoming/gone.csv", None),
        ("incoming/good one.csv", None),  # listed twice: loaded once
    )
    answer = handler(event, LocalContext())
    assert answer["invocationSchemaVersion"] == "2.0" and answer["invocationId"] == "inv-1"
    assert answer["treatMissingKeysAs"] == "PermanentFailure"
    codes = [(r["taskId"], r["resultCode"]) for r in answer["results"]]
    assert codes == [
        ("t0", "Succeeded"),
        ("t1", "Succeeded"),
        ("t2", "PermanentFailure"),
        ("t3", "PermanentFailure"),
        ("t4", "Succeeded"),
    ]
    strings = [r["resultString"] for r in answer["results"]]
    assert strings[0] == "loaded: 3 rows loaded" and strings[4].startswith("skipped")
    assert "does not exist" in strings[3]
    stored = fetch_all(
        mariadb_url, f"SELECT device_id, COUNT(*) FROM `{ACME.table}` GROUP BY 1 ORDER BY 1"
    )
    assert stored == [("dev-0001", 3), ("dev-0007", 3)]  # the version asked for, not v8
    versions = fetch_all(
        mariadb_url, "SELECT version FROM iotpipe_ledger WHERE source LIKE '%/v.csv'"
    )
    assert [v.split("#")[1] for (v,) in versions] == [old["VersionId"]]
    quarantined = s3.get_object(Bucket=stack.bucket, Key="quarantine/incoming/garbage.csv")
    assert quarantined["Body"].read() == b"\x00\x01 not a csv"
