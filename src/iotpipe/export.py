"""Export a dataset's stored, encoded table for training: Parquet or CSV, in bounded memory.

The rows come from the store in key order, device by device, a chunk at a time (keyset
queries on the primary key); Polars streams them into the file (`sink_parquet` over an IO
source, or CSV chunk by chunk), so memory does not grow with the table. The category
dictionary is written beside the file (``<file>.categories.json``) so a model's codes can be
decoded: ``{"dataset", "categories": {field: {value: code}}, "onehot": {field: [column]}}``.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from iotpipe.contract import DEVICE_ID, TS, DataContract
from iotpipe.errors import IotpipeError
from iotpipe.retrieve import category_dictionary
from iotpipe.times import STORABLE_FIRST, STORABLE_LAST

if TYPE_CHECKING:
    from iotpipe.storage.store import SqlStore

CHUNK_ROWS = 100_000
DEVICE_PAGE = 1000
FORMATS = (".parquet", ".csv")
_FIELD_TYPES: dict[str, Any] = {
    "number": pl.Float64,
    "integer": pl.Int64,
    "boolean": pl.Boolean,
    "datetime": pl.Datetime("us"),
}


@dataclass(frozen=True)
class ExportResult:
    """What an export wrote."""

    path: Path
    categories_path: Path
    rows: int
    devices: int

    def to_dict(self) -> dict[str, Any]:
        """Return the result as JSON-ready data."""
        return {
            "path": str(self.path),
            "categories": str(self.categories_path),
            "rows": self.rows,
            "devices": self.devices,
        }


def export_schema(contract: DataContract) -> dict[str, Any]:
    """Return the Polars schema of the stored table (`DataContract.output_columns`)."""
    schema: dict[str, Any] = {DEVICE_ID: pl.String, TS: pl.Datetime("us")}
    for f in contract.fields:
        schema[f.name] = _FIELD_TYPES.get(f.type, pl.String)
    for f in contract.categories:
        schema[f"{f.name}_code"] = pl.Int64
        for column in f.onehot_columns.values():
            schema[column] = pl.Int8
    assert list(schema) == contract.output_columns
    return schema


def export_dataset(
    store: SqlStore,
    contract: DataContract,
    out: Path,
    *,
    device_id: str | None = None,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> ExportResult:
    """Write a dataset's rows (one device's, or a time range's) and its category dictionary.

    Parameters
    ----------
    store
        The store the dataset is in.
    contract
        The dataset's registered contract.
    out
        ``*.parquet`` or ``*.csv``.
    device_id
        Only this device (default: every device, in id order).
    start, end
        Only rows with ``start <= ts <= end`` (default: all).
    chunk_rows
        Rows per query and per chunk in memory.

    Returns
    -------
    ExportResult
        The files written and how many rows and devices.
    """
    if out.suffix.lower() not in FORMATS:
        raise IotpipeError(f"--out must end with {' or '.join(FORMATS)}: {out}")
    schema = export_schema(contract)
    low, high = start or STORABLE_FIRST, end or STORABLE_LAST
    counted = {"rows": 0, "devices": 0}

    def chunks() -> Iterator[pl.DataFrame]:
        for device in _devices(store, contract, device_id):
            seen = False
            for rows in store.browse.rows(contract, device, low, high, chunk_rows):
                seen = True
                counted["rows"] += len(rows)
                yield pl.DataFrame(rows, schema=schema, orient="row")
            counted["devices"] += seen

    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".parquet":
        _sink_parquet(chunks, schema, out)
    else:
        _write_csv(chunks(), schema, out)
    categories_path = out.with_name(out.name + ".categories.json")
    dictionary = category_dictionary(contract.name, default_dataset=contract.name, store=store)
    categories_path.write_text(json.dumps(dictionary, indent=2) + "\n", encoding="utf-8")
    return ExportResult(out, categories_path, counted["rows"], counted["devices"])


def _devices(store: SqlStore, contract: DataContract, device_id: str | None) -> Iterator[str]:
    if device_id is not None:
        yield device_id
        return
    after: str | None = None
    while True:
        page = store.list_devices(contract, prefix="", after=after, limit=DEVICE_PAGE)
        yield from (d.device_id for d in page)
        if len(page) < DEVICE_PAGE:
            return
        after = page[-1].device_id


def _sink_parquet(
    chunks: Callable[[], Iterator[pl.DataFrame]], schema: dict[str, Any], out: Path
) -> None:
    from polars.io.plugins import register_io_source

    def source(
        with_columns: list[str] | None,
        predicate: Any,
        n_rows: int | None,
        batch_size: int | None,
    ) -> Iterator[pl.DataFrame]:
        for frame in chunks():
            yield frame if with_columns is None else frame.select(with_columns)

    frame = register_io_source(source, schema=schema)
    frame.sink_parquet(out, engine="streaming")


def _write_csv(chunks: Iterator[pl.DataFrame], schema: dict[str, Any], out: Path) -> None:
    with out.open("wb") as handle:
        pl.DataFrame(schema=schema).write_csv(handle, include_header=True)
        for frame in chunks:
            frame.write_csv(
                handle,
                include_header=False,
                datetime_format="%Y-%m-%dT%H:%M:%S%.6fZ",
            )
