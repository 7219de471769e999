"""Render a `DataContract` back to its YAML document form (``contract infer``, the registry)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from iotpipe.contract.schema import DEFAULT_MAX_RECORD_BYTES, DataContract, Field, Quality


def contract_to_dict(contract: DataContract) -> dict[str, Any]:
    """Render a contract back to its YAML document form (used by ``contract infer``).

    Parameters
    ----------
    contract
        The contract.

    Returns
    -------
    dict
        A mapping that `contract_from_dict` accepts and that round-trips.
    """
    dialect = contract.dialect
    doc: dict[str, Any] = {"name": contract.name, "table": contract.table}
    if contract.description:
        doc["description"] = contract.description
    doc["missingValues"] = sorted(contract.missing_values)
    doc["dialect"] = {
        "delimiter": dialect.delimiter or "auto",
        "decimal": dialect.decimal,
        "header": dialect.header,
        "encoding": dialect.encoding,
    }
    if dialect.columns is not None:
        doc["dialect"]["columns"] = list(dialect.columns)
    if dialect.max_record_bytes != DEFAULT_MAX_RECORD_BYTES:
        doc["dialect"]["max_record_bytes"] = dialect.max_record_bytes
    device: dict[str, Any] = {}
    if contract.device_value is not None:
        device["value"] = contract.device_value
    elif contract.device_from_path is not None:
        device["from_path"] = contract.device_from_path
    else:
        device["source"] = _one_or_list(contract.device_id.sources)
    device["maxLength"] = contract.device_id.max_length
    doc["device_id"] = device
    ts = contract.timestamp
    ts_doc: dict[str, Any] = {}
    for part, sources in ts.parts.items():
        ts_doc["source" if part == "value" else part] = _one_or_list(sources)
    if ts.formats:
        ts_doc["format"] = _one_or_list(ts.formats)
    ts_doc["timezone"] = ts.timezone
    ts_doc["earliest"] = ts.earliest.date().isoformat()
    ts_doc["max_future"] = f"{int(ts.max_future.total_seconds())}s"
    if ts.ambiguous != "earliest":
        ts_doc["ambiguous"] = ts.ambiguous
    doc["timestamp"] = ts_doc
    doc["fields"] = [_field_to_dict(f, contract.missing_values) for f in contract.fields]
    if contract.quality != Quality():
        doc["quality"] = {"max_rejected_ratio": contract.quality.max_rejected_ratio}
    return doc


def _field_to_dict(f: Field, missing_values: frozenset[str]) -> dict[str, Any]:
    out: dict[str, Any] = {"name": f.name, "type": f.type}
    if f.description:
        out["description"] = f.description
    if f.missing_values != missing_values:
        out["missingValues"] = sorted(f.missing_values)
    if f.sources != (f.name,):
        out["source"] = _one_or_list(f.sources)
    constraints = _constraints_doc(f)
    if constraints:
        out["constraints"] = constraints
    if f.encoding and f.encoding != ("onehot+code" if f.enum else "code"):
        out["encoding"] = f.encoding
    if f.on_invalid != "null":
        out["on_invalid"] = f.on_invalid
    if f.measurement != (f.type in ("number", "integer")):
        out["measurement"] = f.measurement
    return out


def _constraints_doc(f: Field) -> dict[str, Any]:
    constraints: dict[str, Any] = {}
    if f.required:
        constraints["required"] = True
    if f.minimum is not None:
        constraints["minimum"] = f.minimum
    if f.maximum is not None:
        constraints["maximum"] = f.maximum
    if f.enum:
        constraints["enum"] = list(f.enum)
    if f.max_length is not None:
        constraints["maxLength"] = f.max_length
    return constraints


def _one_or_list(sources: Sequence[str]) -> str | list[str]:
    return sources[0] if len(sources) == 1 else list(sources)
