"""Draft a data contract from a sample file: dialect, types, device id, timestamp, categoricals.

The draft validates as is; a person should still review the zone of naive times, the bounds
of numeric fields and which vocabularies are closed. The device id and the timestamp are
chosen from the values (`iotpipe.infer.keys`), not from known column names.
"""

from __future__ import annotations

import re
from typing import IO, Any

import yaml

from iotpipe.contract import (
    DEFAULT_MISSING_VALUES,
    RESERVED,
    DataContract,
    contract_from_dict,
    contract_to_dict,
)
from iotpipe.infer.columns import Profile, profile
from iotpipe.infer.keys import choose_device, choose_timestamp
from iotpipe.infer.sampling import csv_sample, ndjson_sample, parquet_sample
from iotpipe.readers import decompressed, detect_format
from iotpipe.readers.streams import SNIFF_BYTES

SAMPLE_ROWS = 5000
ENUM_MAX = 16
ENUM_MIN_SAMPLE = 100  # fewer rows than this cannot show a vocabulary is closed
CATEGORY_MAX = 64


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
        raw, dialect = csv_sample(buffered, sample_rows)
    elif fmt == "ndjson":
        raw = ndjson_sample(buffered, sample_rows)
    else:
        raw = parquet_sample(buffered, sample_rows)
    decimal = dialect.get("decimal", ".")
    columns = [profile(source, values, decimal) for source, values in raw.items()]
    return contract_from_dict(_draft(name, columns, dialect))


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


def _draft(name: str, columns: list[Profile], dialect: dict[str, Any]) -> dict[str, Any]:
    time = choose_timestamp(columns)
    device, _ = choose_device(columns, time)
    if device is None:  # nothing fits: the first text column, for a person to fix
        device = next((c for c in columns if c.kind == "string" and c.present), columns[0])
    used = {device.source, *(time.columns if time is not None else ())}
    timestamp: dict[str, Any] = dict(time.parts) if time is not None else {"source": "timestamp"}
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


def _field_doc(name: str, c: Profile) -> dict[str, Any]:
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
