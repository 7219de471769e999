"""How a deployed function connects: TLS with verification, credentials re-read on 1045."""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pymysql
import pytest

from iotpipe.aws.secrets import IamTokenCredentials, SecretCredentials, params_from_secret
from iotpipe.errors import StorageError, TransientStorageError
from iotpipe.storage import mysql
from iotpipe.storage.mysql import MySQLParams


class FakeSecrets:
    """A Secrets Manager client that counts reads; ``documents`` are returned in turn."""

    def __init__(self, *documents: dict[str, Any]) -> None:
        self.documents = list(documents)
        self.reads = 0

    def get_secret_value(self, SecretId: str) -> dict[str, str]:  # noqa: N803 (boto3's name)
        doc = self.documents[min(self.reads, len(self.documents) - 1)]
        self.reads += 1
        return {"SecretString": json.dumps(doc)}


def test_a_secret_always_means_tls_with_verification() -> None:
    secrets = FakeSecrets({"username": "u", "password": "p", "host": "db.internal"})
    params = params_from_secret(SecretCredentials(secrets, "arn"), None, None, None)
    assert params.ssl_ca == mysql.RDS_CA_BUNDLE
    assert params._tls() == {
        "ssl_ca": mysql.rds_ca_bundle(),
        "ssl_verify_cert": True,
        "ssl_verify_identity": True,
    }
    assert (params.host, params.port, params.database) == ("db.internal", 3306, "iotpipe")
    # The settings' host wins: it may be RDS Proxy in front of the instance the secret names.
    proxied = params_from_secret(SecretCredentials(secrets, "arn"), "proxy.internal", 3307, "db")
    assert (proxied.host, proxied.port, proxied.database) == ("proxy.internal", 3307, "db")
    with pytest.raises(StorageError, match="IOTPIPE_DB_HOST"):
        params_from_secret(SecretCredentials(FakeSecrets({"username": "u"}), "arn"), None, 1, "d")


def _connect_sequence(monkeypatch: pytest.MonkeyPatch, outcomes: list[Any]) -> list[str]:
    """Make pymysql.connect answer ``outcomes`` in turn; return the passwords it was given."""
    passwords: list[str] = []

    def connect(**kwargs: Any) -> Any:
        passwords.append(kwargs["password"])
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    monkeypatch.setattr(pymysql, "connect", connect)
    return passwords


def denied() -> pymysql.err.OperationalError:
    return pymysql.err.OperationalError(1045, "Access denied for user 'u'")


def test_every_connection_is_in_utc_in_transactions_and_times_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A hung server must not hang a Lambda; times are stored and compared in UTC whatever
    # the server's zone; nothing is committed but by the transactions iotpipe ends.
    given: list[dict[str, Any]] = []

    def connect(**kwargs: Any) -> str:
        given.append(kwargs)
        return "conn"

    monkeypatch.setattr(pymysql, "connect", connect)
    url = "mysql://u:p@h/db?local_infile=0&connect_timeout=3&read_timeout=40"
    assert MySQLParams.from_url(url).connect() == "conn"
    (kwargs,) = given
    assert {k: v for k, v in kwargs.items() if k not in ("host", "port", "database")} == {
        "user": "u",
        "password": "p",
        "charset": "utf8mb4",
        "autocommit": False,
        "local_infile": False,
        "connect_timeout": 3.0,
        "read_timeout": 40.0,
        "write_timeout": 600.0,
        "init_command": "SET time_zone = '+00:00'",
    }


def test_a_refused_password_is_read_again_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    secrets = FakeSecrets(
        {"username": "u", "password": "old", "host": "h"},
        {"username": "u", "password": "new", "host": "h"},
    )
    params = params_from_secret(SecretCredentials(secrets, "arn"), None, None, None)
    passwords = _connect_sequence(monkeypatch, [denied(), "connection"])
    with caplog.at_level("WARNING", logger="iotpipe"):
        assert params.connect() == "connection"
    assert passwords == ["old", "new"]
    assert [r.getMessage() for r in caplog.records] == [
        "the database refused the credentials; reading them again"
    ]
    assert secrets.reads == 2  # once when built, once after the refusal
    # Refused again with the fresh secret: a clear, non-transient error (not retried forever).
    passwords = _connect_sequence(monkeypatch, [denied(), denied()])
    with pytest.raises(StorageError, match="refused the credentials") as failure:
        params.connect()
    assert not isinstance(failure.value, TransientStorageError)


