"""Streaming readers: detect CSV / NDJSON / Parquet (and gzip) by content, yield bounded batches.

Readers take any binary file object (a local file, an S3 body, a gzip stream), never read it
whole, and yield `RecordBatch` objects of at most ``batch_rows`` rows (and, for wide records,
about ``batch_bytes`` of text). Each batch carries, per contract slot, the raw string values,
plus the line number where each record starts. A ragged CSV row or a bad JSON line becomes a
`iotpipe.model.RejectedRow` (``malformed_row`` / ``malformed_json``); it never aborts the file.

Modules: `streams` (buffering, gzip, decoding), `batch` (what readers yield), `delimited`
(CSV, with the Polars fast path in `fastcsv`), `ndjson`, `parquet`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO

from iotpipe.contract import DataContract
from iotpipe.errors import SourceFormatError
from iotpipe.model import RejectedRow
from iotpipe.readers.batch import (
    DEFAULT_BATCH_BYTES,
    DEFAULT_BATCH_ROWS,
    MALFORMED_JSON,
    MALFORMED_ROW,
    RECORD_TOO_LARGE,
    Format,
    ReaderState,
    RecordBatch,
    RecordReader,
)
from iotpipe.readers.delimited import csv_batches, sniff_delimiter
from iotpipe.readers.ndjson import ndjson_batches, scalar_text
from iotpipe.readers.parquet import parquet_batches
from iotpipe.readers.streams import (
    PARQUET_MAGIC,
    READ_ERRORS,
    SNIFF_BYTES,
    UTF8_BOM,
    LineLimit,
    decompressed,
    text_stream,
    utf8_text,
)

__all__ = [
    "DEFAULT_BATCH_BYTES",
    "DEFAULT_BATCH_ROWS",
    "MALFORMED_JSON",
    "MALFORMED_ROW",
    "Format",
    "RecordBatch",
    "RecordReader",
    "decompressed",
    "detect_format",
    "open_records",
    "scalar_text",
    "sniff_delimiter",
    "text_stream",
]


def open_records(
    stream: IO[bytes],
    contract: DataContract,
    *,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    batch_bytes: int = DEFAULT_BATCH_BYTES,
    fast_csv: bool = True,
) -> RecordReader:
    """Detect the format of a binary stream and return a reader of record batches.

    Parameters
    ----------
    stream
        Any readable binary file object. It is read sequentially (Parquet is spooled to a
        temporary file first, because its footer is at the end).
    contract
        The contract whose slots are extracted.
    batch_rows, batch_bytes
        Bounds of one batch.
    fast_csv
        Parse simple CSV chunks with Polars (`iotpipe.readers.fastcsv`); False forces the csv
        module everywhere (the results are the same; tests compare the two).

    Returns
    -------
    RecordReader
        Iterate over it for batches; ``format``, ``compressed`` and the column lists are
        available at once.

    Raises
    ------
    SourceFormatError
        If the stream is empty, unreadable, or lacks a required column.
    """
    dialect = contract.dialect
    fmt: Format
    try:
        buffered, compressed = decompressed(stream)
        if buffered.peek(len(PARQUET_MAGIC)).startswith(PARQUET_MAGIC):
            text, fmt = buffered, "parquet"
        else:
            text = utf8_text(buffered, dialect.encoding)
            fmt = detect_format(text.peek(SNIFF_BYTES))
    except READ_ERRORS as exc:
        raise SourceFormatError(f"cannot read the source: {exc}") from exc
    state = ReaderState()
    batches: Iterator[RecordBatch]
    if fmt == "parquet":
        batches = parquet_batches(buffered, contract, batch_rows, state)
    else:
        header = fmt == "csv" and dialect.header
        lines = LineLimit(text, dialect.max_record_bytes, header=header)
        if fmt == "ndjson":
            batches = ndjson_batches(lines.stream(), contract, batch_rows, batch_bytes, state)
        else:
            batches = csv_batches(
                lines.stream(), contract, batch_rows, batch_bytes, state, fast=fast_csv
            )
        batches = _with_long_lines(batches, lines)
    batches = _guarded(batches)
    # Prime the generator so header problems (missing columns) surface here, not mid-loop.
    first = next(batches, None)
    return RecordReader(_chain_first(first, batches), fmt, compressed, state)


def detect_format(head: bytes) -> Format:
    """Tell CSV, NDJSON and Parquet apart by their first bytes.

    Parameters
    ----------
    head
        The first bytes of the (decompressed) source.

    Returns
    -------
    Format
        ``parquet`` for the PAR1 magic, ``ndjson`` when the first non-blank character is ``{``,
        otherwise ``csv``.

    Raises
    ------
    SourceFormatError
        If the source is empty or looks binary.
    """
    if head.startswith(PARQUET_MAGIC):
        return "parquet"
    text = head.removeprefix(UTF8_BOM).lstrip()
    if not text:
        raise SourceFormatError("the source is empty")
    if text.startswith(b"{"):
        return "ndjson"
    if b"\x00" in head[:4096]:
        raise SourceFormatError("the source looks binary: not CSV, NDJSON or Parquet")
    return "csv"


def _with_long_lines(batches: Iterator[RecordBatch], lines: LineLimit) -> Iterator[RecordBatch]:
    """Add a ``record_too_large`` reject for each line the `LineLimit` cut out."""
    taken = 0

    def cut(upto: int | None) -> list[RejectedRow]:
        nonlocal taken
        rows = []
        while taken < len(lines.long_lines) and (
            upto is None or lines.long_lines[taken].line <= upto
        ):
            long_line = lines.long_lines[taken]
            taken += 1
            detail = (
                f"the line is {long_line.size:,} bytes, over dialect.max_record_bytes "
                f"({lines.limit:,}); its first bytes are kept"
            )
            head = long_line.head.decode(errors="replace")
            rows.append(RejectedRow(long_line.line, RECORD_TOO_LARGE, detail, head))
        return rows

    for batch in batches:
        last = max([*batch.lines[-1:], *(r.line for r in batch.rejected)], default=0)
        batch.rejected.extend(cut(last))
        yield batch
    rest = cut(None)
    if rest:
        yield RecordBatch([], {}, [], rest)


def _guarded(batches: Iterator[RecordBatch]) -> Iterator[RecordBatch]:
    """Turn I/O and decompression failures mid-stream into `SourceFormatError`."""
    try:
        yield from batches
    except READ_ERRORS as exc:
        raise SourceFormatError(f"the source cannot be read to the end: {exc}") from exc


def _chain_first(first: RecordBatch | None, rest: Iterator[RecordBatch]) -> Iterator[RecordBatch]:
    if first is not None:
        yield first
    yield from rest
