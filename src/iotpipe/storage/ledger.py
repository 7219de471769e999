"""The ledger: one row per (source object version, dataset), its claim and its status.

A claim keeps other workers off a version while one loads it; the ``loaded`` status is written
inside the load's own transaction (`Ledger.mark_loaded`), so rows and status commit together.

Two things say a claim is alive. The lease (a time) covers what a lock cannot see; the
object's lock (`ObjectLocks`: a named lock on the loading connection in MySQL, a file lock in
SQLite) is released by the server or the OS the moment its worker dies, so a killed process or
a timed-out Lambda whose connection closed blocks its file for no longer than it takes to
claim it again.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any, Protocol

from iotpipe.errors import StorageError
from iotpipe.model import Claim, LedgerEntry, ObjectRef, ledger_id
from iotpipe.storage.database import Database
from iotpipe.storage.dialect import SqlDialect
from iotpipe.times import utcnow

LEDGER = "iotpipe_ledger"
MAX_ERROR_CHARS = 4000
_ENTRY_COLUMNS = (
    "object_id, dataset, source, version, status, owner, lease_until, attempts, rows_read, "
    "rows_loaded, rows_rejected, error, report, claimed_at, finished_at"
)


def ledger_ddl(dialect: SqlDialect) -> list[str]:
    """Return the statements that create the ledger table."""
    t = dialect.type
    columns = [
        ("object_id", f"{t('char', 64)} NOT NULL"),
        ("dataset", f"{t('varchar', 64)} NOT NULL"),
        ("source", f"{t('varchar', 2048)} NOT NULL"),
        ("version", f"{t('varchar', 255)} NOT NULL"),
        ("size", f"{t('bigint')} NULL"),
        ("status", f"{t('varchar', 16)} NOT NULL"),
        ("owner", f"{t('char', 32)} NULL"),
        ("lease_until", f"{t('time')} NULL"),
        ("attempts", f"{t('int')} NOT NULL DEFAULT 0"),
        ("rows_read", f"{t('bigint')} NULL"),
        ("rows_loaded", f"{t('bigint')} NULL"),
        ("rows_rejected", f"{t('bigint')} NULL"),
        ("error", f"{t('text')} NULL"),
        ("report", f"{t('long_text')} NULL"),
        ("claimed_at", f"{t('time')} NULL"),
        ("finished_at", f"{t('time')} NULL"),
    ]
    return dialect.create_table(
        LEDGER,
        columns,
        primary_key=["object_id"],
        indexes={"ledger_status": ["status", "lease_until"]},
    )


class ObjectLocks(Protocol):
    """Locks that die with their worker: proof that a claim's holder is alive."""

    def acquire(self, cursor: Any, object_id: str) -> bool:
        """Take an object's lock; False when anyone, this store included, holds it."""
        ...

    def release(self, object_id: str) -> None:
        """Let go of an object's lock (nothing happens when it is not held)."""
        ...


