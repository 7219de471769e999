"""Ingest service: one source object through read -> clean -> encode -> store, exactly once.

`ingest_object` claims the object version in the store's ledger, loads the whole file in one
transaction that also marks it loaded, and retries the whole load (re-reading the source) when
the database connection drops. `validate_source` runs the same pipeline (`_pipeline`) with no
store. `ingest_announced` adds what an S3 object needs: its rejects and report written back,
or the object quarantined.

While loading, reading and cleaning run in a worker thread one batch ahead of the database
load, so the two overlap (Polars and socket waits release the GIL).
"""

from __future__ import annotations

import collections
import contextlib
import datetime as dt
import io
import time
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import IO, Any

import polars as pl

from iotpipe.clean import CheckedBatch, CleanBatch, Cleaner
from iotpipe.contract import DataContract
from iotpipe.encode import Encoder, InMemoryCategoryDictionary
from iotpipe.errors import (
    FileFailedError,
    FileTooLongError,
    ObjectBusyError,
    SourceFormatError,
    SourceMissingError,
    SourceReadError,
    TransientStorageError,
)
from iotpipe.model import (
    AnnouncedObject,
    CategoryDictionary,
    Claim,
    LedgerEntry,
    ObjectRef,
    ObjectSource,
    RejectedRow,
    RejectSink,
    Store,
)
from iotpipe.prefetch import Permits, prefetched
from iotpipe.quality import check_fit, check_outcome, warnings_for
from iotpipe.readers import DEFAULT_BATCH_ROWS, RecordBatch, RecordReader, open_records
from iotpipe.readers.streams import PIECE_BYTES, ReadStream
from iotpipe.report import IngestReport
from iotpipe.storage.store import new_owner
from iotpipe.times import iso_z

Opener = Callable[[], IO[bytes]]
Progress = Callable[[IngestReport], None]
# Batches read (and cleaned) ahead of their consumer. One is enough to keep every stage busy
# with 100,000-row batches; more only took CPU from the batch the database waits for
# (docs/benchmarks.md, twelfth round: 1M rows in time order, 5.07-5.23 s with two, 4.91-4.98 s
# with one).
PREFETCH_BATCHES = 1
CHECK_WORKERS = 2  # batches typed and checked at once (`Cleaner.check`), when permits allow
# Batches read while loading, ahead of the one being written: one. Each batch then goes
# through reading, cleaning and staging alone, and reaches the database as soon as it can
# (docs/benchmarks.md, fifteenth round).
READ_AHEAD_BATCHES = 1


@dataclass(frozen=True)
class IngestOptions:
    """Tuning of one ingest.

    Attributes
    ----------
    lease_seconds
        How long a claim keeps other workers off the object (a Lambda passes its remaining
        time plus a margin).
    retries
        Whole-file retries after a transient database or source error.
    backoff_seconds
        First retry delay (doubles each time).
    batch_rows
        Rows per batch.
    remaining_seconds
        Time left for this invocation (a Lambda context); no retry starts without
        ``min_retry_seconds`` left, and a load that cannot finish in time fails early
        (`LoadDeadline`).
    min_retry_seconds
        See ``remaining_seconds``.
    now
        The clock for the future-timestamp rule (tests pin it).
    force
        Load the version again even when the ledger says it is loaded.
    """

    lease_seconds: float = 900.0
    retries: int = 3
    backoff_seconds: float = 0.5
    batch_rows: int = DEFAULT_BATCH_ROWS
    remaining_seconds: Callable[[], float] | None = None
    min_retry_seconds: float = 10.0
    now: dt.datetime | None = None
    force: bool = False


