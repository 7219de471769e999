from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from iotpipe.contract import load_contract
from iotpipe.errors import InvalidQueryError
from iotpipe.local.stack import LocalContext
from iotpipe.retrieve import CursorCodec, parse_instant, parse_query, retrieve
from iotpipe.storage.sqlite import SQLiteStore
from iotpipe.times import iso_z

ACME = load_contract("acme_usage")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-01-02T03:04:05Z", dt.datetime(2024, 1, 2, 3, 4, 5)),
        ("2024-01-02T05:04:05+02:00", dt.datetime(2024, 1, 2, 3, 4, 5)),
        ("2024-01-02 03:04:05", dt.datetime(2024, 1, 2, 3, 4, 5)),
        ("2024-01-02", dt.datetime(2024, 1, 2)),
        ("2024/01/02 03:04:05", dt.datetime(2024, 1, 2, 3, 4, 5)),
        ("1704164645", dt.datetime(2024, 1, 2, 3, 4, 5)),
        ("1704164645500", dt.datetime(2024, 1, 2, 3, 4, 5, 500000)),
        (1704164645, dt.datetime(2024, 1, 2, 3, 4, 5)),
    ],
)
def test_parse_instant(text: object, expected: dt.datetime) -> None:
    assert parse_instant(text, "start") == expected


@pytest.mark.parametrize("text", ["", "  ", None, "yesterday", "2024-13-01", "nan", "inf", True])
def test_parse_instant_rejects(text: object) -> None:
    with pytest.raises(InvalidQueryError) as info:
        parse_instant(text, "end")
    assert info.value.parameter == "end"


def test_iso_z() -> None:
    assert iso_z(dt.datetime(2024, 1, 2, 3, 4, 5)) == "2024-01-02T03:04:05Z"
    assert iso_z(dt.datetime(2024, 1, 2, 3, 4, 5, 120000)) == "2024-01-02T03:04:05.120Z"
    assert iso_z(dt.datetime(2024, 1, 2, 3, 4, 5, 123456)) == "2024-01-02T03:04:05.123456Z"


@pytest.fixture
def store(tmp_path: Path) -> SQLiteStore:
    s = SQLiteStore(tmp_path / "r.db")
    s.ensure_schema(ACME)
    return s


GOOD = {"device_id": "d1", "start": "2024-01-01", "end": "2024-01-02"}


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({**GOOD, "device_id": None}, "device_id"),
        ({**GOOD, "device_id": ""}, "device_id"),
        ({**GOOD, "device_id": "x" * 129}, "device_id"),
        ({**GOOD, "start": None}, "start"),
        ({**GOOD, "end": "soon"}, "end"),
        ({**GOOD, "start": "2024-01-03"}, "start"),
        ({**GOOD, "limit": "0"}, "limit"),
        ({**GOOD, "limit": "10001"}, "limit"),
        ({**GOOD, "limit": "ten"}, "limit"),
        ({**GOOD, "cursor": "garbage"}, "cursor"),
        ({**GOOD, "dataset": "nope"}, "dataset"),
    ],
)
def test_bad_queries_name_the_parameter(
    store: SQLiteStore, params: dict[str, object], parameter: str
) -> None:
    with pytest.raises(InvalidQueryError) as info:
        parse_query(params, default_dataset="acme_usage", store=store, cursors=CursorCodec("k"))
    assert info.value.parameter == parameter


def test_cursor_is_tamper_evident_and_bound_to_its_query(store: SQLiteStore) -> None:
    codec = CursorCodec("secret")
    query, _ = parse_query(GOOD, default_dataset="acme_usage", store=store, cursors=codec)
    cursor = codec.encode(query, dt.datetime(2024, 1, 1, 12))
    assert codec.decode(cursor, query) == dt.datetime(2024, 1, 1, 12)
    body, mac = cursor.split(".")
    forged = json.dumps({"a": "2024-01-01T00:00:00", "q": json.loads(_unb64(body))["q"]}).encode()
    import base64

    tampered = base64.urlsafe_b64encode(forged).rstrip(b"=").decode() + "." + mac
    with pytest.raises(InvalidQueryError, match="not valid"):
        codec.decode(tampered, query)
    other, _ = parse_query(
        {**GOOD, "device_id": "d2"}, default_dataset="acme_usage", store=store, cursors=codec
    )
    with pytest.raises(InvalidQueryError, match="another query"):
        codec.decode(cursor, other)
    with pytest.raises(InvalidQueryError, match="not valid"):
        CursorCodec("other secret").decode(cursor, query)


