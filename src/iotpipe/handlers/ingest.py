"""Lambda entry point of the ingest function: S3 / SQS-wrapped S3 / EventBridge events.

It only translates: decode the event, run the ingest service per announced object, and report
per SQS message (``batchItemFailures``) or raise (direct and EventBridge invocations), so Lambda
retries and then the DLQ catches what keeps failing. It never returns a 500-shaped dict.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from iotpipe import bootstrap
from iotpipe.aws.events import MessageGroup, decode_event
from iotpipe.errors import FileFailedError, IotpipeError
from iotpipe.ingest import IngestOptions, ingest_announced

logger = Logger(service="iotpipe-ingest")
metrics = Metrics(namespace="iotpipe", service="ingest")
LEASE_MARGIN_SECONDS = 60.0


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Ingest every object an event announces."""
    decoded = decode_event(event)
    failed = [g.message_id for g in decoded.groups if not _ingest_group(g, context)]
    if decoded.shape == "sqs":
        return {"batchItemFailures": [{"itemIdentifier": m} for m in failed]}
    if failed:
        raise FileFailedError("an announced object failed; see the logs and the ledger")
    return {"status": "ok", "objects": sum(len(g.objects) for g in decoded.groups)}


def _ingest_group(group: MessageGroup, context: Any) -> bool:
    """Ingest one delivery unit; True when every object in it is done (loaded or skipped)."""
    if group.error:
        logger.error(
            "undecodable message", extra={"message_id": group.message_id, "error": group.error}
        )
        return False
    runtime = bootstrap.ingest_runtime()
    for obj in group.objects:
        if runtime.objects.prefixes.owns(obj.key):
            continue  # our own rejects/reports/quarantine copies
        logger.append_keys(bucket=obj.bucket, key=obj.key, message_id=group.message_id)

        def remaining() -> float:
            return float(context.get_remaining_time_in_millis()) / 1000

        options = IngestOptions(
            lease_seconds=remaining() + LEASE_MARGIN_SECONDS,
            remaining_seconds=remaining,
            batch_rows=runtime.settings.batch_rows,
        )
        try:
            report = ingest_announced(
                obj,
                runtime.contracts.for_key(obj.key),
                runtime.store,
                runtime.objects,
                options=options,
            )
        except FileFailedError as exc:
            metrics.add_metric(name="FilesFailed", unit=MetricUnit.Count, value=1)
            logger.error("file failed", extra={"error": str(exc)})
            return False
        except IotpipeError as exc:  # busy elsewhere, or database/S3 unreachable: retry later
            logger.warning("will be retried", extra={"error": str(exc), "type": type(exc).__name__})
            return False
        except Exception:  # a bug or an unforeseen failure: logged, then retried/DLQ'd
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
