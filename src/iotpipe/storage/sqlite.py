"""The embedded default store: stdlib sqlite3 in WAL mode, with the MySQL store's behaviour.

SQLite has one writer at a time, so a file load's transaction (``BEGIN IMMEDIATE``) serialises
writers, and category codes are assigned inside that same transaction (one connection).
"""

from __future__ import annotations

import datetime as dt
import fcntl
import os
import sqlite3
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from iotpipe.errors import StorageError
from iotpipe.storage.database import Database
from iotpipe.storage.dialect import SqlDialect
from iotpipe.storage.readings import InsertBulkPath
from iotpipe.storage.store import SqlStore

TIME_FORMAT = "%Y-%m-%d %H:%M:%S.%f"
FRAME_TIME_FORMAT = "%Y-%m-%d %H:%M:%S.%6f"  # the same, in Polars' strftime
BUSY_TIMEOUT_SECONDS = 60.0
# Writers queue for SQLite's single write lock; give a "locked" answer more patience.
RETRIES = 10


def _from_db_time(value: Any) -> dt.datetime | None:
    return None if value is None else dt.datetime.strptime(str(value), TIME_FORMAT)


SQLITE = SqlDialect(
    name="sqlite",
    placeholder="?",
    types={
        "char": "TEXT",
        "varchar": "TEXT",
        "int": "INTEGER",
        "bigint": "INTEGER",
        "double": "REAL",
        "bool": "INTEGER",
        "flag": "INTEGER",
        "text": "TEXT",
        "long_text": "TEXT",
        "time": "TEXT",
    },
    table_options="",
    clustered=" WITHOUT ROWID",  # clustered on (device_id, ts), like InnoDB
    begin_write="BEGIN IMMEDIATE",
    insert_ignore="INSERT OR IGNORE",
    for_update="",  # BEGIN IMMEDIATE already holds the only write lock
    upsert=("ON CONFLICT (`device_id`, `ts`) DO UPDATE SET {updates}", "excluded.{column}"),
    columns_sql="SELECT name, NULL FROM pragma_table_info(%s)",
    # cache_size: pages when positive, KiB when negative (the default, -2000)
    cache_sql=(
        "SELECT CASE WHEN cache_size < 0 THEN -1024 * cache_size"
        " ELSE cache_size * (SELECT page_size FROM pragma_page_size()) END"
        " FROM pragma_cache_size()"
    ),
    # Times are zero-padded text 'YYYY-MM-DD HH:MM:SS.ffffff': whole seconds through julianday
    # (rounded: exact to the second for any year), microseconds from the text.
    epoch_micros=(
        "(CAST(ROUND((julianday(substr({ts}, 1, 19)) - 2440587.5) * 86400) AS INTEGER)"
        " * 1000000 + CAST(substr({ts}, 21, 6) AS INTEGER))"
    ),
    bucket_index="(({us}) - ((({us}) % {w}) + {w}) % {w}) / {w}",  # % truncates toward zero
    epoch_seconds="CAST(ROUND((julianday(substr({ts}, 1, 19)) - 2440587.5) * 86400) AS INTEGER)",
    int_div="/",
    # isoformat pads the year to 4 digits (strftime's %Y does not, below 1000).
    to_db_time=lambda value: value.isoformat(sep=" ", timespec="microseconds"),
    from_db_time=_from_db_time,
    is_transient=lambda exc: isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc),
    is_missing_table=lambda exc: (
        isinstance(exc, sqlite3.OperationalError) and "no such table" in str(exc)
    ),
)


def sqlite_path(url: str) -> Path:
    """Return the file of a ``sqlite:///relative.db`` or ``sqlite:////absolute.db`` URL.

    Parameters
    ----------
    url
        The database URL.

    Returns
    -------
    Path
        The database file.
    """
    parts = urlsplit(url)
    if parts.scheme != "sqlite" or not parts.path or parts.path == "/":
        raise StorageError(f"not a SQLite URL with a file: {url!r}")
    return Path(parts.path[1:] if parts.path.startswith("/") else parts.path)


class FileLocks:
    """Claim locks as ``flock`` locks on one small file per object, beside the database.

    The OS releases a process's file locks when it dies, so a killed ``iotpipe ingest``
    leaves its object free. Each lock is its own open file, so two stores in one process
    (threads) exclude each other too.

    Parameters
    ----------
    directory
        Where the lock files live (created when first needed).
    """

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self._held: dict[str, int] = {}

    def acquire(self, cursor: Any, object_id: str) -> bool:
        """Take the lock unless any process (this store included) holds it."""
        if object_id in self._held:
            return False
        self._directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(self._directory / f"{object_id}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._held[object_id] = fd
        return True

    def release(self, object_id: str) -> None:
        """Unlock (closing the file releases the lock)."""
        fd = self._held.pop(object_id, None)
        if fd is not None:
            os.close(fd)

    def release_all(self) -> None:
        """Unlock everything this store holds."""
        for object_id in list(self._held):
            self.release(object_id)


class SQLiteStore(SqlStore):
    """`SqlStore` on a SQLite file (created when missing).

    Parameters
    ----------
    path
        The database file.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.locks = FileLocks(path.with_name(f"{path.name}.locks"))
        super().__init__(
            Database(SQLITE, self._connect, retries=RETRIES),
            self.locks,
            bulk=InsertBulkPath(SQLITE, FRAME_TIME_FORMAT),
        )

    @classmethod
    def from_url(cls, url: str) -> SQLiteStore:
        """Build a store from a ``sqlite:///`` URL."""
        return cls(sqlite_path(url))

    def close(self) -> None:
        """Release the claim locks and the connection."""
        self.locks.release_all()
        super().close()

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(
            self.path,
            timeout=BUSY_TIMEOUT_SECONDS,
            isolation_level=None,
            check_same_thread=False,
        )
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        return conn
