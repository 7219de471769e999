"""Lambda entry point of the ingest function: S3 / SQS-wrapped S3 / EventBridge events.

It only translates: decode the event, run the ingest service per announced object, and answer
per SQS message (``batchItemFailures``) or raise (direct and EventBridge invocations). What a
retry can fix (another worker busy, the database or S3 unreachable, anything unforeseen) is
retried, then dead-lettered. What it cannot (a file that fails as a whole: quarantined, its
report written, the ledger ``failed``) is acknowledged and counted in the ``FilesFailed``
metric, not retried into the DLQ. Objects outside the input bucket(s) and prefix, and iotpipe's
own outputs, are logged and acknowledged. It never returns a 500-shaped dict.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from iotpipe import bootstrap
from iotpipe.aws.events import MessageGroup, decode_event
from iotpipe.errors import FileFailedError, IotpipeError, RetryLaterError
from iotpipe.handlers.tracing import capture_handler
from iotpipe.ingest import IngestOptions, ingest_announced
from iotpipe.model import AnnouncedObject

logger = Logger(service="iotpipe-ingest")
metrics = Metrics(namespace="iotpipe", service="ingest")
LEASE_MARGIN_SECONDS = 60.0


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
@capture_handler("iotpipe-ingest")
def handler(event: Any, context: Any) -> dict[str, Any]:
    """Ingest every object an event announces."""
    decoded = decode_event(event)
    retry = [g.message_id for g in decoded.groups if not _ingest_group(g, context)]
    if decoded.shape == "sqs":
        return {"batchItemFailures": [{"itemIdentifier": m} for m in retry]}
    if retry:
        raise RetryLaterError("an announced object must be retried; see the logs and the ledger")
    return {"status": "ok", "objects": sum(len(g.objects) for g in decoded.groups)}


def _ingest_group(group: MessageGroup, context: Any) -> bool:
    """Ingest one delivery unit; False when it must be delivered again."""
    if group.error:
        logger.error(
            "undecodable message", extra={"message_id": group.message_id, "error": group.error}
        )
        return False
    runtime = bootstrap.ingest_runtime()
    for obj in group.objects:
        logger.append_keys(bucket=obj.bucket, key=obj.key, message_id=group.message_id)
        ignored = runtime.ignores(obj.bucket, obj.key)
        if ignored:
            logger.info("ignored", extra={"reason": ignored})
            continue
        if not _ingest(obj, runtime, context):
            return False
    return True


def _ingest(obj: AnnouncedObject, runtime: bootstrap.IngestRuntime, context: Any) -> bool:
    def remaining() -> float:
        return float(context.get_remaining_time_in_millis()) / 1000

    options = IngestOptions(
        lease_seconds=remaining() + LEASE_MARGIN_SECONDS,
        remaining_seconds=remaining,
        batch_rows=runtime.settings.batch_rows,
    )
    try:
        report = ingest_announced(
            obj, runtime.contracts.for_key(obj.key), runtime.store, runtime.objects, options=options
        )
    except FileFailedError as exc:  # quarantined and reported: a retry would fail the same way
        metrics.add_metric(name="FilesFailed", unit=MetricUnit.Count, value=1)
        logger.error("file failed", extra={"error": str(exc)})
        return True
    except IotpipeError as exc:  # busy elsewhere, or database/S3 unreachable: retry later
        logger.warning("will be retried", extra={"error": str(exc), "type": type(exc).__name__})
        return False
    except Exception:  # a bug or an unforeseen failure (reported): logged, retried, then DLQ
        logger.exception("unexpected error")
        return False
    body = report.to_dict()
    logger.info(
        report.status,
        extra={k: body[k] for k in ("rows_read", "rows_loaded", "rows_rejected", "seconds")},
    )
    metrics.add_metric(name="RowsRead", unit=MetricUnit.Count, value=body["rows_read"])
    metrics.add_metric(name="RowsLoaded", unit=MetricUnit.Count, value=body["rows_loaded"])
    metrics.add_metric(name="RowsRejected", unit=MetricUnit.Count, value=body["rows_rejected"])
    metrics.add_metric(name="IngestSeconds", unit=MetricUnit.Seconds, value=report.seconds)
    return True