def validate_source(
    stream: IO[bytes],
    contract: DataContract,
    *,
    source: str,
    dictionary: CategoryDictionary | None = None,
    on_rejected: Callable[[list[RejectedRow]], None] | None = None,
    now: dt.datetime | None = None,
    batch_rows: int = DEFAULT_BATCH_ROWS,
) -> IngestReport:
    """Read and clean a source without storing it (a dry run of ingest).

    Parameters
    ----------
    stream
        The source, as a binary stream (plain or gzip; CSV, NDJSON or Parquet).
    contract
        The contract to clean against.
    source
        A name for the report (a path or ``s3://`` URL).
    dictionary
        Category codes; a throwaway in-memory dictionary by default.
    on_rejected
        Called with each batch's rejected rows (to write a rejects file).
    now
        The clock for the future-timestamp rule.
    batch_rows
        Rows per batch.

    Returns
    -------
    IngestReport
        ``status`` is ``validated``, or ``failed`` with ``error`` when the file as a whole
        cannot be loaded (not a recognised format, a required column missing, the contract
        does not fit, no valid row, too many rejected: `iotpipe.quality`).
    """
    report = IngestReport(source, contract.name)
    dictionary = dictionary or InMemoryCategoryDictionary()
    try:
        for _, rejected in _pipeline(stream, contract, dictionary, report, now, batch_rows):
            if on_rejected is not None and rejected:
                on_rejected(rejected)
        check_outcome(contract, report.counters)
    except SourceFormatError as exc:
        return report.end("failed", str(exc))
    report.warnings = warnings_for(contract, report.counters)
    return report.end("validated")


def ingest_object(
    opener: Opener,
    ref: ObjectRef,
    contract: DataContract,
    store: Store,
    *,
    rejects: RejectSink | None = None,
    options: IngestOptions | None = None,
    progress: Progress | None = None,
) -> IngestReport:
    """Load one object version into the store, exactly once.

    Parameters
    ----------
    opener
        Opens the source from the start (called again for each retry).
    ref
        The object version (the ledger key).
    contract
        Its contract.
    store
        Where rows, categories and the ledger live.
    rejects
        Where rejected rows go (restarted on each attempt).
    options
        Leases, retries and batch size.
    progress
        Called after each batch with the report so far.

    Returns
    -------
    IngestReport
        ``loaded``; ``skipped`` when this version was loaded into this dataset before (the
        report's ``matched`` says when; ``options.force`` loads it again); or ``failed``
        (with ``error``) when the file is gone or cannot be loaded as a whole (see
        `validate_source`). The ledger says the same.

    Raises
    ------
    ObjectBusyError
        Another worker holds a live claim on this version.
    TransientStorageError, SourceReadError
        The database or the source stayed unreachable through every retry (the ledger is
        not "loaded").
    """
    options = options or IngestOptions()
    started = time.perf_counter()
    store.ensure_schema(contract)
    owner = new_owner()
    delay = options.backoff_seconds
    for attempt in range(1, options.retries + 2):
        report = IngestReport(ref.source, contract.name, started=started)
        claim = store.claim(
            ref, contract.name, options.lease_seconds, owner, force=options.force and attempt == 1
        )
        if claim.status == "skipped":  # loaded before (or, on a retry, by someone else)
            report.matched = _matched(store.ledger_entry(ref, contract.name))
            return report.end("skipped")
        if claim.status == "busy":
            holder = "is being loaded" if attempt == 1 else "was taken over"
            raise ObjectBusyError(f"{ref.source} {holder} by another worker")
        try:
            return _load_once(opener, claim, contract, store, report, rejects, options, progress)
        except (SourceFormatError, SourceMissingError, FileTooLongError) as exc:
            report.source_missing = isinstance(exc, SourceMissingError)
            report.too_long = isinstance(exc, FileTooLongError)
            report.end("failed", str(exc))
            store.fail(claim, str(exc), report.to_dict())
            return report
        except (TransientStorageError, SourceReadError) as exc:
            if attempt > options.retries or not _time_for_retry(options, delay):
                _fail_quietly(store, claim, f"gave up after {attempt} attempt(s): {exc}")
                raise
        except Exception as exc:
            # Not the file's fault and not worth retrying here (a full disk for the rejects,
            # a bug): the load rolled back; the ledger says so, and the delivery is retried.
            _fail_quietly(store, claim, f"{type(exc).__name__}: {exc}")
            raise
        finally:
            _release_quietly(store, claim)
        time.sleep(delay)
        delay *= 2
    raise AssertionError("unreachable: the last attempt returns or raises")


