"""Retrieval for dashboards and ML, on SQLite and MariaDB: time buckets, the datasets and
devices there are, the category dictionary, and exports of the stored table.

Every figure is checked against a computation made here from the generated rows (the
sample's truth) or read back with plain SQL; every HTTP response against the OpenAPI spec.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import polars as pl
import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from iotpipe import bootstrap
from iotpipe.cli import main as cli
from iotpipe.contract import load_contract
from iotpipe.errors import InvalidQueryError
from iotpipe.handlers.retrieve import handler
from iotpipe.local.server import http_api_event
from iotpipe.local.stack import LocalContext
from iotpipe.retrieve import CursorCodec, answer, parse_bucket
from iotpipe.sample import SampleTruth
from iotpipe.times import iso_z
from tests.budget import examples
from tests.integration.conftest import fetch_all, load_sample, table_rows

pytestmark = pytest.mark.integration
ACME = load_contract("acme_usage")
FIELDS = [f.name for f in ACME.fields]
NUMERIC = {f.name: f.type for f in ACME.numeric_fields}
SPEC = yaml.safe_load((Path(__file__).resolve().parents[2] / "openapi.yaml").read_text())
EPOCH = dt.datetime(1970, 1, 1)
ROOT = Path(__file__).resolve().parents[2]


def response_schema(path: str, status: str) -> Draft202012Validator:
    """The schema the spec gives a path's response (GET)."""
    schema = SPEC["paths"][path]["get"]["responses"][status]["content"]["application/json"]
    return Draft202012Validator({**schema["schema"], "components": SPEC["components"]})


PATH_OF = {
    "GET /devices/{device_id}/readings": "/devices/{device_id}/readings",
    "GET /datasets": "/datasets",
    "GET /devices": "/devices",
    "GET /datasets/{dataset}/categories": "/datasets/{dataset}/categories",
}


def get(path: str, **query: Any) -> tuple[int, dict[str, Any]]:
    """Call the handler as API Gateway would; check the body against the spec."""
    event = http_api_event(path, urlencode({k: v for k, v in query.items() if v is not None}))
    assert event is not None, path
    response = handler(event, LocalContext())
    body: dict[str, Any] = json.loads(response["body"])
    status = str(response["statusCode"])
    response_schema(PATH_OF[event["routeKey"]], status).validate(body)
    return response["statusCode"], body


@pytest.fixture
def loaded(
    store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[str, SampleTruth]]:
    monkeypatch.setenv("IOTPIPE_DATABASE_URL", store_url)
    monkeypatch.setenv("IOTPIPE_CURSOR_SECRET", "test-secret")
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    truth = load_sample(store_url, tmp_path / "b.csv", 6_000, devices=12, seed=17)
    bootstrap.use_retrieve_runtime(None)
    yield store_url, truth
    bootstrap.use_retrieve_runtime(None)


def truth_rows(truth: SampleTruth) -> list[tuple[Any, ...]]:
    assert truth.rows is not None
    return sorted(truth.rows.values(), key=lambda r: (r[0], r[1]))


