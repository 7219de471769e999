"""Ingest service: one source object through read -> clean -> encode (-> store, later issues)."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from typing import IO

from iotpipe.clean import Cleaner
from iotpipe.contract import DataContract
from iotpipe.encode import CategoryDictionary, Encoder, InMemoryCategoryDictionary
from iotpipe.errors import SourceFormatError
from iotpipe.readers import DEFAULT_BATCH_ROWS, RejectedRow, open_records
from iotpipe.report import IngestReport

RejectSink = Callable[[list[RejectedRow]], None]


def validate_source(
    stream: IO[bytes],
    contract: DataContract,
    *,
    source: str,
    dictionary: CategoryDictionary | None = None,
    on_rejected: RejectSink | None = None,
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
        report.format, report.compressed = reader.format, reader.compressed
        encoder = Encoder(contract, dictionary or InMemoryCategoryDictionary())
        for batch in reader:
            cleaned = cleaner.clean(batch)
            encoder.encode(cleaned.rows)
            report.note_rejected(cleaned.rejected)
            if on_rejected is not None and cleaned.rejected:
                on_rejected(cleaned.rejected)
        report.unknown_columns = reader.unknown_columns
        report.absent_columns = reader.absent_columns
    except SourceFormatError as exc:
        report.status = "failed"
        report.error = str(exc)
    report.seconds = time.perf_counter() - started
    return report