def ingest_announced(
    obj: AnnouncedObject,
    contract: DataContract,
    store: Store,
    objects: ObjectSource,
    *,
    options: IngestOptions | None = None,
) -> IngestReport:
    """Load an announced S3 object; publish its rejects and report, or quarantine it.

    Parameters
    ----------
    obj
        The object version.
    contract
        Its contract.
    store
        The store.
    objects
        The object source (S3).
    options
        Leases, retries and batch size.

    Returns
    -------
    IngestReport
        ``loaded`` (rejects at ``outputs["rejects"]`` when there were any, the report at
        ``outputs["report"]``) or ``skipped``.

    Raises
    ------
    FileFailedError
        The file cannot be loaded: the ledger says failed, the object was copied to the
        quarantine prefix (unless it is gone) and its report written. Retrying cannot help.
    ObjectBusyError, TransientStorageError, SourceReadError
        Another worker holds it, or the database or S3 stayed unreachable: retry later.
    Exception
        Anything unforeseen, after its report is written: retry (then the DLQ).
    """
    if obj.etag is None:  # not in the event (s3:// URLs, Batch Operations tasks): ask S3
        try:
            head = objects.head(obj.bucket, obj.key, obj.version_id)
        except SourceMissingError as exc:  # nothing to claim, load or quarantine
            raise FileFailedError(str(exc)) from exc
        obj = AnnouncedObject(obj.bucket, obj.key, *head)
    version_id = obj.version_id
    ref = ObjectRef(obj.url, obj.version or "", obj.size)
    sink = objects.rejects_sink(obj.bucket, obj.key)
    try:
        try:
            report = ingest_object(
                lambda: objects.open(obj.bucket, obj.key, version_id),
                ref,
                contract,
                store,
                rejects=sink,
                options=options,
            )
        except (ObjectBusyError, TransientStorageError, SourceReadError):
            raise  # nothing is known yet: the delivery is retried
        except Exception as exc:
            # Unforeseen: the ledger says failed already; leave a report, then retry.
            error = f"unexpected {type(exc).__name__}: {exc}"
            failed = IngestReport(obj.url, contract.name).end("failed", error)
            with contextlib.suppress(Exception):
                objects.write_report(obj.bucket, obj.key, failed.to_dict())
            raise
        if report.status == "loaded":
            rejects_url = sink.upload()
            if rejects_url:
                report.outputs["rejects"] = rejects_url
        elif report.status == "failed" and not (report.source_missing or report.too_long):
            report.outputs["quarantine"] = objects.quarantine(obj.bucket, obj.key, version_id)
        if report.status != "skipped":
            report.outputs["report"] = objects.write_report(obj.bucket, obj.key, report.to_dict())
        if report.status == "failed":
            raise FileFailedError(f"{obj.url}: {report.error}", report.to_dict())
        return report
    finally:
        sink.close()


def _load_once(  # noqa: PLR0917 (private; every argument is needed and distinct)
    opener: Opener,
    claim: Claim,
    contract: DataContract,
    store: Store,
    report: IngestReport,
    rejects: RejectSink | None,
    options: IngestOptions,
    progress: Progress | None,
) -> IngestReport:
    if rejects is not None:
        rejects.begin()
    deadline = LoadDeadline.of(claim.ref, options.remaining_seconds)
    # One batch read ahead of the one being written (see `Permits`).
    permits = Permits(READ_AHEAD_BATCHES)
    with opener() as source, store.load(claim, contract) as loader:
        stream = source if deadline is None else deadline.counted(source)
        batches = _pipeline(
            stream,
            contract,
            store,
            report,
            options.now,
            options.batch_rows,
            prefetch=True,
            on_read=deadline.mark if deadline is not None else None,
            permits=permits,
            clean_only=lambda: loader.takes_clean_rows,
        )
        with contextlib.closing(batches):
            for rows, rejected in batches:
                if deadline is not None:
                    deadline.check()
                loader.upsert(rows)  # returns once the batch is being written
                permits.give()
                if loader.spilled:  # batches go to sorted runs: nothing waits for them
                    permits.lift()
                if rejects is not None and rejected:
                    rejects.write(rejected)
                if progress is not None:
                    progress(report)
        check_outcome(contract, report.counters)  # before the commit: a failure rolls back
        report.warnings = warnings_for(contract, report.counters)
        report.rows_loaded = report.counters.rows_valid
        loader.finish(report.end("loaded").to_dict())
    return report


