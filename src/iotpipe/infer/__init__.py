"""Draft a data contract from a sample file: dialect, types, device id, timestamp, categoricals.

The draft validates as is; a person should still review the zone of naive times, the bounds
of numeric fields and which vocabularies are closed. The device id and the timestamp are
chosen from the values (`iotpipe.infer.keys`), not from known column names.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import IO, Any

import yaml

from iotpipe.contract import (
    DEFAULT_MISSING_VALUES,
    MAX_DEVICE_ID_LENGTH,
    RESERVED,
    DataContract,
    contract_from_dict,
    contract_to_dict,
)
from iotpipe.infer.columns import Profile, profile
from iotpipe.infer.keys import TimeChoice, choose_device, choose_timestamp, device_from_path
from iotpipe.infer.sampling import csv_sample, ndjson_sample, parquet_sample
from iotpipe.readers import decompressed, detect_format
from iotpipe.readers.streams import SNIFF_BYTES

SAMPLE_ROWS = 5000
ENUM_MAX = 16
ENUM_MIN_SAMPLE = 100  # fewer rows than this cannot show a vocabulary is closed
CATEGORY_MAX = 64
DEFAULT_EARLIEST_YEAR = 2000  # timestamp.earliest's default


@dataclass
class Draft:
    """A drafted contract, the comments its YAML carries, and what was guessed how surely."""

    contract: DataContract
    comments: dict[str, str] = field(default_factory=dict)  # field name -> observed values
    notes: list[str] = field(default_factory=list)  # the summary, one guess per line
    key_comments: dict[str, str] = field(default_factory=dict)  # "device_id"/"timestamp" -> why

    def yaml(self) -> str:
        """Render the draft as YAML, each field commented with what the sample showed."""
        header = (
            f"# Draft contract inferred by `iotpipe contract infer` from {self.contract.name}.\n"
            "# Review: the zone of naive times (timestamp.timezone), numeric bounds\n"
            "# (constraints.minimum/maximum), and which categories are closed (constraints.enum).\n"
        )
        body = yaml.safe_dump(contract_to_dict(self.contract), sort_keys=False, allow_unicode=True)
        lines = []
        for line in body.splitlines():
            match = re.match(r"^- name: (\S+)$", line)
            comment = self.comments.get(match.group(1)) if match else None
            key = re.match(r"^(device_id|timestamp):$", line)
            comment = self.key_comments.get(key.group(1)) if key else comment
            lines.append(f"{line}  # {comment}" if comment else line)
        return header + "\n".join(lines) + "\n"


def infer_draft(
    stream: IO[bytes], name: str, sample_rows: int = SAMPLE_ROWS, path: str | None = None
) -> Draft:
    """Draft a contract from the first rows of a file, with notes on what was guessed.

    Parameters
    ----------
    stream
        The sample (CSV, NDJSON or Parquet; gzip or not).
    name
        A name for the contract (made into an identifier).
    sample_rows
        How many records to look at.
    path
        Where the file lives (a local path or an S3 key): a device named by the path
        (``devices/<id>/...``) becomes ``device_id.from_path``.

    Returns
    -------
    Draft
        A contract that validates; review it before use.
    """
    buffered, _ = decompressed(stream)
    fmt = detect_format(buffered.peek(SNIFF_BYTES))
    dialect: dict[str, Any] = {}
    if fmt == "csv":
        raw, dialect = csv_sample(buffered, sample_rows)
    elif fmt == "ndjson":
        raw = ndjson_sample(buffered, sample_rows)
    else:
        raw = parquet_sample(buffered, sample_rows)
    decimal = dialect.get("decimal", ".")
    columns = [profile(source, values, decimal) for source, values in raw.items()]
    return _draft(name, columns, dialect, path)


def infer_contract(stream: IO[bytes], name: str, sample_rows: int = SAMPLE_ROWS) -> DataContract:
    """Draft a contract from the first rows of a file (`infer_draft` without the notes)."""
    return infer_draft(stream, name, sample_rows).contract


def infer_contract_yaml(stream: IO[bytes], name: str) -> str:
    """Draft a contract and render it as commented YAML (`Draft.yaml`)."""
    return infer_draft(stream, name).yaml()


def _draft(name: str, columns: list[Profile], dialect: dict[str, Any], path: str | None) -> Draft:
    notes: list[str] = []
    rows = len(columns[0].values) if columns else 0
    notes.append(f"sampled {rows:,} records, {len(columns)} columns")
    time = choose_timestamp(columns)
    timestamp = _timestamp_doc(time, notes)
    device, _ = choose_device(columns, time)
    stem = _stem(path or name)
    device_doc = _device_doc(device, columns, path, stem, notes)
    used = {device.source} if device is not None else set()
    used |= time.columns if time is not None else set()
    fields: list[dict[str, Any]] = []
    comments: dict[str, str] = {}
    names = set(RESERVED)
    for c in columns:
        if c.source in used or c.present == 0:
            continue
        field_name = _identifier(c.source, names)
        names.add(field_name)
        fields.append(_field_doc(field_name, c))
        comments[field_name] = _observed(c)
        if c.sentinels:
            listed = ", ".join(f"{v} ({n}x)" for v, n in c.sentinels.items())
            notes.append(f"{field_name}: {listed} taken as 'no reading' (missingValues)")
    if not fields:
        fields.append({"name": "value", "type": "number"})
    key_comments = {"timestamp": "times without an offset are read in this zone: check it"}
    if "value" in device_doc:
        key_comments["device_id"] = "no column is a device id: every row is this device"
    elif "from_path" in device_doc:
        key_comments["device_id"] = "the device is in the path (S3 key), not in the rows"
    doc: dict[str, Any] = {
        "name": _identifier(stem, set()),
        "device_id": device_doc,
        "timestamp": timestamp,
        "fields": fields,
    }
    if dialect:
        doc["dialect"] = dialect
        if not dialect.get("header", True):
            notes.append("no header line: columns named column_1, column_2, ... (rename them)")
    return Draft(contract_from_dict(doc), comments, notes, key_comments)


def _timestamp_doc(time: TimeChoice | None, notes: list[str]) -> dict[str, Any]:
    if time is None:
        notes.append("timestamp: NOT FOUND - no column reads as a time; fill in timestamp.source")
        return {"source": "timestamp", "timezone": "UTC"}
    doc: dict[str, Any] = dict(time.parts)
    shown = " + ".join(repr(c) for c in time.parts.values())
    read = sum(i is not None for i in time.instants)
    how = f"format {time.format!r}" if time.format else "ISO 8601 / epoch"
    notes.append(
        f"timestamp: {shown}, {how}, {read:,} of {len(time.instants):,} sampled values read"
        + (f" - {time.note}" if time.note else "")
    )
    if time.format:
        doc["format"] = time.format
    doc["timezone"] = "UTC"
    notes.append(
        "timestamp.timezone: UTC assumed - the file cannot tell; set it if times are local"
    )
    years = [i.year for i in time.instants if i is not None]
    if years and min(years) < DEFAULT_EARLIEST_YEAR:
        doc["earliest"] = f"{min(years)}-01-01"
    if time.date_only:
        notes.append("timestamp: dates without a time of day - one row per device and day")
    return doc


def _device_doc(
    device: Profile | None,
    columns: list[Profile],
    path: str | None,
    stem: str,
    notes: list[str],
) -> dict[str, Any]:
    if device is not None:
        notes.append(f"device_id: {device.source!r} ({device.distinct:,} distinct in the sample)")
        return {"source": device.source}
    from_path = device_from_path(path) if path else None
    if from_path is not None:
        notes.append(f"device_id: from the path, {from_path!r} (no column names a device)")
        return {"from_path": from_path}
    notes.append(
        f"device_id: no column is a device id; every row is device {stem!r} (the file name)"
        " - set device_id.value, or from_path if the path names the device"
    )
    # Columns that could still be one (a mote id in a headerless file, say): named, not taken.
    maybe = [
        c
        for c in columns
        if c.kind in ("string", "integer") and 1 < c.distinct <= math.isqrt(c.present)
    ]
    if maybe:
        shown = ", ".join(f"{c.source!r} ({c.distinct:,} values)" for c in maybe[:3])
        notes.append(f"device_id: if the file holds several devices, one of {shown} may be it")
    return {"value": stem[:MAX_DEVICE_ID_LENGTH]}


def _field_doc(name: str, c: Profile) -> dict[str, Any]:
    doc: dict[str, Any] = {"name": name}
    if name != c.source:
        doc["source"] = c.source
    if c.kind in ("integer", "number"):
        doc["type"] = c.kind
        if c.sequential:
            doc["measurement"] = False  # a row counter, not a reading
        if c.sentinels:
            doc["missingValues"] = [*DEFAULT_MISSING_VALUES, *c.sentinels]
    elif c.kind == "epoch":
        doc["type"] = "datetime"
    elif c.kind == "boolean" or (c.kind == "datetime" and c.iso):
        doc["type"] = c.kind  # (times that need a format stay text: fields have no format)
    elif c.distinct <= CATEGORY_MAX and c.distinct * 2 <= c.present:
        doc["type"] = "category"
        values = sorted({(v or "").strip().casefold() for v in c.values} - _missing_markers())
        if len(values) <= ENUM_MAX and c.present >= ENUM_MIN_SAMPLE:
            doc["constraints"] = {"enum": values}
    else:
        doc["type"] = "string"
    return doc


def _observed(c: Profile) -> str:
    seen = f"{c.present:,} values"
    if c.low is not None and c.high is not None:
        seen += f", {_short(c.low)} .. {_short(c.high)}"
    if c.sentinels:
        seen += "; no reading: " + ", ".join(f"{v} x{n}" for v, n in c.sentinels.items())
    elif c.kind in ("string", "category"):
        seen += f", {c.distinct:,} distinct"
    return f"observed {seen}"


def _short(value: float) -> str:
    return str(int(value)) if value == int(value) else f"{value:g}"


def _stem(name: str) -> str:
    base = re.split(r"[\\/]", name)[-1]
    return re.sub(r"(\.(csv|tsv|txt|dat|ndjson|jsonl?|parquet|gz))+$", "", base, flags=re.I)


def _missing_markers() -> set[str]:
    return {v.casefold() for v in DEFAULT_MISSING_VALUES}


def _identifier(source: str, taken: set[str]) -> str:
    base = re.sub(r"[^a-z0-9]+", "_", source.casefold()).strip("_") or "field"
    if not base[0].isalpha():
        base = f"f_{base}"
    base = base[:58]
    candidate, n = base, 2
    while candidate in taken:
        candidate, n = f"{base}_{n}", n + 1
    return candidate
