"""Real servers for integration tests: MariaDB on 127.0.0.1:3306 (a fresh database per test).

Outside CI a missing server skips these tests; in CI (CI=true) a skip fails the run.
"""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pymysql
import pytest

from iotpipe.contract import DataContract
from iotpipe.local.stack import LocalStack
from iotpipe.storage.sqlite import sqlite_path

_counter = iter(range(1_000_000))
SAMPLE_NOW = dt.datetime(2025, 1, 1)


def load_sample(url: str, path: Path, rows: int, *, devices: int = 20, seed: int = 0) -> Any:
    """Generate a sample file, ingest it into the store at ``url``, return its truth."""
    from iotpipe.bootstrap import build_store
    from iotpipe.contract import load_contract
    from iotpipe.ingest import IngestOptions, ingest_object
    from iotpipe.sample import write_sample
    from iotpipe.sources import local_object

    truth = write_sample(path, rows, devices=devices, seed=seed, keep_rows=True)
    store = build_store(url)
    try:
        ingest_object(
            lambda: path.open("rb"),
            local_object(path),
            load_contract("acme_usage"),
            store,
            options=IngestOptions(now=SAMPLE_NOW),
        )
    finally:
        store.close()
    return truth


def mariadb(database: str = "test", autocommit: bool = True) -> Any:
    """Open a plain PyMySQL connection to the local MariaDB (127.0.0.1 only)."""
    return pymysql.connect(
        host="127.0.0.1",
        port=3306,
        user="root",
        password="",
        database=database,
        connect_timeout=3,
        autocommit=autocommit,
    )


def _admin() -> Any:
    try:
        return mariadb()
    except pymysql.err.OperationalError as exc:
        pytest.skip(f"MariaDB is not reachable on 127.0.0.1:3306: {exc}")


@pytest.fixture
def mariadb_url() -> Iterator[str]:
    """A fresh, empty MariaDB database for one test; dropped afterwards."""
    admin = _admin()
    name = f"iotpipe_it_{os.getpid()}_{next(_counter)}"
    with admin.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
        # A run killed inside test_local_infile_refused_falls_back_to_multirow_insert (a
        # mutant's time limit, say) leaves the server refusing LOCAL INFILE: start every
        # test from the server's default.
        cur.execute("SELECT @@GLOBAL.local_infile")
        if not int(cur.fetchone()[0]):
            cur.execute("SET GLOBAL local_infile = 1")
    try:
        yield f"mysql://root@127.0.0.1:3306/{name}"
    finally:
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        admin.close()


@pytest.fixture(params=["sqlite", "mariadb"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each store-contract test runs against SQLite and against the real MariaDB."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/iotpipe.db"
    url: str = request.getfixturevalue("mariadb_url")
    return url


def table_rows(
    url: str, contract: DataContract, columns: list[str] | None = None
) -> list[tuple[Any, ...]]:
    """Read a dataset table with plain SQL (independently of the store's own queries)."""
    columns = columns or ["device_id", "ts", *(f.name for f in contract.fields)]
    names = ", ".join(f"`{c}`" for c in columns)
    rows = fetch_all(url, f"SELECT {names} FROM `{contract.table}` ORDER BY device_id, ts")
    if url.startswith("sqlite"):  # SQLite keeps times as text
        return [tuple(_sqlite_value(c, v) for c, v in zip(columns, r, strict=True)) for r in rows]
    return rows


def fetch_all(url: str, sql: str) -> list[tuple[Any, ...]]:
    """Run one SELECT with plain SQL on either database."""
    if url.startswith("sqlite"):
        conn = sqlite3.connect(sqlite_path(url))
        try:
            return [tuple(r) for r in conn.execute(sql).fetchall()]
        finally:
            conn.close()
    conn = mariadb(url.rsplit("/", 1)[1])
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            return [tuple(r) for r in cur.fetchall()]
    finally:
        conn.close()


def scalar(url: str, sql: str) -> Any:
    """Run one SELECT returning one value, on either database."""
    return fetch_all(url, sql)[0][0]


def _sqlite_value(column: str, value: Any) -> Any:
    if column == "ts" and isinstance(value, str):
        return dt.datetime.strptime(value, "%Y-%m-%d %H:%M:%S.%f")
    return value


@pytest.fixture
def stack(mariadb_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalStack]:
    """moto's S3 + SQS server on 127.0.0.1 with iotpipe's bucket, queues and notification."""
    monkeypatch.setenv("IOTPIPE_DATABASE_URL", mariadb_url)
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    for name in (
        "AWS_ENDPOINT_URL",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_DEFAULT_REGION",
    ):
        monkeypatch.delenv(name, raising=False)
    local = LocalStack().start()
    try:
        yield local
    finally:
        local.stop()
        for name in ("AWS_ENDPOINT_URL",):
            os.environ.pop(name, None)


@pytest.fixture(scope="session")
def tls_mariadb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A MariaDB of the tests' own that requires TLS (certificates made with openssl now)."""
    from tests.integration.tls_server import BINARIES, TlsMariaDB, find

    missing = [b for b in BINARIES if not find(b)]
    if missing:
        pytest.skip(f"a TLS MariaDB needs {', '.join(missing)}")
    server = TlsMariaDB(tmp_path_factory.mktemp("tls-mariadb")).start()
    try:
        yield server
    finally:
        server.stop()