class LoadDeadline:
    """Tells early that a load cannot finish before the invocation ends.

    A file is one transaction: a load cut off by the Lambda timeout is rolled back, delivered
    again and cut off again until the dead-letter queue. After each batch, the rate measured
    so far (bytes of the object read per second; compressed bytes for gzip) projects when the
    whole object will be read; when that is past the time left (less a reserve for the
    commit and the outputs) the load stops, rolls back and fails with `FileTooLongError`,
    which says how large the parts of a split should be.

    Parameters
    ----------
    size
        The object's size in bytes.
    available
        Seconds the load may take.
    """

    RESERVE_SHARE = 0.1  # of the time left, for the commit, the report and the rejects upload
    MAX_RESERVE_SECONDS = 30.0
    PART_SHARE = 0.7  # suggested parts fill this share of what one invocation can read

    def __init__(self, size: int, available: float) -> None:
        self.size = size
        self.available = available
        self.started = time.monotonic()
        self.read = 0
        # (bytes read, rows read) when each batch was read: the reader works ahead of the
        # load, so the load's own position is the mark of the batch it is about to write.
        self._marks: collections.deque[tuple[int, int]] = collections.deque()

    @classmethod
    def of(cls, ref: ObjectRef, remaining: Callable[[], float] | None) -> LoadDeadline | None:
        """Return the deadline of a load (None: no time limit, or the size is unknown)."""
        if remaining is None or not ref.size:
            return None
        left = remaining()
        return cls(ref.size, left - min(cls.MAX_RESERVE_SECONDS, cls.RESERVE_SHARE * left))

    def counted(self, stream: IO[bytes]) -> IO[bytes]:
        """Return ``stream`` counting the bytes read from it."""

        def read(n: int = -1) -> bytes:
            data = stream.read(n)
            self.read += len(data)
            return data

        return io.BufferedReader(ReadStream(read, stream.close), buffer_size=PIECE_BYTES)

    def mark(self, rows_read: int) -> None:
        """Note where the reader is as it reads a batch (called by the reading thread)."""
        self._marks.append((self.read, rows_read))

    def check(self) -> None:
        """Raise `FileTooLongError` when the projected end is past the time available.

        Called before each batch is written; the rate is that of the batches written so far.
        """
        if not self._marks:  # no batch cleaned through `mark`: no position to project from
            return
        elapsed = time.monotonic() - self.started
        position, rows_read = self._marks.popleft()
        read = min(position, self.size)
        if read <= 0 or read >= self.size:
            return
        rate = read / max(elapsed, 1e-6)
        projected = self.size / rate
        if projected <= self.available:
            return
        rows = max(1, int(rows_read / max(elapsed, 1e-6) * self.available * self.PART_SHARE))
        raise FileTooLongError(
            f"too long for one invocation: {self.size:,} bytes at the {rate / 1e6:.2f} MB/s "
            f"measured over the first {read / self.size:.0%} would take about "
            f"{_seconds(projected)}, and {_seconds(self.available)} are available. Split it "
            f"into parts of at most {rows:,} rows (iotpipe split FILE --rows {rows} --out DIR) "
            "and upload those; docs/scale.md, 'Files larger than one invocation'"
        )


def _seconds(value: float) -> str:
    """``1.2 s`` under ten seconds, ``693 s`` above (so a projection never reads as equal)."""
    return f"{value:.1f} s" if value < 10 else f"{value:.0f} s"  # noqa: PLR2004 (readability)


