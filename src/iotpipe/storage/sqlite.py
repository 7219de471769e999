"""The embedded default store: stdlib sqlite3 in WAL mode, with the MySQL store's behaviour.

SQLite has one writer at a time, so a file load's transaction (``BEGIN IMMEDIATE``) serialises
writers, and category codes are assigned inside that same transaction.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from iotpipe.contract import DEVICE_ID, TS, DataContract, Field
from iotpipe.errors import StorageError
from iotpipe.storage.base import (
    CATEGORIES,
    CATEGORY_SEQ,
    DATASETS,
    LEDGER,
    SqlStore,
    quote,
    rows_for_insert,
)

if TYPE_CHECKING:  # Polars is the ingest engine; retrieval never imports it
    import polars as pl

TIME_FORMAT = "%Y-%m-%d %H:%M:%S.%f"
BUSY_TIMEOUT_SECONDS = 60.0


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
    """`Store` on a SQLite file.

    Parameters
    ----------
    path
        The database file (created when missing).
    """

    # Writers queue for SQLite's single write lock; give a "locked" answer more patience.
    transient_retries = 10

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        self._conn: sqlite3.Connection | None = None

    @classmethod
    def from_url(cls, url: str) -> SQLiteStore:
        """Build a store from a ``sqlite:///`` URL."""
        return cls(sqlite_path(url))

    def close(self) -> None:
        """Close the connection."""
        self._reset()

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                self.path,
                timeout=BUSY_TIMEOUT_SECONDS,
                isolation_level=None,
                check_same_thread=False,
            )
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            self._conn = conn
        return self._conn

    def _reset(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._conn = None

    def _is_transient(self, exc: BaseException) -> bool:
        return isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc)

    def _sql(self, statement: str) -> str:
        return statement.replace("%s", "?")

    def _to_db_time(self, value: dt.datetime) -> Any:
        return value.strftime(TIME_FORMAT)

    def _from_db_time(self, value: Any) -> dt.datetime | None:
        if value is None:
            return None
        return dt.datetime.strptime(str(value), TIME_FORMAT)

    def _for_update(self) -> str:
        return ""

    def _begin_write(self, cursor: Any) -> None:
        cursor.execute("BEGIN IMMEDIATE")

    def _table_options(self) -> str:
        return " WITHOUT ROWID"  # clustered on (device_id, ts), like InnoDB

    def _shared_ddl(self) -> list[str]:
        return [
            f"""CREATE TABLE IF NOT EXISTS {LEDGER} (
  object_id TEXT NOT NULL PRIMARY KEY,
  dataset TEXT NOT NULL,
  source TEXT NOT NULL,
  version TEXT NOT NULL,
  size INTEGER NULL,
  status TEXT NOT NULL,
  owner TEXT NULL,
  lease_until TEXT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  rows_read INTEGER NULL,
  rows_loaded INTEGER NULL,
  rows_rejected INTEGER NULL,
  error TEXT NULL,
  report TEXT NULL,
  claimed_at TEXT NULL,
  finished_at TEXT NULL
)""",
            f"CREATE INDEX IF NOT EXISTS ledger_status ON {LEDGER} (status, lease_until)",
            f"""CREATE TABLE IF NOT EXISTS {CATEGORIES} (
  dataset TEXT NOT NULL,
  column_name TEXT NOT NULL,
  value TEXT NOT NULL,
  code INTEGER NOT NULL,
  PRIMARY KEY (dataset, column_name, value),
  UNIQUE (dataset, column_name, code)
)""",
            f"""CREATE TABLE IF NOT EXISTS {CATEGORY_SEQ} (
  dataset TEXT NOT NULL,
  column_name TEXT NOT NULL,
  last_code INTEGER NOT NULL,
  PRIMARY KEY (dataset, column_name)
)""",
            f"""CREATE TABLE IF NOT EXISTS {DATASETS} (
  name TEXT NOT NULL PRIMARY KEY,
  table_name TEXT NOT NULL,
  contract TEXT NOT NULL,
  updated_at TEXT NOT NULL
)""",
        ]

    def _column_type(self, field: Field | None, column: str) -> str:
        if column in (DEVICE_ID, TS):
            return "TEXT NOT NULL"
        if field is None:
            return "INTEGER NULL" if column.endswith("_code") else "INTEGER NOT NULL DEFAULT 0"
        if field.type == "number":
            return "REAL NULL"
        if field.type in ("integer", "boolean"):
            return "INTEGER NULL"
        return "TEXT NULL"

    def _existing_columns(self, cursor: Any, table: str) -> set[str]:
        cursor.execute(f"PRAGMA table_info({quote(table)})")
        return {str(r[1]) for r in cursor.fetchall()}

    def _upsert_sql(self, table: str, columns: Sequence[str]) -> str:
        names = ", ".join(quote(c) for c in columns)
        marks = ", ".join(["?"] * len(columns))
        updates = ", ".join(
            f"{quote(c)} = excluded.{quote(c)}" for c in columns if c not in (DEVICE_ID, TS)
        )
        return (
            f"INSERT INTO {quote(table)} ({names}) VALUES ({marks}) "
            f"ON CONFLICT ({quote(DEVICE_ID)}, {quote(TS)}) DO UPDATE SET {updates}"
        )

    def _bulk_upsert(self, cursor: Any, contract: DataContract, rows: pl.DataFrame) -> None:
        import polars as pl

        times = [name for name, dtype in rows.schema.items() if isinstance(dtype, pl.Datetime)]
        if times:
            rows = rows.with_columns(pl.col(times).dt.strftime("%Y-%m-%d %H:%M:%S.%6f"))
        cursor.executemany(self._upsert_sql(contract.table, rows.columns), rows_for_insert(rows))

    def _codes_locked(self, dataset: str, column: str, values: Sequence[str]) -> Mapping[str, int]:
        def assign(cursor: Any) -> Mapping[str, int]:
            cursor.execute(
                f"INSERT OR IGNORE INTO {CATEGORY_SEQ} (dataset, column_name, last_code) "
                "VALUES (?, ?, 0)",
                (dataset, column),
            )
            return self._assign_codes(cursor, dataset, column, values)

        if self._load_cursor is not None:
            # Inside a file load this connection already holds SQLite's write lock.
            return assign(self._load_cursor)

        def run(cursor: Any) -> Mapping[str, int]:
            self._begin_write(cursor)
            return assign(cursor)

        return self._retrying(run)
