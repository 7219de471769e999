"""Lambda entry point of the retrieval function: direct invocation, HTTP API v2, REST API v1.

Routes (docs/architecture.md, openapi.yaml): ``GET /devices/{device_id}/readings`` (rows and
stats, or ``bucket`` aggregates), ``GET /datasets``, ``GET /devices`` and
``GET /datasets/{dataset}/categories``. Direct invocation
(``{"device_id", "date_range": {"start", "end"}, ...}``, optionally ``"bucket"``; or
``{"action": "datasets" | "devices" | "categories", ...}``) returns the body object and
raises `InvalidQueryError` on bad input; the HTTP shapes return statusCode, headers and a JSON
body: 200, 400 naming the parameter, or 500 with the request id (never a trace). It imports
neither Polars nor the ingest engine, so cold starts stay short.
"""

from __future__ import annotations

import json
import re
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from iotpipe import bootstrap
from iotpipe.errors import InvalidQueryError
from iotpipe.handlers.tracing import capture_handler
from iotpipe.retrieve import answer, category_dictionary, list_datasets, list_devices

logger = Logger(service="iotpipe-retrieve")
metrics = Metrics(namespace="iotpipe", service="retrieve")
JSON_HEADERS = {"content-type": "application/json", "cache-control": "no-store"}
READINGS_ROUTE = "GET /devices/{device_id}/readings"
DATASETS_ROUTE = "GET /datasets"
DEVICES_ROUTE = "GET /devices"
CATEGORIES_ROUTE = "GET /datasets/{dataset}/categories"
ROUTES = (READINGS_ROUTE, DATASETS_ROUTE, DEVICES_ROUTE, CATEGORIES_ROUTE)
# Each route's path (percent-encoded), its parameters named as in the route.
PATHS = (
    (re.compile(r"^/devices/(?P<device_id>[^/]+)/readings/?$"), READINGS_ROUTE),
    (re.compile(r"^/datasets/?$"), DATASETS_ROUTE),
    (re.compile(r"^/devices/?$"), DEVICES_ROUTE),
    (re.compile(r"^/datasets/(?P<dataset>[^/]+)/categories/?$"), CATEGORIES_ROUTE),
)
ACTIONS = {"datasets": DATASETS_ROUTE, "devices": DEVICES_ROUTE, "categories": CATEGORIES_ROUTE}
QUERY_KEYS = ("start", "end", "limit", "cursor", "dataset", "bucket", "prefix")


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
        route, params = _http_request(event) if http else _direct_request(event)
        if not http:
            return _answer(route, params)
        return _response(200, _answer(route, params))
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


def _answer(route: str, params: dict[str, Any]) -> dict[str, Any]:
    runtime = bootstrap.retrieve_runtime()
    store, default = runtime.store, runtime.dataset
    if route == DATASETS_ROUTE:
        return list_datasets(store)
    if route == DEVICES_ROUTE:
        return list_devices(params, default_dataset=default, store=store, cursors=runtime.cursors)
    if route == CATEGORIES_ROUTE:
        return category_dictionary(params.get("dataset"), default_dataset=default, store=store)
    return answer(params, default_dataset=default, store=store, cursors=runtime.cursors)


def _direct_request(event: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    action = event.get("action")
    if action is not None:
        if action not in ACTIONS:
            raise InvalidQueryError("action", f"must be one of {', '.join(ACTIONS)}")
        return ACTIONS[action], {k: event.get(k) for k in QUERY_KEYS}
    date_range = _object(event.get("date_range"))
    return READINGS_ROUTE, {
        "device_id": event.get("device_id"),
        "start": date_range.get("start", event.get("start")),
        "end": date_range.get("end", event.get("end")),
        **{k: event.get(k) for k in ("limit", "cursor", "dataset", "bucket")},
    }


def _http_request(event: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    query = _object(event.get("queryStringParameters"))
    path = _object(event.get("pathParameters"))
    route = event.get("routeKey") or f"{event.get('httpMethod')} {event.get('resource')}"
    if route not in ROUTES:  # a catch-all route: the path says which
        raw = str(event.get("rawPath") or event.get("path") or "")
        route = next((r for pattern, r in PATHS if pattern.match(raw)), READINGS_ROUTE)
    return route, {
        "device_id": path.get("device_id"),
        **{k: query.get(k) for k in QUERY_KEYS},
        **({"dataset": path["dataset"]} if "dataset" in path else {}),
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
