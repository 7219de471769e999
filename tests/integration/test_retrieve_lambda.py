"""The retrieval Lambda with real HTTP API v2 events against the real MariaDB, and every
response it gives checked against the OpenAPI spec."""

from __future__ import annotations

import datetime as dt
import json
import statistics
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import yaml
from jsonschema import Draft202012Validator

from iotpipe import bootstrap
from iotpipe.contract import load_contract
from iotpipe.errors import InvalidQueryError
from iotpipe.handlers.retrieve import handler
from iotpipe.local.server import http_api_event
from iotpipe.local.stack import LocalContext
from iotpipe.sample import SampleTruth
from iotpipe.times import iso_z
from tests.integration.conftest import load_sample

ACME = load_contract("acme_usage")
SPEC = yaml.safe_load((Path(__file__).resolve().parents[2] / "openapi.yaml").read_text())
FIELDS = [f.name for f in ACME.fields]
NUMERIC = [f.name for f in ACME.numeric_fields]


def validator(schema_name: str) -> Draft202012Validator:
    return Draft202012Validator(
        {"$ref": f"#/components/schemas/{schema_name}", "components": SPEC["components"]}
    )


RESPONSES = {
    200: validator("Readings"),
    400: validator("InvalidParameter"),
    500: validator("InternalError"),
}


