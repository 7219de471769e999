"""The retrieval function counts what its alarms watch: a 500 is a result, not a Lambda error."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from iotpipe import bootstrap
from iotpipe.handlers import retrieve
from iotpipe.local.stack import LocalContext
from iotpipe.retrieve import CursorCodec


class BrokenStore:
    """A store whose every query fails (the database is gone)."""

    def __getattr__(self, name: str) -> Any:
        def fail(*args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("the database is on fire")

        return fail

    def close(self) -> None:
        pass


@pytest.fixture
def broken(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    # Earlier tests may have run the handler with metrics disabled: those stay buffered.
    retrieve.metrics.clear_metrics()
    runtime = bootstrap.RetrieveRuntime(BrokenStore(), CursorCodec("k"), "acme_usage")  # type: ignore[arg-type]
    bootstrap.use_retrieve_runtime(runtime)
    try:
        yield
    finally:
        bootstrap.use_retrieve_runtime(None)


def _http(query: dict[str, str]) -> dict[str, Any]:
    return {
        "version": "2.0",
        "routeKey": "GET /devices/{device_id}/readings",
        "requestContext": {"http": {"method": "GET"}},
        "pathParameters": {"device_id": "dev-1"},
        "queryStringParameters": query,
    }


def _metrics(out: str) -> dict[str, float]:
    """Return the metric values of the EMF documents Powertools printed."""
    found: dict[str, float] = {}
    for line in out.splitlines():
        if '"_aws"' not in line:
            continue
        doc = json.loads(line)
        for directive in doc["_aws"]["CloudWatchMetrics"]:
            assert directive["Namespace"] == "iotpipe"
            assert ["service"] in directive["Dimensions"]
            for metric in directive["Metrics"]:
                value = doc[metric["Name"]]
                total = sum(value) if isinstance(value, list) else value
                found[metric["Name"]] = found.get(metric["Name"], 0) + total
        assert doc["service"] == "retrieve"
    return found


def test_a_failed_query_is_a_500_and_a_query_error(
    broken: None, capsys: pytest.CaptureFixture[str]
) -> None:
    query = {"start": "2024-01-01T00:00:00Z", "end": "2024-01-02T00:00:00Z"}
    response = retrieve.handler(_http(query), LocalContext())
    assert response["statusCode"] == 500
    assert _metrics(capsys.readouterr().out) == {"Queries": 1, "QueryErrors": 1}


def test_a_bad_parameter_is_a_400_and_an_invalid_query(
    broken: None, capsys: pytest.CaptureFixture[str]
) -> None:
    response = retrieve.handler(_http({"start": "yesterday"}), LocalContext())
    assert response["statusCode"] == 400
    assert _metrics(capsys.readouterr().out) == {"Queries": 1, "InvalidQueries": 1}


def test_a_failed_direct_invocation_raises_and_counts(
    broken: None, capsys: pytest.CaptureFixture[str]
) -> None:
    event = {"device_id": "dev-1", "date_range": {"start": "2024-01-01", "end": "2024-01-02"}}
    with pytest.raises(RuntimeError, match="on fire"):
        retrieve.handler(event, LocalContext())
    assert _metrics(capsys.readouterr().out) == {"Queries": 1, "QueryErrors": 1}
