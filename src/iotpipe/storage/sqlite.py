"""The embedded default store: stdlib sqlite3 in WAL mode, with the MySQL store's behaviour.

SQLite has one writer at a time, so a file load's transaction (``BEGIN IMMEDIATE``) serialises
writers, and category codes are assigned inside that same transaction (one connection).
"""

from __future__ import annotations

import datetime as dt
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
    to_db_time=lambda value: value.strftime(TIME_FORMAT),
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


class SQLiteStore(SqlStore):
    """`SqlStore` on a SQLite file (created when missing).

    Parameters
    ----------
    path
        The database file.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        super().__init__(
            Database(SQLITE, self._connect, retries=RETRIES),
            bulk=InsertBulkPath(SQLITE, FRAME_TIME_FORMAT),
        )

    @classmethod
    def from_url(cls, url: str) -> SQLiteStore:
        """Build a store from a ``sqlite:///`` URL."""
        return cls(sqlite_path(url))

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