class Ledger:
    """Claims, leases and statuses of source object versions.

    Parameters
    ----------
    db
        The store's main database (the one its loads run on).
    locks
        The engine's `ObjectLocks`.
    """

    def __init__(self, db: Database, locks: ObjectLocks) -> None:
        self._db = db
        self._locks = locks

    def claim(  # noqa: PLR0913 (the claim's inputs)
        self,
        ref: ObjectRef,
        dataset: str,
        lease_seconds: float,
        owner: str,
        *,
        force: bool = False,
    ) -> Claim:
        """Claim an object version for loading into a dataset.

        A version already loaded is ``skipped`` (unless ``force``). Another owner's claim is
        ``busy`` while its lock is held and its lease runs; a dead holder's lock is free, and
        its claim is taken over at once. Otherwise (new, failed, lease expired, our own
        claim, or forced) it is ``claimed`` with a fresh lease, and we hold the lock until
        `release`.

        Parameters
        ----------
        ref
            The object version.
        dataset
            The dataset it is loaded into (part of the ledger's identity).
        lease_seconds
            How long the claim protects the load from other workers.
        owner
            This worker's token (`iotpipe.storage.store.new_owner`).
        force
            Claim a version that is already loaded (to load it again).

        Returns
        -------
        Claim
            The outcome.
        """
        d = self._db.dialect
        object_id = ledger_id(ref, dataset)

        def run(cursor: Any) -> Claim:
            now = utcnow()
            lease = d.to_db_time(now + dt.timedelta(seconds=lease_seconds))
            cursor.execute(
                d.sql(
                    f"SELECT status, owner, lease_until, attempts FROM {LEDGER} "
                    f"WHERE object_id = %s{d.for_update}"
                ),
                (object_id,),
            )
            row = cursor.fetchone()
            if row is None:
                cursor.execute(
                    d.sql(
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
                        d.to_db_time(now),
                    ),
                )
                self._locks.acquire(cursor, object_id)
                return Claim("claimed", ref, owner, 1, dataset)
            status, holder, lease_until, attempts = row
            if status == "loaded" and not force:
                return Claim("skipped", ref, owner, attempts, dataset)
            lease_until = d.from_db_time(lease_until)
            live = status == "loading" and lease_until is not None and lease_until > now
            # Whose ever claim it was, we take the lock if it is free: a loading holder
            # that lost it is dead. A held lock with a live lease is a live worker's.
            locked = self._locks.acquire(cursor, object_id)
            if status == "loading" and holder != owner and not locked and live:
                return Claim("busy", ref, holder or "", attempts, dataset)
            cursor.execute(
                d.sql(
                    f"UPDATE {LEDGER} SET status = 'loading', owner = %s, lease_until = %s, "
                    "attempts = attempts + 1, claimed_at = %s, error = NULL "
                    "WHERE object_id = %s"
                ),
                (owner, lease, d.to_db_time(now), object_id),
            )
            return Claim("claimed", ref, owner, attempts + 1, dataset)

        return self._db.run(run, write=True)

    def release(self, claim: Claim) -> None:
        """Let go of the claim's lock (after an attempt, whatever its outcome)."""
        self._locks.release(claim.object_id)

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
        d = self._db.dialect

        def run(cursor: Any) -> None:
            cursor.execute(
                d.sql(
                    f"UPDATE {LEDGER} SET status = 'failed', error = %s, report = %s, "
                    "lease_until = NULL, finished_at = %s "
                    "WHERE object_id = %s AND owner = %s AND status <> 'loaded'"
                ),
                (
                    error[:MAX_ERROR_CHARS],
                    json.dumps(report) if report else None,
                    d.to_db_time(utcnow()),
                    claim.object_id,
                    claim.owner,
                ),
            )

        self._db.run(run)

    def mark_loaded(self, cursor: Any, claim: Claim, report: Mapping[str, Any]) -> None:
        """Mark our claim loaded, inside the load's transaction (``cursor``).

        Raises
        ------
        StorageError
            When another worker took the claim over meanwhile (the caller rolls back).
        """
        d = self._db.dialect
        cursor.execute(
            d.sql(
                f"UPDATE {LEDGER} SET status = 'loaded', rows_read = %s, rows_loaded = %s, "
                "rows_rejected = %s, report = %s, error = NULL, lease_until = NULL, "
                "finished_at = %s WHERE object_id = %s AND owner = %s"
            ),
            (
                report.get("rows_read"),
                report.get("rows_loaded"),
                report.get("rows_rejected"),
                json.dumps(report),
                d.to_db_time(utcnow()),
                claim.object_id,
                claim.owner,
            ),
        )
        if cursor.rowcount != 1:
            raise StorageError("the claim was taken over by another worker; rolled back")

    def entry(self, ref: ObjectRef, dataset: str) -> LedgerEntry | None:
        """Return the ledger row of an object version in a dataset (None: never claimed)."""
        d = self._db.dialect

        def run(cursor: Any) -> Any:
            cursor.execute(
                d.sql(f"SELECT {_ENTRY_COLUMNS} FROM {LEDGER} WHERE object_id = %s"),
                (ledger_id(ref, dataset),),
            )
            return cursor.fetchone()

        row = self._db.run(run)
        return None if row is None else self._entry(row)

    def files(
        self, *, status: str | None = None, dataset: str | None = None, limit: int = 100
    ) -> list[LedgerEntry]:
        """Return ledger rows, the most recently claimed first.

        Parameters
        ----------
        status, dataset
            Keep only rows with this status / of this dataset.
        limit
            At most this many rows.

        Returns
        -------
        list[LedgerEntry]
            The rows (``report`` included).
        """
        d = self._db.dialect
        where, params = [], []
        for column, value in (("status", status), ("dataset", dataset)):
            if value is not None:
                where.append(f"{column} = %s")
                params.append(value)
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        statement = d.sql(
            f"SELECT {_ENTRY_COLUMNS} FROM {LEDGER}{clause} "
            f"ORDER BY claimed_at DESC, object_id LIMIT {int(limit)}"
        )

        def run(cursor: Any) -> list[Any]:
            cursor.execute(statement, tuple(params))
            return list(cursor.fetchall())

        return [self._entry(row) for row in self._db.run(run)]

    def _entry(self, row: Any) -> LedgerEntry:
        values = list(row)
        for i in (6, 13, 14):
            values[i] = self._db.dialect.from_db_time(values[i])
        values[12] = json.loads(values[12]) if values[12] else None
        return LedgerEntry(*values)
