from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from iotpipe.aws.events import decode_event
from iotpipe.errors import EventShapeError

EVENTS = Path(__file__).resolve().parents[2] / "events"
KEY = "incoming/acme usage 2024-01 + café.csv.gz"


def load(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((EVENTS / name).read_text(encoding="utf-8"))
    return doc


def test_direct_s3_notification_keys_are_unquoted() -> None:
    decoded = decode_event(load("s3-put.json"))
    assert decoded.shape == "s3"
    (group,) = decoded.groups
    (obj,) = group.objects
    assert (obj.bucket, obj.key, obj.etag, obj.size) == (
        "iotpipe-raw",
        KEY,
        "0123456789abcdef0123456789abcdef",
        1024,
    )
    assert obj.version == obj.etag


def test_multipart_and_every_record_is_decoded() -> None:
    event = load("s3-multipart.json")
    # A second created record with a '+' in its key: each record is decoded on its own.
    second = json.loads(json.dumps(event["Records"][0]))
    second["s3"]["object"]["key"] = "incoming/a%2Bb+c%25.csv"
    event["Records"].append(second)
    (group,) = decode_event(event).groups
    assert [o.key for o in group.objects] == ["incoming/big+file.csv.gz", "incoming/a+b c%.csv"]
    assert group.objects[0].event_name == "ObjectCreated:CompleteMultipartUpload"


def test_sqs_wrapped_messages_and_test_events() -> None:
    decoded = decode_event(load("sqs-s3.json"))
    assert decoded.shape == "sqs"
    assert [g.message_id for g in decoded.groups] == [
        "059f36b4-87a3-44ab-83d2-661975830a7d",
        "2e1424d4-f796-459a-8184-9c92662be6da",
    ]
    assert [o.key for o in decoded.groups[0].objects] == [KEY]
    assert decoded.groups[1].objects == [] and decoded.groups[1].error is None


def test_sqs_garbage_message_is_a_failed_message_not_a_failed_batch() -> None:
    event = load("sqs-s3.json")
    event["Records"][1]["body"] = "{not json"
    decoded = decode_event(event)
    assert decoded.groups[0].objects and decoded.groups[0].error is None
    assert decoded.groups[1].error is not None


def test_eventbridge_keys_are_not_unquoted() -> None:
    decoded = decode_event(load("eventbridge-object-created.json"))
    (obj,) = decoded.groups[0].objects
    assert decoded.shape == "eventbridge"
    assert obj.key == KEY
    assert obj.version == "0123456789abcdef0123456789abcdef#3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY"


def test_s3_test_event_and_unknown_shapes() -> None:
    assert decode_event(load("s3-test-event.json")).groups == []
    with pytest.raises(EventShapeError):
        decode_event({"hello": "world"})


# -- issue "Trust", finding 15: events that are not the documented shapes ------------------


@pytest.mark.parametrize(
    "event",
    [
        None,
        [],
        "s3:ObjectCreated",
        42,
        {"Records": [None]},
        {"Records": ["x"]},
        {"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put"}]},
        {"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put", "s3": []}]},
        {
            "Records": [
                {
                    "eventSource": "aws:s3",
                    "eventName": "ObjectCreated:Put",
                    "s3": {"bucket": {"name": "b"}, "object": {}},
                }
            ]
        },
        {"detail-type": "Object Created", "source": "aws.s3"},
        {"detail-type": "Object Created", "source": "aws.s3", "detail": {"bucket": "b"}},
    ],
)
def test_malformed_events_are_event_shape_errors(event: Any) -> None:
    # They raised AttributeError, TypeError or KeyError.
    with pytest.raises(EventShapeError):
        decode_event(event)


def test_a_malformed_sqs_body_fails_only_its_message() -> None:
    good = load("sqs-s3.json")["Records"][0]
    bad = {
        **good,
        "messageId": "bad",
        "body": json.dumps(
            {"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put"}]}
        ),
    }
    decoded = decode_event({"Records": [good, bad]})
    assert [g.error is None for g in decoded.groups] == [True, False]
    assert "s3" in (decoded.groups[1].error or "")


def test_batch_operations_tasks_in_both_schemas() -> None:
    decoded = decode_event(load("s3-batch-operations.json"))
    assert decoded.shape == "batch"
    assert decoded.batch == {
        "invocationSchemaVersion": "1.0",
        "invocationId": "YXNkbGZqYWRmaiBhc2RmdW9hZHNmZGpmaGFzbGtkaGZza2RmaAo",
    }
    ((task, obj),) = [(g.message_id, o) for g in decoded.groups for o in g.objects]
    assert (task, obj.bucket, obj.key, obj.etag, obj.version_id) == (
        "dGFza2lkZ29lc2hlcmUK",
        "iotpipe-raw",
        KEY,
        None,  # asked of S3 (head) before the claim
        None,
    )
    two = {
        "invocationSchemaVersion": "2.0",
        "invocationId": "inv",
        "job": {"id": "j", "userArguments": {"k": "v"}},
        "tasks": [
            {"taskId": "t1", "s3Bucket": "raw", "s3Key": "incoming/a.csv", "s3VersionId": "v7"},
            {"taskId": "t2", "s3Bucket": "raw", "s3Key": "incoming/b.csv"},
        ],
    }
    decoded = decode_event(two)
    assert [(g.message_id, g.objects[0].key, g.objects[0].version_id) for g in decoded.groups] == [
        ("t1", "incoming/a.csv", "v7"),
        ("t2", "incoming/b.csv", None),
    ]
    for broken in (
        {**two, "tasks": []},
        {**two, "tasks": [{"taskId": "t", "s3Key": "k"}]},  # no bucket
        {**two, "tasks": [{"s3Bucket": "b", "s3Key": "k"}]},  # no task id
        {**two, "invocationId": None},
    ):
        with pytest.raises(EventShapeError):
            decode_event(broken)
