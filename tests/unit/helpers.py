"""Small builders shared by unit tests."""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

import polars as pl

from iotpipe.clean import CleanCounters, Cleaner
from iotpipe.contract import DataContract, contract_from_dict
from iotpipe.model import RejectedRow
from iotpipe.readers import open_records

NOW = dt.datetime(2025, 6, 1, 12, 0, 0)


def contract(**overrides: Any) -> DataContract:
    doc: dict[str, Any] = {
        "name": "t",
        "device_id": "id",
        "timestamp": "time",
        "fields": [
            {"name": "v", "type": "number", "constraints": {"minimum": 0, "maximum": 100}},
            {"name": "kind", "type": "category", "constraints": {"enum": ["a", "b"]}},
        ],
    }
    doc.update(overrides)
    return contract_from_dict(doc)


def clean_bytes(
    data: bytes, c: DataContract, batch_rows: int = 1000, now: dt.datetime = NOW
) -> tuple[pl.DataFrame, list[RejectedRow], CleanCounters]:
    """Read and clean ``data`` completely; return all rows, all rejects and the counters."""
    cleaner = Cleaner(c, now=now)
    frames: list[pl.DataFrame] = []
    rejected: list[RejectedRow] = []
    for batch in open_records(io.BytesIO(data), c, batch_rows=batch_rows):
        out = cleaner.clean(batch)
        frames.append(out.rows)
        rejected.extend(out.rejected)
    rows = pl.concat(frames) if frames else pl.DataFrame()
    if rows.height:
        # A later batch may supersede a key stored by an earlier one: keep the last, as a
        # store's upsert would.
        rows = rows.unique(["device_id", "ts"], keep="last", maintain_order=True)
    return rows, rejected, cleaner.counters