def test_a_static_password_is_not_retried_and_unreachable_is_transient(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    params = MySQLParams.from_url("mysql://u:p@h/db")
    passwords = _connect_sequence(monkeypatch, [denied()])
    with pytest.raises(StorageError, match="refused"):
        params.connect()
    assert passwords == ["p"]
    _connect_sequence(monkeypatch, [pymysql.err.OperationalError(2003, "Can't connect")])
    with pytest.raises(TransientStorageError):
        params.connect()


def test_iam_tokens_are_made_per_connection() -> None:
    import boto3

    client = boto3.client(
        "rds",
        region_name="us-east-1",
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="secret",  # noqa: S106 (a dummy key: signing is local)
    )
    tokens = IamTokenCredentials(client, "proxy.internal", 3306, "iotpipe_read")
    user, token = tokens.get()
    assert user == "iotpipe_read"
    assert token.startswith("proxy.internal:3306/?Action=connect&DBUser=iotpipe_read")
    assert "X-Amz-Signature=" in token


def test_a_mysql_url_is_read_whole_with_its_defaults_and_refused_when_it_is_not_one() -> None:
    url = (
        "mysql+pymysql://ing%40est:p%2Fw%3Ad@db.internal:3307/Xusage"
        "?local_infile=0&connect_timeout=2.5&read_timeout=30&ssl_ca=rds"
    )
    assert MySQLParams.from_url(url) == MySQLParams(
        host="db.internal",
        port=3307,
        user="ing@est",
        password="p/w:d",  # noqa: S106 (a dummy password in a test URL)
        database="Xusage",  # the name as written, only the path's slash taken off
        local_infile=False,
        connect_timeout=2.5,
        read_timeout=30.0,
        ssl_ca="rds",
    )
    assert MySQLParams.from_url("mariadb://db") == MySQLParams(
        host="db",
        port=3306,
        user="root",
        password="",
        database="iotpipe",
        local_infile=True,
        connect_timeout=5.0,
        read_timeout=600.0,
        ssl_ca=None,
    )
    for word, on in (("1", True), ("yes", True), ("false", False), ("no", False)):
        assert MySQLParams.from_url(f"mysql://db?local_infile={word}").local_infile is on
    with pytest.raises(StorageError) as refused:
        MySQLParams.from_url("postgresql://db/usage")
    assert str(refused.value) == "not a MySQL URL: scheme 'postgresql'"
    with pytest.raises(StorageError) as refused:
        MySQLParams.from_url("mysql:///usage")
    assert str(refused.value) == "the MySQL URL has no host"


def test_ssl_ca_in_a_url_turns_on_verification() -> None:
    assert MySQLParams.from_url("mysql://u@h/db")._tls() == {}
    tls = MySQLParams.from_url("mysql://u@h/db?ssl_ca=/etc/ca.pem")._tls()
    assert tls == {"ssl_ca": "/etc/ca.pem", "ssl_verify_cert": True, "ssl_verify_identity": True}
    assert "tls=verified" in repr(MySQLParams.from_url("mysql://u:secret@h/db?ssl_ca=rds"))
    assert "secret" not in repr(MySQLParams.from_url("mysql://u:secret@h/db?ssl_ca=rds"))
    assert repr(MySQLParams.from_url("mysql://u:secret@h:3307/db")) == (
        "MySQLParams(host='h', port=3307, database='db', tls=off)"
    )


def test_the_reader_url_takes_the_functions_credentials_and_tls() -> None:
    from iotpipe import bootstrap
    from iotpipe.config import Settings

    secrets = FakeSecrets({"username": "reader", "password": "pw", "host": "primary.internal"})
    deployed = Settings(
        db_secret_arn="arn",
        db_host="proxy.internal",
        db_port=3306,
        db_name="iotpipe",
        db_ssl_ca="rds",
        read_database_url="mysql://replica.internal:3307/fleet",
    )
    with bootstrap.configured(aws_client=lambda _service: secrets):
        store = bootstrap.read_store_for(deployed)
        params = store.params  # type: ignore[attr-defined]
        assert (params.host, params.port, params.database) == ("replica.internal", 3307, "fleet")
        assert params.ssl_ca == mysql.RDS_CA_BUNDLE
        assert params.credentials.get() == ("reader", "pw")
        writer = bootstrap.store_for(deployed).params  # type: ignore[attr-defined]
        assert (writer.host, writer.database) == ("proxy.internal", "iotpipe")

    # A URL with a user is a whole URL; a driver's --database-url replaces the reader too.
    local = Settings(read_database_url="mysql://ro:pw@127.0.0.1:3307/db?ssl_ca=/ca.pem")
    given = bootstrap.read_store_for(local).params  # type: ignore[attr-defined]
    assert (given.port, given.user, given.ssl_ca) == (3307, "ro", "/ca.pem")
    assert bootstrap.read_store_for(Settings()).__class__.__name__ == "SQLiteStore"
    with bootstrap.configured(read_database_url="mysql://ro@replica/db"):
        assert bootstrap.current_settings().read_database_url == "mysql://ro@replica/db"
        overridden = bootstrap.current_settings(database_url="sqlite:///x.db")
        assert overridden.read_database_url is None


def test_short_operations_back_off_exponentially_until_the_last_attempt(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A server that stays unreachable: every attempt fails to connect, the waits between
    # attempts double, and the last failure is final.
    import time

    from iotpipe.storage import database
    from iotpipe.storage.database import Database
    from iotpipe.storage.mysql import MYSQL

    waits: list[float] = []
    monkeypatch.setattr(time, "sleep", waits.append)

    def unreachable() -> Any:
        raise TransientStorageError("connection refused")

    with pytest.raises(TransientStorageError, match="database unavailable"):
        Database(MYSQL, unreachable, retries=4).run(lambda cursor: None)
    first = database.BACKOFF_SECONDS
    assert waits == [first, 2 * first, 4 * first]


def test_a_sqlite_store_creates_the_folders_of_its_path(tmp_path: Any) -> None:
    from iotpipe.storage.sqlite import SQLiteStore

    path = tmp_path / "a" / "b" / "iotpipe.db"
    store = SQLiteStore(path)
    try:
        store.db.run(lambda cursor: cursor.execute("SELECT 1"))
    finally:
        store.close()
    assert path.exists()


def test_workers_registering_one_dataset_at_once_take_turns(tmp_path: Any) -> None:
    # Four workers (fresh stores: nothing cached) create the same dataset at the same moment,
    # forty times over. Before its DDL ran in one write transaction, one round in about twenty
    # failed with "UNIQUE constraint failed: iotpipe_datasets.name" (seen in CI).
    import threading

    from iotpipe.contract import load_contract
    from iotpipe.storage.sqlite import SQLiteStore

    contract = load_contract("acme_usage")
    for round_ in range(40):
        stores = [SQLiteStore(tmp_path / f"r{round_}.db") for _ in range(4)]
        start = threading.Barrier(len(stores))
        errors: list[BaseException] = []

        def ensure(
            store: SQLiteStore, start: threading.Barrier, errors: list[BaseException]
        ) -> None:
            start.wait()
            try:
                store.ensure_schema(contract)
            except BaseException as exc:
                errors.append(exc)

        workers = [threading.Thread(target=ensure, args=(s, start, errors)) for s in stores]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        names = stores[0].db.run(
            lambda cursor: cursor.execute("SELECT name FROM iotpipe_datasets").fetchall()
        )
        for store in stores:
            store.close()
        assert errors == [], round_
        assert [tuple(n) for n in names] == [("acme_usage",)]


def test_sqlite_urls_name_relative_and_absolute_files() -> None:
    from iotpipe.storage.sqlite import sqlite_path

    assert sqlite_path("sqlite:///iotpipe.db") == Path("iotpipe.db")
    assert sqlite_path("sqlite:///data/iotpipe.db") == Path("data/iotpipe.db")
    assert sqlite_path("sqlite:////var/lib/iotpipe.db") == Path("/var/lib/iotpipe.db")
    assert sqlite_path("sqlite:iotpipe.db") == Path("iotpipe.db")  # no slashes: as written
    for url in ("sqlite:///", "sqlite://", "mysql://host/iotpipe.db", "iotpipe.db"):
        with pytest.raises(StorageError, match="not a SQLite URL with a file") as raised:
            sqlite_path(url)
        assert repr(url) in str(raised.value)


def test_file_locks_exclude_other_holders_until_released(tmp_path: Path) -> None:
    # Two FileLocks on one directory stand for two processes (each lock is its own open file).
    from iotpipe.storage.sqlite import FileLocks

    directory = tmp_path / "not" / "yet" / "there.locks"
    mine, theirs = FileLocks(directory), FileLocks(directory)
    assert mine.acquire(None, "obj-1") is True
    assert (directory / "obj-1.lock").stat().st_mode & 0o777 == 0o600  # the owner's alone
    assert mine.acquire(None, "obj-1") is False  # held already, by this store
    assert theirs.acquire(None, "obj-1") is False  # held by another
    assert theirs.acquire(None, "obj-2") is True  # another object is free
    mine.release("obj-1")
    assert theirs.acquire(None, "obj-1") is True
    mine.release("obj-1")  # not held: nothing happens
    theirs.release_all()
    assert mine.acquire(None, "obj-1") is True and mine.acquire(None, "obj-2") is True
    mine.release_all()


def test_a_sqlite_store_waits_for_the_write_lock_and_commits_itself(tmp_path: Path) -> None:
    # Writers queue for SQLite's one write lock: a minute's busy timeout and more retries
    # than the MySQL store; the store begins and commits its own transactions.
    from iotpipe.storage import database
    from iotpipe.storage.sqlite import BUSY_TIMEOUT_SECONDS, RETRIES, SQLiteStore

    store = SQLiteStore(tmp_path / "iotpipe.db")
    try:
        conn = store.db.connection()
        assert conn.isolation_level is None  # autocommit: no implicit BEGIN before writes
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == BUSY_TIMEOUT_SECONDS * 1000
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
        assert store.db.retries == RETRIES > database.RETRIES
    finally:
        store.close()


def test_a_closed_mysql_connection_is_retried_on_a_new_one(monkeypatch: pytest.MonkeyPatch) -> None:
    # PyMySQL raises InterfaceError on a connection that is already closed: open a new one.
    import time
    from unittest import mock

    from iotpipe.storage.database import Database
    from iotpipe.storage.mysql import MYSQL

    monkeypatch.setattr(time, "sleep", lambda seconds: None)
    opened: list[mock.MagicMock] = []

    def connect() -> mock.MagicMock:
        opened.append(mock.MagicMock())
        return opened[-1]

    calls: list[int] = []

    def operation(cursor: Any) -> str:
        calls.append(len(opened))
        if len(calls) == 1:
            raise pymysql.err.InterfaceError(0, "")
        return "done"

    assert Database(MYSQL, connect, lambda conn: None).run(operation) == "done"
    assert calls == [1, 2]  # the second attempt ran on a new connection

    def refused(cursor: Any) -> None:
        raise pymysql.err.ProgrammingError(1064, "syntax")

    with pytest.raises(pymysql.err.ProgrammingError):  # not transient: raised at once
        Database(MYSQL, connect, lambda conn: None).run(refused)


def test_a_user_the_admin_step_would_write_into_sql_must_be_plain(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from unittest import mock

    from iotpipe.storage.mysql import ensure_user

    db = mock.MagicMock()
    with pytest.raises(StorageError, match=r"database user name 'x; DROP' is not a plain"):
        ensure_user(db, "x; DROP", "pw", "ingest")
    with pytest.raises(StorageError, match=r"unknown database role 'root'"):
        ensure_user(db, "iotpipe_ingest", "pw", "root")
    assert not db.run.called
    cursor = mock.MagicMock()
    cursor.fetchone.return_value = ("iot-pipe",)
    db.run.side_effect = lambda operation: operation(cursor)
    with pytest.raises(StorageError, match=r"database name 'iot-pipe' is not a plain identifier"):
        ensure_user(db, "iotpipe_ingest", "pw", "ingest")
    assert [c.args[0] for c in cursor.execute.call_args_list] == ["SELECT DATABASE()"]


def test_an_operation_joining_the_open_transaction_waits_for_its_lock() -> None:
    # A load writes batches in a thread of its own through the open transaction's cursor
    # while holding `open_lock`; an operation that joins that transaction (the SQLite
    # store's category codes) runs only once the lock is free.
    from iotpipe.storage.database import Database
    from iotpipe.storage.sqlite import SQLITE

    db = Database(SQLITE, lambda: sqlite3.connect(":memory:", check_same_thread=False))
    ran = threading.Event()
    with db.transaction():
        db.open_lock.acquire()
        joiner = threading.Thread(target=lambda: db.run(lambda cursor: ran.set()))
        joiner.start()
        joiner.join(0.2)
        assert not ran.is_set()  # waiting for the writer
        db.open_lock.release()
        joiner.join(10.0)
        assert ran.is_set()


def test_a_failed_operation_s_writes_are_rolled_back_not_committed_by_the_next() -> None:
    # An operation that fails part-way (not a transient error: raised at once) leaves
    # nothing behind; the next operation on the same connection commits only its own work.
    from iotpipe.storage.database import Database
    from iotpipe.storage.sqlite import SQLITE

    db = Database(SQLITE, lambda: sqlite3.connect(":memory:"))
    db.run(lambda cursor: cursor.execute("CREATE TABLE t (n INTEGER)"))

    def fails(cursor: Any) -> None:
        cursor.execute("INSERT INTO t VALUES (1)")
        raise ValueError("a bug after the first statement")

    with pytest.raises(ValueError, match="a bug"):
        db.run(fails)
    db.run(lambda cursor: cursor.execute("INSERT INTO t VALUES (2)"))
    rows = db.run(lambda cursor: cursor.execute("SELECT n FROM t").fetchall())
    assert rows == [(2,)]
    db.close()
