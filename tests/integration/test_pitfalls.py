"""Known pitfalls of this kind of pipeline, each a test a naive implementation fails.

Others live next to the feature they guard (see docs/testing.md for the whole map).
"""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path

import polars as pl
import pytest

from iotpipe import bootstrap
from iotpipe.contract import load_contract
from iotpipe.handlers.retrieve import handler as retrieve_handler
from iotpipe.local.server import http_api_event
from iotpipe.local.stack import LocalContext, LocalStack, Poller
from iotpipe.sample import write_sample
from tests.integration.conftest import fetch_all, load_sample, mariadb, scalar

ACME = load_contract("acme_usage")


def test_keys_with_plus_space_and_percent(
    stack: LocalStack, mariadb_url: str, tmp_path: Path
) -> None:
    # S3 notifications send "a+b c%d" as "a%2Bb+c%25d": decoding only '+' or only '%', or
    # only the first record, loads the wrong key or none.
    keys = ["incoming/a+b c%20d 100%.csv", "incoming/x+y.csv", "incoming/sp ace.csv"]
    for n, key in enumerate(keys):
        path = tmp_path / f"{n}.csv"
        write_sample(path, 500, seed=80 + n)
        stack.upload(str(path), key)
    Poller(stack).drain()
    loaded = fetch_all(mariadb_url, "SELECT source, status FROM iotpipe_ledger ORDER BY source")
    assert loaded == sorted((f"s3://{stack.bucket}/{k}", "loaded") for k in keys)


def test_the_store_commits_what_it_writes_and_only_that(mariadb_url: str, tmp_path: Path) -> None:
    # The pitfall: assuming a DB-API connection commits on its own (PyMySQL's
    # "with connect() as c" only closes it). Seen from another connection, the store's
    # claim is committed, a load that fails leaves nothing, and a load that ends is all there.
    from iotpipe.bootstrap import build_store
    from iotpipe.contract import load_contract
    from iotpipe.encode import Encoder
    from iotpipe.model import ObjectRef
    from iotpipe.storage.store import new_owner

    acme = load_contract("acme_usage")
    store = build_store(mariadb_url)
    try:
        store.ensure_schema(acme)
        ref = ObjectRef("file:///x.csv", "v1")
        claim = store.claim(ref, acme.name, 60, new_owner())
        assert scalar(mariadb_url, "SELECT status FROM iotpipe_ledger") == "loading"
        clean = pl.DataFrame(
            {
                "device_id": ["d1"],
                "ts": [dt.datetime(2024, 1, 1)],
                **{f.name: [None] for f in acme.fields},
            },
            schema_overrides={
                f.name: pl.String if f.type == "category" else pl.Float64 for f in acme.fields
            },
        ).with_columns(pl.lit(50.0).alias("battery_pct"))
        frame = Encoder(acme, store).encode(clean)
        with pytest.raises(RuntimeError), store.load(claim, acme) as loader:
            loader.upsert(frame)
            raise RuntimeError("the file broke off")
        assert scalar(mariadb_url, "SELECT COUNT(*) FROM device_usage") == 0
        with store.load(claim, acme) as loader:
            loader.upsert(frame)
            loader.finish({"rows_read": 1, "rows_loaded": 1, "rows_rejected": 0})
        assert scalar(mariadb_url, "SELECT COUNT(*) FROM device_usage") == 1
        assert scalar(mariadb_url, "SELECT status FROM iotpipe_ledger") == "loaded"
    finally:
        store.close()
    # And through the whole path: another connection sees every row of a loaded file.
    path = tmp_path / "c.csv"
    truth = load_sample(mariadb_url, path, 2000, seed=85)
    assert scalar(mariadb_url, "SELECT COUNT(*) FROM device_usage") == truth.rows_valid + 1


def _threads_connected(url: str) -> int:
    """Connections open on the test's own database (the server's whole count would include
    whatever else uses the server meanwhile: another test run, a mutation run)."""
    conn = mariadb()
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE DB = %s",
                (url.rsplit("/", 1)[1],),
            )
            return int(cur.fetchone()[0])
    finally:
        conn.close()


def test_decimal_datetime_and_connections_across_warm_invocations(
    mariadb_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IOTPIPE_DATABASE_URL", mariadb_url)
    path = tmp_path / "w.csv"
    load_sample(mariadb_url, path, 3000, devices=2, seed=86)
    bootstrap.use_retrieve_runtime(None)
    before = _threads_connected(mariadb_url)
    event = http_api_event(
        "/devices/dev-00001/readings", "start=2024-01-01&end=2024-01-03&limit=200"
    )
    assert event is not None
    bodies = []
    for _ in range(30):  # warm invocations of one container
        response = retrieve_handler(event, LocalContext())
        assert response["statusCode"] == 200
        bodies.append(json.loads(response["body"]))
    # One connection for all of them (a naive handler opens one per call: "too many connections").
    assert _threads_connected(mariadb_url) - before <= 1
    body = bodies[-1]
    # MySQL returns AVG(BIGINT) as Decimal and DATETIME as datetime: neither may leak. An
    # integer field's min, max and whole median are ints; every mean is a float.
    integers = {f.name for f in load_contract("acme_usage").fields if f.type == "integer"}
    for name, stat in body["stats"].items():
        for key in ("mean", "median", "min", "max"):
            value = stat[key]
            allowed = (float, int) if name in integers and key != "mean" else (float,)
            assert value is None or (type(value) in allowed and math.isfinite(value)), (name, key)
    for row in body["rows"]:
        assert row["timestamp"].endswith("Z")
        assert all(type(v) in (str, int, float, bool, type(None)) for v in row.values())
    json.dumps(body, allow_nan=False)
    bootstrap.use_retrieve_runtime(None)


def test_ingest_warm_invocations_reuse_their_connections(
    stack: LocalStack, mariadb_url: str, tmp_path: Path
) -> None:
    poller = Poller(stack)
    path = tmp_path / "first.csv"
    write_sample(path, 300, seed=87)
    stack.upload(str(path), "incoming/first.csv")
    poller.drain()  # the container is warm now: its connections are open
    before = _threads_connected(mariadb_url)
    assert before >= 1  # ... and counted: they are on the test's database
    for n in range(5):
        path = tmp_path / f"{n}.csv"
        write_sample(path, 300, seed=88 + n)
        stack.upload(str(path), f"incoming/warm-{n}.csv")
        poller.drain(idle_polls=1)
    assert _threads_connected(mariadb_url) - before <= 0
    assert scalar(mariadb_url, "SELECT COUNT(*) FROM iotpipe_ledger WHERE status = 'loaded'") == 6