def _pipeline(  # noqa: PLR0917 (private; the pipeline's inputs)
    stream: IO[bytes],
    contract: DataContract,
    dictionary: CategoryDictionary,
    report: IngestReport,
    now: dt.datetime | None,
    batch_rows: int,
    *,
    prefetch: bool = False,
    on_read: Callable[[int], None] | None = None,
    permits: Permits | None = None,
    clean_only: Callable[[], bool] | None = None,
) -> Generator[tuple[pl.DataFrame, list[RejectedRow]], None, None]:
    """Read, clean and encode a source: yield (encoded rows, rejected rows) per batch.

    The report's counters, format and column lists follow along. A device id that comes from
    the path (``device_id.from_path``) is resolved on the report's source first.
    ``on_read`` is called with the rows read so far as each batch is read (in the thread
    that reads, ahead of the batches' consumer).

    With ``prefetch``, reading, checking, cleaning and the consumer each have threads: the
    reader parses up to `PREFETCH_BATCHES` batches ahead of the checkers, and as far as
    ``permits`` allow (it takes one before it reads a batch; the consumer gives them back);
    `CHECK_WORKERS` type and check batches at once; the cleaner de-duplicates them in order
    (and encodes them, once their categories' codes are known) as many ahead of the
    consumer. Batches keep their order; an error is raised where it happened. The category
    dictionary is used by the consumer's thread alone.

    Once ``clean_only`` says so (the loader keeps sorted runs and encodes what it merges),
    batches are yielded clean, not encoded: their new category values get codes here, in the
    file's order, and the columns are built after the merge.
    """
    contract = contract.for_source(report.source)
    cleaner = Cleaner(contract, now)
    report.counters = cleaner.counters
    reader = open_records(stream, contract, batch_rows=batch_rows)
    _describe(report, reader)
    check_fit(contract, reader)
    encoder = Encoder(contract, dictionary)

    def deferred() -> bool:
        return clean_only is not None and clean_only()

    def with_codes(done: CleanBatch) -> tuple[CleanBatch, pl.DataFrame | None]:
        # Encoded here too when every category value already has a code: the consumer's
        # thread (the one that writes to the database) then only sends the batch.
        return done, None if deferred() else encoder.encode_known(done.rows)

    def clean_all() -> Generator[tuple[CleanBatch, pl.DataFrame | None], None, None]:
        batches = _read(reader, permits, on_read)
        if not prefetch:
            for batch in batches:
                yield with_codes(cleaner.clean(batch))
            return
        # The reading thread hands each batch to CHECK_WORKERS checkers (no state of the
        # file involved); here they are finished - de-duplicated across the file - one at a
        # time, in order, each as soon as its check is done.
        checking = ThreadPoolExecutor(CHECK_WORKERS, thread_name_prefix="iotpipe-check")

        def submitted() -> Iterator[Future[CheckedBatch]]:
            for batch in batches:
                yield checking.submit(cleaner.check, batch)

        checks = prefetched(submitted(), PREFETCH_BATCHES, "iotpipe-read")
        try:
            for check in checks:
                yield with_codes(cleaner.finish(check.result()))
        finally:
            checks.close()  # stops the reading thread: nothing more is submitted
            checking.shutdown(wait=True, cancel_futures=True)

    cleaned = clean_all()
    stages = prefetched(cleaned, PREFETCH_BATCHES, "iotpipe-clean") if prefetch else cleaned
    try:
        for batch, encoded in stages:
            report.note_rejected(batch.rejected)
            # A new value's code comes from the dictionary, in this thread only.
            if encoded is None and deferred():
                encoder.learn(batch.rows)  # the loader encodes the rows after its merge
                yield batch.rows, batch.rejected
            else:
                yield (encoder.encode(batch.rows) if encoded is None else encoded), batch.rejected
    finally:
        if permits is not None:
            permits.close()  # first: a reader waiting for a permit stops
        stages.close()  # then the threads stop (each after its stage's current batch)
    _describe(report, reader)


def _read(
    reader: RecordReader, permits: Permits | None, on_read: Callable[[int], None] | None
) -> Iterator[RecordBatch]:
    """Yield the reader's batches, each once a permit is taken (when there are permits)."""
    rows_read = 0
    batches = iter(reader)
    while permits is None or permits.take():
        batch = next(batches, None)
        if batch is None:
            return
        rows_read += batch.rows_read
        if on_read is not None:
            on_read(rows_read)
        yield batch


def _describe(report: IngestReport, reader: RecordReader) -> None:
    report.format, report.compressed = reader.format, reader.compressed
    report.unknown_columns = reader.unknown_columns
    report.absent_columns = reader.absent_columns


def _time_for_retry(options: IngestOptions, delay: float) -> bool:
    if options.remaining_seconds is None:
        return True
    return options.remaining_seconds() - delay >= options.min_retry_seconds


def _matched(entry: LedgerEntry | None) -> dict[str, Any] | None:
    if entry is None:
        return None
    finished = entry.finished_at
    return {
        "source": entry.source,
        "version": entry.version,
        "dataset": entry.dataset,
        "status": entry.status,
        "loaded_at": iso_z(finished) if finished is not None else None,
        "rows_loaded": entry.rows_loaded,
    }


def _release_quietly(store: Store, claim: Claim) -> None:
    # A lost connection has released the lock already.
    with contextlib.suppress(TransientStorageError):
        store.release(claim)


def _fail_quietly(store: Store, claim: Claim, error: str) -> None:
    # If even this fails, the lease expires on its own and a later delivery takes over.
    with contextlib.suppress(TransientStorageError):
        store.fail(claim, error, None)
