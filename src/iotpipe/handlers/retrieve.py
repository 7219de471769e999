"""Lambda entry point of the retrieval function: direct invocation, HTTP API v2, REST API v1.

Direct invocation (``{"device_id", "date_range": {"start", "end"}, ...}``) returns the body
object and raises `InvalidQueryError` on bad input; the HTTP shapes return statusCode, headers
and a JSON body: 200, 400 naming the parameter, or 500 with the request id (never a trace).
It imports neither Polars nor the ingest engine, so cold starts stay short.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from iotpipe import bootstrap
from iotpipe.errors import InvalidQueryError
from iotpipe.handlers.tracing import capture_handler
from iotpipe.retrieve import answer

logger = Logger(service="iotpipe-retrieve")
metrics = Metrics(namespace="iotpipe", service="retrieve")
JSON_HEADERS = {"content-type": "application/json", "cache-control": "no-store"}


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
@capture_handler("iotpipe-retrieve")
def handler(event: Any, context: Any) -> dict[str, Any]:
    """Answer a readings query.

    Every answer is counted: ``Queries``, and ``InvalidQueries`` (400) or ``QueryErrors``
    (500, or a direct invocation that raised) — a 500 returned as a result is not a Lambda
    error, so the ``QueryErrors`` metric is what the alarm watches.
    """
    metrics.add_metric(name="Queries", unit=MetricUnit.Count, value=1)
    http = False
    try:
        if not isinstance(event, dict):
            raise InvalidQueryError("event", "must be a JSON object")
        http = "requestContext" in event and ("routeKey" in event or "httpMethod" in event)
        params = _http_params(event) if http else _direct_params(event)
        if not http:
            return _answer(params)
        return _response(200, _answer(params))
    except InvalidQueryError as exc:
        metrics.add_metric(name="InvalidQueries", unit=MetricUnit.Count, value=1)
        if not http:
            raise
        error = {"error": "invalid_parameter", "parameter": exc.parameter, "message": str(exc)}
        return _response(400, error)
    except Exception:  # logged with its trace; the caller gets only the request id
        metrics.add_metric(name="QueryErrors", unit=MetricUnit.Count, value=1)
        logger.exception("retrieval failed")
        if not http:
            raise
        request_id = getattr(context, "aws_request_id", None)
        return _response(500, {"error": "internal_error", "request_id": request_id})


def _answer(params: dict[str, Any]) -> dict[str, Any]:
    runtime = bootstrap.retrieve_runtime()
    return answer(
        params, default_dataset=runtime.dataset, store=runtime.store, cursors=runtime.cursors
    )


def _direct_params(event: dict[str, Any]) -> dict[str, Any]:
    date_range = _object(event.get("date_range"))
    return {
        "device_id": event.get("device_id"),
        "start": date_range.get("start", event.get("start")),
        "end": date_range.get("end", event.get("end")),
        **{k: event.get(k) for k in ("limit", "cursor", "dataset")},
    }


def _http_params(event: dict[str, Any]) -> dict[str, Any]:
    query = _object(event.get("queryStringParameters"))
    path = _object(event.get("pathParameters"))
    return {
        "device_id": path.get("device_id"),
        **{k: query.get(k) for k in ("start", "end", "limit", "cursor", "dataset")},
    }


def _object(value: Any) -> dict[str, Any]:
    """Return a mapping of the event, or an empty one (its parameters are then missing)."""
    return value if isinstance(value, dict) else {}


def _response(status: int, body: dict[str, Any]) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": JSON_HEADERS,
        "body": json.dumps(body, allow_nan=False),
    }
