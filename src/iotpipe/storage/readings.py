"""Readings: a file's rows written in one transaction, and range queries (stats and pages).

The write side is a `FileLoad` (the `iotpipe.model.Loader` of one file) over a `BulkPath`: the
MySQL adapter's is ``LOAD DATA LOCAL INFILE``, and `InsertBulkPath` (multi-row upserts) serves
SQLite and MySQL servers that refuse LOCAL INFILE.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import shutil
import sys
import tempfile
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from iotpipe.contract import DEVICE_ID, TS, DataContract
from iotpipe.model import Bucket, CategoryDictionary, ReadingsQuery
from iotpipe.prefetch import prefetched
from iotpipe.stats import NumericStats
from iotpipe.storage.database import Database
from iotpipe.storage.dialect import SqlDialect, quote
from iotpipe.times import STORABLE_FIRST, STORABLE_LAST

if TYPE_CHECKING:  # Polars is the ingest engine; retrieval never imports it
    import polars as pl

    from iotpipe.storage.spill import SpilledRuns

EPOCH = dt.datetime(1970, 1, 1)


def _finite(value: Any) -> Any:
    """Return a number as JSON can carry it: a non-finite float becomes None."""
    if value.__class__ is float and not math.isfinite(value):
        return None
    return value


# Summing ``count`` values of at most this size (in magnitude) stays within the doubles.
_SAFE_SUM = sys.float_info.max / 2


def _may_overflow(count: int, low: float, high: float) -> bool:
    """Whether a SQL ``AVG`` of these values could have overflowed on its way.

    Neither engine says so: over the doubles' range MariaDB's AVG answers 0 and SQLite's
    infinity. Every partial sum is at most ``count`` times the largest magnitude.
    """
    return count * max(abs(low), abs(high)) > _SAFE_SUM


def _scale(low: float, high: float) -> float:
    """Return the largest power of two at most the larger magnitude of ``low`` and ``high``.

    Dividing by a power of two and multiplying back is exact, so an average of the scaled
    values, scaled back, has the very bits of the average the engine would give if its sum
    could not overflow; every scaled value is under 2 in magnitude.
    """
    return math.ldexp(1.0, math.frexp(max(abs(low), abs(high)))[1] - 1)


def _midpoint(low: float, high: float) -> float:
    """Return the mean of two doubles, also when their sum is beyond the doubles' range."""
    middle = (low + high) / 2
    return middle if math.isfinite(middle) else low / 2 + high / 2


class BulkPath(Protocol):
    """How encoded rows reach a table inside an open transaction."""

    def stage(self, rows: pl.DataFrame, directory: Path) -> Path | None:
        """Write ``rows`` ahead, in the form `upsert` sends them; return the file (or None).

        It needs no connection and may run in another thread while an earlier batch is
        written. None: this path has nothing to prepare ahead (it sends the rows as they are).
        """
        ...

    def upsert(
        self,
        cursor: Any,
        table: str,
        rows: pl.DataFrame,
        *,
        whole_rows: bool,
        staged: Path | None = None,
    ) -> None:
        """Upsert ``rows`` on (device_id, ts), changing only the columns ``rows`` has.

        ``whole_rows`` says the rows carry every column of the table, so a row may be
        replaced whole (what a faster path may do); otherwise the table's other columns must
        keep their values. ``staged`` is what `stage` wrote for these rows, if anything.
        """
        ...


class InsertBulkPath:
    """Multi-row ``INSERT ... <upsert clause>`` through the driver's ``executemany``.

    Parameters
    ----------
    dialect
        The engine; with ``time_format`` set, times are sent as text in that format.
    time_format
        A Polars strftime format for engines that store times as text (SQLite).
    """

    def __init__(self, dialect: SqlDialect, time_format: str | None = None) -> None:
        self._dialect = dialect
        self._time_format = time_format

    def stage(self, rows: pl.DataFrame, directory: Path) -> Path | None:
        """Nothing to write ahead: the driver sends the rows themselves."""
        return None

    def upsert(
        self,
        cursor: Any,
        table: str,
        rows: pl.DataFrame,
        *,
        whole_rows: bool,
        staged: Path | None = None,
    ) -> None:
        """Upsert rows with the dialect's conflict clause (it sets only their columns)."""
        import polars as pl

        if self._time_format is not None:
            times = [name for name, dtype in rows.schema.items() if isinstance(dtype, pl.Datetime)]
            if times:
                rows = rows.with_columns(pl.col(times).dt.strftime(self._time_format))
        booleans = [name for name, dtype in rows.schema.items() if dtype == pl.Boolean]
        if booleans:
            rows = rows.with_columns(pl.col(booleans).cast(pl.Int8))
        cursor.executemany(self._dialect.upsert_sql(table, rows.columns), rows.rows())


