"""What every reader yields: `RecordBatch` objects of raw values, and a `RecordReader` of them."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import polars as pl

from iotpipe.contract import Slot
from iotpipe.model import RejectedRow

Format = Literal["csv", "ndjson", "parquet"]

DEFAULT_BATCH_ROWS = 50_000
DEFAULT_BATCH_BYTES = 32 * 1024 * 1024
MALFORMED_ROW = "malformed_row"
MALFORMED_JSON = "malformed_json"


@dataclass
class RecordBatch:
    """Raw values of up to ``batch_rows`` records, column by column.

    Attributes
    ----------
    lines
        The starting line number of each well-formed record.
    columns
        Slot name -> raw string values (``None`` where the record has no such value).
    records
        The original record of each row, rendered to text only when it is rejected.
    rejected
        Records the reader itself could not parse (malformed rows / JSON).
    render
        Turns one of ``records`` into text (None: it already is text).
    """

    lines: list[int]
    columns: Mapping[str, Sequence[str | None] | pl.Series]
    records: Sequence[object] | pl.Series
    rejected: list[RejectedRow] = field(default_factory=list)
    render: Any = None

    @property
    def rows_read(self) -> int:
        """Data records in this batch, malformed ones included."""
        return len(self.lines) + len(self.rejected)

    def record_text(self, index: int) -> str:
        """Return the original text of the ``index``-th well-formed record."""
        record = self.records[int(index)]
        return str(self.render(record)) if self.render is not None else str(record)

    def record_texts(self, indices: Sequence[int]) -> list[str]:
        """Return the original text of several well-formed records, in the order given."""
        if isinstance(self.records, pl.Series) and self.render is None:
            return [str(r) for r in self.records.gather(list(indices)).to_list()]
        return [self.record_text(i) for i in indices]


@dataclass
class ReaderState:
    """What a reader learns about the source's columns while it reads."""

    unknown: set[str] = field(default_factory=set)
    absent: set[str] = field(default_factory=set)


class RecordReader:
    """Iterate over a source's `RecordBatch` objects. Build one with `open_records`."""

    def __init__(
        self,
        batches: Iterator[RecordBatch],
        fmt: Format,
        compressed: bool,
        state: ReaderState,
    ) -> None:
        self._batches = batches
        self.format: Format = fmt
        self.compressed = compressed
        self._state = state

    def __iter__(self) -> Iterator[RecordBatch]:
        return self._batches

    @property
    def unknown_columns(self) -> list[str]:
        """Source columns (or top-level JSON keys) the contract does not use."""
        return sorted(self._state.unknown)

    @property
    def absent_columns(self) -> list[str]:
        """Optional contract slots the source does not have (their values are all null)."""
        return sorted(self._state.absent)


def resolve_slots(
    slots: Iterable[Slot], available: Mapping[str, int]
) -> tuple[dict[str, int], list[str]]:
    """Map each slot to the index of its first matching source column.

    Parameters
    ----------
    slots
        The contract's slots.
    available
        Case-folded, trimmed source column name -> index.

    Returns
    -------
    tuple
        Slot -> column index, and the required slots that matched nothing (described).
    """
    resolved: dict[str, int] = {}
    missing: list[str] = []
    for slot in slots:
        for source in slot.sources:
            index = available.get(source.strip().casefold())
            if index is not None:
                resolved[slot.name] = index
                break
        else:
            if slot.required:
                missing.append(f"{slot.name} ({' | '.join(slot.sources)})")
    return resolved, missing
