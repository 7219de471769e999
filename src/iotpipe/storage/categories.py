"""The category dictionary: a stable integer code per (dataset, column, value), never reused.

New values of a vocabulary are numbered under a lock on that vocabulary's sequence row, in
short transactions of their own (MySQL: on a second connection, so concurrent file loads never
wait on each other's long transactions; SQLite: inside the load, which holds the only writer).
A code never changes once given, so values that have one are read without that lock first:
most files bring no new value, and a fleet's loads then never queue on a sequence row.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from iotpipe.errors import StorageError
from iotpipe.storage.database import Database
from iotpipe.storage.dialect import SqlDialect

CATEGORIES = "iotpipe_categories"
CATEGORY_SEQ = "iotpipe_category_seq"
MAX_CATEGORY_LENGTH = 255
LOOKUP_CHUNK = 500


def categories_ddl(dialect: SqlDialect) -> list[str]:
    """Return the statements that create the dictionary and its per-vocabulary sequences."""
    t = dialect.type
    key = [
        ("dataset", f"{t('varchar', 64)} NOT NULL"),
        ("column_name", f"{t('varchar', 64)} NOT NULL"),
    ]
    return [
        *dialect.create_table(
            CATEGORIES,
            [
                *key,
                ("value", f"{t('varchar', MAX_CATEGORY_LENGTH)} NOT NULL"),
                ("code", f"{t('int')} NOT NULL"),
            ],
            primary_key=["dataset", "column_name", "value"],
            unique={"category_code": ["dataset", "column_name", "code"]},
        ),
        *dialect.create_table(
            CATEGORY_SEQ,
            [*key, ("last_code", f"{t('int')} NOT NULL")],
            primary_key=["dataset", "column_name"],
        ),
    ]


class CategoryCodes:
    """The `iotpipe.model.CategoryDictionary` of a store.

    Parameters
    ----------
    db
        The database codes are assigned on (see the module docstring).
    """

    def __init__(self, db: Database) -> None:
        self._db = db

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
        d = self._db.dialect
        known = self._db.run(lambda cursor: self._lookup(cursor, dataset, column, values))
        if all(value in known for value in values):
            return {value: known[value] for value in values}

        def run(cursor: Any) -> Mapping[str, int]:
            cursor.execute(
                d.sql(
                    f"{d.insert_ignore} INTO {CATEGORY_SEQ} (dataset, column_name, last_code) "
                    "VALUES (%s, %s, 0)"
                ),
                (dataset, column),
            )
            cursor.execute(
                d.sql(
                    f"SELECT last_code FROM {CATEGORY_SEQ} WHERE dataset = %s AND "
                    f"column_name = %s{d.for_update}"
                ),
                (dataset, column),
            )
            last = int(cursor.fetchone()[0])
            return self._assign(cursor, dataset, column, values, last)

        return self._db.run(run, write=True)

    def _assign(
        self, cursor: Any, dataset: str, column: str, values: Sequence[str], last: int
    ) -> dict[str, int]:
        """Assign codes after ``last``; the caller holds the vocabulary's lock."""
        d = self._db.dialect
        found = self._lookup(cursor, dataset, column, values)
        new = [v for v in values if v not in found]
        if new:
            rows = [(dataset, column, value, last + i) for i, value in enumerate(new, start=1)]
            cursor.executemany(
                d.sql(
                    f"INSERT INTO {CATEGORIES} (dataset, column_name, value, code) "
                    "VALUES (%s, %s, %s, %s)"
                ),
                rows,
            )
            cursor.execute(
                d.sql(
                    f"UPDATE {CATEGORY_SEQ} SET last_code = %s "
                    "WHERE dataset = %s AND column_name = %s"
                ),
                (last + len(new), dataset, column),
            )
            found.update({value: code for _, _, value, code in rows})
        return {value: found[value] for value in values}

    def _lookup(
        self, cursor: Any, dataset: str, column: str, values: Sequence[str]
    ) -> dict[str, int]:
        """Return the codes some of ``values`` already have."""
        found: dict[str, int] = {}
        for chunk in _chunks(list(values), LOOKUP_CHUNK):
            marks = ", ".join(["%s"] * len(chunk))
            cursor.execute(
                self._db.dialect.sql(
                    f"SELECT value, code FROM {CATEGORIES} WHERE dataset = %s AND "
                    f"column_name = %s AND value IN ({marks})"
                ),
                (dataset, column, *chunk),
            )
            found.update({value: int(code) for value, code in cursor.fetchall()})
        return found


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]