@dataclass(frozen=True)
class _Ready:
    """A batch made ready to write: sorted by key, and what its bulk path staged for it."""

    rows: pl.DataFrame
    staged: Path | None
    kept: bool = False  # all of it went to a run: nothing to write now


class FileLoad:
    """One file's load: batches upserted, then the ledger's ``loaded``, in one transaction.

    Rows are written in primary-key order: each batch sorted, and once the file shows it is
    not in time order (most of a batch behind what its devices already have), the rest is
    kept as sorted runs on disk and merged in key order before the ledger is marked
    (`iotpipe.storage.spill`). Either way the last row of a key in the file wins.

    While the rest is read, the server would wait for the merge with nothing to do: so the
    rows of the lowest keys - below a cut taken at `DIRECT_SHARE` of the first batch kept in
    runs - are still written as they come, into a part of the table small enough to stay in
    the engine's page cache (at most a `DIRECT_CACHE_PART` of ``cache_bytes``), where rows out
    of order cost little more than rows in order. Past that size the cut drops below every
    key, and all rows go to runs. A cut only ever moves down, so each key's rows are written
    as they come up to some batch and through the runs after it, which the merge writes last:
    the last row still wins.

    Each batch is written in a writer thread as soon as it is ready, after the batch before
    it; the work it needs before its statement - sorting, judging whether it is behind, and the
    bulk path's own form of it (LOAD DATA's CSV file), or the run it is kept in - is done in
    the caller's thread by `upsert`, while the batch before it is written, and the batch is
    then queued behind that one. So the server never waits for a batch that is ready, and a
    batch is not held back until the next one comes. The transaction's cursor is used by one
    thread at a time: the writer holds ``lock`` while it writes a batch (whatever else uses
    the cursor meanwhile - the SQLite store's category codes - takes it too), and `finish`
    waits for the last write.

    Parameters
    ----------
    cursor
        The open transaction's cursor.
    contract
        The dataset's contract.
    bulk
        How batches are written.
    mark_loaded
        Writes the ledger's ``loaded`` (with the report) through the same cursor.
    whole_rows
        The contract carries every column of the table (see `BulkPath.upsert`).
    spill_dir
        Where runs and staged batches go (the system's temporary directory by default).
    lock
        Held while the cursor is used to write a batch (`Database.open_lock`).
    dictionary
        The dataset's category codes. With them, runs keep only the key and field columns
        (the encodings are rebuilt from the codes: a third of the columns to sort, write and
        merge), batches given once `takes_clean_rows` may come without encodings, and each
        merged piece is encoded before it is staged. Without them, runs keep rows as they are given.
    cache_bytes
        The engine's page cache (``innodb_buffer_pool_size``); None or 0: no rows are written
        as they come once the file is out of time order.
    """

    BEHIND_SHARE = 0.25  # a batch with more rows behind its devices' last times: spill
    # Out of time order: the share of the first kept batch, by key, whose key range is still
    # written as it comes, while that range's rows fill at most this part of the page cache.
    # (1M random-order rows, 128 MB buffer pool, the server alone: a third of the keys batch
    # by batch, then the rest in order, cost 1.2 times the same rows in key order; half of
    # them, 1.5 times; docs/benchmarks.md, twenty-second round.)
    DIRECT_SHARE = 0.5
    DIRECT_CACHE_PART = 3  # a third

    def __init__(  # noqa: PLR0913 (the load's parts)
        self,
        cursor: Any,
        contract: DataContract,
        bulk: BulkPath,
        mark_loaded: Callable[[Mapping[str, Any]], None],
        *,
        whole_rows: bool,
        spill_dir: str | None = None,
        lock: AbstractContextManager[Any] | None = None,
        dictionary: CategoryDictionary | None = None,
        cache_bytes: int | None = None,
    ) -> None:
        self.cursor = cursor
        self._dictionary = dictionary
        self._lock = lock if lock is not None else contextlib.nullcontext()
        self._contract = contract
        self._bulk = bulk
        self._mark_loaded = mark_loaded
        self.whole_rows = whole_rows
        self.finished = False
        self._spill_dir = spill_dir
        # Each device's latest time in the batches prepared so far, and whether one of them
        # was behind it.
        self._frontier: pl.DataFrame | None = None
        self._spilling = False
        self._runs: SpilledRuns | None = None
        self._batch_rows = 0
        self._writer: ThreadPoolExecutor | None = None
        # The batch written last (or being written, or queued behind the one being written).
        self._writing: Future[None] | None = None
        self._failed = False  # a write failed: the batches queued behind it are not written
        self._staging: Path | None = None  # the directory of staged batches
        # Once spilling: keys below the cut are still written as they come (None: no key).
        self._cut: tuple[str, dt.datetime] | None = None
        self._direct_left = (cache_bytes or 0) // self.DIRECT_CACHE_PART
        self._encode: Callable[[pl.DataFrame], pl.DataFrame] | None = None

    @property
    def spilled(self) -> bool:
        """Whether the file was loaded through sorted runs (it was not in time order)."""
        return self._runs is not None

    @property
    def takes_clean_rows(self) -> bool:
        """Whether `upsert` takes clean rows now: it keeps runs and encodes what it merges."""
        return self._runs is not None and self._dictionary is not None

    def upsert(self, rows: pl.DataFrame) -> int:
        """Take a batch of encoded rows; return how many once its write has begun.

        A batch holds one row per key (the de-duplication kept each key's last), so sorting
        it by ``(device_id, ts)`` changes nothing stored; the engine then inserts along its
        clustered index instead of at random places. The batch is prepared here while the
        one before it is written; its own write starts when that one's is done, and this
        returns then. Batches are written in the order they were taken; an error writing one
        is raised here or by `finish`, inside the transaction, and the batch queued behind
        it is not written.
        """
        if not rows.height:
            return 0
        self._batch_rows = max(self._batch_rows, rows.height)
        ready = self._prepare(rows)
        if ready.kept:
            self._wait_for_writer()
            return rows.height
        if self._writer is None:
            self._writer = ThreadPoolExecutor(1, thread_name_prefix="iotpipe-write")
        # Queued behind the batch under way, so the writer starts it the moment that one is
        # done (handed over from this thread, it started 4-20 ms later); then this thread
        # waits for that one, so no more than two batches are ever ready at once.
        previous, self._writing = self._writing, self._writer.submit(self._written, ready)
        if previous is not None:
            previous.result()
        return rows.height

    def finish(self, report: Mapping[str, Any]) -> None:
        """Wait for the last batch, write the kept runs in key order, mark the object loaded.

        Both commit with the batches when the load's block ends.
        """
        self._wait_for_writer()
        if self._runs is not None:
            # Merged, (encoded and) staged, and written, each in its own thread, a piece or
            # two ahead.
            pieces = self._runs.merged(self._batch_rows)
            encode = self._encoder()
            staged = prefetched(
                (self._staged(encode(piece)) for piece in pieces), 2, "iotpipe-stage-runs"
            )
            try:
                for ready in staged:
                    self._written(ready)
            finally:  # both threads stopped before `close` removes what they write
                staged.close()
                pieces.close()
        self.close()
        self._mark_loaded(report)
        self.finished = True

    def close(self) -> None:
        """Wait for a write under way; remove any runs or staged batches left (idempotent).

        The connection is the caller's again afterwards (a rollback may follow).
        """
        if self._writer is not None:
            self._writer.shutdown(wait=True)
        if self._staging is not None:
            shutil.rmtree(self._staging, ignore_errors=True)
        if self._runs is not None:
            self._runs.close()

    def _prepare(self, rows: pl.DataFrame) -> _Ready:
        """Sort a batch by key, judge it, and stage it or keep it in a run.

        Batches are prepared one at a time, in the order they were taken, so the frontier
        holds every batch before this one, and the runs are kept in the file's order.
        """
        # Once a batch is behind, the rest of the file is spilled: no more judging.
        behind = self._spilling or self._behind(rows)
        if not behind:
            self._advance(rows)
            return self._staged(rows.sort(DEVICE_ID, TS))
        self._spilling = True
        rows = rows.sort(DEVICE_ID, TS)
        if self._runs is None:
            from iotpipe.storage.spill import SpilledRuns

            self._runs = SpilledRuns(self._spill_dir)
            self._cut = self._first_cut(rows)
        # The rows below the cut, a prefix of the sorted batch, are written now.
        now = self._below_cut(rows)
        direct, rows = rows.head(now), rows.slice(now)
        if self._dictionary is not None:  # encoded again after the merge
            rows = rows.select(self._contract.value_columns)
        self._runs.add(rows)  # a run, not the table
        if not now:
            return _Ready(rows, None, kept=True)
        return self._staged(self._encoded(direct))

    def _first_cut(self, rows: pl.DataFrame) -> tuple[str, dt.datetime]:
        """Return the key below which `DIRECT_SHARE` of a sorted batch's rows fall."""
        device, ts = rows.select(DEVICE_ID, TS).row(int(rows.height * self.DIRECT_SHARE))
        return (device, ts)

    def _below_cut(self, rows: pl.DataFrame) -> int:
        """Return how many of a sorted batch's rows are below the cut, to be written now.

        When they would take the rows written so far past their share of the page cache
        (their size estimated from the batch's in memory), none of them is, nor any row
        after them: the cut drops below every key.
        """
        import polars as pl

        if self._cut is None:
            return 0
        device, ts = self._cut
        below = (pl.col(DEVICE_ID) < device) | ((pl.col(DEVICE_ID) == device) & (pl.col(TS) < ts))
        count = int(rows.select(below.sum()).item())
        size = int(rows.estimated_size()) * count // rows.height  # (a batch is never empty)
        if size > self._direct_left:
            self._cut = None
            return 0
        self._direct_left -= size
        return count

    def _encoded(self, rows: pl.DataFrame) -> pl.DataFrame:
        """Return rows with their encodings (clean rows are given once `takes_clean_rows`).

        Encoding rows that have them already gives the same rows: the few batches cleaned
        before the file showed it is out of order come encoded.
        """
        if self._encode is None:
            self._encode = self._encoder()
        return self._encode(rows)

    def _staged(self, rows: pl.DataFrame) -> _Ready:
        """Stage rows in key order (one thread at a time: the caller's, then the merge's)."""
        if self._staging is None:
            self._staging = Path(tempfile.mkdtemp(prefix="iotpipe-stage-", dir=self._spill_dir))
        return _Ready(rows, self._bulk.stage(rows, self._staging))

    def _encoder(self) -> Callable[[pl.DataFrame], pl.DataFrame]:
        """Return what encodes a merged piece, or rows written as they come out of order.

        The identity without a dictionary.
        """
        if self._dictionary is None:
            return lambda rows: rows
        from iotpipe.encode import Encoder

        # Every value already has its code (`Encoder.learn`, as the batches came): this
        # encoder only reads them, in the caller's thread while the file is read, then in the
        # staging thread, while nothing else uses them.
        return Encoder(self._contract, self._dictionary).encode

    def _wait_for_writer(self) -> None:
        """Wait until the batch being written is (its error is raised here)."""
        writing, self._writing = self._writing, None
        if writing is not None:
            writing.result()

    def _written(self, ready: _Ready) -> None:
        try:
            if self._failed:  # a batch queued behind one whose write failed: not written
                raise RuntimeError("not written: the batch before it failed")
            with self._lock:
                self._bulk.upsert(
                    self.cursor,
                    self._contract.table,
                    ready.rows,
                    whole_rows=self.whole_rows,
                    staged=ready.staged,
                )
        except BaseException:
            self._failed = True
            raise
        finally:
            _discard(ready.staged)

    def _advance(self, rows: pl.DataFrame) -> None:
        """Note each device's latest time in a batch (in the worker)."""
        import polars as pl

        latest = rows.group_by(DEVICE_ID).agg(pl.col(TS).max().alias("frontier"))
        if self._frontier is not None:
            latest = (
                pl.concat([self._frontier, latest])
                .group_by(DEVICE_ID)
                .agg(pl.col("frontier").max())
            )
        self._frontier = latest

    def _behind(self, rows: pl.DataFrame) -> bool:
        """Tell whether most of a batch is older than what its devices already have."""
        import polars as pl

        if self._frontier is None:
            return False
        behind = (
            rows.select(DEVICE_ID, TS)
            .join(self._frontier, on=DEVICE_ID, how="inner")
            .select((pl.col(TS) < pl.col("frontier")).sum())
            .item()
        )
        return bool(behind > self.BEHIND_SHARE * rows.height)


