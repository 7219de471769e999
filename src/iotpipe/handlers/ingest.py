"""Lambda entry point of the ingest function: S3, SQS, EventBridge and Batch Operations events.

It only translates: decode the event, run the ingest service per announced object, and answer
per SQS message (``batchItemFailures``), per S3 Batch Operations task (``results``:
Succeeded, PermanentFailure for a file that fails as a whole, TemporaryFailure for what a
retry may fix) or raise (direct and EventBridge invocations). What a retry can fix (another
worker busy, the database or S3 unreachable, anything unforeseen) is retried, then
dead-lettered. What it cannot (a file that fails as a whole: quarantined, its
report written, the ledger ``failed``) is acknowledged and counted in the ``FilesFailed``
metric, not retried into the DLQ. Objects outside the input bucket(s) and prefix, and iotpipe's
own outputs, are logged and acknowledged. It never returns a 500-shaped dict.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

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
    outcomes = [(g.message_id, _ingest_group(g, context)) for g in decoded.groups]
    if decoded.shape == "batch":
        return {
            **decoded.batch,
            "treatMissingKeysAs": "PermanentFailure",
            "results": [
                {"taskId": task, "resultCode": RESULT_CODES[o.verdict], "resultString": o.text}
                for task, o in outcomes
            ],
        }
    retry = [m for m, o in outcomes if o.verdict == "retry"]
    if decoded.shape == "sqs":
        return {"batchItemFailures": [{"itemIdentifier": m} for m in retry]}
    if retry:
        raise RetryLaterError("an announced object must be retried; see the logs and the ledger")
    return {"status": "ok", "objects": sum(len(g.objects) for g in decoded.groups)}


@dataclass(frozen=True)
class Outcome:
    """How one delivery unit ended.

    ``done`` (loaded, skipped, ignored), ``failed`` (the file fails as a whole; acknowledged)
    or ``retry`` (deliver it again).
    """

    verdict: Literal["done", "failed", "retry"]
    text: str


RESULT_CODES = {"done": "Succeeded", "failed": "PermanentFailure", "retry": "TemporaryFailure"}


def _ingest_group(group: MessageGroup, context: Any) -> Outcome:
    """Ingest one delivery unit (stops at the first object that must be retried)."""
    if group.error:
        logger.error(
            "undecodable message", extra={"message_id": group.message_id, "error": group.error}
        )
        return Outcome("retry", group.error)
    runtime = bootstrap.ingest_runtime()
    outcome = Outcome("done", "nothing to ingest")
    for obj in group.objects:
        logger.append_keys(bucket=obj.bucket, key=obj.key, message_id=group.message_id)
        ignored = runtime.ignores(obj.bucket, obj.key)
        if ignored:
            logger.info("ignored", extra={"reason": ignored})
            outcome = Outcome("done", f"ignored: {ignored}")
            continue
        outcome = _ingest(obj, runtime, context)
        if outcome.verdict == "retry":
            return outcome
    return outcome


def _ingest(obj: AnnouncedObject, runtime: bootstrap.IngestRuntime, context: Any) -> Outcome:
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
        return Outcome("failed", str(exc))
    except IotpipeError as exc:  # busy elsewhere, or database/S3 unreachable: retry later
        logger.warning("will be retried", extra={"error": str(exc), "type": type(exc).__name__})
        return Outcome("retry", f"{type(exc).__name__}: {exc}")
    except Exception as exc:  # a bug or an unforeseen failure (reported): logged, retried, then DLQ
        logger.exception("unexpected error")
        return Outcome("retry", f"unexpected {type(exc).__name__}")
    body = report.to_dict()
    logger.info(
        report.status,
        extra={k: body[k] for k in ("rows_read", "rows_loaded", "rows_rejected", "seconds")},
    )
    metrics.add_metric(name="RowsRead", unit=MetricUnit.Count, value=body["rows_read"])
    metrics.add_metric(name="RowsLoaded", unit=MetricUnit.Count, value=body["rows_loaded"])
    metrics.add_metric(name="RowsRejected", unit=MetricUnit.Count, value=body["rows_rejected"])
    metrics.add_metric(name="IngestSeconds", unit=MetricUnit.Seconds, value=report.seconds)
    return Outcome("done", f"{report.status}: {body['rows_loaded']} rows loaded")
