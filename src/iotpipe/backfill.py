"""Backfill: announce the objects already in a bucket to the ingest queue, as S3 would have.

Objects written before the notification existed (or while the function was off) were never
announced. `backfill` lists them (paginated, in key order) and sends one S3-notification-shaped
message per object to the ingest queue, ten per ``SendMessageBatch``; the function then treats
them like any upload. It never decides what is loaded: the ledger does, so announcing an object
twice (an overlapping resume, a second backfill) loads it once.

The listing is in key order, so the last key of a fully sent batch is a resume point
(``--start-after KEY``): a backfill stopped anywhere - an interrupted process, a throttled
queue - is resumed without listing or sending from the start.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote_plus

from iotpipe.errors import IotpipeError

SEND_BATCH = 10  # the most SendMessageBatch accepts
SEND_ATTEMPTS = 5  # tries of the entries SQS refused, with backoff, before giving up
CONFIGURATION_ID = "iotpipe-backfill"


class BackfillError(IotpipeError):
    """The queue kept refusing messages: the backfill stopped at a resume point."""

    def __init__(self, message: str, result: BackfillResult) -> None:
        super().__init__(message)
        self.result = result


@dataclass(frozen=True)
class ListedObject:
    """One object version to announce."""

    key: str
    size: int
    etag: str
    last_modified: datetime
    version_id: str | None = None


@dataclass
class BackfillResult:
    """What a backfill did; ``resume_after`` is where to start again (None: from the start).

    Attributes
    ----------
    listed
        Objects listed under the prefix (after ``start_after``).
    sent
        Messages the queue accepted (with ``dry_run``: that would have been sent).
    skipped_older
        Objects last modified before ``since``.
    skipped_outputs
        iotpipe's own outputs (rejects, reports, quarantine) under the prefix.
    resume_after
        The last key whose message (and every earlier one) the queue accepted.
    """

    listed: int = 0
    sent: int = 0
    skipped_older: int = 0
    skipped_outputs: int = 0
    resume_after: str | None = None
    dry_run: bool = False
    seconds: float = 0.0
    started: float = field(default_factory=time.monotonic, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON body the CLI prints."""
        return {
            "listed": self.listed,
            "sent": self.sent,
            "skipped_older": self.skipped_older,
            "skipped_outputs": self.skipped_outputs,
            "resume_after": self.resume_after,
            "dry_run": self.dry_run,
            "seconds": round(self.seconds, 3),
        }


def parse_since(text: str) -> datetime:
    """Parse ``--since``: an ISO 8601 date or date-time (naive means UTC).

    Raises
    ------
    IotpipeError
        Not a date.
    """
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise IotpipeError(f"--since: not an ISO 8601 date or date-time: {text!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def list_objects(
    s3: Any, bucket: str, prefix: str, start_after: str | None = None
) -> Iterator[ListedObject]:
    """List the current objects under ``prefix`` in key order, after ``start_after``.

    On a bucket with versioning enabled (or suspended) it lists the current version of each
    key, with its version id: S3 notifications of versioned buckets carry it, and the ledger
    tells versions apart by it.
    """
    status = s3.get_bucket_versioning(Bucket=bucket).get("Status")
    if status in {"Enabled", "Suspended"}:
        yield from _list_versions(s3, bucket, prefix, start_after)
        return
    paginate = s3.get_paginator("list_objects_v2").paginate
    args: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
    if start_after:
        args["StartAfter"] = start_after
    for page in paginate(**args):
        for item in page.get("Contents", []):
            yield ListedObject(item["Key"], item["Size"], item["ETag"], item["LastModified"])


def _list_versions(
    s3: Any, bucket: str, prefix: str, start_after: str | None
) -> Iterator[ListedObject]:
    args: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
    if start_after:
        args["KeyMarker"] = start_after  # versions of keys after this one
    for page in s3.get_paginator("list_object_versions").paginate(**args):
        for item in page.get("Versions", []):
            if item.get("IsLatest"):  # a key whose latest version is a delete marker: gone
                version = item.get("VersionId")
                yield ListedObject(
                    item["Key"],
                    item["Size"],
                    item["ETag"],
                    item["LastModified"],
                    version if version and version != "null" else None,
                )


