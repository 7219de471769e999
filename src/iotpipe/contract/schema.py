"""Data contracts: what a source file must look like and how to clean it (YAML, Table Schema-like).

A contract is modelled on Frictionless Table Schema (``fields`` with ``type``, ``constraints``
and ``missingValues``) plus the iotpipe extensions a pipeline needs: where each value comes from
(``source``: CSV column names, matched case-insensitively after trimming, or dotted JSON paths),
which field is the device id, how the timestamp is built (one column, date + time, or
year/month/day/hour parts), the zone of naive times, the CSV dialect, what to do with an invalid
value (``on_invalid``) and how categoricals are encoded.

This module holds the validated contract's types; `iotpipe.contract.parse` reads and validates
YAML into them (every output column name is checked against `IDENTIFIER` there, so storage can
use them as SQL identifiers), and `iotpipe.contract.render` writes them back.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Literal

from iotpipe.errors import ContractMismatchError

FieldType = Literal["string", "number", "integer", "boolean", "datetime", "category"]
OnInvalid = Literal["null", "reject"]
Encoding = Literal["code", "onehot+code"]
Ambiguous = Literal["earliest", "latest", "reject"]

FIELD_TYPES: tuple[FieldType, ...] = (
    "string",
    "number",
    "integer",
    "boolean",
    "datetime",
    "category",
)
DEFAULT_MISSING_VALUES: tuple[str, ...] = ("", "NA", "N/A", "null", "None", "nan", "-", "?")
TIMESTAMP_PARTS = ("date", "time", "year", "month", "day", "hour", "minute", "second")

# \A and \Z: "$" would also match before a trailing newline.
IDENTIFIER = re.compile(r"\A[a-z][a-z0-9_]{0,63}\Z")
MAX_IDENTIFIER = 64
EARLIEST_ALLOWED = dt.date(1000, 1, 1)  # the earliest instant both engines store
RESERVED_PREFIX = "iotpipe_"  # iotpipe's own tables; no dataset table may take such a name
DEFAULT_MAX_RECORD_BYTES = 1 << 20
MAX_RECORD_BYTES_CAP = 64 << 20
DEVICE_ID = "device_id"
DEFAULT_DEVICE_ID_LENGTH = 128
# The key (device_id, ts) must fit MySQL's 3,072-byte index limit at 4 bytes a character.
MAX_DEVICE_ID_LENGTH = 512
TS = "ts"
RESERVED = frozenset({DEVICE_ID, TS})


@dataclass(frozen=True)
class Field:
    """One output column of a contract.

    Attributes
    ----------
    name
        Output column name (a validated SQL identifier).
    type
        One of ``FIELD_TYPES``.
    sources
        Where the value comes from, tried in order: CSV column names or dotted JSON paths.
    required
        A row whose value is missing is rejected (``missing_value``).
    minimum, maximum
        Inclusive numeric bounds.
    enum
        Closed vocabulary (already case-folded for categories).
    max_length
        Longest accepted string.
    missing_values
        Case-folded markers that mean "no value".
    on_invalid
        ``null``: null the value and count it; ``reject``: reject the row.
    encoding
        For categories: ``code`` or ``onehot+code``.
    measurement
        Counts towards "every measurement is missing".
    """

    name: str
    type: FieldType
    sources: tuple[str, ...]
    required: bool = False
    minimum: float | None = None
    maximum: float | None = None
    enum: tuple[str, ...] | None = None
    max_length: int | None = None
    missing_values: frozenset[str] = frozenset()
    on_invalid: OnInvalid = "null"
    encoding: Encoding | None = None
    measurement: bool = False
    description: str = ""

    @property
    def onehot_columns(self) -> dict[str, str]:
        """Map each closed-vocabulary value to its one-hot column name (empty if none)."""
        if self.encoding != "onehot+code" or not self.enum:
            return {}
        return {value: f"{self.name}_{slug(value)}" for value in self.enum}

    @property
    def sentinels(self) -> tuple[float, ...]:
        """The missing-value markers of a number or integer field that are numbers.

        Such a marker matches the value, not the text: ``-200`` also matches ``-200.0``,
        ``-200,0`` (decimal comma) and ``-2e2``.
        """
        if self.type not in ("number", "integer"):
            return ()
        numbers = {as_number(m) for m in self.missing_values}
        return tuple(sorted(n for n in numbers if n is not None))

    @property
    def code_column(self) -> str | None:
        """Name of the integer code column of a categorical field."""
        return f"{self.name}_code" if self.type == "category" else None


@dataclass(frozen=True)
class TimestampSpec:
    """How the row timestamp is built and which values are plausible."""

    parts: Mapping[str, tuple[str, ...]]
    timezone: str = "UTC"
    earliest: dt.datetime = dt.datetime(2000, 1, 1)
    max_future: dt.timedelta = dt.timedelta(days=1)
    ambiguous: Ambiguous = "earliest"  # a repeated local hour (clocks going back)
    formats: tuple[str, ...] = ()  # strftime-style, tried in order; () = ISO 8601 and epoch

    @property
    def is_single(self) -> bool:
        """True when the timestamp comes from one source column."""
        return set(self.parts) == {"value"}


@dataclass(frozen=True)
class Dialect:
    """CSV dialect. ``delimiter=None`` means sniff it from the file."""

    delimiter: str | None = ","
    quotechar: str = '"'
    decimal: str = "."
    header: bool = True
    columns: tuple[str, ...] | None = None
    encoding: str = "utf-8"
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES  # a longer record is rejected


@dataclass(frozen=True)
class Quality:
    """When a file fails as a whole (beyond "no valid row", which always fails it)."""

    max_rejected_ratio: float = 1.0  # rejected rows / rows read above this fails the file


@dataclass(frozen=True)
class Slot:
    """One raw value a reader must extract from each record."""

    name: str
    sources: tuple[str, ...]
    required: bool
    key: str = ""  # the contract key that names the sources (for messages)

    def describe(self) -> str:
        """Name the source column(s) and the contract key, e.g. ``'Date' (timestamp.date)``."""
        columns = " or ".join(repr(s) for s in self.sources)
        return f"{columns} ({self.key})" if self.key else columns


@dataclass(frozen=True)
class DataContract:
    """A validated data contract. Build one with `load_contract` or `parse_contract`."""

    name: str
    table: str
    device_id: Field
    timestamp: TimestampSpec
    fields: tuple[Field, ...]
    dialect: Dialect = field(default_factory=Dialect)
    missing_values: frozenset[str] = frozenset(v.casefold() for v in DEFAULT_MISSING_VALUES)
    description: str = ""
    quality: Quality = field(default_factory=Quality)
    device_value: str | None = None  # device_id.value: every row's device (one-device files)
    device_from_path: str | None = None  # device_id.from_path: a regex on the key or path

    @property
    def device_in_rows(self) -> bool:
        """True when each record carries its device id (not a constant, not the path)."""
        return self.device_value is None and self.device_from_path is None

    @property
    def slots(self) -> list[Slot]:
        """Raw values to extract per record: device id, timestamp part(s), then each field."""
        slots = []
        if self.device_in_rows:
            slots.append(Slot(DEVICE_ID, self.device_id.sources, True, "device_id.source"))
        for part, sources in self.timestamp.parts.items():
            name, key = (TS, "source") if part == "value" else (f"{TS}.{part}", part)
            slots.append(Slot(name, sources, True, f"timestamp.{key}"))
        slots.extend(
            Slot(f.name, f.sources, f.required, f"fields[{f.name}].source") for f in self.fields
        )
        return slots

    @property
    def device_id_length(self) -> int:
        """The longest device id a row may have."""
        return self.device_id.max_length or DEFAULT_DEVICE_ID_LENGTH

    @property
    def measurements(self) -> tuple[Field, ...]:
        """Fields that count as measurements for the ``no_measurements`` rule."""
        return tuple(f for f in self.fields if f.measurement)

    @property
    def categories(self) -> tuple[Field, ...]:
        """Categorical fields."""
        return tuple(f for f in self.fields if f.type == "category")

    def for_source(self, source: str) -> DataContract:
        """Return the contract for one source: ``device_id.from_path`` resolved on its path.

        Parameters
        ----------
        source
            The source's name: a local path, or an ``s3://bucket/key`` URL (the regex is
            searched in the key).

        Returns
        -------
        DataContract
            This contract, with ``device_value`` taken from the path when the device comes
            from it.

        Raises
        ------
        ContractMismatchError
            The path does not match, or what it matched is not a valid device id.
        """
        if self.device_from_path is None:
            return self
        path = source_path(source)
        match = re.search(self.device_from_path, path)
        value = _path_device(match) if match else None
        if not value:
            raise ContractMismatchError(
                f"device_id.from_path {self.device_from_path!r} finds no device id in {path!r}"
            )
        if len(value) > self.device_id_length:
            raise ContractMismatchError(
                f"device id {value[:40]!r}... from the path is longer than "
                f"{self.device_id_length} characters (device_id.maxLength)"
            )
        return replace(self, device_value=value, device_from_path=None)

    @property
    def numeric_fields(self) -> tuple[Field, ...]:
        """Number and integer fields (the ones retrieval summarises)."""
        return tuple(f for f in self.fields if f.type in ("number", "integer"))

    @property
    def value_columns(self) -> list[str]:
        """The key and field columns of a clean row (the stored columns before encodings)."""
        return [DEVICE_ID, TS, *(f.name for f in self.fields)]

    @property
    def output_columns(self) -> list[str]:
        """Every stored column, in table order: key, fields, then encodings."""
        columns = self.value_columns
        for f in self.categories:
            columns.append(f"{f.name}_code")
            columns.extend(f.onehot_columns.values())
        return columns


_NUMBER = re.compile(r"\A[+-]?(?:\d+(?:[.,]\d*)?|[.,]\d+)(?:[eE][+-]?\d+)?\Z")


def as_number(text: str) -> float | None:
    """Read a marker as a finite number (``.`` or ``,`` as the decimal mark); None if it is not."""
    text = text.strip()
    if not _NUMBER.match(text):
        return None
    value = float(text.replace(",", "."))
    return value if math.isfinite(value) else None


def source_path(source: str) -> str:
    """Return the part of a source name ``device_id.from_path`` is matched on.

    The key of an ``s3://bucket/key`` URL; a local path as given, with ``/`` separators.
    """
    if source.startswith("s3://"):
        return source[len("s3://") :].partition("/")[2]
    return source.replace("\\", "/")


def _path_device(match: re.Match[str]) -> str:
    groups = match.re.groupindex
    value = match.group(DEVICE_ID) if DEVICE_ID in groups else match.group(1)
    return (value or "").strip()


def slug(value: str) -> str:
    """Turn a vocabulary value into the tail of a one-hot column name."""
    return re.sub(r"[^a-z0-9]+", "_", value.casefold()).strip("_") or "empty"
