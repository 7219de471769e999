"""What every reader yields: `RecordBatch` objects of raw values, and a `RecordReader` of them."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

import polars as pl

from iotpipe.config import BATCH_ROWS
from iotpipe.contract import Slot
from iotpipe.errors import MissingColumnError, SourceFormatError
from iotpipe.model import RejectedRow

Format = Literal["csv", "ndjson", "parquet"]

DEFAULT_BATCH_ROWS = BATCH_ROWS  # the settings' default (`iotpipe.config`)
DEFAULT_BATCH_BYTES = 32 * 1024 * 1024
MALFORMED_ROW = "malformed_row"
MALFORMED_JSON = "malformed_json"
RECORD_TOO_LARGE = "record_too_large"
_NTH = re.compile(r"\A(.+)#(\d+)\Z")  # "name#2": the second column called "name"


@runtime_checkable
class BulkTexts(Protocol):
    """Records rendered to text many at a time (cheaper than one by one)."""

    def texts(self, indices: Sequence[int]) -> list[str]:
        """Return the text of the records at ``indices``, in that order."""
        ...


@dataclass
class RecordBatch:
    """Raw values of up to ``batch_rows`` records, column by column.

    Attributes
    ----------
    lines
        The starting line number of each well-formed record (a Series from the fast CSV
        path: it goes on to the cleaner's frame as it is).
    columns
        Slot name -> raw string values (``None`` where the record has no such value).
    records
        The original record of each row, rendered to text only when it is rejected.
    rejected
        Records the reader itself could not parse (malformed rows / JSON).
    render
        Turns one of ``records`` into text (None: it already is text).
    nested
        Slot name -> whether each value was an array or object (JSON, Parquet lists and
        structs), for the slots that had any: such a value arrives as compact JSON text.
    replacement_free
        True when the reader saw that no value holds U+FFFD (what undecodable bytes became),
        so the cleaner need not look for it.
    """

    lines: Sequence[int] | pl.Series
    columns: Mapping[str, Sequence[str | None] | pl.Series]
    records: Sequence[object] | pl.Series
    rejected: list[RejectedRow] = field(default_factory=list)
    render: Any = None
    nested: Mapping[str, Sequence[bool]] = field(default_factory=dict)
    replacement_free: bool = False

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
        if isinstance(self.records, BulkTexts) and self.render is None:
            return self.records.texts(indices)
        return [self.record_text(i) for i in indices]


@dataclass
class ReaderState:
    """What a reader learns about the source's columns while it reads."""

    unknown: set[str] = field(default_factory=set)
    absent: set[str] = field(default_factory=set)
    columns: list[str] = field(default_factory=list)  # the source's, in order


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
    def columns(self) -> list[str]:
        """The source's column names (CSV header, Parquet schema, JSON keys seen first)."""
        return list(self._state.columns)

    @property
    def absent_columns(self) -> list[str]:
        """Optional contract slots the source does not have (their values are all null)."""
        return sorted(self._state.absent)


def resolve_slots(slots: Iterable[Slot], names: Sequence[str]) -> dict[str, int]:
    """Map each slot to the index of the source column it reads.

    A source matches a column name case-insensitively after trimming; the first source of a
    slot that matches wins. ``name#N`` picks the N-th column called ``name``, where a file
    repeats a name.

    Parameters
    ----------
    slots
        The contract's slots.
    names
        The source's column names, in order.

    Returns
    -------
    dict
        Slot -> column index, for the slots found.

    Raises
    ------
    MissingColumnError
        A required slot matches no column.
    SourceFormatError
        A slot's column name appears more than once and the contract does not say which.
    """
    positions: dict[str, list[int]] = {}
    for i, name in enumerate(names):
        positions.setdefault(name.strip().casefold(), []).append(i)
    resolved: dict[str, int] = {}
    missing: list[str] = []
    for slot in slots:
        for source in slot.sources:
            index = _position(source, positions)
            if index is not None:
                resolved[slot.name] = index
                break
        else:
            if slot.required:
                missing.append(slot.describe())
    if missing:
        raise MissingColumnError(missing, [n.strip() for n in names])
    return resolved


def _position(source: str, positions: Mapping[str, list[int]]) -> int | None:
    key = source.strip().casefold()
    found = positions.get(key)
    if found is not None:
        if len(found) > 1:
            where = " and ".join(str(i + 1) for i in found)
            choices = " or ".join(f"'{source.strip()}#{n}'" for n in range(1, len(found) + 1))
            raise SourceFormatError(
                f"column {key!r} appears {len(found)} times (columns {where}); "
                f"say which one in the contract's source: {choices}"
            )
        return found[0]
    match = _NTH.match(key)
    if match is None:
        return None
    found = positions.get(match.group(1).strip())
    n = int(match.group(2))
    return found[n - 1] if found is not None and 1 <= n <= len(found) else None