def notification(bucket: str, obj: ListedObject, region: str = "us-east-1") -> str:
    """Return the body S3 would have sent for this object's creation (one record)."""
    entry: dict[str, Any] = {
        "key": quote_plus(obj.key, safe="/"),  # S3 URL-encodes keys in notifications
        "size": obj.size,
        "eTag": obj.etag.strip('"'),
    }
    if obj.version_id:
        entry["versionId"] = obj.version_id
    record = {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": region,
        "eventTime": obj.last_modified.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "eventName": "ObjectCreated:Put",
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": CONFIGURATION_ID,
            "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
            "object": entry,
        },
    }
    return json.dumps({"Records": [record]}, separators=(",", ":"))


def backfill(  # noqa: PLR0913 (the command's options)
    s3: Any,
    sqs: Any,
    bucket: str,
    prefix: str,
    queue_url: str,
    *,
    since: datetime | None = None,
    start_after: str | None = None,
    dry_run: bool = False,
    owns: Callable[[str], bool] = lambda _key: False,
    progress: Callable[[BackfillResult], None] | None = None,
    region: str = "us-east-1",
    sleep: Callable[[float], None] = time.sleep,
) -> BackfillResult:
    """Announce every object under ``s3://bucket/prefix`` to the queue.

    Parameters
    ----------
    s3, sqs
        boto3 clients.
    bucket, prefix
        What to list.
    queue_url
        The ingest function's queue.
    since
        Only objects last modified at or after this moment.
    start_after
        Resume: only keys after this one (the ``resume_after`` of a stopped run).
    dry_run
        List and count; send nothing.
    owns
        Tells iotpipe's own outputs (rejects, reports, quarantine), which are never announced.
    progress
        Called after each batch.
    region
        The region written into the messages.
    sleep
        Waits between retries of refused entries.

    Returns
    -------
    BackfillResult
        Counts and the resume point.

    Raises
    ------
    BackfillError
        The queue refused a message through every attempt; its ``result.resume_after`` is the
        last key every message up to which was accepted.
    """
    result = BackfillResult(dry_run=dry_run, resume_after=start_after)
    pending: list[ListedObject] = []

    def flush() -> None:
        if not dry_run:
            _send(sqs, queue_url, [notification(bucket, o, region) for o in pending], sleep)
        result.sent += len(pending)
        result.resume_after = pending[-1].key
        pending.clear()
        result.seconds = time.monotonic() - result.started
        if progress is not None:
            progress(result)

    try:
        for obj in list_objects(s3, bucket, prefix, start_after):
            result.listed += 1
            if owns(obj.key):
                result.skipped_outputs += 1
            elif since is not None and obj.last_modified < since:
                result.skipped_older += 1
            else:
                pending.append(obj)
                if len(pending) == SEND_BATCH:
                    flush()
        if pending:
            flush()
    except (_Refused, KeyboardInterrupt) as exc:
        result.seconds = time.monotonic() - result.started
        interrupted = isinstance(exc, KeyboardInterrupt)
        why = "interrupted" if interrupted else f"the queue refused messages ({exc})"
        where = f"--start-after {result.resume_after}" if result.resume_after else "the start"
        raise BackfillError(
            f"{why}; {result.sent} were sent; resume from {where}",
            result,
        ) from None
    result.seconds = time.monotonic() - result.started
    return result


class _Refused(Exception):
    """SQS refused some entries of a batch through every attempt."""


def _send(sqs: Any, queue_url: str, bodies: list[str], sleep: Callable[[float], None]) -> None:
    """Send one batch; retry the entries SQS refuses (throttling), with backoff."""
    entries = [{"Id": str(i), "MessageBody": body} for i, body in enumerate(bodies)]
    delay = 0.2
    for attempt in range(1, SEND_ATTEMPTS + 1):
        try:
            response = sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
        except Exception as exc:  # botocore retried already: unreachable, denied, no queue
            raise _Refused(f"{type(exc).__name__}: {exc}") from exc
        failed = response.get("Failed", [])
        if not failed:
            return
        refused = {f["Id"] for f in failed}
        if attempt == SEND_ATTEMPTS or any(f.get("SenderFault") for f in failed):
            reasons = "; ".join(sorted({f"{f.get('Code')}: {f.get('Message')}" for f in failed}))
            raise _Refused(reasons)
        entries = [e for e in entries if e["Id"] in refused]
        sleep(delay)
        delay *= 2
