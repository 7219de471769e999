"""Ingest service: one source object through read -> clean -> encode -> store, exactly once.

`ingest_object` claims the object version in the store's ledger, loads the whole file in one
transaction that also marks it loaded, and retries the whole load (re-reading the source) when
the database connection drops. `validate_source` runs the same pipeline without a store.

Reading and cleaning run in a worker thread one batch ahead of the database load, so the two
overlap (Polars and socket waits release the GIL).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, Any, Protocol

from iotpipe.clean import CleanBatch, Cleaner
from iotpipe.contract import DataContract
from iotpipe.encode import CategoryDictionary, Encoder, InMemoryCategoryDictionary
from iotpipe.errors import (
    FileFailedError,
    ObjectBusyError,
    SourceFormatError,
    SourceMissingError,
    SourceReadError,
    TransientStorageError,
)
from iotpipe.readers import DEFAULT_BATCH_ROWS, RecordReader, RejectedRow, open_records
from iotpipe.rejects import RejectSink
from iotpipe.report import IngestReport
from iotpipe.storage.base import Claim, ObjectRef, Store, new_owner

Opener = Callable[[], IO[bytes]]
Progress = Callable[[IngestReport], None]
PREFETCH_BATCHES = 2


@dataclass(frozen=True)
class IngestOptions:
    """Tuning of one ingest.

    Attributes
    ----------
    lease_seconds
        How long a claim keeps other workers off the object (a Lambda passes its remaining
        time plus a margin).
    retries
        Whole-file retries after a transient database error.
    backoff_seconds
        First retry delay (doubles each time).
    batch_rows
        Rows per batch.
    remaining_seconds
        Time left for this invocation (a Lambda context); no retry starts without
        ``min_retry_seconds`` left.
    min_retry_seconds
        See ``remaining_seconds``.
    now
        The clock for the future-timestamp rule (tests pin it).
    """

    lease_seconds: float = 900.0
    retries: int = 3
    backoff_seconds: float = 0.5
    batch_rows: int = DEFAULT_BATCH_ROWS
    remaining_seconds: Callable[[], float] | None = None
    min_retry_seconds: float = 10.0
    now: dt.datetime | None = None


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
        cannot be read (missing required column, not a recognised format).
    """
    started = time.perf_counter()
    report = IngestReport(status="validated", source=source, contract=contract.name)
    cleaner = Cleaner(contract, now)
    report.counters = cleaner.counters
    try:
        reader = open_records(stream, contract, batch_rows=batch_rows)
        _describe(report, reader)
        encoder = Encoder(contract, dictionary or InMemoryCategoryDictionary())
        for cleaned in _cleaned(reader, cleaner):
            encoder.encode(cleaned.rows)
            report.note_rejected(cleaned.rejected)
            if on_rejected is not None and cleaned.rejected:
                on_rejected(cleaned.rejected)
        _describe(report, reader)
    except SourceFormatError as exc:
        report.status = "failed"
        report.error = str(exc)
    report.seconds = time.perf_counter() - started
    return report


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
        ``loaded``; ``skipped`` when this version was loaded before; or ``failed`` (with
        ``error``) when the file itself is unreadable or lacks a required column. The ledger
        says the same.

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
    claim = store.claim(ref, contract.name, options.lease_seconds, owner)
    if claim.status == "skipped":
        report = IngestReport(status="skipped", source=ref.source, contract=contract.name)
        report.seconds = time.perf_counter() - started
        return report
    if claim.status == "busy":
        raise ObjectBusyError(f"{ref.source} is being loaded by another worker")
    delay = options.backoff_seconds
    attempt = 0
    while True:
        attempt += 1
        report = IngestReport(status="loaded", source=ref.source, contract=contract.name)
        try:
            _load_once(opener, claim, contract, store, report, rejects, options, progress)
        except SourceFormatError as exc:
            report.status, report.error = "failed", str(exc)
            report.source_missing = isinstance(exc, SourceMissingError)
            report.seconds = time.perf_counter() - started
            store.fail(claim, report.error, report.to_dict())
            return report
        except (TransientStorageError, SourceReadError) as exc:
            if attempt > options.retries or not _time_for_retry(options, delay):
                _fail_quietly(store, claim, f"gave up after {attempt} attempt(s): {exc}")
                raise
            time.sleep(delay)
            delay *= 2
            claim = store.claim(ref, contract.name, options.lease_seconds, owner)
            if claim.status != "claimed":  # someone else finished or holds it meanwhile
                if claim.status == "busy":
                    raise ObjectBusyError(f"{ref.source} was taken over by another worker") from exc
                report = IngestReport(status="skipped", source=ref.source, contract=contract.name)
                break
            continue
        except Exception as exc:
            # Not the file's fault and not worth retrying here (a full disk for the rejects,
            # a bug): the load rolled back; the ledger says so, and the delivery is retried.
            _fail_quietly(store, claim, f"{type(exc).__name__}: {exc}")
            raise
        break
    report.seconds = time.perf_counter() - started
    return report


