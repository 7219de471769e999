"""Draft a data contract from a sample file: dialect, types, device id, timestamp, categoricals.

The draft is a starting point that validates as is; a person should still review the zone of
naive times, the bounds of numeric fields and which vocabularies are closed.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

import polars as pl
import yaml

from iotpipe.contract import (
    DEFAULT_MISSING_VALUES,
    RESERVED,
    DataContract,
    contract_from_dict,
    contract_to_dict,
)
from iotpipe.readers import (
    decompressed,
    detect_format,
    scalar_text,
    sniff_delimiter,
    text_stream,
)
from iotpipe.readers.streams import SNIFF_BYTES
from iotpipe.timestamps import timestamp_expr

SAMPLE_ROWS = 5000
PARSE_SHARE = 0.95  # share of non-missing values that must parse for a type to be chosen
ENUM_MAX = 16
ENUM_MIN_SAMPLE = 100  # fewer rows than this cannot show a vocabulary is closed
HEADER_PROBE_ROWS = 50
CATEGORY_MAX = 64
EPOCH_RANGE = (946_684_800, 4_102_444_800)  # 2000-01-01 .. 2100-01-01 in seconds

DEVICE_HINTS = (
    "device_id", "deviceid", "dev_eui", "deveui", "device", "devicename", "device_name",
    "station", "meter", "meter_id", "lclid", "sensor_id", "sensor", "serial", "mac", "id", "name",
)  # fmt: skip
TIME_HINTS = (
    "timestamp", "ts", "time", "datetime", "date_time", "tstp", "_date", "date", "reported_at",
    "_timestamp", "created_at", "received_at", "time_utc",
)  # fmt: skip
PART_NAMES = ("year", "month", "day", "hour", "minute", "second")


@dataclass
class _Column:
    source: str
    values: list[str | None]
    kind: str = "string"  # string | integer | number | boolean | datetime | epoch
    distinct: int = 0
    present: int = 0
    sequential: bool = False
    has_offset: bool = False


def infer_contract(stream: IO[bytes], name: str, sample_rows: int = SAMPLE_ROWS) -> DataContract:
    """Draft a contract from the first rows of a file.

    Parameters
    ----------
    stream
        The sample (CSV, NDJSON or Parquet; gzip or not).
    name
        A name for the contract (made into an identifier).
    sample_rows
        How many records to look at.

    Returns
    -------
    DataContract
        A contract that validates; review it before use.
    """
    buffered, _ = decompressed(stream)
    fmt = detect_format(buffered.peek(SNIFF_BYTES))
    dialect: dict[str, Any] = {}
    if fmt == "csv":
        raw, dialect = _csv_sample(buffered, sample_rows)
    elif fmt == "ndjson":
        raw = _ndjson_sample(buffered, sample_rows)
    else:
        raw = _parquet_sample(buffered, sample_rows)
    decimal = dialect.get("decimal", ".")
    columns = [_analyse(source, values, decimal) for source, values in raw.items()]
    doc = _draft(name, columns, dialect)
    return contract_from_dict(doc)


def infer_contract_yaml(stream: IO[bytes], name: str) -> str:
    """Draft a contract and render it as commented YAML.

    Parameters
    ----------
    stream
        The sample file.
    name
        A name for the contract.

    Returns
    -------
    str
        The YAML text.
    """
    contract = infer_contract(stream, name)
    header = (
        f"# Draft contract inferred by `iotpipe contract infer` from {name}.\n"
        "# Review: the zone of naive times (timestamp.timezone), numeric bounds\n"
        "# (constraints.minimum/maximum), and which categories are closed (constraints.enum).\n"
    )
    body = yaml.safe_dump(contract_to_dict(contract), sort_keys=False, allow_unicode=True)
    return header + body


# --------------------------------------------------------------------------------------------
# Sampling
# --------------------------------------------------------------------------------------------


def _csv_sample(
    buffered: io.BufferedReader, limit: int
) -> tuple[dict[str, list[str | None]], dict[str, Any]]:
    text = text_stream(buffered)
    head = text.read(SNIFF_BYTES) + text.readline()
    delimiter = sniff_delimiter(head)
    rows: list[list[str]] = []
    lines: Iterator[str] = _lines(head, text)
    for row in csv.reader(lines, delimiter=delimiter):
        if row and any(v.strip() for v in row):
            rows.append(row)
        if len(rows) > limit:
            break
    if not rows:
        return {}, {"delimiter": delimiter}
    header = _has_header(rows)
    width = len(rows[0])
    if header:
        names = [h.strip().removeprefix("\ufeff") for h in rows[0]]
        data = rows[1:]
    else:
        names = [f"column_{i + 1}" for i in range(width)]
        data = rows
    data = [r for r in data if len(r) == width]
    decimal = "."
    if delimiter != ",":
        cells = [v.strip() for r in data[:500] for v in r]
        if sum(bool(re.fullmatch(r"-?\d+,\d+", v)) for v in cells) > len(data[:500]) // 10:
            decimal = ","
    dialect: dict[str, Any] = {"delimiter": delimiter, "decimal": decimal, "header": header}
    if not header:
        dialect["columns"] = names
    columns: dict[str, list[str | None]] = {n: [r[i] for r in data] for i, n in enumerate(names)}
    return columns, dialect


def _lines(head: str, rest: io.TextIOWrapper) -> Iterator[str]:
    yield from io.StringIO(head, newline="")
    yield from rest


def _has_header(rows: list[list[str]]) -> bool:
    # A header row has no numbers where the data rows mostly do.
    first = [v.strip() for v in rows[0]]
    body = rows[1:HEADER_PROBE_ROWS]
    if not body:
        return not any(_is_number(v) for v in first)
    for i, value in enumerate(first):
        numeric_below = sum(_is_number(r[i].strip()) for r in body if i < len(r))
        if not _is_number(value) and numeric_below > len(body) // 2:
            return True
    return not any(_is_number(v) for v in first) and len(set(first)) == len(first)


def _is_number(value: str) -> bool:
    return bool(re.fullmatch(r"[+-]?(\d+([.,]\d*)?|[.,]\d+)([eE][+-]?\d+)?", value))


def _ndjson_sample(buffered: io.BufferedReader, limit: int) -> dict[str, list[str | None]]:
    records: list[dict[str, str]] = []
    for line in text_stream(buffered):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            flat: dict[str, str] = {}
            _flatten(record, "", flat)
            records.append(flat)
        if len(records) >= limit:
            break
    keys: dict[str, None] = {}
    for record in records:
        keys.update(dict.fromkeys(record))
    return {k: [r.get(k) for r in records] for k in keys}


def _flatten(node: dict[str, Any], prefix: str, out: dict[str, str]) -> None:
    for key, value in node.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            _flatten(value, f"{path}.", out)
        elif isinstance(value, list) or value is None:
            continue  # arrays have no single value per record
        else:
            out[path] = scalar_text(value)


def _parquet_sample(buffered: io.BufferedReader, limit: int) -> dict[str, list[str | None]]:
    frame = pl.read_parquet(io.BytesIO(buffered.read()), n_rows=limit)
    return {
        name: frame.get_column(name).cast(pl.String, strict=False).to_list()
        for name in frame.columns
    }


# --------------------------------------------------------------------------------------------
# Analysis
# --------------------------------------------------------------------------------------------


def _analyse(source: str, values: list[str | None], decimal: str) -> _Column:
    markers = sorted(v.casefold() for v in DEFAULT_MISSING_VALUES)
    series = pl.Series("v", values, dtype=pl.String).str.strip_chars()
    series = (
        pl.select(pl.when(series.str.to_lowercase().is_in(markers)).then(None).otherwise(series))
        .to_series()
        .drop_nulls()
    )
    column = _Column(source, values, present=series.len(), distinct=series.n_unique())
    if column.present == 0:
        return column
    text = series.str.replace_all(",", ".", literal=True) if decimal == "," else series
    numbers = text.cast(pl.Float64, strict=False)
    parsed_share = numbers.is_not_null().sum() / column.present
    lower = series.str.to_lowercase()
    if lower.is_in(["true", "false"]).all():
        column.kind = "boolean"
    elif parsed_share >= PARSE_SHARE:
        finite = numbers.drop_nulls()
        integral = bool((finite == finite.floor()).all()) and not series.str.contains(r"\.").any()
        column.kind = "integer" if integral else "number"
        low, high = float(finite.min()), float(finite.max())  # type: ignore[arg-type]
        # Whole numbers that all fall in 2000..2100 as epoch seconds or milliseconds are
        # times (a name like "time" makes the same call on fewer, so any in-range start).
        in_seconds = EPOCH_RANGE[0] <= low and high <= EPOCH_RANGE[1]
        in_millis = EPOCH_RANGE[0] * 1000 <= low and high <= EPOCH_RANGE[1] * 1000
        hinted = _time_hint(source) and (
            EPOCH_RANGE[0] <= low <= EPOCH_RANGE[1]
            or EPOCH_RANGE[0] * 1000 <= low <= EPOCH_RANGE[1] * 1000
        )
        if integral and (in_seconds or in_millis or hinted):
            column.kind = "epoch"
        if integral and column.distinct == column.present > 1:
            column.sequential = bool((finite.diff().drop_nulls() == 1).all())
    else:
        # Over a frame's column: the same expression over pl.lit(series) panics in Polars 2.1
        # on some columns of hex strings that look like epoch numbers.
        stamps = series.to_frame("v").select(timestamp_expr(pl.col("v"))).to_series()
        if stamps.is_not_null().sum() / column.present >= PARSE_SHARE:
            column.kind = "datetime"
            column.has_offset = bool(series.str.contains(r"(Z|[+-]\d{2}:?\d{2})$").any())
    return column


def _time_hint(source: str) -> bool:
    leaf = source.rsplit(".", 1)[-1].casefold()
    return leaf in TIME_HINTS or "time" in leaf or "date" in leaf


def _pick(columns: list[_Column], hints: tuple[str, ...], kinds: tuple[str, ...]) -> _Column | None:
    candidates = [c for c in columns if c.kind in kinds and c.present]
    for hint in hints:
        for c in candidates:
            if c.source.rsplit(".", 1)[-1].casefold().replace(" ", "_") == hint:
                return c
    return None


def _draft(name: str, columns: list[_Column], dialect: dict[str, Any]) -> dict[str, Any]:
    device = _pick(columns, DEVICE_HINTS, ("string", "integer")) or next(
        (c for c in columns if c.kind == "string" and c.present), None
    )
    if device is None:
        device = columns[0]
    used = {device.source}
    timestamp: dict[str, Any]
    stamp = _pick(columns, TIME_HINTS, ("datetime", "epoch")) or next(
        (c for c in columns if c.kind in ("datetime", "epoch")), None
    )
    by_name = {c.source.casefold(): c for c in columns}
    if stamp is not None:
        timestamp = {"source": stamp.source}
        used.add(stamp.source)
    elif all(p in by_name for p in PART_NAMES[:3]):
        parts = [p for p in PART_NAMES if p in by_name]
        timestamp = {p: by_name[p].source for p in parts}
        used.update(by_name[p].source for p in parts)
    else:
        timestamp = {"source": "timestamp"}  # nothing found: the user must say
    timestamp["timezone"] = "UTC"
    fields: list[dict[str, Any]] = []
    names = set(RESERVED)
    for c in columns:
        if c.source in used or c.present == 0:
            continue
        field_name = _identifier(c.source, names)
        names.add(field_name)
        fields.append(_field_doc(field_name, c))
    if not fields:
        fields.append({"name": "value", "type": "number"})
    doc: dict[str, Any] = {
        "name": _identifier(
            re.sub(r"\.(csv|ndjson|jsonl?|parquet|gz)$", "", name, flags=re.I), set()
        ),
        "device_id": {"source": device.source},
        "timestamp": timestamp,
        "fields": fields,
    }
    if dialect:
        doc["dialect"] = dialect
    return doc


def _field_doc(name: str, c: _Column) -> dict[str, Any]:
    doc: dict[str, Any] = {"name": name}
    if name != c.source:
        doc["source"] = c.source
    if c.kind in ("integer", "number"):
        # A sample of whole numbers does not prove the column never holds decimals, so only
        # a row counter is drafted as an integer.
        doc["type"] = "integer" if c.sequential else "number"
        if c.sequential:
            doc["measurement"] = False  # a row counter, not a reading
    elif c.kind == "epoch":
        doc["type"] = "datetime"
    elif c.kind in ("boolean", "datetime"):
        doc["type"] = c.kind
    elif c.distinct <= CATEGORY_MAX and c.distinct * 2 <= c.present:
        doc["type"] = "category"
        values = sorted({(v or "").strip().casefold() for v in c.values} - _missing_markers())
        if len(values) <= ENUM_MAX and c.present >= ENUM_MIN_SAMPLE:
            doc["constraints"] = {"enum": values}
    else:
        doc["type"] = "string"
    return doc


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