def expected_buckets(
    rows: list[tuple[Any, ...]], device: str, start: dt.datetime, end: dt.datetime, width: int
) -> list[dict[str, Any]]:
    """Buckets computed here: floor(microseconds since 1970 / width), nulls ignored."""
    step = width * 1_000_000
    groups: dict[int, list[tuple[Any, ...]]] = {}
    for row in rows:
        if row[0] == device and start <= row[1] <= end:
            micros = (row[1] - EPOCH) // dt.timedelta(microseconds=1)
            groups.setdefault(micros // step, []).append(row)
    out = []
    for index in sorted(groups):
        members = groups[index]
        stats = {}
        for name in NUMERIC:
            values = [r[2 + FIELDS.index(name)] for r in members]
            values = [v for v in values if v is not None]
            stats[name] = {
                "count": len(values),
                "mean": math.fsum(values) / len(values) if values else None,
                "min": min(values) if values else None,
                "max": max(values) if values else None,
            }
        start_of = EPOCH + dt.timedelta(microseconds=index * step)
        out.append({"start": iso_z(start_of), "count": len(members), "stats": stats})
    return out


def assert_same_buckets(got: list[dict[str, Any]], want: list[dict[str, Any]]) -> None:
    assert [(b["start"], b["count"]) for b in got] == [(b["start"], b["count"]) for b in want]
    for mine, theirs in zip(got, want, strict=True):
        for name, figures in theirs["stats"].items():
            stat = mine["stats"][name]
            assert (stat["count"], stat["min"], stat["max"]) == (
                figures["count"],
                figures["min"],
                figures["max"],
            ), (mine["start"], name)
            if figures["mean"] is None:
                assert stat["mean"] is None
            else:
                assert stat["mean"] == pytest.approx(figures["mean"], rel=1e-9, abs=1e-9)


WIDTHS = ["1m", "5m", "15m", "1h", "6h", "1d", "PT1H", "P1D", "PT90S", "7m", "PT2H30M"]


@settings(
    max_examples=examples(40),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_buckets_equal_a_computation_from_the_rows(
    loaded: tuple[str, SampleTruth], data: st.DataObject
) -> None:
    _, truth = loaded
    rows = truth_rows(truth)
    devices = sorted({r[0] for r in rows})
    device = data.draw(st.sampled_from(devices), label="device")
    times = [r[1] for r in rows if r[0] == device]
    span_start, span_end = min(times), max(times)
    start = span_start + dt.timedelta(
        seconds=data.draw(st.integers(-3600, int((span_end - span_start).total_seconds())))
    )
    end = start + dt.timedelta(seconds=data.draw(st.integers(0, 40_000), label="length"))
    width = data.draw(st.sampled_from(WIDTHS), label="width")
    status, body = get(
        f"/devices/{device}/readings", start=iso_z(start), end=iso_z(end), bucket=width
    )
    assert status == 200
    want = expected_buckets(rows, device, start, end, parse_bucket(width))
    assert_same_buckets(body["buckets"], want)
    assert body["count"] == sum(b["count"] for b in want)
    assert "rows" not in body and body["bucket"] == width
    event("non-empty buckets: " + ("0" if not want else "1" if len(want) == 1 else "2+"))


def test_too_many_buckets_and_bad_widths_are_400s_naming_bucket(
    loaded: tuple[str, SampleTruth],
) -> None:
    status, body = get(
        "/devices/dev-00001/readings", start="2024-01-01", end="2024-02-01", bucket="1m"
    )
    assert status == 400 and body["parameter"] == "bucket"  # 44,641 buckets
    status, body = get(
        "/devices/dev-00001/readings", start="2024-01-01", end="2024-01-07", bucket="1m"
    )
    assert status == 200  # 8,641 buckets: within the limit
    for bad in ("1y", "P1M", "0m", "PT", "hourly", "-1h", "1.5h"):
        status, body = get(
            "/devices/dev-00001/readings", start="2024-01-01", end="2024-01-02", bucket=bad
        )
        assert (status, body["parameter"]) == (400, "bucket"), bad


def test_integer_columns_come_back_as_integers(loaded: tuple[str, SampleTruth]) -> None:
    _, truth = loaded
    rows = truth_rows(truth)
    device = rows[0][0]
    status, body = get(f"/devices/{device}/readings", start="2023-12-31", end="2024-01-03")
    assert status == 200
    stat = body["stats"]["error_count"]
    assert type(stat["min"]) is int and type(stat["max"]) is int
    column = [r[2 + FIELDS.index("error_count")] for r in rows if r[0] == device]
    values = sorted(v for v in column if v is not None)
    assert stat["min"] == values[0] and stat["max"] == values[-1]
    middle = len(values) // 2
    median = values[middle] if len(values) % 2 else (values[middle - 1] + values[middle]) / 2
    assert stat["median"] == median and (type(stat["median"]) is int) == (median % 1 == 0)
    status, body = get(
        f"/devices/{device}/readings", start="2023-12-31", end="2024-01-03", bucket="1h"
    )
    assert status == 200 and body["buckets"]
    for bucket in body["buckets"]:
        figures = bucket["stats"]["error_count"]
        assert figures["min"] is None or type(figures["min"]) is int


def test_datasets_devices_and_categories(loaded: tuple[str, SampleTruth]) -> None:
    url, truth = loaded
    rows = truth_rows(truth)
    status, body = get("/datasets")
    assert status == 200
    (dataset,) = body["datasets"]
    assert dataset["name"] == "acme_usage" and dataset["table"] == ACME.table
    assert [f["name"] for f in dataset["fields"]] == FIELDS
    assert dataset["first"] == iso_z(min(r[1] for r in rows))
    assert dataset["last"] == iso_z(max(r[1] for r in rows))

    # Devices, three at a time, with their spans; the pages join up to every device.
    spans: dict[str, list[dt.datetime]] = {}
    for r in rows:
        spans.setdefault(r[0], []).append(r[1])
    listed, cursor = [], None
    while True:
        status, page = get("/devices", limit=3, cursor=cursor)
        assert status == 200 and len(page["devices"]) <= 3
        listed += page["devices"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [d["device_id"] for d in listed] == sorted(spans)
    for d in listed:
        assert (d["first"], d["last"]) == (
            iso_z(min(spans[d["device_id"]])),
            iso_z(max(spans[d["device_id"]])),
        )
    status, page = get("/devices", prefix="dev-0000", limit=100)
    assert [d["device_id"] for d in page["devices"]] == [
        d for d in sorted(spans) if d.startswith("dev-0000")
    ]
    status, page = get("/devices", prefix="nothing-starts-so")
    assert (status, page["devices"], page["next_cursor"]) == (200, [], None)
    # A cursor belongs to its listing: another prefix, or a tampered one, is a 400.
    status, first = get("/devices", limit=2)
    status, body = get("/devices", limit=2, prefix="dev", cursor=first["next_cursor"])
    assert (status, body["parameter"]) == (400, "cursor")
    status, body = get("/devices", limit=2, cursor=first["next_cursor"][:-3] + "AAA")
    assert (status, body["parameter"]) == (400, "cursor")
    for bad in ({"limit": 0}, {"limit": 1001}, {"dataset": "nope"}):
        status, body = get("/devices", **bad)
        assert status == 400, bad

    # The dictionary decodes every stored code to the stored value.
    status, cats = get("/datasets/acme_usage/categories")
    assert status == 200 and cats["dataset"] == "acme_usage"
    assert set(cats["categories"]) == {f.name for f in ACME.categories}
    for f in ACME.categories:
        decode = {code: value for value, code in cats["categories"][f.name].items()}
        stored = fetch_all(url, f"SELECT DISTINCT `{f.name}`, `{f.name}_code` FROM `{ACME.table}`")
        for value, code in stored:
            assert (value is None and code is None) or decode[code] == value
        if f.onehot_columns:
            assert cats["onehot"][f.name] == list(f.onehot_columns.values())
    status, body = get(f"/datasets/{quote('no_such')}/categories")
    assert (status, body["parameter"]) == (400, "dataset")


def test_direct_invocation_of_every_route(loaded: tuple[str, SampleTruth]) -> None:
    listed = handler({"action": "datasets"}, LocalContext())
    assert [d["name"] for d in listed["datasets"]] == ["acme_usage"]
    devices = handler({"action": "devices", "limit": 2}, LocalContext())
    assert len(devices["devices"]) == 2 and devices["next_cursor"]
    cats = handler({"action": "categories", "dataset": "acme_usage"}, LocalContext())
    assert set(cats["categories"]) == {f.name for f in ACME.categories}
    event = {
        "device_id": devices["devices"][0]["device_id"],
        "date_range": {"start": "2000-01-01", "end": "2030-01-01"},
        "bucket": "P7D",
    }
    assert handler(event, LocalContext())["buckets"]
    with pytest.raises(InvalidQueryError):
        handler({"action": "everything"}, LocalContext())


def test_export_reads_back_as_the_table_with_its_dictionary(
    loaded: tuple[str, SampleTruth], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, _ = loaded
    columns = ACME.output_columns
    stored = table_rows(url, ACME, columns)
    for name in ("acme.parquet", "acme.csv"):
        out = tmp_path / name
        assert cli(["export", "--out", str(out), "--database-url", url]) == 0
        result = json.loads(capsys.readouterr().out)
        assert result["rows"] == len(stored)
        frame = pl.read_parquet(out) if name.endswith(".parquet") else pl.read_csv(out)
        assert frame.columns == columns and frame.height == len(stored)
        if name.endswith(".parquet"):
            got = [tuple(r) for r in frame.iter_rows()]
            assert got == [tuple(_plain(v) for v in r) for r in stored]
        dictionary = json.loads(Path(result["categories"]).read_text())
        for f in ACME.categories:
            decode = {code: value for value, code in dictionary["categories"][f.name].items()}
            pairs = frame.select(f.name, f"{f.name}_code").unique().drop_nulls().iter_rows()
            assert all(decode[code] == value for value, code in pairs)
    # One device and a time range.
    device = stored[0][0]
    out = tmp_path / "one.parquet"
    args = ["export", "--out", str(out), "--device-id", device, "--database-url", url]
    assert cli([*args, "--start", "2000-01-01", "--end", "2100-01-01"]) == 0
    capsys.readouterr()
    assert pl.read_parquet(out).height == sum(r[0] == device for r in stored)


def _plain(value: Any) -> Any:
    return int(value) if isinstance(value, bool) else value


def test_query_uses_the_only_dataset_or_lists_them(
    loaded: tuple[str, SampleTruth], capsys: pytest.CaptureFixture[str]
) -> None:
    url, _ = loaded
    args = ["query", "--device-id", "dev-00001", "--start", "2024-01-01", "--end", "2024-01-02"]
    assert cli([*args, "--database-url", url, "--bucket", "1h"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert body["bucket_seconds"] == 3600
    store = bootstrap.build_store(url)
    try:
        store.ensure_schema(
            load_contract(str(ROOT / "contracts" / "examples" / "beijing_airquality.yaml"))
        )
    finally:
        store.close()
    assert cli([*args, "--database-url", url]) == 2
    err = capsys.readouterr().err
    assert "acme_usage" in err and "beijing_airquality" in err and "--dataset" in err
    assert cli([*args, "--database-url", url, "--dataset", "acme_usage"]) == 0


def test_the_service_and_the_handler_agree(loaded: tuple[str, SampleTruth]) -> None:
    url, _ = loaded
    store = bootstrap.build_store(url)
    try:
        params = {
            "device_id": "dev-00003",
            "start": "2024-01-01",
            "end": "2024-01-02",
            "bucket": "15m",
        }
        body = answer(params, default_dataset="acme_usage", store=store, cursors=CursorCodec("k"))
    finally:
        store.close()
    status, via_http = get(
        "/devices/dev-00003/readings", start="2024-01-01", end="2024-01-02", bucket="15m"
    )
    assert status == 200 and via_http == body


PROBE = {
    "name": "probe",
    "table": "probe_readings",
    "missingValues": [""],  # so the text "NULL" is a value, not a missing one
    "device_id": {"source": "device"},
    "timestamp": {"source": "time"},
    "fields": [
        {"name": "hits", "type": "integer"},
        {"name": "gap", "type": "number"},  # never present for a!b
        {"name": "level", "type": "number"},
        {"name": "door_open", "type": "boolean"},
        {"name": "note", "type": "string"},
    ],
}
PROBE_CSV = """device,time,hits,gap,level,door_open,note
a!b,2024-03-01T00:00:00Z,1,,10.5,true,NULL
a!b,2024-03-01T00:10:00Z,2,,11.5,false,
a!b,2024-03-01T00:20:00Z,5,,,,plain
a!b,2024-03-01T00:30:00Z,7,,12.5,true,x
a_b,2024-03-01T00:00:00Z,2,1.0,1.0,false,y
a_b,2024-03-01T00:10:00Z,4,,2.0,,y
axb,2024-03-01T00:00:00Z,100,100.0,100.0,true,z
"""


def test_readings_of_every_field_kind_and_ids_with_like_wildcards(
    store_url: str, tmp_path: Path
) -> None:
    # Figures written out by hand for a contract of each kind of field: an integer column
    # (medians exact, whole or .5), a column with no value in range, booleans, and text that
    # reads "NULL". The device ids hold LIKE's wildcard and escape characters.
    from iotpipe.bootstrap import build_store
    from iotpipe.contract import contract_from_dict
    from iotpipe.ingest import ingest_object
    from iotpipe.model import ReadingsQuery
    from iotpipe.sources import local_object
    from iotpipe.stats import NumericStats

    contract = contract_from_dict(PROBE)
    path = tmp_path / "probe.csv"
    path.write_text(PROBE_CSV, encoding="utf-8")
    store = build_store(store_url)
    try:
        report = ingest_object(lambda: path.open("rb"), local_object(path), contract, store)
        assert (report.status, report.counters.rows_valid) == ("loaded", 7), report.error

        def query(device: str) -> ReadingsQuery:
            start, end = dt.datetime(2024, 3, 1), dt.datetime(2024, 3, 2)
            return ReadingsQuery(device, start, end, 100, "probe")

        count, stats = store.count_and_stats(contract, query("a!b"))
        assert count == 4
        assert stats == {
            "hits": NumericStats(4, 3.75, 3.5, 1, 7),
            "gap": NumericStats(0, None, None, None, None),
            "level": NumericStats(3, 11.5, 11.5, 10.5, 12.5),
        }
        count, stats = store.count_and_stats(contract, query("a_b"))
        assert count == 2
        assert stats["hits"] == NumericStats(2, 3.0, 3, 2, 4)
        assert type(stats["hits"].median) is int and type(stats["hits"].min) is int
        assert stats["gap"] == NumericStats(1, 1.0, 1.0, 1.0, 1.0)
        assert stats["level"] == NumericStats(2, 1.5, 1.5, 1.0, 2.0)

        rows = store.page(contract, query("a!b"), 10)
        assert [r["hits"] for r in rows] == [1, 2, 5, 7]
        assert [r["door_open"] for r in rows] == [True, False, None, True]
        assert all(type(r["door_open"]) in (bool, type(None)) for r in rows)
        assert [r["note"] for r in rows] == ["NULL", None, "plain", "x"]

        buckets = store.buckets(contract, query("a!b"), 1200)
        assert [(b.start, b.count) for b in buckets] == [
            (dt.datetime(2024, 3, 1, 0, 0), 2),
            (dt.datetime(2024, 3, 1, 0, 20), 2),
        ]
        assert [b.stats for b in buckets] == [
            {
                "hits": {"count": 2, "mean": 1.5, "min": 1, "max": 2},
                "gap": {"count": 0, "mean": None, "min": None, "max": None},
                "level": {"count": 2, "mean": 11.0, "min": 10.5, "max": 11.5},
            },
            {
                "hits": {"count": 2, "mean": 6.0, "min": 5, "max": 7},
                "gap": {"count": 0, "mean": None, "min": None, "max": None},
                "level": {"count": 1, "mean": 12.5, "min": 12.5, "max": 12.5},
            },
        ]
        for device, hits in (("a_b", [2, 4]), ("axb", [100]), ("a%b", []), ("a!!b", [])):
            assert [r["hits"] for r in store.page(contract, query(device), 10)] == hits
    finally:
        store.close()


def test_means_and_medians_of_readings_near_the_doubles_limit(
    store_url: str, tmp_path: Path
) -> None:
    # SQL's AVG overflows without a word: MariaDB answered 0.0 and SQLite infinity (or no
    # mean at all in a bucket) for readings whose sum leaves the doubles' range.
    from fractions import Fraction

    from iotpipe.bootstrap import build_store
    from iotpipe.contract import contract_from_dict
    from iotpipe.ingest import ingest_object
    from iotpipe.model import ReadingsQuery
    from iotpipe.sources import local_object

    contract = contract_from_dict(PROBE)
    big = [1.7e308, 1.7e308, -1.0e308]
    # A second field (not the last of the contract) whose largest magnitude is its low end.
    low = [-1.7e308, -1.7e308, 1.0]
    pair = [1.7e308, 1.6e308]
    lines = ["device,time,gap,level"]
    rows = enumerate(zip(low, big, strict=True))
    lines += [f"big,2024-03-01T00:0{i}:00Z,{g!r},{v!r}" for i, (g, v) in rows]
    lines += [f"pair,2024-03-01T00:0{i}:00Z,,{v!r}" for i, v in enumerate(pair)]
    path = tmp_path / "big.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    store = build_store(store_url)
    try:
        report = ingest_object(lambda: path.open("rb"), local_object(path), contract, store)
        assert (report.status, report.counters.rows_valid) == ("loaded", 5), report.error
        span = dt.datetime(2024, 3, 1), dt.datetime(2024, 3, 2)
        exact = float(sum(map(Fraction, big)) / len(big))
        exact_low = float(sum(map(Fraction, low)) / len(low))
        _, stats = store.count_and_stats(contract, ReadingsQuery("big", *span, 10, "probe"))
        level, gap = stats["level"], stats["gap"]
        assert level.mean == pytest.approx(exact, rel=1e-12)
        assert (level.median, level.min, level.max) == (1.7e308, -1.0e308, 1.7e308)
        assert gap.mean == pytest.approx(exact_low, rel=1e-12)
        assert (gap.median, gap.min, gap.max) == (-1.7e308, -1.7e308, 1.0)
        (bucket,) = store.buckets(contract, ReadingsQuery("big", *span, 10, "probe"), 3600)
        assert bucket.stats["level"]["mean"] == pytest.approx(exact, rel=1e-12)
        assert bucket.stats["gap"] == {
            "count": 3,
            "mean": pytest.approx(exact_low, rel=1e-12),
            "min": -1.7e308,
            "max": 1.0,
        }
        _, stats = store.count_and_stats(contract, ReadingsQuery("pair", *span, 10, "probe"))
        assert stats["level"].median == pytest.approx(1.65e308, rel=1e-15)
        assert stats["level"].mean == pytest.approx(1.65e308, rel=1e-12)
    finally:
        store.close()


def test_an_infinity_another_writer_stored_in_sqlite_reads_back_as_null(tmp_path: Path) -> None:
    # iotpipe never stores a non-finite reading (cleaning rejects it, MariaDB refuses it), but
    # SQLite keeps what another writer put in the table. Rows, statistics and buckets must
    # still be JSON: the figures an infinity makes are null, the others exact.
    import sqlite3

    from iotpipe.bootstrap import build_store
    from iotpipe.contract import contract_from_dict
    from iotpipe.ingest import ingest_object
    from iotpipe.sources import local_object

    contract = contract_from_dict(PROBE)
    path = tmp_path / "probe.csv"
    path.write_text(PROBE_CSV, encoding="utf-8")
    database = tmp_path / "iotpipe.db"
    store = build_store(f"sqlite:///{database}")
    try:
        report = ingest_object(lambda: path.open("rb"), local_object(path), contract, store)
        assert report.status == "loaded", report.error
        with sqlite3.connect(database) as conn:  # a's 11.5 becomes +inf
            conn.execute("UPDATE probe_readings SET level = 9e999 WHERE level = 11.5")
        params = {"dataset": "probe", "device_id": "a!b", "start": "2024-03-01"}
        params["end"] = "2024-03-02"
        body = answer(params, default_dataset="probe", store=store, cursors=CursorCodec("k"))
        json.dumps(body, allow_nan=False)
        assert [r["level"] for r in body["rows"]] == [10.5, None, None, 12.5]
        assert body["stats"]["level"] == {
            "count": 3,
            "mean": None,
            "median": 12.5,
            "min": 10.5,
            "max": None,
        }
        assert body["stats"]["hits"]["mean"] == 3.75
        params["bucket"] = "1h"
        body = answer(params, default_dataset="probe", store=store, cursors=CursorCodec("k"))
        json.dumps(body, allow_nan=False)
        (bucket,) = body["buckets"]
        assert bucket["stats"]["level"] == {"count": 3, "mean": None, "min": 10.5, "max": None}
        assert bucket["stats"]["hits"] == {"count": 4, "mean": 3.75, "min": 1, "max": 7}
    finally:
        store.close()