class ObjectSource(Protocol):
    """Where announced objects are read and their outputs written (S3; `iotpipe.aws.s3`)."""

    def head(self, bucket: str, key: str) -> tuple[str, str | None, int]:
        """Return (ETag, version id, size)."""
        ...

    def open(self, bucket: str, key: str, version_id: str | None = None) -> IO[bytes]:
        """Open the object as a stream."""
        ...

    def rejects_sink(self, bucket: str, key: str) -> UploadingRejectSink:
        """Return a sink for the object's rejected rows."""
        ...

    def write_report(self, bucket: str, key: str, report: dict[str, Any]) -> str:
        """Write the object's quality report; return its URL."""
        ...

    def quarantine(self, bucket: str, key: str, version_id: str | None = None) -> str:
        """Copy a failed object aside; return its URL."""
        ...


class UploadingRejectSink(RejectSink, Protocol):
    """A reject sink that is published once the load commits."""

    def upload(self) -> str | None:
        """Publish the rejects; return their URL, or None when there were none."""
        ...

    def close(self) -> None:
        """Release local resources."""
        ...


@dataclass(frozen=True)
class AnnouncedObject:
    """An object version an event announced."""

    bucket: str
    key: str
    etag: str | None = None
    version_id: str | None = None
    size: int | None = None

    @property
    def version(self) -> str | None:
        """The ledger version: ETag, plus the version id on versioned buckets."""
        if self.etag is None:
            return None
        return f"{self.etag}#{self.version_id}" if self.version_id else self.etag


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
        quarantine prefix and its report written.
    """
    if obj.etag is None:  # not in the event (the CLI's s3:// URLs): ask S3
        obj = AnnouncedObject(obj.bucket, obj.key, *objects.head(obj.bucket, obj.key))
    version_id = obj.version_id
    ref = ObjectRef(f"s3://{obj.bucket}/{obj.key}", obj.version or "", obj.size)
    sink = objects.rejects_sink(obj.bucket, obj.key)
    try:
        report = ingest_object(
            lambda: objects.open(obj.bucket, obj.key, version_id),
            ref,
            contract,
            store,
            rejects=sink,
            options=options,
        )
        if report.status == "loaded":
            rejects_url = sink.upload()
            if rejects_url:
                report.outputs["rejects"] = rejects_url
        elif report.status == "failed" and not report.source_missing:
            report.outputs["quarantine"] = objects.quarantine(obj.bucket, obj.key, version_id)
        if report.status != "skipped":
            report.outputs["report"] = objects.write_report(obj.bucket, obj.key, report.to_dict())
        if report.status == "failed":
            raise FileFailedError(f"s3://{obj.bucket}/{obj.key}: {report.error}", report.to_dict())
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
) -> None:
    if rejects is not None:
        rejects.begin()
    cleaner = Cleaner(contract, options.now)
    report.counters = cleaner.counters
    with opener() as stream, store.load(claim, contract) as loader:
        reader = open_records(stream, contract, batch_rows=options.batch_rows)
        _describe(report, reader)
        encoder = Encoder(contract, store)
        for cleaned in _prefetched(_cleaned(reader, cleaner)):
            loader.upsert(encoder.encode(cleaned.rows))
            report.note_rejected(cleaned.rejected)
            if rejects is not None and cleaned.rejected:
                rejects.write(cleaned.rejected)
            if progress is not None:
                progress(report)
        _describe(report, reader)
        report.rows_loaded = cleaner.counters.rows_valid
        loader.finish(report.to_dict())


def _describe(report: IngestReport, reader: RecordReader) -> None:
    report.format, report.compressed = reader.format, reader.compressed
    report.unknown_columns = reader.unknown_columns
    report.absent_columns = reader.absent_columns


def _cleaned(reader: RecordReader, cleaner: Cleaner) -> Iterator[CleanBatch]:
    for batch in reader:
        yield cleaner.clean(batch)


_DONE = object()


def _prefetched(batches: Iterator[CleanBatch]) -> Iterator[CleanBatch]:
    """Run ``batches`` in a worker thread, at most `PREFETCH_BATCHES` ahead of the consumer."""
    slots: queue.Queue[Any] = queue.Queue(maxsize=PREFETCH_BATCHES)
    stop = threading.Event()

    def produce() -> None:
        try:
            for batch in batches:
                while not stop.is_set():
                    try:
                        slots.put(batch, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            slots.put(_DONE)
        except BaseException as exc:  # handed to the consumer, which re-raises it
            slots.put(exc)

    worker = threading.Thread(target=produce, name="iotpipe-clean", daemon=True)
    worker.start()
    try:
        while True:
            item = slots.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while worker.is_alive():  # unblock a producer waiting on a full queue
            try:
                slots.get_nowait()
            except queue.Empty:
                worker.join(timeout=0.1)


def _time_for_retry(options: IngestOptions, delay: float) -> bool:
    if options.remaining_seconds is None:
        return True
    return options.remaining_seconds() - delay >= options.min_retry_seconds


def _fail_quietly(store: Store, claim: Claim, error: str) -> None:
    # If even this fails, the lease expires on its own and a later delivery takes over.
    with contextlib.suppress(TransientStorageError):
        store.fail(claim, error, None)
