"""Lambda events -> the S3 objects they announce (keys URL-decoded per record).

Accepted shapes: a direct S3 notification, S3 notifications wrapped in SQS messages (the
production path, one group per message for partial-batch failures), EventBridge
"Object Created" events, and S3 Batch Operations "Invoke Lambda function" tasks (schema 1.0
with the bucket's ARN, 2.0 with its name; one group per task, answered per task).
``s3:TestEvent`` messages and non-create records are ignored.

S3 notifications URL-encode keys ("red flower.jpg" arrives as "red+flower.jpg"), so every
record's key goes through ``unquote_plus``, as a Batch Operations task's does; EventBridge
delivers keys unencoded.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import unquote_plus

from iotpipe.errors import EventShapeError
from iotpipe.model import AnnouncedObject

Shape = Literal["s3", "sqs", "eventbridge", "test", "batch"]


@dataclass(frozen=True)
class ObjectEvent(AnnouncedObject):
    """One created S3 object version, as an event announced it."""

    event_name: str = ""


@dataclass
class MessageGroup:
    """The objects of one delivery unit (an SQS message, or the whole direct event)."""

    message_id: str | None
    objects: list[ObjectEvent] = field(default_factory=list)
    error: str | None = None  # an undecodable SQS message: report it failed (then the DLQ)


@dataclass
class DecodedEvent:
    """What an event asks for (``batch``: the Batch Operations job's schema and invocation)."""

    shape: Shape
    groups: list[MessageGroup]
    batch: dict[str, str] = field(default_factory=dict)


def decode_event(event: Any) -> DecodedEvent:
    """Decode any accepted event.

    Parameters
    ----------
    event
        The Lambda event.

    Returns
    -------
    DecodedEvent
        For SQS, one group per message (even an empty test message); otherwise one group.

    Raises
    ------
    EventShapeError
        For an event of no accepted shape (not an object, no records, a record without
        ``s3``, an EventBridge event without ``detail``, ...).
    """
    event = _mapping(event, "the event")
    if "invocationSchemaVersion" in event and "tasks" in event:
        return _batch_operations(event)
    if event.get("detail-type") == "Object Created" and event.get("source") == "aws.s3":
        return DecodedEvent("eventbridge", [MessageGroup(None, [_eventbridge(event)])])
    if event.get("Event") == "s3:TestEvent":
        return DecodedEvent("test", [])
    records = event.get("Records")
    if not isinstance(records, list):
        raise EventShapeError("no Records, and not an EventBridge Object Created event")
    records = [_mapping(r, "a record") for r in records]
    if records and all(r.get("eventSource") == "aws:sqs" for r in records):
        return DecodedEvent("sqs", [_sqs_message(r) for r in records])
    return DecodedEvent("s3", [MessageGroup(None, s3_records(records))])


def s3_records(records: Any) -> list[ObjectEvent]:
    """Decode the records of an S3 notification (ignoring non-create events).

    Raises
    ------
    EventShapeError
        When a record is not an S3 record of the documented shape.
    """
    if not isinstance(records, list):
        raise EventShapeError("Records is not a list")
    objects = []
    for raw in records:
        record = _mapping(raw, "a record")
        if record.get("eventSource") != "aws:s3":
            raise EventShapeError(f"unexpected record source {record.get('eventSource')!r}")
        name = str(record.get("eventName", ""))
        if not name.startswith("ObjectCreated:"):
            continue
        s3 = _mapping(record.get("s3"), "a record's s3")
        obj = _mapping(s3.get("object"), "s3.object")
        objects.append(
            ObjectEvent(
                bucket=_text(_mapping(s3.get("bucket"), "s3.bucket").get("name"), "bucket name"),
                key=unquote_plus(_text(obj.get("key"), "s3.object.key")),
                etag=obj.get("eTag") or obj.get("etag"),
                version_id=obj.get("versionId"),
                size=obj.get("size"),
                event_name=name,
            )
        )
    return objects


def _batch_operations(event: Mapping[str, Any]) -> DecodedEvent:
    """Decode an S3 Batch Operations invocation: one group per task (named by its id)."""
    version = _text(event.get("invocationSchemaVersion"), "invocationSchemaVersion")
    tasks = event.get("tasks")
    if not isinstance(tasks, list) or not tasks:
        raise EventShapeError("a Batch Operations event without tasks")
    groups = []
    for raw in tasks:
        task = _mapping(raw, "a task")
        group = MessageGroup(_text(task.get("taskId"), "taskId"))
        bucket = task.get("s3Bucket") or str(task.get("s3BucketArn") or "").split(":::")[-1]
        group.objects.append(
            ObjectEvent(
                bucket=_text(bucket, "s3Bucket / s3BucketArn"),
                key=unquote_plus(_text(task.get("s3Key"), "s3Key")),
                version_id=task.get("s3VersionId") or None,
                event_name="BatchOperations:LambdaInvoke",
            )
        )
        groups.append(group)
    batch = {
        "invocationSchemaVersion": version,
        "invocationId": _text(event.get("invocationId"), "invocationId"),
    }
    return DecodedEvent("batch", groups, batch)


def _sqs_message(record: Mapping[str, Any]) -> MessageGroup:
    group = MessageGroup(str(record.get("messageId", "")))
    try:
        body = json.loads(record.get("body") or "{}")
        if not isinstance(body, dict) or body.get("Event") == "s3:TestEvent":
            if not isinstance(body, dict):
                group.error = "the message body is not a JSON object"
            return group
        if body.get("detail-type") == "Object Created":
            group.objects.append(_eventbridge(body))
        else:
            group.objects.extend(s3_records(body.get("Records", [])))
    except (ValueError, TypeError, EventShapeError) as exc:
        group.error = f"undecodable S3 notification: {exc}"
    return group


def _eventbridge(event: Mapping[str, Any]) -> ObjectEvent:
    detail = _mapping(event.get("detail"), "the EventBridge detail")
    obj = _mapping(detail.get("object"), "detail.object")
    return ObjectEvent(
        bucket=_text(_mapping(detail.get("bucket"), "detail.bucket").get("name"), "bucket name"),
        key=_text(obj.get("key"), "detail.object.key"),
        etag=obj.get("etag"),
        version_id=obj.get("version-id"),
        size=obj.get("size"),
        event_name=f"ObjectCreated:{detail.get('reason', '')}",
    )


def _mapping(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise EventShapeError(f"{what} is not an object")
    return value


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise EventShapeError(f"{what} is missing or not a string")
    return value
