"""TLS to the database and password rotation, against a MariaDB that requires TLS.

The server (tests/integration/tls_server.py) has ``require_secure_transport=ON`` and a
certificate from a CA made for this run; Secrets Manager is moto's server. Nothing is mocked
between iotpipe and either server.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pymysql
import pytest

from iotpipe import bootstrap
from iotpipe.config import Settings
from iotpipe.errors import TransientStorageError
from iotpipe.local.stack import LocalContext, LocalStack
from iotpipe.storage.mysql import MySQLParams, MySQLStore
from tests.integration.conftest import SAMPLE_NOW
from tests.integration.tls_server import ADMIN_PASSWORD, ADMIN_USER, DATABASE, TlsMariaDB

pytestmark = pytest.mark.integration


def _tls_cipher(store: MySQLStore) -> str:
    def run(cursor: Any) -> str:
        cursor.execute("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
        return str(cursor.fetchone()[1])

    return store.db.run(run)


def test_the_server_refuses_a_connection_without_tls(tls_mariadb: TlsMariaDB) -> None:
    # A user the server does not hold to TLS itself: require_secure_transport refuses it.
    with contextlib.closing(tls_mariadb.root()) as conn, conn.cursor() as cur:
        cur.execute("CREATE USER IF NOT EXISTS 'it_plain'@'127.0.0.1' IDENTIFIED BY 'plain-pw'")
    with pytest.raises(pymysql.err.OperationalError) as refused:
        pymysql.connect(
            host="127.0.0.1",
            port=tls_mariadb.port,
            user="it_plain",
            password="plain-pw",
            ssl_disabled=True,
        )
    # MariaDB answers "access denied" (MySQL: 3159, insecure transport prohibited); the same
    # user and password over TLS are let in, so it is the transport that was refused.
    assert refused.value.args[0] in (1045, 3159), refused.value
    with contextlib.closing(
        pymysql.connect(
            host="127.0.0.1",
            port=tls_mariadb.port,
            user="it_plain",
            password="plain-pw",
            ssl_ca=str(tls_mariadb.ca),
            ssl_verify_identity=True,
        )
    ) as ok:
        assert ok.open  # the same user over TLS is let in


def test_the_store_connects_with_a_verified_certificate_only(tls_mariadb: TlsMariaDB) -> None:
    store = MySQLStore.from_url(tls_mariadb.url())
    try:
        assert _tls_cipher(store)  # the session is encrypted
    finally:
        store.close()
    # A certificate from another CA, and the right certificate under a name it does not carry
    # (it is for 127.0.0.1, not localhost), are both refused: verification is on.
    assert tls_mariadb.other_ca is not None
    wrong_ca = MySQLStore.from_url(tls_mariadb.url(ca=tls_mariadb.other_ca))
    with pytest.raises(TransientStorageError, match="certificate verify failed"):
        wrong_ca.db.run(lambda cursor: cursor.execute("SELECT 1"))
    wrong_name = MySQLStore(
        MySQLParams(
            host="localhost",
            port=tls_mariadb.port,
            user=ADMIN_USER,
            password=ADMIN_PASSWORD,
            database=DATABASE,
            ssl_ca=str(tls_mariadb.ca),
        )
    )
    with pytest.raises(TransientStorageError, match="certificate|hostname|match"):
        wrong_name.db.run(lambda cursor: cursor.execute("SELECT 1"))
    # What a deployment uses by default (the shipped RDS CAs) does not trust this test CA.
    rds = MySQLStore.from_url(tls_mariadb.url().replace(f"ssl_ca={tls_mariadb.ca}", "ssl_ca=rds"))
    with pytest.raises(TransientStorageError, match="certificate verify failed"):
        rds.db.run(lambda cursor: cursor.execute("SELECT 1"))


@pytest.fixture
def secrets(tls_mariadb: TlsMariaDB, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """moto's Secrets Manager with the admin, ingest and read users' secrets (fresh users)."""
    for name in ("IOTPIPE_DATABASE_URL", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    local = LocalStack().start()
    client = local.client("secretsmanager")
    documents = {
        "admin": {"username": ADMIN_USER, "password": ADMIN_PASSWORD},
        "ingest": {"username": "it_ingest", "password": "ingest-pw-1"},
        "read": {"username": "it_read", "password": "read-pw-1"},
    }
    arns = {
        role: client.create_secret(Name=f"iotpipe/{role}", SecretString=json.dumps(doc))["ARN"]
        for role, doc in documents.items()
    }
    with contextlib.closing(tls_mariadb.root()) as conn, conn.cursor() as cur:
        cur.execute("DROP USER IF EXISTS 'it_ingest'@'%', 'it_read'@'%'")
        cur.execute(f"DROP DATABASE IF EXISTS {DATABASE}")
        cur.execute(f"CREATE DATABASE {DATABASE} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
    try:
        yield arns
    finally:
        bootstrap.use_retrieve_runtime(None)
        bootstrap.use_ingest_runtime(None)
        local.stop()


def _settings(tls_mariadb: TlsMariaDB, arns: dict[str, str], role: str) -> Settings:
    return Settings(
        db_secret_arn=arns[role],
        db_host="127.0.0.1",
        db_port=tls_mariadb.port,
        db_name=DATABASE,
        db_ssl_ca=str(tls_mariadb.ca),
        ingest_user_secret_arn=arns["ingest"],
        read_user_secret_arn=arns["read"],
    )


def test_admin_init_makes_a_user_per_function_with_only_its_rights(
    tls_mariadb: TlsMariaDB, secrets: dict[str, str], tmp_path: Path
) -> None:
    from iotpipe.admin import init_database
    from iotpipe.contract import load_contract
    from iotpipe.ingest import IngestOptions, ingest_object
    from iotpipe.sample import write_sample
    from iotpipe.sources import local_object

    contract = load_contract("acme_usage")
    result = init_database(_settings(tls_mariadb, secrets, "admin"))
    assert result.tables == (contract.table,)
    assert result.users == (("it_ingest", "ingest"), ("it_read", "read"))
    again = init_database(_settings(tls_mariadb, secrets, "admin"))  # repeatable
    assert again == result
    with contextlib.closing(tls_mariadb.root()) as conn, conn.cursor() as cur:
        users = "('it_ingest', 'it_read')"
        cur.execute(f"SELECT user, ssl_type FROM mysql.user WHERE user IN {users} ORDER BY user")
        assert cur.fetchall() == (("it_ingest", "ANY"), ("it_read", "ANY"))  # REQUIRE SSL

    # The ingest user loads a file (LOAD DATA LOCAL, codes, ledger) through its own secret.
    path = tmp_path / "acme.csv"
    truth = write_sample(path, 2_000, devices=5, seed=3, keep_rows=True)
    ingest_store = bootstrap.store_for(_settings(tls_mariadb, secrets, "ingest"))
    try:
        report = ingest_object(
            lambda: path.open("rb"),
            local_object(path),
            contract,
            ingest_store,
            options=IngestOptions(now=SAMPLE_NOW),
        )
    finally:
        ingest_store.close()
    assert report.status == "loaded"
    assert report.rows_loaded == truth.rows_valid

    # The read user reads, and can write nothing.
    read_store = bootstrap.store_for(_settings(tls_mariadb, secrets, "read"))
    try:

        def count(cursor: Any) -> int:
            cursor.execute(f"SELECT COUNT(*) FROM {contract.table}")
            return int(cursor.fetchone()[0])

        assert read_store.db.run(count) == truth.rows_valid
        with pytest.raises(pymysql.err.OperationalError, match="denied"):
            read_store.db.run(lambda cursor: cursor.execute(f"DELETE FROM {contract.table}"))
        with pytest.raises(pymysql.err.OperationalError, match="denied"):
            read_store.db.run(lambda cursor: cursor.execute("CREATE TABLE x (i INT)"))
    finally:
        read_store.close()


def test_a_rotated_password_is_read_again_by_the_next_invocation(
    tls_mariadb: TlsMariaDB, secrets: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from iotpipe.admin import init_database
    from iotpipe.handlers import retrieve

    init_database(_settings(tls_mariadb, secrets, "admin"))
    # The retrieval function as deployed: the read user's secret, TLS verified, no URL.
    for name, value in {
        "IOTPIPE_DB_SECRET_ARN": secrets["read"],
        "IOTPIPE_DB_HOST": "127.0.0.1",
        "IOTPIPE_DB_PORT": str(tls_mariadb.port),
        "IOTPIPE_DB_NAME": DATABASE,
        "IOTPIPE_DB_SSL_CA": str(tls_mariadb.ca),
    }.items():
        monkeypatch.setenv(name, value)
    bootstrap.use_retrieve_runtime(None)
    event = {"device_id": "dev-1", "date_range": {"start": "2024-01-01", "end": "2024-01-02"}}
    first = retrieve.handler(event, LocalContext())
    assert first["count"] == 0 and first["device_id"] == "dev-1"

    # Rotation: a new password in the database and in the secret, as RDS's rotation does.
    client = bootstrap.aws_client("secretsmanager", bootstrap.current_settings())
    rotated = {"username": "it_read", "password": "read-pw-2"}
    client.put_secret_value(SecretId=secrets["read"], SecretString=json.dumps(rotated))
    with contextlib.closing(tls_mariadb.root()) as conn, conn.cursor() as cur:
        cur.execute("ALTER USER 'it_read'@'%' IDENTIFIED BY 'read-pw-2'")
        # The container's connection is gone by the next invocation (idle, or the proxy's
        # pool recycled it): the next one must log in again, with the new password.
        cur.execute("SELECT id FROM information_schema.processlist WHERE user = 'it_read'")
        for (connection_id,) in cur.fetchall():
            cur.execute(f"KILL CONNECTION {int(connection_id)}")

    second = retrieve.handler(event, LocalContext())
    assert second["count"] == 0 and second["device_id"] == "dev-1"
    with contextlib.closing(tls_mariadb.root()) as conn, conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM information_schema.processlist WHERE user = 'it_read'")
        assert cur.fetchone()[0] >= 1  # logged in again, as the rotated user


def test_the_retrieval_function_reads_from_the_reader_endpoint(
    tls_mariadb: TlsMariaDB,
    secrets: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    from iotpipe.admin import init_database
    from iotpipe.handlers import retrieve
    from tests.integration.conftest import load_sample

    init_database(_settings(tls_mariadb, secrets, "admin"))
    path = tmp_path / "acme.csv"
    root_url = f"mysql://{ADMIN_USER}:{ADMIN_PASSWORD}@127.0.0.1:{tls_mariadb.port}/{DATABASE}"
    load_sample(f"{root_url}?ssl_ca={tls_mariadb.ca}", path, 3_000, devices=3, seed=8)
    with contextlib.closing(tls_mariadb.root()) as conn, conn.cursor() as cur:
        cur.execute(
            f"SELECT device_id, COUNT(*), MIN(ts), MAX(ts) FROM {DATABASE}.device_usage"
            " GROUP BY device_id ORDER BY device_id LIMIT 1"
        )
        device, stored, first, last = cur.fetchone()

    # As deployed with a ReadEndpoint: the primary (IOTPIPE_DB_HOST/PORT) is unreachable
    # here, the reader URL has no user: the read user's secret logs in to the reader.
    for name, value in {
        "IOTPIPE_DB_SECRET_ARN": secrets["read"],
        "IOTPIPE_DB_HOST": "127.0.0.1",
        "IOTPIPE_DB_PORT": "1",
        "IOTPIPE_DB_NAME": "not_this_one",
        "IOTPIPE_DB_SSL_CA": str(tls_mariadb.ca),
        "IOTPIPE_READ_DATABASE_URL": f"mysql://127.0.0.1:{tls_mariadb.port}/{DATABASE}",
    }.items():
        monkeypatch.setenv(name, value)
    bootstrap.use_retrieve_runtime(None)
    event = {
        "device_id": device,
        "date_range": {"start": first.isoformat() + "Z", "end": last.isoformat() + "Z"},
        "limit": 10_000,
    }
    body = retrieve.handler(event, LocalContext())
    assert body["count"] == stored and len(body["rows"]) == stored
    datasets = retrieve.handler({"action": "datasets"}, LocalContext())
    assert [d["name"] for d in datasets["datasets"]] == ["acme_usage"]
    with contextlib.closing(tls_mariadb.root()) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT COUNT(*) FROM information_schema.processlist"
            " WHERE user = 'it_read' AND db = %s",
            (DATABASE,),
        )
        assert cur.fetchone()[0] >= 1  # the read user, on the reader's database
