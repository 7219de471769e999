"""What differs between the SQL engines iotpipe stores into, as one small value.

Everything else in `iotpipe.storage` (the ledger, the category dictionary, the dataset
registry, the readings queries) is written once against a `SqlDialect`: its placeholders, time
codec, column types, upsert and lock clauses, and error classification. The MySQL/MariaDB and
SQLite adapters each build one (docs/architecture.md, "Adding a database engine").

Every value is a bound parameter. Identifiers come only from a validated `DataContract`
(`iotpipe.contract.IDENTIFIER`) or from storage's own constants, and are backticked by `quote`
(SQLite accepts backticks too).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from iotpipe.contract import DEVICE_ID, IDENTIFIER, TS
from iotpipe.errors import StorageError

# Logical column types of the tables storage creates; each dialect maps them to SQL.
TYPE_KINDS = (
    "char",
    "varchar",
    "int",
    "bigint",
    "double",
    "bool",
    "flag",
    "text",
    "long_text",
    "time",
)


def _same_time(value: dt.datetime) -> Any:
    return value


def _time_or_none(value: Any) -> dt.datetime | None:
    return value if isinstance(value, dt.datetime) else None


def _never(exc: BaseException) -> bool:
    return False


@dataclass(frozen=True)
class SqlDialect:
    """One SQL engine's spelling of what storage needs.

    Attributes
    ----------
    name
        ``mysql`` or ``sqlite``.
    placeholder
        The driver's parameter marker; storage writes ``%s`` and `sql` translates.
    types
        `TYPE_KINDS` -> SQL type (``{n}`` stands for a length).
    table_options
        Appended to every CREATE TABLE (engine, character set).
    clustered
        Appended to readings tables so rows are stored in primary-key order.
    begin_write
        Starts a write transaction that holds the engine's write lock from the start.
    insert_ignore
        ``INSERT`` that skips rows whose key exists.
    for_update
        Row-lock clause of a SELECT inside a write transaction (empty where the transaction
        already holds the only write lock).
    upsert
        Template of ``INSERT ... VALUES (...)``'s conflict clause, ``{updates}`` being the
        assignments, and of one assignment, ``{column}`` being a quoted column.
    columns_sql
        One-parameter SELECT of a table's columns: (name, character length or NULL).
    cache_sql
        SELECT of the bytes of table pages the engine keeps in memory (its buffer pool or
        page cache); a load out of key order writes only as many rows as fit a share of it
        straight into the table (`iotpipe.storage.readings.FileLoad`). Empty: unknown.
    widen_sql
        ``ALTER TABLE`` template that gives ``{column}`` of ``{table}`` a wider ``{type}``
        (None: the engine's text columns have no length).
    inline_indexes
        Secondary indexes go inside CREATE TABLE (MySQL 8.0 has no CREATE INDEX IF NOT
        EXISTS); otherwise they are separate statements.
    lock_sql
        One-parameter SELECTs that take and release a server-wide named lock (None: the
        engine's write lock already serialises schema changes).
    to_db_time, from_db_time
        The time codec (naive UTC datetimes in and out).
    epoch_micros
        SQL of a stored time ``{ts}`` as integer microseconds since 1970 (exact, any year).
    bucket_index
        SQL of ``floor({us} / {w})`` for integers (``{w}`` > 0), exact for negative ``{us}``.
    epoch_seconds
        SQL of a stored time ``{ts}`` as whole seconds since 1970, exact from 1970 on.
    int_div
        The integer division operator (it truncates: floor for non-negative numbers).
    finite_only
        The engine stores no infinite or NaN float (MySQL refuses them; SQLite keeps them).
    loose_index_scan
        ``GROUP BY device_id`` with ``MIN(ts)``/``MAX(ts)`` reads two keys per device (not
        every row): MySQL and MariaDB's "index for group-by".
    is_transient
        Whether an error is worth retrying (lost connection, deadlock, database busy).
    is_missing_table, is_duplicate_column
        Classifiers of two errors schema creation tolerates.
    """

    name: str
    placeholder: str
    types: Mapping[str, str]
    table_options: str
    clustered: str
    begin_write: str
    insert_ignore: str
    for_update: str
    upsert: tuple[str, str]
    columns_sql: str
    cache_sql: str = ""
    widen_sql: str | None = None
    inline_indexes: bool = False
    lock_sql: tuple[str, str] | None = None
    epoch_micros: str = ""
    bucket_index: str = ""
    epoch_seconds: str = ""
    int_div: str = "/"
    finite_only: bool = False
    loose_index_scan: bool = False
    to_db_time: Callable[[dt.datetime], Any] = _same_time
    from_db_time: Callable[[Any], dt.datetime | None] = _time_or_none
    is_transient: Callable[[BaseException], bool] = _never
    is_missing_table: Callable[[BaseException], bool] = _never
    is_duplicate_column: Callable[[BaseException], bool] = _never

    def sql(self, statement: str) -> str:
        """Translate a statement written with ``%s`` placeholders to this driver's."""
        return statement if self.placeholder == "%s" else statement.replace("%s", self.placeholder)

    def bucket_sql(self, column: str, width_seconds: int, *, since_1970: bool = False) -> str:
        """Return SQL of the index of the ``width_seconds`` bucket a time column falls in.

        ``since_1970``: every time compared is from 1970 on, so whole seconds divided with
        truncation give the floor (cheaper); otherwise microseconds with an exact floor.
        """
        if since_1970:
            seconds = self.epoch_seconds.format(ts=quote(column))
            return f"{seconds} {self.int_div} {int(width_seconds)}"
        us = self.epoch_micros.format(ts=quote(column))
        return self.bucket_index.format(us=us, w=int(width_seconds) * 1_000_000)

    def type(self, kind: str, size: int | None = None) -> str:
        """Return the SQL type of a logical column type (`TYPE_KINDS`)."""
        return self.types[kind].format(n=size)

    def upsert_sql(self, table: str, columns: Sequence[str]) -> str:
        """Return an ``INSERT ... VALUES`` statement that upserts on (device_id, ts)."""
        names = ", ".join(quote(c) for c in columns)
        marks = ", ".join([self.placeholder] * len(columns))
        clause, assignment = self.upsert
        updates = ", ".join(
            f"{quote(c)} = {assignment.format(column=quote(c))}"
            for c in columns
            if c not in (DEVICE_ID, TS)
        )
        return f"INSERT INTO {quote(table)} ({names}) VALUES ({marks}) " + clause.format(
            updates=updates
        )

    def create_table(
        self,
        table: str,
        columns: Sequence[tuple[str, str]],
        *,
        primary_key: Sequence[str],
        unique: Mapping[str, Sequence[str]] | None = None,
        indexes: Mapping[str, Sequence[str]] | None = None,
        clustered: bool = False,
    ) -> list[str]:
        """Return the statements that create a table (when missing) and its indexes.

        Parameters
        ----------
        table
            The table name.
        columns
            (name, SQL type with nullability) pairs.
        primary_key
            Key columns.
        unique, indexes
            Index name -> columns.
        clustered
            Ask for rows stored in key order (`clustered`).

        Returns
        -------
        list[str]
            CREATE TABLE IF NOT EXISTS first, then any separate CREATE INDEX statements.
        """
        body = [f"{quote(name)} {sql_type}" for name, sql_type in columns]
        body.append(f"PRIMARY KEY ({_names(primary_key)})")
        body.extend(
            f"CONSTRAINT {quote(name)} UNIQUE ({_names(cols)})"
            for name, cols in (unique or {}).items()
        )
        if self.inline_indexes:
            body.extend(
                f"KEY {quote(name)} ({_names(cols)})" for name, cols in (indexes or {}).items()
            )
        options = self.table_options + (self.clustered if clustered else "")
        body_sql = ",\n  ".join(body)
        statements = [f"CREATE TABLE IF NOT EXISTS {quote(table)} (\n  {body_sql}\n){options}"]
        if not self.inline_indexes:
            statements.extend(
                f"CREATE INDEX IF NOT EXISTS {quote(name)} ON {quote(table)} ({_names(cols)})"
                for name, cols in (indexes or {}).items()
            )
        return statements


def quote(identifier: str) -> str:
    """Backtick an identifier after checking it against the contract pattern.

    Parameters
    ----------
    identifier
        A table or column name.

    Returns
    -------
    str
        The quoted identifier.

    Raises
    ------
    StorageError
        If the name is not a valid identifier (never interpolated otherwise).
    """
    if not IDENTIFIER.match(identifier):
        raise StorageError(f"refusing an unsafe SQL identifier: {identifier!r}")
    return f"`{identifier}`"


def _names(columns: Sequence[str]) -> str:
    return ", ".join(quote(c) for c in columns)