@pytest.fixture
def loaded(
    mariadb_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[SampleTruth]:
    monkeypatch.setenv("IOTPIPE_DATABASE_URL", mariadb_url)
    monkeypatch.setenv("IOTPIPE_CURSOR_SECRET", "test-secret")
    path = tmp_path / "r.csv"
    truth = load_sample(mariadb_url, path, 12_000, devices=3, seed=51)
    bootstrap.use_retrieve_runtime(None)
    yield truth
    bootstrap.use_retrieve_runtime(None)


def call(device: str, **query: Any) -> tuple[int, dict[str, Any]]:
    event = http_api_event(f"/devices/{device}/readings", urlencode(query))
    assert event is not None
    response = handler(event, LocalContext())
    assert response["headers"]["content-type"] == "application/json"
    body: dict[str, Any] = json.loads(response["body"])
    RESPONSES[response["statusCode"]].validate(body)  # the spec describes what we send
    return response["statusCode"], body


def rows_of(
    truth: SampleTruth, device: str, start: dt.datetime, end: dt.datetime
) -> list[tuple[Any, ...]]:
    assert truth.rows is not None
    return sorted(
        (r for r in truth.rows.values() if r[0] == device and start <= r[1] <= end),
        key=lambda r: r[1],
    )


def test_exact_rows_and_stats_and_paging_by_50(loaded: SampleTruth) -> None:
    device = "dev-00001"
    everything = rows_of(loaded, device, dt.datetime.min, dt.datetime.max)
    start, end = everything[25][1], everything[-25][1]
    expected = rows_of(loaded, device, start, end)
    status, body = call(device, start=iso_z(start), end=iso_z(end), limit=50)
    assert status == 200
    assert body["count"] == len(expected)
    for name in NUMERIC:
        values = [
            r[2 + FIELDS.index(name)] for r in expected if r[2 + FIELDS.index(name)] is not None
        ]
        got = body["stats"][name]
        assert (got["count"], got["median"], got["min"], got["max"]) == (
            len(values),
            statistics.median(values),
            min(values),
            max(values),
        )
        assert got["mean"] == pytest.approx(statistics.fmean(values), rel=1e-12)
    pages = [body]
    while pages[-1]["next_cursor"]:
        status, page = call(
            device, start=iso_z(start), end=iso_z(end), limit=50, cursor=pages[-1]["next_cursor"]
        )
        assert status == 200 and page["count"] == body["count"]
        pages.append(page)
    rows = [row for page in pages for row in page["rows"]]
    assert all(len(p["rows"]) == 50 for p in pages[:-1]) and pages[-1]["next_cursor"] is None
    assert [r["timestamp"] for r in rows] == [iso_z(r[1]) for r in expected]
    assert [[r[f] for f in FIELDS] for r in rows] == [list(r[2:]) for r in expected]


def test_fifty_thousand_rows_stay_under_6_mb(
    mariadb_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IOTPIPE_DATABASE_URL", mariadb_url)
    path = tmp_path / "big.csv"
    truth = load_sample(mariadb_url, path, 60_000, devices=1, seed=52)
    bootstrap.use_retrieve_runtime(None)
    assert truth.rows is not None and len(truth.rows) >= 50_000
    event = http_api_event(
        "/devices/dev-00000/readings",
        urlencode({"start": "2000-01-01", "end": "2030-01-01", "limit": 10_000}),
    )
    assert event is not None
    sizes, seen, cursor = [], 0, None
    while True:
        if cursor:
            event["queryStringParameters"]["cursor"] = cursor
        response = handler(event, LocalContext())
        sizes.append(len(response["body"].encode()))
        body = json.loads(response["body"])
        assert body["count"] == len(truth.rows)
        seen += len(body["rows"])
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert seen == len(truth.rows)
    assert max(sizes) < 6 * 1024 * 1024
    bootstrap.use_retrieve_runtime(None)


@pytest.mark.parametrize(
    ("query", "device", "parameter"),
    [
        ({"start": "2024-01-01", "end": "2024-01-02"}, "x" * 129, "device_id"),
        ({"end": "2024-01-02"}, "d", "start"),
        ({"start": "2024-01-01"}, "d", "end"),
        ({"start": "not a time", "end": "2024-01-02"}, "d", "start"),
        ({"start": "2024-01-01", "end": "2024-13-02"}, "d", "end"),
        ({"start": "2024-01-03", "end": "2024-01-02"}, "d", "start"),
        ({"start": "2024-01-01", "end": "2024-01-02", "limit": "0"}, "d", "limit"),
        ({"start": "2024-01-01", "end": "2024-01-02", "limit": "10001"}, "d", "limit"),
        ({"start": "2024-01-01", "end": "2024-01-02", "limit": "1.5"}, "d", "limit"),
        ({"start": "2024-01-01", "end": "2024-01-02", "cursor": "abc.def"}, "d", "cursor"),
        ({"start": "2024-01-01", "end": "2024-01-02", "dataset": "nope"}, "d", "dataset"),
    ],
)
def test_bad_input_is_a_400_naming_the_parameter(
    loaded: SampleTruth, query: dict[str, str], device: str, parameter: str
) -> None:
    status, body = call(device, **query)
    assert status == 400
    assert body["parameter"] == parameter and body["error"] == "invalid_parameter"


def test_cursor_of_another_query_or_tampered_is_a_400(loaded: SampleTruth) -> None:
    _, first = call("dev-00001", start="2024-01-01", end="2024-01-05", limit=10)
    cursor = first["next_cursor"]
    assert cursor
    status, body = call("dev-00002", start="2024-01-01", end="2024-01-05", limit=10, cursor=cursor)
    assert status == 400 and body["parameter"] == "cursor"
    status, body = call(
        "dev-00001", start="2024-01-01", end="2024-01-05", limit=10, cursor=cursor[:-2] + "AA"
    )
    assert status == 400 and body["parameter"] == "cursor"


def test_unknown_device_and_injection_shaped_ids_get_no_rows(loaded: SampleTruth) -> None:
    for device in (
        "no-such-device",
        "dev-00001' OR '1'='1",
        'dev-00001" OR 1=1 -- ',
        "%",
        "dev-0000_",
    ):
        status, body = call(device, start="2000-01-01", end="2030-01-01")
        assert status == 200
        assert body["count"] == 0 and body["rows"] == [] and body["next_cursor"] is None
        assert all(s["count"] == 0 and s["mean"] is None for s in body["stats"].values())


def test_rest_v1_and_direct_invocation(loaded: SampleTruth) -> None:
    query = {"start": "2024-01-01T00:00:00Z", "end": "2024-01-01T06:00:00Z", "limit": "5"}
    rest = {
        "resource": "/devices/{device_id}/readings",
        "path": "/devices/dev-00002/readings",
        "httpMethod": "GET",
        "pathParameters": {"device_id": "dev-00002"},
        "queryStringParameters": query,
        "requestContext": {"requestId": "r-1", "resourcePath": "/devices/{device_id}/readings"},
    }
    response = handler(rest, LocalContext())
    assert response["statusCode"] == 200
    via_rest = json.loads(response["body"])
    direct = handler(
        {
            "device_id": "dev-00002",
            "date_range": {"start": query["start"], "end": query["end"]},
            "limit": 5,
        },
        LocalContext(),
    )
    assert direct == via_rest
    RESPONSES[200].validate(direct)
    with pytest.raises(InvalidQueryError):
        handler(
            {"device_id": "dev-00002", "date_range": {"start": "later", "end": "2024-01-02"}},
            LocalContext(),
        )


def test_unexpected_error_is_a_500_with_request_id_and_no_trace(loaded: SampleTruth) -> None:
    class Broken:
        def dataset(self, name: str) -> Any:
            raise RuntimeError("secret internals: password=hunter2")

        def close(self) -> None:
            pass

    runtime = bootstrap.retrieve_runtime()
    broken: Any = Broken()
    bootstrap.use_retrieve_runtime(bootstrap.RetrieveRuntime(broken, runtime.cursors, "acme_usage"))
    event = http_api_event("/devices/d/readings", "start=2024-01-01&end=2024-01-02")
    assert event is not None
    context = LocalContext()
    response = handler(event, context)
    assert response["statusCode"] == 500
    body = json.loads(response["body"])
    RESPONSES[500].validate(body)
    assert body == {"error": "internal_error", "request_id": context.aws_request_id}
    assert "hunter2" not in response["body"] and "Traceback" not in response["body"]
