"""Parquet: spooled to a temporary file (its footer is at the end), then read in slices."""

from __future__ import annotations

import io
import json
import shutil
import tempfile
from collections.abc import Iterator
from typing import Any

import polars as pl

from iotpipe.contract import DataContract
from iotpipe.errors import SourceFormatError
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
        resolved = resolve_slots(contract.slots, names)
        state.columns.extend(names)
        state.unknown.update(n for i, n in enumerate(names) if i not in set(resolved.values()))
        state.absent.update(s.name for s in contract.slots if s.name not in resolved)
        used = sorted(set(resolved.values()))  # each source column once (two slots may share)
        frame = pl.scan_parquet(spool.name).select(
            [_as_text(pl.col(names[i]), schema[names[i]]).alias(names[i]) for i in used]
        )
        offset = 0
        while True:
            chunk = frame.slice(offset, batch_rows).collect()
            if chunk.height == 0:
                break
            lines = list(range(offset + 1, offset + chunk.height + 1))
            texts: dict[int, list[str | None]] = {}
            marks: dict[int, list[bool]] = {}
            for i in used:
                values = chunk.get_column(names[i]).to_list()
                if schema[names[i]].is_nested():  # lists, structs: one value each, as JSON
                    marks[i] = [v is not None for v in values]
                    values = [None if v is None else _compact_json(v) for v in values]
                texts[i] = values
            yield RecordBatch(
                lines,
                {slot: texts[i] for slot, i in resolved.items()},
                chunk.to_dicts(),
                [],
                _compact_json,
                {slot: marks[i] for slot, i in resolved.items() if i in marks},
            )
            offset += chunk.height


def _as_text(expr: pl.Expr, dtype: Any) -> pl.Expr:
    if dtype.is_nested():
        return expr  # rendered per value in Python (rare, and Polars cannot cast it to text)
    if isinstance(dtype, pl.Datetime):
        if dtype.time_zone is not None:
            return expr.dt.convert_time_zone("UTC").dt.strftime("%Y-%m-%dT%H:%M:%S%.fZ")
        return expr.dt.strftime("%Y-%m-%d %H:%M:%S%.f")
    if dtype == pl.Boolean:
        return pl.when(expr).then(pl.lit("true")).when(~expr).then(pl.lit("false"))
    return expr.cast(pl.String)


def _compact_json(value: object) -> str:
    """Render a nested value, or a whole row for the rejects file, as compact JSON."""
    return json.dumps(value, default=str, separators=(",", ":"), ensure_ascii=False)
