"""Backfill's listing, messages and resume points (moto in-process; the integration test runs
the whole path through moto's server, the handler and MariaDB)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from iotpipe.aws.events import decode_event
from iotpipe.backfill import (
    BackfillError,
    ListedObject,
    backfill,
    list_objects,
    notification,
    parse_since,
)
from iotpipe.errors import IotpipeError

BUCKET = "raw"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, Any, str]]:
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        sqs = boto3.client("sqs", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        yield s3, sqs, sqs.create_queue(QueueName="ingest")["QueueUrl"]


def received(sqs: Any, url: str) -> list[str]:
    bodies: list[str] = []
    while True:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            return bodies
        for m in messages:
            bodies.append(m["Body"])
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


def announced(body: str) -> Any:
    """What the ingest handler makes of a message body (an SQS-wrapped S3 event)."""
    event = {"Records": [{"messageId": "m", "body": body, "eventSource": "aws:sqs"}]}
    (group,) = decode_event(event).groups
    (obj,) = group.objects
    return obj


class Throttled:
    """SQS that refuses some entries of each batch a number of times."""

    def __init__(self, refusals: int, sender_fault: bool = False) -> None:
        self.refusals = refusals
        self.sender_fault = sender_fault
        self.sent: list[str] = []
        self.calls = 0

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, str]]) -> Any:  # noqa: N803
        self.calls += 1
        if self.refusals > 0:
            self.refusals -= 1
            first, *rest = Entries
            self.sent += [e["MessageBody"] for e in rest]
            fault = {"Id": first["Id"], "Code": "Throttled", "Message": "slow down"}
            return {"Failed": [{**fault, "SenderFault": self.sender_fault}]}
        self.sent += [e["MessageBody"] for e in Entries]
        return {"Successful": [{"Id": e["Id"]} for e in Entries]}


def test_a_message_decodes_to_the_object_a_real_notification_names() -> None:
    key = "incoming/gw 1/a+b é%.csv"
    obj = ListedObject(key, 12, '"abc123"', dt.datetime(2025, 1, 2, 3, 4, 5, tzinfo=dt.UTC))
    got = announced(notification(BUCKET, obj))
    assert (got.bucket, got.key, got.etag, got.size, got.version_id) == (
        BUCKET,
        key,
        "abc123",
        12,
        None,
    )
    record = json.loads(notification(BUCKET, obj))["Records"][0]
    assert record["eventTime"] == "2025-01-02T03:04:05.000Z"
    assert record["eventName"] == "ObjectCreated:Put"


def test_on_a_versioned_bucket_the_current_version_is_announced(aws: Any) -> None:
    s3, _sqs, _url = aws
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket=BUCKET, Key="incoming/a.csv", Body=b"v1")
    second = s3.put_object(Bucket=BUCKET, Key="incoming/a.csv", Body=b"v2")
    s3.put_object(Bucket=BUCKET, Key="incoming/gone.csv", Body=b"x")
    s3.delete_object(Bucket=BUCKET, Key="incoming/gone.csv")
    listed = list(list_objects(s3, BUCKET, "incoming/"))
    assert [(o.key, o.version_id, o.etag) for o in listed] == [
        ("incoming/a.csv", second["VersionId"], second["ETag"])
    ]
    obj = announced(notification(BUCKET, listed[0]))
    # The ledger version a real notification of this upload would give.
    assert obj.version == f"{second['ETag'].strip(chr(34))}#{second['VersionId']}"


def test_listing_is_paginated_in_key_order_and_resumes_after_a_key(aws: Any) -> None:
    s3, real_sqs, url = aws
    keys = [f"incoming/{i:05d}.csv" for i in range(1, 1_004)]  # past one 1,000-key page
    for key in keys:
        s3.put_object(Bucket=BUCKET, Key=key, Body=b"x")
    sqs = Throttled(refusals=0)
    seen: list[int] = []
    result = backfill(s3, sqs, BUCKET, "incoming/", url, progress=lambda r: seen.append(r.sent))
    assert (result.listed, result.sent, result.resume_after) == (1_003, 1_003, keys[-1])
    assert seen[:3] == [10, 20, 30] and seen[-1] == 1_003  # one call per batch of ten
    assert sqs.calls == 101
    assert [announced(b).key for b in sqs.sent] == keys

    again = backfill(s3, real_sqs, BUCKET, "incoming/", url, start_after=keys[999])
    assert (again.listed, again.sent) == (3, 3)
    assert sorted(announced(b).key for b in received(real_sqs, url)) == keys[1_000:]


def test_a_dry_run_counts_and_sends_nothing(aws: Any) -> None:
    s3, sqs, url = aws
    for key in ("incoming/a.csv", "incoming/b.csv", "rejected/incoming/a.csv.csv"):
        s3.put_object(Bucket=BUCKET, Key=key, Body=b"x")
    result = backfill(
        s3, sqs, BUCKET, "", url, dry_run=True, owns=lambda k: k.startswith("rejected/")
    )
    assert (result.listed, result.sent, result.skipped_outputs) == (3, 2, 1)
    assert result.to_dict()["dry_run"] is True
    assert received(sqs, url) == []


def test_refused_entries_are_sent_again_alone(aws: Any) -> None:
    s3, _sqs, url = aws
    for i in range(10):
        s3.put_object(Bucket=BUCKET, Key=f"incoming/{i}.csv", Body=b"x")
    sqs = Throttled(refusals=2)
    result = backfill(s3, sqs, BUCKET, "incoming/", url, sleep=lambda _s: None)
    assert result.sent == 10
    assert sorted(announced(b).key for b in sqs.sent) == [f"incoming/{i}.csv" for i in range(10)]
    assert sqs.calls == 3


@pytest.mark.parametrize("sender_fault", [False, True])
def test_a_queue_that_keeps_refusing_stops_at_the_last_whole_batch(
    aws: Any, sender_fault: bool
) -> None:
    s3, _sqs, url = aws
    for i in range(25):
        s3.put_object(Bucket=BUCKET, Key=f"incoming/{i:02d}.csv", Body=b"x")

    class FailsThird(Throttled):
        def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, str]]) -> Any:  # noqa: N803
            if len(self.sent) >= 20:
                self.refusals = 99
            return super().send_message_batch(QueueUrl, Entries)

    sqs = FailsThird(refusals=0, sender_fault=sender_fault)
    with pytest.raises(BackfillError) as caught:
        backfill(s3, sqs, BUCKET, "incoming/", url, sleep=lambda _s: None)
    assert caught.value.result.sent == 20
    assert caught.value.result.resume_after == "incoming/19.csv"
    assert "--start-after incoming/19.csv" in str(caught.value)
    assert "Throttled: slow down" in str(caught.value)
    assert sqs.calls == 2 + (1 if sender_fault else 5)  # a sender fault is not retried


def test_since_takes_dates_and_date_times() -> None:
    assert parse_since("2025-01-02") == dt.datetime(2025, 1, 2, tzinfo=dt.UTC)
    assert parse_since("2025-01-02T03:00:00+02:00") == dt.datetime(2025, 1, 2, 1, tzinfo=dt.UTC)
    assert parse_since("2025-01-02T03:00:00Z") == dt.datetime(2025, 1, 2, 3, tzinfo=dt.UTC)
    with pytest.raises(IotpipeError, match="--since"):
        parse_since("yesterday")
