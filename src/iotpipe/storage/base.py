"""The Store port and the SQL logic both stores share (schema, ledger, categories, queries).

Services depend on `Store` only. `SqlStore` implements it once for any DB-API connection; the
MySQL and SQLite adapters supply connections, column types, the upsert statement and their
bulk-load path through a handful of private hooks, in the manner of Powertools' persistence
layer (public methods call private abstract ones).

Every value is a bound parameter. Identifiers come only from a validated `DataContract`
(`contract.IDENTIFIER`) or from this module's constants, and are backticked (SQLite accepts
backticks too).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar

from iotpipe.contract import (
    DEVICE_ID,
    IDENTIFIER,
    TS,
    DataContract,
    Field,
    contract_from_dict,
    contract_to_dict,
)
from iotpipe.errors import StorageError, TransientStorageError
from iotpipe.stats import NumericStats

if TYPE_CHECKING:  # Polars is the ingest engine; retrieval never imports it
    import polars as pl

LEDGER = "iotpipe_ledger"
CATEGORIES = "iotpipe_categories"
CATEGORY_SEQ = "iotpipe_category_seq"
DATASETS = "iotpipe_datasets"
MAX_CATEGORY_LENGTH = 255
RETRIES = 5
BACKOFF_SECONDS = 0.2

ClaimStatus = Literal["claimed", "skipped", "busy"]
T = TypeVar("T")


@dataclass(frozen=True)
class ObjectRef:
    """One version of one source object: what the ledger keys on.

    Attributes
    ----------
    source
        ``s3://bucket/key`` or ``file:///absolute/path``.
    version
        The S3 ETag (plus version id when the bucket is versioned) or a content hash.
    size
        Bytes, when known.
    """

    source: str
    version: str
    size: int | None = None

    @property
    def object_id(self) -> str:
        """A fixed-length key for the ledger (S3 keys can be 1 KB, too long to index)."""
        return hashlib.sha256(f"{self.source}\n{self.version}".encode()).hexdigest()


@dataclass(frozen=True)
class Claim:
    """The outcome of claiming an object version in the ledger."""

    status: ClaimStatus
    ref: ObjectRef
    owner: str
    attempts: int = 0


@dataclass(frozen=True)
class LedgerEntry:
    """A ledger row."""

    object_id: str
    dataset: str
    source: str
    version: str
    status: str
    owner: str | None
    lease_until: dt.datetime | None
    attempts: int
    rows_read: int | None
    rows_loaded: int | None
    rows_rejected: int | None
    error: str | None
    report: dict[str, Any] | None
    claimed_at: dt.datetime | None
    finished_at: dt.datetime | None


class Loader(Protocol):
    """An open file load: one database transaction that ends committed or rolled back."""

    def upsert(self, rows: pl.DataFrame) -> int:
        """Upsert encoded rows (columns in `DataContract.output_columns` order)."""
        ...

    def finish(self, report: Mapping[str, Any]) -> None:
        """Mark the object loaded, in the same transaction as its rows."""
        ...


class Store(Protocol):
    """What the ingest and retrieval services need from storage."""

    def ensure_schema(self, contract: DataContract) -> None:
        """Create the dataset's table (or add new columns) and register its contract."""
        ...

    def dataset(self, name: str) -> DataContract | None:
        """Return a registered dataset's contract, or None."""
        ...

    def claim(self, ref: ObjectRef, dataset: str, lease_seconds: float, owner: str) -> Claim:
        """Claim an object version for loading (see `SqlStore.claim`)."""
        ...

    def fail(self, claim: Claim, error: str, report: Mapping[str, Any] | None) -> None:
        """Record that a claimed object failed."""
        ...

    def load(self, claim: Claim, contract: DataContract) -> Any:
        """Open a `Loader` as a context manager: commit on success, roll back on error."""
        ...

    def codes(self, dataset: str, column: str, values: Sequence[str]) -> Mapping[str, int]:
        """Return category codes (see `iotpipe.encode.CategoryDictionary`)."""
        ...

    def ledger_entry(self, ref: ObjectRef) -> LedgerEntry | None:
        """Return the ledger row of an object version, if any."""
        ...

    def count_and_stats(
        self, contract: DataContract, device_id: str, start: dt.datetime, end: dt.datetime
    ) -> tuple[int, dict[str, NumericStats]]:
        """Row count and per-numeric-field stats over an inclusive range."""
        ...

    def page(
        self,
        contract: DataContract,
        device_id: str,
        *,
        start: dt.datetime,
        end: dt.datetime,
        after: dt.datetime | None,
        limit: int,
    ) -> list[dict[str, Any]]:
        """Up to ``limit`` rows with ``start <= ts <= end`` and ``ts > after``, by ts."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


def new_owner() -> str:
    """Return a unique claim-owner token for one worker."""
    return uuid.uuid4().hex


def utcnow() -> dt.datetime:
    """Naive UTC now (never the host's local time)."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


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


class SqlStore(ABC):
    """Shared SQL implementation of `Store` over a DB-API 2 connection.

    Subclasses provide the connection, the SQL types and upsert syntax, and the bulk path.
    The SQL here uses ``%s`` placeholders; `_sql` translates for drivers that use ``?``.
    """

    transient_retries = RETRIES

    def __init__(self) -> None:
        self._contracts: dict[str, DataContract] = {}
        self._load_cursor: Any = None  # the cursor of the open file load, if any
        self._ensured: dict[str, DataContract] = {}

    # -- hooks ---------------------------------------------------------------------------------

    @abstractmethod
    def _connection(self) -> Any:
        """Return a live connection (reconnecting when needed), not in autocommit mode."""

    @abstractmethod
    def _reset(self) -> None:
        """Drop the current connection after an error that may have broken it."""

    @abstractmethod
    def _is_transient(self, exc: BaseException) -> bool:
        """Tell whether an error is worth retrying (lost connection, deadlock, busy)."""

    @abstractmethod
    def _column_type(self, field: Field | None, column: str) -> str:
        """Return the SQL type of an output column (``field`` is None if generated)."""

    @abstractmethod
    def _upsert_sql(self, table: str, columns: Sequence[str]) -> str:
        """Return an INSERT ... VALUES statement that upserts on (device_id, ts)."""

    @abstractmethod
    def _begin_write(self, cursor: Any) -> None:
        """Start a write transaction."""

    @abstractmethod
    def _bulk_upsert(self, cursor: Any, contract: DataContract, rows: pl.DataFrame) -> None:
        """Upsert encoded rows inside the open transaction (the fast path)."""

    @abstractmethod
    def _existing_columns(self, cursor: Any, table: str) -> set[str]:
        """Columns the table has now (empty when it does not exist)."""

    @abstractmethod
    def _codes_locked(self, dataset: str, column: str, values: Sequence[str]) -> Mapping[str, int]:
        """Assign/fetch category codes under the store's serialisation."""

    def _sql(self, statement: str) -> str:
        return statement

    def _to_db_time(self, value: dt.datetime) -> Any:
        return value

    def _from_db_time(self, value: Any) -> dt.datetime | None:
        return value if isinstance(value, dt.datetime) or value is None else None

    # -- retries ---------------------------------------------------------------------------------

    def _retrying(self, operation: Callable[[Any], T]) -> T:
        """Run ``operation(cursor)`` in its own transaction, retrying transient errors."""
        delay = BACKOFF_SECONDS
        for attempt in range(1, self.transient_retries + 1):
            conn = None
            try:
                conn = self._connection()
                with _closing_cursor(conn) as cursor:
                    result = operation(cursor)
                conn.commit()
                return result
            except Exception as exc:
                self._rollback_quietly(conn)
                if not self._is_transient(exc):
                    raise
                self._reset()
                if attempt == self.transient_retries:
                    raise TransientStorageError(f"database unavailable: {exc}") from exc
                time.sleep(delay)
                delay *= 2
        raise AssertionError("unreachable")

    def _rollback_quietly(self, conn: Any) -> None:
        if conn is None:
            return
        try:
            conn.rollback()
        except Exception:  # the connection may be gone; _reset() follows
            self._reset()

    # -- schema ---------------------------------------------------------------------------------

    def ensure_schema(self, contract: DataContract) -> None:
        """Create the dataset table and the shared tables; add columns a contract gained.

        Parameters
        ----------
        contract
            The dataset's contract; it is also stored, so retrieval can use it.
        """

        def run(cursor: Any) -> None:
            for statement in self._shared_ddl():
                cursor.execute(statement)
            table = contract.table
            existing = self._existing_columns(cursor, table)
            columns = self._table_columns(contract)
            if not existing:
                cursor.execute(self._create_table_sql(table, columns))
            else:
                for name, sql_type in columns:
                    if name not in existing:
                        cursor.execute(
                            f"ALTER TABLE {quote(table)} ADD COLUMN {quote(name)} {sql_type}"
                        )
            document = json.dumps(contract_to_dict(contract), sort_keys=True)
            cursor.execute(self._sql(f"DELETE FROM {DATASETS} WHERE name = %s"), (contract.name,))
            cursor.execute(
                self._sql(
                    f"INSERT INTO {DATASETS} (name, table_name, contract, updated_at) "
                    "VALUES (%s, %s, %s, %s)"
                ),
                (contract.name, table, document, self._to_db_time(utcnow())),
            )

        if self._ensured.get(contract.name) == contract:
            return  # already done by this process (warm Lambda invocations skip the DDL)
        self._retrying(run)
        self._contracts[contract.name] = contract
        self._ensured[contract.name] = contract

    def _table_columns(self, contract: DataContract) -> list[tuple[str, str]]:
        by_name = {f.name: f for f in contract.fields}
        return [
            (column, self._column_type(by_name.get(column), column))
            for column in contract.output_columns
        ]

    def _create_table_sql(self, table: str, columns: list[tuple[str, str]]) -> str:
        body = ",\n  ".join(f"{quote(name)} {sql_type}" for name, sql_type in columns)
        return (
            f"CREATE TABLE IF NOT EXISTS {quote(table)} (\n  {body},\n"
            f"  PRIMARY KEY ({quote(DEVICE_ID)}, {quote(TS)})\n){self._table_options()}"
        )

    def _table_options(self) -> str:
        return ""

    @abstractmethod
    def _shared_ddl(self) -> list[str]:
        """CREATE TABLE IF NOT EXISTS statements of the ledger, categories and datasets."""

    def dataset(self, name: str) -> DataContract | None:
        """Return the contract a dataset was registered with, or None.

        Parameters
        ----------
        name
            The dataset (contract) name.

        Returns
        -------
        DataContract or None
            None when no such dataset was ever loaded or initialised.
        """
        if name in self._contracts:
            return self._contracts[name]

        def run(cursor: Any) -> Any:
            try:
                cursor.execute(
                    self._sql(f"SELECT contract FROM {DATASETS} WHERE name = %s"), (name,)
                )
            except Exception as exc:
                if self._is_missing_table(exc):
                    return None
                raise
            return cursor.fetchone()

        row = self._retrying(run)
        if row is None:
            return None
        contract = contract_from_dict(json.loads(row[0]))
        self._contracts[name] = contract
        return contract

    def _is_missing_table(self, exc: BaseException) -> bool:
        return "no such table" in str(exc) or "doesn't exist" in str(exc)

    @abstractmethod
    def close(self) -> None:
        """Release connections."""

    # -- ledger ---------------------------------------------------------------------------------

    def claim(self, ref: ObjectRef, dataset: str, lease_seconds: float, owner: str) -> Claim:
        """Claim an object version for loading.

        A version already loaded is ``skipped``. A live claim held by another owner is
        ``busy``. Otherwise (new, failed, lease expired, or our own claim) it is ``claimed``
        with a fresh lease.

        Parameters
        ----------
        ref
            The object version.
        dataset
            Its dataset.
        lease_seconds
            How long the claim protects the load from other workers.
        owner
            This worker's token (`new_owner`).

        Returns
        -------
        Claim
            The outcome.
        """
        object_id = ref.object_id

        def run(cursor: Any) -> Claim:
            now = utcnow()
            lease = self._to_db_time(now + dt.timedelta(seconds=lease_seconds))
            self._begin_write(cursor)
            cursor.execute(
                self._sql(
                    f"SELECT status, owner, lease_until, attempts FROM {LEDGER} "
                    f"WHERE object_id = %s{self._for_update()}"
                ),
                (object_id,),
            )
            row = cursor.fetchone()
            if row is None:
                cursor.execute(
                    self._sql(
                        f"INSERT INTO {LEDGER} (object_id, dataset, source, version, size, "
                        "status, owner, lease_until, attempts, claimed_at) "
                        "VALUES (%s, %s, %s, %s, %s, 'loading', %s, %s, 1, %s)"
                    ),
                    (
                        object_id,
                        dataset,
                        ref.source,
                        ref.version,
                        ref.size,
                        owner,
                        lease,
                        self._to_db_time(now),
                    ),
                )
                return Claim("claimed", ref, owner, 1)
            status, holder, lease_until, attempts = row
            if status == "loaded":
                return Claim("skipped", ref, owner, attempts)
            lease_until = self._from_db_time(lease_until)
            live = status == "loading" and lease_until is not None and lease_until > now
            if live and holder != owner:
                return Claim("busy", ref, holder or "", attempts)
            cursor.execute(
                self._sql(
                    f"UPDATE {LEDGER} SET status = 'loading', owner = %s, lease_until = %s, "
                    "attempts = attempts + 1, claimed_at = %s, error = NULL "
                    "WHERE object_id = %s"
                ),
                (owner, lease, self._to_db_time(now), object_id),
            )
            return Claim("claimed", ref, owner, attempts + 1)

        return self._retrying(run)

    def _for_update(self) -> str:
        return " FOR UPDATE"

    def fail(self, claim: Claim, error: str, report: Mapping[str, Any] | None) -> None:
        """Record a failure of our claim (a later delivery may claim it again).

        Parameters
        ----------
        claim
            Our claim.
        error
            What went wrong.
        report
            The quality report so far, if any.
        """

        def run(cursor: Any) -> None:
            cursor.execute(
                self._sql(
                    f"UPDATE {LEDGER} SET status = 'failed', error = %s, report = %s, "
                    "lease_until = NULL, finished_at = %s "
                    "WHERE object_id = %s AND owner = %s AND status <> 'loaded'"
                ),
                (
                    error[:4000],
                    json.dumps(report) if report else None,
                    self._to_db_time(utcnow()),
                    claim.ref.object_id,
                    claim.owner,
                ),
            )

        self._retrying(run)

    def ledger_entry(self, ref: ObjectRef) -> LedgerEntry | None:
        """Return the ledger row of an object version.

        Parameters
        ----------
        ref
            The object version.

        Returns
        -------
        LedgerEntry or None
            None when the version was never claimed.
        """

        def run(cursor: Any) -> Any:
            cursor.execute(
                self._sql(
                    "SELECT object_id, dataset, source, version, status, owner, lease_until, "
                    "attempts, rows_read, rows_loaded, rows_rejected, error, report, "
                    f"claimed_at, finished_at FROM {LEDGER} WHERE object_id = %s"
                ),
                (ref.object_id,),
            )
            return cursor.fetchone()

        row = self._retrying(run)
        if row is None:
            return None
        values = list(row)
        for i in (6, 13, 14):
            values[i] = self._from_db_time(values[i])
        values[12] = json.loads(values[12]) if values[12] else None
        return LedgerEntry(*values)

    # -- loading ----------------------------------------------------------------------------

    @contextmanager
    def load(self, claim: Claim, contract: DataContract) -> Iterator[Loader]:
        """Open one transaction for a whole file: rows and the ledger's "loaded" together.

        Parameters
        ----------
        claim
            Our claim on the object.
        contract
            The dataset's contract.

        Yields
        ------
        Loader
            Call ``upsert`` per batch and ``finish`` once. Leaving the block normally
            commits; an exception rolls everything back (the ledger is not "loaded").
        """
        conn = self._connection()
        cursor = conn.cursor()
        loader = _SqlLoader(self, cursor, claim, contract)
        try:
            self._begin_write(cursor)
            self._load_cursor = cursor
            yield loader
            if not loader.finished:
                raise StorageError("load ended without finish(): rolled back")
            conn.commit()
        except Exception as exc:
            self._rollback_quietly(conn)
            if self._is_transient(exc):
                self._reset()
                raise TransientStorageError(f"load interrupted: {exc}") from exc
            raise
        finally:
            self._load_cursor = None
            try:
                cursor.close()
            except Exception:  # the connection may be gone
                self._reset()

    def _mark_loaded(self, cursor: Any, claim: Claim, report: Mapping[str, Any]) -> None:
        cursor.execute(
            self._sql(
                f"UPDATE {LEDGER} SET status = 'loaded', rows_read = %s, rows_loaded = %s, "
                "rows_rejected = %s, report = %s, error = NULL, lease_until = NULL, "
                "finished_at = %s WHERE object_id = %s AND owner = %s"
            ),
            (
                report.get("rows_read"),
                report.get("rows_loaded"),
                report.get("rows_rejected"),
                json.dumps(report),
                self._to_db_time(utcnow()),
                claim.ref.object_id,
                claim.owner,
            ),
        )
        if cursor.rowcount != 1:
            raise StorageError("the claim was taken over by another worker; rolled back")

    # -- categories -----------------------------------------------------------------------------

    def codes(self, dataset: str, column: str, values: Sequence[str]) -> Mapping[str, int]:
        """Return the code of every value, giving new values the next codes (never reused).

        Parameters
        ----------
        dataset, column
            Which vocabulary.
        values
            Distinct values, in the order new ones should be numbered.

        Returns
        -------
        Mapping[str, int]
            Codes for all ``values``.
        """
        if not values:
            return {}
        for value in values:
            if len(value) > MAX_CATEGORY_LENGTH:
                raise StorageError(f"category value over {MAX_CATEGORY_LENGTH} characters")
        return self._codes_locked(dataset, column, values)

    def _assign_codes(
        self, cursor: Any, dataset: str, column: str, values: Sequence[str]
    ) -> dict[str, int]:
        """Assign codes; the caller holds the vocabulary's lock (row lock or write lock)."""
        found: dict[str, int] = {}
        for chunk in _chunks(list(values), 500):
            marks = ", ".join(["%s"] * len(chunk))
            cursor.execute(
                self._sql(
                    f"SELECT value, code FROM {CATEGORIES} WHERE dataset = %s AND "
                    f"column_name = %s AND value IN ({marks})"
                ),
                (dataset, column, *chunk),
            )
            found.update({value: int(code) for value, code in cursor.fetchall()})
        new = [v for v in values if v not in found]
        if new:
            cursor.execute(
                self._sql(
                    f"SELECT last_code FROM {CATEGORY_SEQ} WHERE dataset = %s AND column_name = %s"
                ),
                (dataset, column),
            )
            last = int(cursor.fetchone()[0])
            rows = [(dataset, column, value, last + i) for i, value in enumerate(new, start=1)]
            cursor.executemany(
                self._sql(
                    f"INSERT INTO {CATEGORIES} (dataset, column_name, value, code) "
                    "VALUES (%s, %s, %s, %s)"
                ),
                rows,
            )
            cursor.execute(
                self._sql(
                    f"UPDATE {CATEGORY_SEQ} SET last_code = %s "
                    "WHERE dataset = %s AND column_name = %s"
                ),
                (last + len(new), dataset, column),
            )
            found.update({value: code for _, _, value, code in rows})
        return {value: found[value] for value in values}

    # -- queries ------------------------------------------------------------------------------

    def count_and_stats(
        self, contract: DataContract, device_id: str, start: dt.datetime, end: dt.datetime
    ) -> tuple[int, dict[str, NumericStats]]:
        """Count rows and summarise every numeric field over ``start <= ts <= end``.

        Count, mean, min and max are aggregated in SQL in one pass over the primary-key
        range; each median is the middle value(s) by ``ORDER BY ... LIMIT 2 OFFSET``, so it
        is exact (see docs/benchmarks.md for the comparison with fetching every value).

        Parameters
        ----------
        contract
            The dataset.
        device_id
            The device.
        start, end
            Naive UTC bounds, both inclusive.

        Returns
        -------
        tuple
            The row count and a `NumericStats` per numeric field.
        """
        table = quote(contract.table)
        numeric = [f.name for f in contract.numeric_fields]
        where = f"{quote(DEVICE_ID)} = %s AND {quote(TS)} BETWEEN %s AND %s"
        params = (device_id, self._to_db_time(start), self._to_db_time(end))
        aggregates = ", ".join(
            # "+ 0E0": MySQL averages a BIGINT as a 4-decimal DECIMAL; this keeps it a DOUBLE.
            f"COUNT({quote(c)}), AVG({quote(c)} + 0E0), MIN({quote(c)}), MAX({quote(c)})"
            for c in numeric
        )

        def run(cursor: Any) -> tuple[int, dict[str, NumericStats]]:
            cursor.execute(
                self._sql(
                    f"SELECT COUNT(*){', ' if numeric else ''}{aggregates} "
                    f"FROM {table} WHERE {where}"
                ),
                params,
            )
            row = cursor.fetchone()
            total = int(row[0])
            stats: dict[str, NumericStats] = {}
            for i, column in enumerate(numeric):
                count, mean, low, high = row[1 + 4 * i : 5 + 4 * i]
                count = int(count)
                if count == 0:
                    stats[column] = NumericStats(0, None, None, None, None)
                    continue
                median = self._median(cursor, table, column, where, params, count)
                stats[column] = NumericStats(count, float(mean), median, float(low), float(high))
            return total, stats

        return self._retrying(run)

    def _median(  # noqa: PLR0917 (private helper of count_and_stats)
        self, cursor: Any, table: str, column: str, where: str, params: tuple[Any, ...], count: int
    ) -> float:
        col = quote(column)
        take = 1 if count % 2 else 2
        cursor.execute(
            self._sql(
                f"SELECT {col} FROM {table} WHERE {where} AND {col} IS NOT NULL "
                f"ORDER BY {col} LIMIT {take} OFFSET {(count - 1) // 2}"
            ),
            params,
        )
        middle = [float(r[0]) for r in cursor.fetchall()]
        return middle[0] if take == 1 else (middle[0] + middle[1]) / 2

    def page(
        self,
        contract: DataContract,
        device_id: str,
        *,
        start: dt.datetime,
        end: dt.datetime,
        after: dt.datetime | None,
        limit: int,
    ) -> list[dict[str, Any]]:
        """Return up to ``limit`` rows in the range after ``after``, ordered by ts.

        Parameters
        ----------
        contract
            The dataset.
        device_id
            The device.
        start, end
            Naive UTC bounds, both inclusive.
        after
            Keyset position: only rows with ``ts > after`` (None for the first page).
        limit
            Page size.

        Returns
        -------
        list[dict]
            Rows with ``ts`` (naive UTC datetime) and each field.
        """
        columns = [TS, *(f.name for f in contract.fields)]
        selected = ", ".join(quote(c) for c in columns)
        where = f"{quote(DEVICE_ID)} = %s AND {quote(TS)} BETWEEN %s AND %s"
        params: list[Any] = [device_id, self._to_db_time(start), self._to_db_time(end)]
        if after is not None:
            where += f" AND {quote(TS)} > %s"
            params.append(self._to_db_time(after))
        statement = (
            f"SELECT {selected} FROM {quote(contract.table)} WHERE {where} "
            f"ORDER BY {quote(TS)} LIMIT {int(limit)}"
        )
        booleans = {f.name for f in contract.fields if f.type == "boolean"}
        datetimes = {TS, *(f.name for f in contract.fields if f.type == "datetime")}

        def run(cursor: Any) -> list[tuple[Any, ...]]:
            cursor.execute(self._sql(statement), tuple(params))
            return list(cursor.fetchall())

        out: list[dict[str, Any]] = []
        for raw in self._retrying(run):
            row = dict(zip(columns, raw, strict=True))
            for name in datetimes:
                row[name] = self._from_db_time(row[name])
            for name in booleans:
                if row[name] is not None:
                    row[name] = bool(row[name])
            out.append(row)
        return out


class _SqlLoader:
    def __init__(self, store: SqlStore, cursor: Any, claim: Claim, contract: DataContract) -> None:
        self._store = store
        self._cursor = cursor
        self._claim = claim
        self._contract = contract
        self.finished = False

    def upsert(self, rows: pl.DataFrame) -> int:
        if rows.height:
            self._store._bulk_upsert(self._cursor, self._contract, rows)
        return rows.height

    def finish(self, report: Mapping[str, Any]) -> None:
        self._store._mark_loaded(self._cursor, self._claim, report)
        self.finished = True


@contextmanager
def _closing_cursor(conn: Any) -> Iterator[Any]:
    cursor = conn.cursor()
    try:
        yield cursor
    finally:
        cursor.close()


def _chunks(items: list[T], size: int) -> Iterator[list[T]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def rows_for_insert(rows: pl.DataFrame) -> list[tuple[Any, ...]]:
    """Turn an encoded frame into parameter tuples (booleans as 0/1).

    Parameters
    ----------
    rows
        Encoded rows.

    Returns
    -------
    list[tuple]
        One tuple per row, in column order.
    """
    import polars as pl

    booleans = [name for name, dtype in rows.schema.items() if dtype == pl.Boolean]
    if booleans:
        rows = rows.with_columns(pl.col(booleans).cast(pl.Int8))
    return rows.rows()