def _unb64(text: str) -> bytes:
    import base64

    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def test_unknown_device_is_an_empty_200_body(store: SQLiteStore) -> None:
    codec = CursorCodec("k")
    query, contract = parse_query(GOOD, default_dataset="acme_usage", store=store, cursors=codec)
    body = retrieve(query, contract, store, codec)
    assert body == {
        "device_id": "d1",
        "start": "2024-01-01T00:00:00Z",
        "end": "2024-01-02T00:00:00Z",
        "count": 0,
        "rows": [],
        "stats": {
            f.name: {"count": 0, "mean": None, "median": None, "min": None, "max": None}
            for f in ACME.numeric_fields
        },
        "next_cursor": None,
    }


def test_pages_are_cut_by_bytes_and_the_cursor_continues(
    store: SQLiteStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from iotpipe import retrieve as retrieve_module
    from iotpipe.ingest import IngestOptions, ingest_object
    from iotpipe.sample import write_sample
    from iotpipe.sources import local_object

    path = tmp_path / "s.csv"
    truth = write_sample(path, 600, devices=1, seed=9, keep_rows=True)
    ingest_object(
        lambda: path.open("rb"),
        local_object(path),
        ACME,
        store,
        options=IngestOptions(now=dt.datetime(2025, 1, 1)),
    )
    monkeypatch.setattr(retrieve_module, "MAX_ROWS_BYTES", 4000)  # about 15 rows of JSON
    codec = CursorCodec("k")
    params = {"device_id": "dev-00000", "start": "2000-01-01", "end": "2030-01-01", "limit": "500"}
    seen: list[str] = []
    pages = 0
    while True:
        query, contract = parse_query(
            params, default_dataset="acme_usage", store=store, cursors=codec
        )
        body = retrieve(query, contract, store, codec)
        pages += 1
        assert len(json.dumps(body["rows"])) <= 4000 + 400  # one row may straddle the limit
        seen += [r["timestamp"] for r in body["rows"]]
        if not body["next_cursor"]:
            break
        params["cursor"] = body["next_cursor"]
    assert truth.rows is not None
    assert seen == sorted(iso_z(k[1]) for k in truth.rows)
    assert pages > len(truth.rows) // 20


# -- issue "Trust", findings 12, 14, 15 ------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "9999-12-31T23:59:59-01:00",  # after year 9999 in UTC: once an OverflowError (a 500)
        "0001-01-01T00:00:00+01:00",  # before year 1 in UTC
        "1e300",
        -1e20,
        10**30,
    ],
)
def test_instants_outside_the_representable_range_are_a_400(text: object) -> None:
    with pytest.raises(InvalidQueryError) as info:
        parse_instant(text, "start")
    assert info.value.parameter == "start"


@pytest.mark.parametrize("dataset", ["x" * 60_000, "Bad Name", "abc\n", "a" * 65, 7])
def test_dataset_is_validated_and_never_echoed_whole(store: SQLiteStore, dataset: Any) -> None:
    with pytest.raises(InvalidQueryError) as info:
        parse_query(
            {**GOOD, "dataset": dataset},
            default_dataset="acme_usage",
            store=store,
            cursors=CursorCodec("k"),
        )
    assert info.value.parameter == "dataset"
    assert len(str(info.value)) < 200


@pytest.mark.parametrize("event", [None, [], "device", 3])
def test_direct_events_that_are_not_objects(event: Any) -> None:
    from iotpipe.handlers.retrieve import handler

    with pytest.raises(InvalidQueryError) as info:
        handler(event, LocalContext())
    assert info.value.parameter == "event"


def test_http_parameters_that_are_not_objects_are_a_400() -> None:
    from iotpipe.handlers.retrieve import handler

    event = {
        "version": "2.0",
        "routeKey": "GET /devices/{device_id}/readings",
        "requestContext": {"requestId": "r"},
        "pathParameters": "dev-1",
        "queryStringParameters": ["start"],
    }
    response = handler(event, LocalContext())
    assert response["statusCode"] == 400
    assert json.loads(response["body"])["parameter"] == "device_id"