def _discard(path: Path | None) -> None:
    if path is not None:
        path.unlink(missing_ok=True)


class Readings:
    """Range queries over a dataset's table: one device, ``start <= ts <= end``.

    Parameters
    ----------
    db
        The database the dataset tables live in.
    """

    def __init__(self, db: Database) -> None:
        self._db = db

    def count_and_stats(
        self, contract: DataContract, query: ReadingsQuery
    ) -> tuple[int, dict[str, NumericStats]]:
        """Count rows and summarise every numeric field over the query's whole range.

        Count, mean, min and max are aggregated in SQL in one pass over the primary-key
        range; each median is the middle value(s) by ``ORDER BY ... LIMIT 2 OFFSET``, so it
        is exact (see docs/benchmarks.md for the comparison with fetching every value).

        Parameters
        ----------
        contract
            The dataset.
        query
            The device and the range (``after`` and ``limit`` do not apply).

        Returns
        -------
        tuple
            The row count and a `NumericStats` per numeric field.
        """
        d = self._db.dialect
        table = quote(contract.table)
        numeric = [f.name for f in contract.numeric_fields]
        integers = {f.name for f in contract.numeric_fields if f.type == "integer"}
        where, params = self._range(query)
        aggregates = "".join(
            # "+ 0E0": MySQL averages a BIGINT as a 4-decimal DECIMAL; this keeps it a DOUBLE.
            f", COUNT({quote(c)}), AVG({quote(c)} + 0E0), MIN({quote(c)}), MAX({quote(c)})"
            for c in numeric
        )

        def run(cursor: Any) -> tuple[int, dict[str, NumericStats]]:
            cursor.execute(d.sql(f"SELECT COUNT(*){aggregates} FROM {table} WHERE {where}"), params)
            row = cursor.fetchone()
            stats: dict[str, NumericStats] = {}
            for i, column in enumerate(numeric):
                count, mean, low, high = row[1 + 4 * i : 5 + 4 * i]
                count = int(count)
                if count == 0:
                    stats[column] = NumericStats(0, None, None, None, None)
                    continue
                col = quote(column)
                take = 1 if count % 2 else 2
                cursor.execute(
                    d.sql(
                        f"SELECT {col} FROM {table} WHERE {where} AND {col} IS NOT NULL "
                        f"ORDER BY {col} LIMIT {take} OFFSET {(count - 1) // 2}"
                    ),
                    params,
                )
                if column in integers:  # exact: integers stay integers (a .5 median aside)
                    ints = [int(r[0]) for r in cursor.fetchall()]
                    total = sum(ints)
                    median: float | int = (
                        total // len(ints) if total % len(ints) == 0 else total / len(ints)
                    )
                    stats[column] = NumericStats(count, float(mean), median, int(low), int(high))
                    continue
                middle = [float(r[0]) for r in cursor.fetchall()]
                median = _midpoint(middle[0], middle[-1])
                low, high = float(low), float(high)
                if _may_overflow(count, low, high):  # each value scaled to under 2
                    scale = _scale(low, high)
                    cursor.execute(
                        d.sql(f"SELECT AVG({col} / %s) FROM {table} WHERE {where}"),
                        (scale, *params),
                    )
                    mean = min(max(float(cursor.fetchone()[0]) * scale, low), high)
                figures = (float(mean), median, low, high)
                if not d.finite_only:  # a stored inf (SQLite keeps them) is no JSON number
                    figures = tuple(map(_finite, figures))
                stats[column] = NumericStats(count, *figures)
            return int(row[0]), stats

        return self._db.run(run)

    def buckets(
        self, contract: DataContract, query: ReadingsQuery, width_seconds: int
    ) -> list[Bucket]:
        """Summarise the range in buckets of ``width_seconds`` aligned to UTC multiples.

        One ``GROUP BY`` over the primary-key range; the bucket of a row is
        ``floor(microseconds since 1970 / width)``, computed exactly in SQL on both engines.
        Empty buckets are not returned. An integer field's min and max stay integers.

        Parameters
        ----------
        contract
            The dataset.
        query
            The device and the range (``after`` and ``limit`` do not apply).
        width_seconds
            The bucket width (at least 1).

        Returns
        -------
        list[Bucket]
            The non-empty buckets, in time order.
        """
        d = self._db.dialect
        numeric = contract.numeric_fields
        where, params = self._range(query)
        since_1970 = max(query.start, STORABLE_FIRST) >= EPOCH  # the range is clamped so
        bucket = d.bucket_sql(TS, width_seconds, since_1970=since_1970)
        aggregates = "".join(
            f", COUNT({quote(f.name)}), AVG({quote(f.name)} + 0E0), "
            f"MIN({quote(f.name)}), MAX({quote(f.name)})"
            for f in numeric
        )
        statement = d.sql(
            f"SELECT {bucket} AS b, COUNT(*){aggregates} FROM {quote(contract.table)} "
            f"WHERE {where} GROUP BY b ORDER BY b"
        )

        names = [f.name for f in numeric]

        def run(cursor: Any) -> list[list[Any]]:
            cursor.execute(statement, params)
            rows = [list(row) for row in cursor.fetchall()]
            # A mean whose sum could have overflowed is averaged again over scaled values
            # (rare: readings near the doubles' limit), in one more pass for every bucket.
            scales = [1.0] * len(names)
            redo: list[tuple[int, int]] = []  # (row, field)
            for r, row in enumerate(rows):
                for i in range(len(names)):
                    count, _, low, high = row[2 + 4 * i : 6 + 4 * i]
                    if count and _may_overflow(int(count), float(low), float(high)):
                        scales[i] = max(scales[i], _scale(float(low), float(high)))
                        redo.append((r, i))
            if redo:
                scaled = ", ".join(f"AVG({quote(name)} / %s)" for name in names)
                cursor.execute(
                    d.sql(
                        f"SELECT {bucket} AS b, {scaled} FROM {quote(contract.table)} "
                        f"WHERE {where} GROUP BY b ORDER BY b"
                    ),
                    (*scales, *params),
                )
                again = {row[0]: row for row in cursor.fetchall()}
                for r, i in redo:
                    low, high = float(rows[r][4 + 4 * i]), float(rows[r][5 + 4 * i])
                    mean = float(again[rows[r][0]][1 + i]) * scales[i]
                    rows[r][3 + 4 * i] = min(max(mean, low), high)
            return rows

        finite = d.finite_only  # else a stored inf could make a mean, min or max non-finite
        out = []
        for row in self._db.run(run):
            stats = {}
            for i, name in enumerate(names):
                count, mean, low, high = row[2 + 4 * i : 6 + 4 * i]
                if not finite:
                    mean, low, high = _finite(mean), _finite(low), _finite(high)
                stats[name] = {"count": count, "mean": mean, "min": low, "max": high}
            start = EPOCH + dt.timedelta(seconds=int(row[0]) * width_seconds)
            out.append(Bucket(start, int(row[1]), stats))
        return out

    def page(
        self, contract: DataContract, query: ReadingsQuery, limit: int
    ) -> list[dict[str, Any]]:
        """Return up to ``limit`` rows of the range after ``query.after``, ordered by ts.

        Parameters
        ----------
        contract
            The dataset.
        query
            The device, the range and the keyset position (``after``).
        limit
            How many rows at most.

        Returns
        -------
        list[dict]
            Rows with ``ts`` (naive UTC datetime) and each field.
        """
        d = self._db.dialect
        columns = [TS, *(f.name for f in contract.fields)]
        where, params = self._range(query)
        if query.after is not None:
            where += f" AND {quote(TS)} > %s"
            params = (*params, d.to_db_time(query.after))
        statement = d.sql(
            f"SELECT {', '.join(quote(c) for c in columns)} FROM {quote(contract.table)} "
            f"WHERE {where} ORDER BY {quote(TS)} LIMIT {int(limit)}"
        )
        booleans = {f.name for f in contract.fields if f.type == "boolean"}
        datetimes = {TS, *(f.name for f in contract.fields if f.type == "datetime")}

        def run(cursor: Any) -> list[tuple[Any, ...]]:
            cursor.execute(statement, params)
            return list(cursor.fetchall())

        out: list[dict[str, Any]] = []
        for raw in self._db.run(run):
            row = dict(zip(columns, raw, strict=True))
            for name in datetimes:
                row[name] = d.from_db_time(row[name])
            for name in booleans:
                if row[name] is not None:
                    row[name] = bool(row[name])
            out.append(row)
        return out

    def _range(self, query: ReadingsQuery) -> tuple[str, tuple[Any, ...]]:
        """Return the WHERE clause and parameters of the query's device and inclusive range.

        Both engines must give the same answer: the device id is also matched with an escaped
        LIKE, because MySQL's PAD SPACE collations make ``'d1 ' = 'd1'`` true; and the range
        is clamped to what can be stored, so no engine compares times it cannot represent.
        """
        to_db = self._db.dialect.to_db_time
        device = quote(DEVICE_ID)
        where = f"{device} = %s AND {device} LIKE %s ESCAPE '!' AND {quote(TS)} BETWEEN %s AND %s"
        exact = query.device_id.replace("!", "!!").replace("%", "!%").replace("_", "!_")
        start, end = max(query.start, STORABLE_FIRST), min(query.end, STORABLE_LAST)
        return where, (query.device_id, exact, to_db(start), to_db(end))
