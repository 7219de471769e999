"""The ledger: one row per source object version, its claim (owner + lease) and its status.

A claim keeps other workers off a version while one loads it; the ``loaded`` status is written
inside the load's own transaction (`Ledger.mark_loaded`), so rows and status commit together.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

from iotpipe.errors import StorageError
from iotpipe.model import Claim, LedgerEntry, ObjectRef
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


class Ledger:
    """Claims, leases and statuses of source object versions.

    Parameters
    ----------
    db
        The store's main database.
    """

    def __init__(self, db: Database) -> None:
        self._db = db

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
            This worker's token (`iotpipe.storage.new_owner`).

        Returns
        -------
        Claim
            The outcome.
        """
        d = self._db.dialect
        object_id = ref.object_id

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
                return Claim("claimed", ref, owner, 1)
            status, holder, lease_until, attempts = row
            if status == "loaded":
                return Claim("skipped", ref, owner, attempts)
            lease_until = d.from_db_time(lease_until)
            live = status == "loading" and lease_until is not None and lease_until > now
            if live and holder != owner:
                return Claim("busy", ref, holder or "", attempts)
            cursor.execute(
                d.sql(
                    f"UPDATE {LEDGER} SET status = 'loading', owner = %s, lease_until = %s, "
                    "attempts = attempts + 1, claimed_at = %s, error = NULL "
                    "WHERE object_id = %s"
                ),
                (owner, lease, d.to_db_time(now), object_id),
            )
            return Claim("claimed", ref, owner, attempts + 1)

        return self._db.run(run, write=True)

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
                    claim.ref.object_id,
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
                claim.ref.object_id,
                claim.owner,
            ),
        )
        if cursor.rowcount != 1:
            raise StorageError("the claim was taken over by another worker; rolled back")

    def entry(self, ref: ObjectRef) -> LedgerEntry | None:
        """Return the ledger row of an object version (None when it was never claimed)."""
        d = self._db.dialect

        def run(cursor: Any) -> Any:
            cursor.execute(
                d.sql(f"SELECT {_ENTRY_COLUMNS} FROM {LEDGER} WHERE object_id = %s"),
                (ref.object_id,),
            )
            return cursor.fetchone()

        row = self._db.run(run)
        if row is None:
            return None
        values = list(row)
        for i in (6, 13, 14):
            values[i] = d.from_db_time(values[i])
        values[12] = json.loads(values[12]) if values[12] else None
        return LedgerEntry(*values)
