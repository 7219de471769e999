"""Samples of a file for inference: its first records, column by column, as text."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from typing import Any

import polars as pl

from iotpipe.readers import scalar_text, sniff_delimiter, text_stream
from iotpipe.readers.streams import SNIFF_BYTES

HEADER_PROBE_ROWS = 50
Sample = dict[str, list[str | None]]  # source column -> raw values, one per record


def csv_sample(buffered: io.BufferedReader, limit: int) -> tuple[Sample, dict[str, Any]]:
    """Sample a CSV: its columns and the dialect seen (delimiter, decimal mark, header)."""
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


def ndjson_sample(buffered: io.BufferedReader, limit: int) -> Sample:
    """Sample NDJSON: every scalar path of the first objects (arrays are left out)."""
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


def parquet_sample(buffered: io.BufferedReader, limit: int) -> Sample:
    """Sample Parquet: the first rows of every column, as text."""
    frame = pl.read_parquet(io.BytesIO(buffered.read()), n_rows=limit)
    return {
        name: frame.get_column(name).cast(pl.String, strict=False).to_list()
        for name in frame.columns
    }
