"""Parquet: spooled to a temporary file (its footer is at the end), then read in slices."""

from __future__ import annotations

import io
import json
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from typing import Any

import polars as pl

from iotpipe.contract import DataContract
from iotpipe.errors import MissingColumnError, SourceFormatError
from iotpipe.readers.batch import ReaderState, RecordBatch, resolve_slots

SPOOL_CHUNK = 1024 * 1024


def parquet_batches(
    buffered: io.BufferedReader,
    contract: DataContract,
    batch_rows: int,
    state: ReaderState,
) -> Iterator[RecordBatch]:
    """Yield the batches of a Parquet source (see `iotpipe.readers.open_records`)."""
    # Spooled to disk, not memory: a stream is only ever held a chunk at a time.
    with tempfile.NamedTemporaryFile(suffix=".parquet") as spool:
        shutil.copyfileobj(buffered, spool, length=SPOOL_CHUNK)
        spool.flush()
        try:
            schema = pl.read_parquet_schema(spool.name)
        except Exception as exc:  # polars raises several error types for a bad file
            raise SourceFormatError(f"unreadable Parquet file: {exc}") from exc
        names = list(schema)
        available = {n.strip().casefold(): i for i, n in enumerate(names)}
        resolved, missing = resolve_slots(contract.slots, available)
        if missing:
            raise MissingColumnError(missing, names)
        state.unknown.update(n for i, n in enumerate(names) if i not in set(resolved.values()))
        state.absent.update(s.name for s in contract.slots if s.name not in resolved)
        frame = pl.scan_parquet(spool.name).select(
            [
                _as_text(pl.col(names[i]), schema[names[i]]).alias(slot)
                for slot, i in resolved.items()
            ]
        )
        originals = {slot: names[i] for slot, i in resolved.items()}
        offset = 0
        while True:
            chunk = frame.slice(offset, batch_rows).collect()
            if chunk.height == 0:
                break
            lines = list(range(offset + 1, offset + chunk.height + 1))
            columns: dict[str, Sequence[str | None]] = {
                name: chunk.get_column(name).to_list() for name in chunk.columns
            }
            records = chunk.rename(originals).to_dicts()
            yield RecordBatch(lines, columns, records, [], _json_record)
            offset += chunk.height


def _as_text(expr: pl.Expr, dtype: Any) -> pl.Expr:
    if isinstance(dtype, pl.Datetime):
        if dtype.time_zone is not None:
            return expr.dt.convert_time_zone("UTC").dt.strftime("%Y-%m-%dT%H:%M:%S%.fZ")
        return expr.dt.strftime("%Y-%m-%d %H:%M:%S%.f")
    if dtype == pl.Boolean:
        return pl.when(expr).then(pl.lit("true")).when(~expr).then(pl.lit("false"))
    return expr.cast(pl.String)


def _json_record(record: object) -> str:
    return json.dumps(record, default=str, separators=(",", ":"))
