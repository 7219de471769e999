"""The dataset registry and schema: each dataset's table and its registered contract.

A table is created, or widened, from its contract; the contract is stored beside it, so
retrieval needs no contract files.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from iotpipe.contract import (
    DEVICE_ID,
    TS,
    DataContract,
    Field,
    contract_from_dict,
    contract_to_dict,
)
from iotpipe.errors import StorageError
from iotpipe.storage.categories import MAX_CATEGORY_LENGTH
from iotpipe.storage.database import Database
from iotpipe.storage.dialect import SqlDialect, quote
from iotpipe.times import utcnow

DATASETS = "iotpipe_datasets"
SCHEMA_LOCK = "iotpipe_schema"
SCHEMA_LOCK_SECONDS = 60
MAX_VARCHAR = 1024  # longer strings are TEXT
_FIELD_KINDS: dict[str, tuple[str, int | None]] = {
    "number": ("double", None),
    "integer": ("bigint", None),
    "boolean": ("bool", None),
    "datetime": ("time", None),
    "category": ("varchar", MAX_CATEGORY_LENGTH),
}


def datasets_ddl(dialect: SqlDialect) -> list[str]:
    """Return the statements that create the registry table."""
    t = dialect.type
    return dialect.create_table(
        DATASETS,
        [
            ("name", f"{t('varchar', 64)} NOT NULL"),
            ("table_name", f"{t('varchar', 64)} NOT NULL"),
            ("contract", f"{t('long_text')} NOT NULL"),
            ("updated_at", f"{t('time')} NOT NULL"),
        ],
        primary_key=["name"],
    )


def column_type(dialect: SqlDialect, contract: DataContract, column: str) -> str:
    """Return the SQL type of one of a contract's output columns.

    Parameters
    ----------
    dialect
        The engine.
    contract
        The dataset's contract.
    column
        A name from `DataContract.output_columns`.

    Returns
    -------
    str
        The type with its nullability.
    """
    t = dialect.type
    if column == DEVICE_ID:
        return f"{t('varchar', contract.device_id_length)} NOT NULL"
    if column == TS:
        return f"{t('time')} NOT NULL"
    field: Field | None = next((f for f in contract.fields if f.name == column), None)
    if field is None:  # an encoding column: a category code, or a one-hot flag
        return f"{t('int')} NULL" if column.endswith("_code") else f"{t('flag')} NOT NULL DEFAULT 0"
    if field.type in _FIELD_KINDS:
        return f"{t(*_FIELD_KINDS[field.type])} NULL"
    if field.max_length and field.max_length <= MAX_VARCHAR:
        return f"{t('varchar', field.max_length)} NULL"
    return f"{t('text')} NULL"


class Datasets:
    """Create dataset tables and look registered contracts up.

    Parameters
    ----------
    db
        The store's main database.
    shared_ddl
        Statements that create iotpipe's own tables (run with every first `ensure`).
    """

    def __init__(self, db: Database, shared_ddl: list[str]) -> None:
        self._db = db
        self._shared_ddl = shared_ddl
        self._contracts: dict[str, DataContract] = {}
        self._ensured: dict[str, DataContract] = {}

    def ensure(self, contract: DataContract) -> None:
        """Create the dataset table and the shared tables; add columns a contract gained.

        Parameters
        ----------
        contract
            The dataset's contract; it is also stored, so retrieval can use it.
        """
        if self._ensured.get(contract.name) == contract:
            return  # already done by this process (warm Lambda invocations skip the DDL)
        # One write transaction (SQLite: the write lock up front), so two workers that
        # register the same dataset at once take turns instead of both inserting its row.
        with self._schema_lock():
            try:
                self._db.run(lambda cursor: self._create(cursor, contract), write=True)
            except Exception as exc:
                if not self._db.dialect.is_duplicate_column(exc):
                    raise
                # Another worker added the column first: look again.
                self._db.run(lambda cursor: self._create(cursor, contract), write=True)
        self._contracts[contract.name] = contract
        self._ensured[contract.name] = contract

    def _create(self, cursor: Any, contract: DataContract) -> None:
        d = self._db.dialect
        for statement in self._shared_ddl:
            cursor.execute(statement)
        table = contract.table
        cursor.execute(d.sql(d.columns_sql), (table,))
        existing = {str(name): length for name, length in cursor.fetchall()}
        columns = [(c, column_type(d, contract, c)) for c in contract.output_columns]
        if not existing:
            for statement in d.create_table(
                table, columns, primary_key=[DEVICE_ID, TS], clustered=True
            ):
                cursor.execute(statement)
        else:
            self._widen(cursor, contract, existing, columns)
        self._register(cursor, contract)

    def _widen(
        self,
        cursor: Any,
        contract: DataContract,
        existing: dict[str, Any],
        columns: list[tuple[str, str]],
    ) -> None:
        """Add the columns a contract gained; widen the device id when it allows longer ones."""
        d, table = self._db.dialect, quote(contract.table)
        for name, sql_type in columns:
            if name not in existing:
                cursor.execute(f"ALTER TABLE {table} ADD COLUMN {quote(name)} {sql_type}")
        width = existing.get(DEVICE_ID)
        if d.widen_sql and width is not None and int(width) < contract.device_id_length:
            sql_type = column_type(d, contract, DEVICE_ID)
            cursor.execute(d.widen_sql.format(table=table, column=quote(DEVICE_ID), type=sql_type))

    def _register(self, cursor: Any, contract: DataContract) -> None:
        d = self._db.dialect
        document = json.dumps(contract_to_dict(contract), sort_keys=True)
        cursor.execute(d.sql(f"DELETE FROM {DATASETS} WHERE name = %s"), (contract.name,))
        cursor.execute(
            d.sql(
                f"INSERT INTO {DATASETS} (name, table_name, contract, updated_at) "
                "VALUES (%s, %s, %s, %s)"
            ),
            (contract.name, contract.table, document, d.to_db_time(utcnow())),
        )

    @contextmanager
    def _schema_lock(self) -> Iterator[None]:
        """Hold the server-wide schema lock, where the engine needs one (many workers)."""
        lock = self._db.dialect.lock_sql
        if lock is None:
            yield
            return
        take, release = lock

        def acquire(cursor: Any) -> None:
            cursor.execute(take, (SCHEMA_LOCK, SCHEMA_LOCK_SECONDS))
            if cursor.fetchone()[0] != 1:
                raise StorageError("timed out waiting for the schema lock")

        self._db.run(acquire)
        try:
            yield
        finally:
            self._db.run(_execute(release, (SCHEMA_LOCK,)))

    def get(self, name: str) -> DataContract | None:
        """Return the contract a dataset was registered with (None when it never was).

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
        d = self._db.dialect

        def run(cursor: Any) -> Any:
            try:
                cursor.execute(d.sql(f"SELECT contract FROM {DATASETS} WHERE name = %s"), (name,))
            except Exception as exc:
                if d.is_missing_table(exc):
                    return None
                raise
            return cursor.fetchone()

        row = self._db.run(run)
        if row is None:
            return None
        contract = contract_from_dict(json.loads(row[0]))
        self._contracts[name] = contract
        return contract


def _execute(statement: str, params: tuple[Any, ...]) -> Callable[[Any], None]:
    def run(cursor: Any) -> None:
        cursor.execute(statement, params)
        cursor.fetchall()

    return run
