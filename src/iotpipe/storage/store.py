"""`SqlStore`: the `iotpipe.model.Store` port, composed of storage's concerns over one dialect.

Each concern lives in its own module (`ledger`, `categories`, `datasets`, `readings`); this
class wires them to the adapter's connections and answers the port by delegation. The MySQL and
SQLite adapters only choose the dialect, the connections and the bulk path.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from iotpipe.contract import DataContract
from iotpipe.errors import StorageError
from iotpipe.model import (
    Bucket,
    Claim,
    DatasetSummary,
    DeviceSpan,
    LedgerEntry,
    Loader,
    ObjectRef,
    ReadingsQuery,
)
from iotpipe.stats import NumericStats
from iotpipe.storage.browse import Browse
from iotpipe.storage.categories import CategoryCodes, categories_ddl
from iotpipe.storage.database import Database
from iotpipe.storage.datasets import Datasets, datasets_ddl
from iotpipe.storage.ledger import Ledger, ObjectLocks, ledger_ddl
from iotpipe.storage.readings import BulkPath, FileLoad, InsertBulkPath, Readings


def new_owner() -> str:
    """Return a unique claim-owner token for one worker."""
    return uuid.uuid4().hex


class SqlStore:
    """A `Store` on a SQL engine.

    Parameters
    ----------
    db
        The main connection: schema, ledger, loads and queries.
    locks
        The engine's liveness locks of claims (`iotpipe.storage.ledger.ObjectLocks`).
    dictionary
        Where category codes are assigned (default: ``db``).
    bulk
        How a load writes its batches (default: multi-row upserts).
    """

    def __init__(
        self,
        db: Database,
        locks: ObjectLocks,
        dictionary: Database | None = None,
        bulk: BulkPath | None = None,
    ) -> None:
        dialect = db.dialect
        self.db = db
        self.dictionary = dictionary or db
        self.bulk: BulkPath = bulk or InsertBulkPath(dialect)
        self.ledger = Ledger(db, locks)
        self.categories = CategoryCodes(self.dictionary)
        self.datasets = Datasets(
            db, [*ledger_ddl(dialect), *categories_ddl(dialect), *datasets_ddl(dialect)]
        )
        self.readings = Readings(db)
        self.browse = Browse(db, self.datasets)

    def ensure_schema(self, contract: DataContract) -> None:
        """Create the dataset's table (or add new columns) and register its contract."""
        self.datasets.ensure(contract)

    def dataset(self, name: str) -> DataContract | None:
        """Return a registered dataset's contract, or None."""
        return self.datasets.get(name)

    def claim(
        self, ref: ObjectRef, dataset: str, lease_seconds: float, owner: str, *, force: bool = False
    ) -> Claim:
        """Claim an object version for loading (`Ledger.claim`)."""
        return self.ledger.claim(ref, dataset, lease_seconds, owner, force=force)

    def release(self, claim: Claim) -> None:
        """Let go of a claim's lock (`Ledger.release`)."""
        self.ledger.release(claim)

    def fail(self, claim: Claim, error: str, report: Mapping[str, Any] | None) -> None:
        """Record that a claimed object failed (`Ledger.fail`)."""
        self.ledger.fail(claim, error, report)

    def ledger_entry(self, ref: ObjectRef, dataset: str) -> LedgerEntry | None:
        """Return the ledger row of an object version in a dataset, if any."""
        return self.ledger.entry(ref, dataset)

    def files(
        self, *, status: str | None = None, dataset: str | None = None, limit: int = 100
    ) -> list[LedgerEntry]:
        """Return ledger rows, the most recent first (`Ledger.files`)."""
        return self.ledger.files(status=status, dataset=dataset, limit=limit)

    def codes(self, dataset: str, column: str, values: Sequence[str]) -> Mapping[str, int]:
        """Return category codes (`CategoryCodes.codes`)."""
        return self.categories.codes(dataset, column, values)

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
        d = self.db.dialect
        with self.db.transaction() as cursor:
            # Another contract sharing the table (or an older one) may have added columns
            # this one does not carry: then no row may be replaced whole.
            cursor.execute(d.sql(d.columns_sql), (contract.table,))
            table_columns = {str(row[0]) for row in cursor.fetchall()}
            load = FileLoad(
                cursor,
                contract,
                self.bulk,
                lambda report: self.ledger.mark_loaded(cursor, claim, report),
                whole_rows=table_columns <= set(contract.output_columns),
                lock=self.db.open_lock,
                dictionary=self,
                cache_bytes=self._cache_bytes(cursor),
            )
            try:
                yield load
            finally:
                load.close()
            if not load.finished:
                raise StorageError("load ended without finish(): rolled back")

    def _cache_bytes(self, cursor: Any) -> int | None:
        """Return the engine's page cache in bytes (`SqlDialect.cache_sql`), None if unknown."""
        d = self.db.dialect
        if not d.cache_sql:
            return None
        cursor.execute(d.cache_sql)
        (size,) = cursor.fetchone()
        return int(size)

    def count_and_stats(
        self, contract: DataContract, query: ReadingsQuery
    ) -> tuple[int, dict[str, NumericStats]]:
        """Row count and per-numeric-field stats over the query's range (`Readings`)."""
        return self.readings.count_and_stats(contract, query)

    def page(
        self, contract: DataContract, query: ReadingsQuery, limit: int
    ) -> list[dict[str, Any]]:
        """Up to ``limit`` rows of the range after ``query.after`` (`Readings.page`)."""
        return self.readings.page(contract, query, limit)

    def buckets(
        self, contract: DataContract, query: ReadingsQuery, width_seconds: int
    ) -> list[Bucket]:
        """Return the range's non-empty buckets (`Readings.buckets`)."""
        return self.readings.buckets(contract, query, width_seconds)

    def list_datasets(self) -> list[DatasetSummary]:
        """Return every registered dataset with its fields and span (`Browse.list_datasets`)."""
        return self.browse.list_datasets()

    def list_devices(
        self, contract: DataContract, *, prefix: str, after: str | None, limit: int
    ) -> list[DeviceSpan]:
        """Return a page of a dataset's devices (`Browse.list_devices`)."""
        return self.browse.list_devices(contract, prefix=prefix, after=after, limit=limit)

    def category_dictionary(self, dataset: str) -> dict[str, dict[str, int]]:
        """Return the dataset's codes: field -> value -> code (`Browse.category_dictionary`)."""
        return self.browse.category_dictionary(dataset)

    def close(self) -> None:
        """Release connections."""
        self.db.close()
        self.dictionary.close()
