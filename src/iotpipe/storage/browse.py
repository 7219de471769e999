"""What is stored: datasets, devices and their time spans, the category dictionary, rows.

The rows come in key order, in chunks, for exports.

Nothing here scans a readings table: it costs a few index lookups per device, not per row.
On MySQL/MariaDB a page of devices is one ``GROUP BY device_id`` with ``MIN(ts)``/``MAX(ts)``,
which the server answers with a loose index scan of the primary key ``(device_id, ts)``
(EXPLAIN: "Using index for group-by": two lookups per device). SQLite has no such scan, so
the devices are walked: the next one is the first key after the last, its span the first and
last key of its own, each an index lookup (in-process, microseconds each). A dataset's span
is the same over all its devices.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

from iotpipe.contract import DEVICE_ID, TS, DataContract
from iotpipe.model import DatasetSummary, DeviceSpan
from iotpipe.storage.categories import CATEGORIES
from iotpipe.storage.database import Database
from iotpipe.storage.datasets import DATASETS, Datasets
from iotpipe.storage.dialect import SqlDialect, quote

WALK_PAGE = 1000  # devices per statement
MAX_CODE_POINT = 0x10FFFF


class Browse:
    """Listings over a store's registry, dictionary and tables.

    Parameters
    ----------
    db
        The store's main database.
    datasets
        The registry (its contracts are cached there).
    """

    def __init__(self, db: Database, datasets: Datasets) -> None:
        self._db = db
        self._datasets = datasets

    def list_datasets(self) -> list[DatasetSummary]:
        """Return every registered dataset with its fields and the span of its rows."""
        d = self._db.dialect

        def names(cursor: Any) -> list[str]:
            try:
                cursor.execute(f"SELECT name FROM {DATASETS} ORDER BY name")
            except Exception as exc:
                if d.is_missing_table(exc):
                    return []
                raise
            return [str(row[0]) for row in cursor.fetchall()]

        out = []
        for name in self._db.run(names):
            contract = self._datasets.get(name)
            if contract is None:  # removed meanwhile
                continue
            first, last = self._span(contract)
            out.append(
                DatasetSummary(
                    name,
                    contract.table,
                    tuple((f.name, f.type) for f in contract.fields),
                    first,
                    last,
                )
            )
        return out

    def _span(self, contract: DataContract) -> tuple[dt.datetime | None, dt.datetime | None]:
        d = self._db.dialect
        if d.loose_index_scan:
            t, ts = quote(contract.table), quote(TS)
            statement = (
                f"SELECT MIN(lo), MAX(hi) FROM (SELECT MIN({ts}) AS lo, MAX({ts}) AS hi "
                f"FROM {t} GROUP BY {quote(DEVICE_ID)}) AS spans"
            )

            def run(cursor: Any) -> tuple[Any, Any]:
                cursor.execute(statement)
                row = cursor.fetchone()
                return row[0], row[1]

            low, high = self._db.run(run)
            return d.from_db_time(low), d.from_db_time(high)
        first: dt.datetime | None = None
        last: dt.datetime | None = None
        after: str | None = None
        while True:
            page = self.list_devices(contract, prefix="", after=after, limit=WALK_PAGE)
            for device in page:
                first = device.first if first is None else min(first, device.first)
                last = device.last if last is None else max(last, device.last)
            if len(page) < WALK_PAGE:
                return first, last
            after = page[-1].device_id

    def list_devices(
        self, contract: DataContract, *, prefix: str, after: str | None, limit: int
    ) -> list[DeviceSpan]:
        """Return up to ``limit`` devices whose id starts with ``prefix``, after ``after``.

        Parameters
        ----------
        contract
            The dataset.
        prefix
            Only ids that start with it (an empty prefix: all).
        after
            The keyset position: only ids sorting after it (None: from the first).
        limit
            At most this many.

        Returns
        -------
        list[DeviceSpan]
            In id order, each with its first and last time.
        """
        d = self._db.dialect
        dev = quote(DEVICE_ID)
        where, params = ["1 = 1"], []
        if after is not None:
            where.append(f"{dev} > %s")
            params.append(after)
        if prefix:  # the prefix's range of the key (ids sort by code point on both engines)
            where.append(f"{dev} >= %s")
            params.append(prefix)
            if ord(prefix[-1]) < MAX_CODE_POINT:
                where.append(f"{dev} < %s")
                params.append(prefix[:-1] + chr(ord(prefix[-1]) + 1))
        walk = self._grouped if d.loose_index_scan else self._walked
        spans = walk(contract, " AND ".join(where), tuple(params), int(limit))
        # Exact on both engines: MySQL's PAD SPACE comparisons ignore trailing spaces.
        return [s for s in spans if s.device_id.startswith(prefix)]

    def _grouped(
        self, contract: DataContract, where: str, params: tuple[Any, ...], limit: int
    ) -> list[DeviceSpan]:
        d = self._db.dialect
        dev, ts = quote(DEVICE_ID), quote(TS)
        statement = d.sql(
            f"SELECT {dev}, MIN({ts}), MAX({ts}) FROM {quote(contract.table)} WHERE {where} "
            f"GROUP BY {dev} ORDER BY {dev} LIMIT {limit}"
        )

        def run(cursor: Any) -> list[tuple[Any, ...]]:
            cursor.execute(statement, params)
            return list(cursor.fetchall())

        return [_span(d, device, low, high) for device, low, high in self._db.run(run)]

    def _walked(
        self, contract: DataContract, where: str, params: tuple[Any, ...], limit: int
    ) -> list[DeviceSpan]:
        d = self._db.dialect
        t, dev, ts = quote(contract.table), quote(DEVICE_ID), quote(TS)
        first_device = d.sql(f"SELECT {dev} FROM {t} WHERE {where} ORDER BY {dev} LIMIT 1")
        next_device = d.sql(
            f"SELECT {dev} FROM {t} WHERE {where} AND {dev} > %s ORDER BY {dev} LIMIT 1"
        )
        edge = f"SELECT {ts} FROM {t} WHERE {dev} = %s ORDER BY {ts} {{order}} LIMIT 1"
        earliest, latest = d.sql(edge.format(order="ASC")), d.sql(edge.format(order="DESC"))

        def run(cursor: Any) -> list[DeviceSpan]:
            out: list[DeviceSpan] = []
            cursor.execute(first_device, params)
            row = cursor.fetchone()
            while row is not None and len(out) < limit:
                device = row[0]
                cursor.execute(earliest, (device,))
                low = cursor.fetchone()[0]
                cursor.execute(latest, (device,))
                high = cursor.fetchone()[0]
                out.append(_span(d, device, low, high))
                cursor.execute(next_device, (*params, device))
                row = cursor.fetchone()
            return out

        return self._db.run(run)

    def category_dictionary(self, dataset: str) -> dict[str, dict[str, int]]:
        """Return the dataset's codes: field -> value -> code (in code order)."""
        d = self._db.dialect

        def run(cursor: Any) -> list[tuple[Any, ...]]:
            try:
                cursor.execute(
                    d.sql(
                        f"SELECT column_name, value, code FROM {CATEGORIES} WHERE dataset = %s "
                        "ORDER BY column_name, code"
                    ),
                    (dataset,),
                )
            except Exception as exc:
                if d.is_missing_table(exc):
                    return []
                raise
            return list(cursor.fetchall())

        out: dict[str, dict[str, int]] = {}
        for column, value, code in self._db.run(run):
            out.setdefault(str(column), {})[str(value)] = int(code)
        return out

    def rows(
        self,
        contract: DataContract,
        device_id: str,
        start: dt.datetime,
        end: dt.datetime,
        chunk_rows: int,
    ) -> Iterator[list[tuple[Any, ...]]]:
        """Yield one device's stored rows in ``[start, end]`` in chunks, in time order.

        Every stored column (`DataContract.output_columns`), times as naive UTC datetimes.
        Each chunk is its own keyset query on the primary key, so memory stays bounded.
        """
        d = self._db.dialect
        columns = contract.output_columns
        names = ", ".join(quote(c) for c in columns)
        dev, ts = quote(DEVICE_ID), quote(TS)
        template = (
            f"SELECT {names} FROM {quote(contract.table)} WHERE {dev} = %s AND "
            f"{ts} {{after}} %s AND {ts} <= %s ORDER BY {ts} LIMIT {int(chunk_rows)}"
        )
        statement = d.sql(template.format(after=">"))
        first_chunk = d.sql(template.format(after=">="))
        times = [i for i, c in enumerate(columns) if c == TS or _is_time(contract, c)]
        position, first = start, True

        while True:
            sql = first_chunk if first else statement
            args = (device_id, d.to_db_time(position), d.to_db_time(end))

            def run(cursor: Any, sql: str = sql, args: tuple[Any, ...] = args) -> list[Any]:
                cursor.execute(sql, args)
                return list(cursor.fetchall())

            raw = self._db.run(run)
            if not raw:
                return
            chunk = []
            for row in raw:
                values = list(row)
                for i in times:
                    values[i] = d.from_db_time(values[i])
                chunk.append(tuple(values))
            yield chunk
            if len(raw) < chunk_rows:
                return
            position, first = chunk[-1][1], False


def _span(d: SqlDialect, device: Any, low: Any, high: Any) -> DeviceSpan:
    first, last = d.from_db_time(low), d.from_db_time(high)
    if first is None or last is None:  # a device has rows, so it has a first and a last time
        raise AssertionError(f"device {device!r} without times")
    return DeviceSpan(str(device), first, last)


def _is_time(contract: DataContract, column: str) -> bool:
    return any(f.name == column and f.type == "datetime" for f in contract.fields)
