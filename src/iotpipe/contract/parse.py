"""Read and validate contract YAML into a `DataContract`; errors name the offending key."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from iotpipe.contract.formats import format_problem
from iotpipe.contract.limits import check_engine_limits
from iotpipe.contract.schema import (
    DEFAULT_DEVICE_ID_LENGTH,
    DEFAULT_MAX_RECORD_BYTES,
    DEFAULT_MISSING_VALUES,
    DEVICE_ID,
    EARLIEST_ALLOWED,
    FIELD_TYPES,
    IDENTIFIER,
    MAX_DEVICE_ID_LENGTH,
    MAX_IDENTIFIER,
    MAX_RECORD_BYTES_CAP,
    RESERVED,
    RESERVED_PREFIX,
    TIMESTAMP_PARTS,
    Ambiguous,
    DataContract,
    Dialect,
    Encoding,
    Field,
    FieldType,
    OnInvalid,
    Quality,
    TimestampSpec,
    slug,
)
from iotpipe.errors import ContractError

_PART_SETS: tuple[frozenset[str], ...] = (
    frozenset({"date", "time"}),
    frozenset({"date"}),
    frozenset({"year", "month", "day"}),
    frozenset({"year", "month", "day", "hour"}),
    frozenset({"year", "month", "day", "hour", "minute"}),
    frozenset({"year", "month", "day", "hour", "minute", "second"}),
)
_DURATION = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
_DURATION_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def load_contract(ref: str | Path) -> DataContract:
    """Load a contract from a YAML path or by the name of a shipped contract.

    Parameters
    ----------
    ref
        A path to a YAML file, or the name of a contract shipped in ``iotpipe/contracts``
        (for example ``acme_usage``).

    Returns
    -------
    DataContract
        The validated contract.

    Raises
    ------
    ContractError
        If the file is missing, is not YAML, or does not validate.
    """
    path = Path(ref)
    if path.suffix in (".yaml", ".yml") or path.exists():
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ContractError("contract", f"cannot read {path}: {exc.strerror}") from exc
    else:
        shipped = resources.files("iotpipe.contracts").joinpath(f"{ref}.yaml")
        if not shipped.is_file():
            raise ContractError("contract", f"no contract file or shipped contract named {ref!r}")
        text = shipped.read_text(encoding="utf-8")
    return parse_contract(text)


def parse_contract(text: str) -> DataContract:
    """Parse and validate contract YAML text.

    Parameters
    ----------
    text
        The YAML document.

    Returns
    -------
    DataContract
        The validated contract.

    Raises
    ------
    ContractError
        Naming the offending key.
    """
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ContractError("contract", f"not valid YAML: {exc}") from exc
    return contract_from_dict(_mapping(doc, "contract"))


_TOP_KEYS = {
    "name",
    "table",
    "description",
    "title",
    "missingValues",
    "dialect",
    "device_id",
    "timestamp",
    "fields",
    "quality",
}


def contract_from_dict(doc: Mapping[str, Any]) -> DataContract:
    """Validate a contract given as a mapping (the parsed YAML).

    Parameters
    ----------
    doc
        The contract document.

    Returns
    -------
    DataContract
        The validated contract.
    """
    _no_unknown_keys(doc, _TOP_KEYS, "")
    name = _identifier(_required(doc, "name", ""), "name")
    table = _identifier(doc.get("table", name), "table")
    if table.startswith(RESERVED_PREFIX):
        where = "table" if "table" in doc else "name"
        raise ContractError(where, f"{table!r}: tables named {RESERVED_PREFIX}* are iotpipe's own")
    missing = _missing_values(
        doc.get("missingValues", list(DEFAULT_MISSING_VALUES)), "missingValues"
    )
    dialect = _dialect(doc.get("dialect", {}))
    device, device_value, device_from_path = _device_id(_required(doc, "device_id", ""), missing)
    timestamp = _timestamp(_required(doc, "timestamp", ""))
    raw_fields = _required(doc, "fields", "")
    if not isinstance(raw_fields, list) or not raw_fields:
        raise ContractError("fields", "must be a non-empty list")
    fields = tuple(_field(item, f"fields[{i}]", missing) for i, item in enumerate(raw_fields))
    contract = DataContract(
        name=name,
        table=table,
        device_id=device,
        timestamp=timestamp,
        fields=fields,
        dialect=dialect,
        missing_values=missing,
        description=str(doc.get("description", doc.get("title", ""))),
        quality=_quality(doc.get("quality", {})),
        device_value=device_value,
        device_from_path=device_from_path,
    )
    _check_columns(contract)
    if dialect.columns is not None:
        _check_headerless(contract, dialect.columns)
    check_engine_limits(contract)
    return contract


_QUALITY_KEYS = {"max_rejected_ratio"}


def _quality(raw: Any) -> Quality:
    doc = _mapping(raw, "quality")
    _no_unknown_keys(doc, _QUALITY_KEYS, "quality")
    ratio = doc.get("max_rejected_ratio", 1.0)
    if isinstance(ratio, bool) or not isinstance(ratio, int | float) or not 0 <= ratio <= 1:
        raise ContractError("quality.max_rejected_ratio", "must be a number from 0 to 1")
    return Quality(max_rejected_ratio=float(ratio))


def _check_columns(contract: DataContract) -> None:
    seen: dict[str, str] = {}
    for i, f in enumerate(contract.fields):
        if f.name in RESERVED:
            raise ContractError(f"fields[{i}].name", f"{f.name!r} is reserved for the key")
        names = [f.name, *([f.code_column] if f.code_column else []), *f.onehot_columns.values()]
        for column in names:
            if len(column) > MAX_IDENTIFIER:
                raise ContractError(f"fields[{i}]", f"column {column!r} is over 64 characters")
            if column in seen or column in RESERVED:
                raise ContractError(
                    f"fields[{i}].name",
                    f"column {column!r} clashes with {seen.get(column, 'the key')}",
                )
            seen[column] = f"field {f.name!r}"


def _check_headerless(contract: DataContract, columns: tuple[str, ...]) -> None:
    known = {c.strip().casefold() for c in columns}
    for slot in contract.slots:
        if slot.required and not any(s.strip().casefold() in known for s in slot.sources):
            raise ContractError("dialect.columns", f"no column for required {slot.describe()}")


_DIALECT_KEYS = {
    "delimiter",
    "quotechar",
    "decimal",
    "header",
    "columns",
    "encoding",
    "max_record_bytes",
}


def _dialect(raw: Any) -> Dialect:
    doc = _mapping(raw, "dialect")
    _no_unknown_keys(doc, _DIALECT_KEYS, "dialect")
    delimiter = doc.get("delimiter", ",")
    if delimiter in ("auto", None):
        delimiter = None
    elif not isinstance(delimiter, str) or len(delimiter) != 1 or delimiter in '\r\n"':
        raise ContractError("dialect.delimiter", "must be one character or 'auto'")
    quotechar = doc.get("quotechar", '"')
    if not isinstance(quotechar, str) or len(quotechar) != 1:
        raise ContractError("dialect.quotechar", "must be one character")
    decimal = doc.get("decimal", ".")
    if decimal not in (".", ","):
        raise ContractError("dialect.decimal", "must be '.' or ','")
    if decimal == "," and delimiter == ",":
        raise ContractError("dialect.decimal", "a decimal comma needs another delimiter")
    header, columns = _header_and_columns(doc)
    encoding = doc.get("encoding", "utf-8")
    try:
        "".encode(str(encoding))
    except LookupError as exc:
        raise ContractError("dialect.encoding", f"unknown encoding {encoding!r}") from exc
    max_record_bytes = _positive_int(
        doc.get("max_record_bytes", DEFAULT_MAX_RECORD_BYTES), "dialect.max_record_bytes"
    )
    if max_record_bytes > MAX_RECORD_BYTES_CAP:
        raise ContractError("dialect.max_record_bytes", f"must be at most {MAX_RECORD_BYTES_CAP}")
    return Dialect(
        delimiter=delimiter,
        quotechar=quotechar,
        decimal=decimal,
        header=header,
        columns=columns,
        encoding=str(encoding),
        max_record_bytes=max_record_bytes,
    )


def _header_and_columns(doc: Mapping[str, Any]) -> tuple[bool, tuple[str, ...] | None]:
    header = doc.get("header", True)
    if not isinstance(header, bool):
        raise ContractError("dialect.header", "must be true or false")
    columns = doc.get("columns")
    if columns is None:
        if not header:
            raise ContractError("dialect.columns", "a headerless file needs its column list")
        return header, None
    if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
        raise ContractError("dialect.columns", "must be a list of column names")
    if header:
        raise ContractError("dialect.columns", "only for headerless files (header: false)")
    return header, tuple(columns)


_DEVICE_KEYS = {"source", "value", "from_path", "maxLength", "description"}
_DEVICE_ORIGINS = ("source", "value", "from_path")


def _device_id(raw: Any, missing: frozenset[str]) -> tuple[Field, str | None, str | None]:
    """Return the device id field, its constant (``value``) and its path regex (``from_path``)."""
    doc = {"source": raw} if isinstance(raw, str | list) else _mapping(raw, "device_id")
    _no_unknown_keys(doc, _DEVICE_KEYS, "device_id")
    max_length = _positive_int(
        doc.get("maxLength", DEFAULT_DEVICE_ID_LENGTH), "device_id.maxLength"
    )
    if max_length > MAX_DEVICE_ID_LENGTH:
        raise ContractError("device_id.maxLength", f"must be at most {MAX_DEVICE_ID_LENGTH}")
    origins = [key for key in _DEVICE_ORIGINS if key in doc]
    if len(origins) > 1:
        raise ContractError("device_id", f"give one of source, value, from_path (not {origins})")
    value = _device_value(doc["value"], max_length) if "value" in doc else None
    from_path = _path_regex(doc["from_path"]) if "from_path" in doc else None
    field = Field(
        name=DEVICE_ID,
        type="string",
        sources=_sources(doc.get("source", DEVICE_ID), "device_id.source"),
        required=True,
        max_length=max_length,
        missing_values=missing,
        on_invalid="reject",
        description=str(doc.get("description", "")),
    )
    return field, value, from_path


def _device_value(raw: Any, max_length: int) -> str:
    if isinstance(raw, bool) or not isinstance(raw, str | int):
        raise ContractError("device_id.value", "must be a string (the device of every row)")
    value = str(raw).strip()
    if not value or len(value) > max_length:
        raise ContractError("device_id.value", f"must be 1 to {max_length} characters")
    return value


def _path_regex(raw: Any) -> str:
    if not isinstance(raw, str) or not raw:
        raise ContractError("device_id.from_path", "must be a regular expression")
    try:
        pattern = re.compile(raw)
    except re.error as exc:
        raise ContractError("device_id.from_path", f"not a regular expression: {exc}") from exc
    if DEVICE_ID not in pattern.groupindex and pattern.groups != 1:
        raise ContractError(
            "device_id.from_path", "needs a group (?P<device_id>...) or exactly one group"
        )
    return raw


_TIMESTAMP_KEYS = {
    "source",
    "timezone",
    "earliest",
    "max_future",
    "ambiguous",
    "format",
    "description",
    *TIMESTAMP_PARTS,
}
_AMBIGUOUS = ("earliest", "latest", "reject")


def _timestamp(raw: Any) -> TimestampSpec:
    doc = {"source": raw} if isinstance(raw, str | list) else _mapping(raw, "timestamp")
    _no_unknown_keys(doc, _TIMESTAMP_KEYS, "timestamp")
    parts_given = {p for p in TIMESTAMP_PARTS if p in doc}
    if "source" in doc and parts_given:
        raise ContractError("timestamp", "give either 'source' or composite parts, not both")
    if "source" in doc:
        parts: dict[str, tuple[str, ...]] = {"value": _sources(doc["source"], "timestamp.source")}
    elif frozenset(parts_given) in _PART_SETS:
        parts = {p: _sources(doc[p], f"timestamp.{p}") for p in TIMESTAMP_PARTS if p in doc}
    else:
        raise ContractError(
            "timestamp",
            "needs 'source', or parts date[+time] or year/month/day[/hour[/minute[/second]]]",
        )
    tz = str(doc.get("timezone", "UTC"))
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ContractError("timestamp.timezone", f"unknown time zone {tz!r}") from exc
    earliest = doc.get("earliest", dt.date(2000, 1, 1))
    if isinstance(earliest, str):
        try:
            earliest = dt.date.fromisoformat(earliest)
        except ValueError as exc:
            raise ContractError("timestamp.earliest", "must be a date (YYYY-MM-DD)") from exc
    if not isinstance(earliest, dt.date):
        raise ContractError("timestamp.earliest", "must be a date (YYYY-MM-DD)")
    if earliest < EARLIEST_ALLOWED:  # MySQL's DATETIME starts at year 1000
        raise ContractError("timestamp.earliest", f"must be {EARLIEST_ALLOWED} or later")
    max_future = _duration(doc.get("max_future", "1d"), "timestamp.max_future")
    ambiguous = doc.get("ambiguous", "earliest")
    if ambiguous not in _AMBIGUOUS:
        raise ContractError("timestamp.ambiguous", f"must be one of {', '.join(_AMBIGUOUS)}")
    formats = _formats(doc.get("format"))
    if formats and "year" in parts:
        raise ContractError("timestamp.format", "applies to 'source' or date[+time], not parts")
    return TimestampSpec(
        parts=parts,
        timezone=tz,
        earliest=dt.datetime(earliest.year, earliest.month, earliest.day),
        max_future=max_future,
        ambiguous=cast(Ambiguous, ambiguous),
        formats=formats,
    )


def _formats(raw: Any) -> tuple[str, ...]:
    if raw is None:
        return ()
    items = [raw] if isinstance(raw, str) else raw
    if not isinstance(items, list) or not items or not all(isinstance(f, str) for f in items):
        raise ContractError("timestamp.format", "must be a format string or a list of them")
    for i, text in enumerate(items):
        where = "timestamp.format" if isinstance(raw, str) else f"timestamp.format[{i}]"
        problem = format_problem(text)
        if problem:
            raise ContractError(where, f"{text!r}: {problem}")
    return tuple(items)


_FIELD_KEYS = {
    "name",
    "type",
    "source",
    "constraints",
    "missingValues",
    "on_invalid",
    "encoding",
    "measurement",
    "description",
    "title",
    "unit",
}
_CONSTRAINT_KEYS = {"required", "minimum", "maximum", "enum", "maxLength"}


def _field(raw: Any, where: str, default_missing: frozenset[str]) -> Field:
    doc = _mapping(raw, where)
    _no_unknown_keys(doc, _FIELD_KEYS, where)
    name = _identifier(_required(doc, "name", where), f"{where}.name")
    ftype = doc.get("type", "string")
    if ftype not in FIELD_TYPES:
        raise ContractError(f"{where}.type", f"must be one of {', '.join(FIELD_TYPES)}")
    constraints = _mapping(doc.get("constraints", {}), f"{where}.constraints")
    _no_unknown_keys(constraints, _CONSTRAINT_KEYS, f"{where}.constraints")
    required = constraints.get("required", False)
    if not isinstance(required, bool):
        raise ContractError(f"{where}.constraints.required", "must be true or false")
    minimum = _number(constraints.get("minimum"), f"{where}.constraints.minimum")
    maximum = _number(constraints.get("maximum"), f"{where}.constraints.maximum")
    if (minimum is not None or maximum is not None) and ftype not in ("number", "integer"):
        raise ContractError(f"{where}.constraints", "minimum/maximum apply to numbers only")
    if minimum is not None and maximum is not None and minimum > maximum:
        raise ContractError(f"{where}.constraints.minimum", "is greater than maximum")
    enum = _enum(constraints.get("enum"), ftype, f"{where}.constraints.enum")
    max_length = constraints.get("maxLength")
    if max_length is not None:
        max_length = _positive_int(max_length, f"{where}.constraints.maxLength")
    on_invalid = doc.get("on_invalid", "null")
    if on_invalid not in ("null", "reject"):
        raise ContractError(f"{where}.on_invalid", "must be 'null' or 'reject'")
    encoding = _encoding(doc.get("encoding"), ftype, enum, f"{where}.encoding")
    measurement = doc.get("measurement", ftype in ("number", "integer"))
    if not isinstance(measurement, bool):
        raise ContractError(f"{where}.measurement", "must be true or false")
    missing = default_missing
    if "missingValues" in doc:
        missing = _missing_values(doc["missingValues"], f"{where}.missingValues")
    return Field(
        name=name,
        type=cast(FieldType, ftype),
        sources=_sources(doc.get("source", name), f"{where}.source"),
        required=required,
        minimum=minimum,
        maximum=maximum,
        enum=enum,
        max_length=max_length,
        missing_values=missing,
        on_invalid=cast(OnInvalid, on_invalid),
        encoding=encoding,
        measurement=measurement,
        description=str(doc.get("description", doc.get("title", ""))),
    )


def _encoding(raw: Any, ftype: str, enum: tuple[str, ...] | None, where: str) -> Encoding | None:
    if ftype != "category":
        if raw is not None:
            raise ContractError(where, "applies to category fields only")
        return None
    encoding = raw or ("onehot+code" if enum else "code")
    if encoding not in ("code", "onehot+code"):
        raise ContractError(where, "must be 'code' or 'onehot+code'")
    if encoding == "onehot+code" and not enum:
        raise ContractError(where, "onehot+code needs a closed vocabulary (enum)")
    return cast(Encoding, encoding)


def _enum(raw: Any, ftype: str, where: str) -> tuple[str, ...] | None:
    if raw is None:
        return None
    if not isinstance(raw, list) or not raw:
        raise ContractError(where, "must be a non-empty list")
    if ftype not in ("category", "string"):
        raise ContractError(where, "applies to category and string fields only")
    values = [str(v).strip() for v in raw]
    if ftype == "category":
        values = [v.casefold() for v in values]
    if len(set(values)) != len(values):
        raise ContractError(where, "has duplicate values")
    if ftype == "category" and len({slug(v) for v in values}) != len(values):
        raise ContractError(where, "values collide once turned into one-hot column names")
    return tuple(values)


def _mapping(raw: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(raw, Mapping):
        raise ContractError(where, "must be a mapping")
    return cast(Mapping[str, Any], raw)


def _required(doc: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in doc or doc[key] is None:
        raise ContractError(f"{where}.{key}" if where else key, "is required")
    return doc[key]


def _no_unknown_keys(doc: Mapping[str, Any], allowed: set[str], where: str) -> None:
    for key in doc:
        if key not in allowed:
            path = f"{where}.{key}" if where else str(key)
            raise ContractError(path, f"unknown key (allowed: {', '.join(sorted(allowed))})")


def _identifier(raw: Any, where: str) -> str:
    if not isinstance(raw, str) or not IDENTIFIER.match(raw):
        raise ContractError(where, f"{raw!r} must match {IDENTIFIER.pattern}")
    return raw


def _sources(raw: Any, where: str) -> tuple[str, ...]:
    items = [raw] if isinstance(raw, str) else raw
    if not isinstance(items, list) or not items:
        raise ContractError(where, "must be a column name/path or a non-empty list of them")
    if not all(isinstance(s, str) and s.strip() for s in items):
        raise ContractError(where, "every source must be a non-empty string")
    return tuple(s.strip() for s in items)


def _missing_values(raw: Any, where: str) -> frozenset[str]:
    if not isinstance(raw, list) or not all(
        isinstance(v, str | int | float) and not isinstance(v, bool) for v in raw
    ):
        raise ContractError(where, "must be a list of strings (or numbers)")
    return frozenset(str(v).strip().casefold() for v in raw)


def _number(raw: Any, where: str) -> float | None:
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise ContractError(where, "must be a number")
    return float(raw)


def _positive_int(raw: Any, where: str) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or raw <= 0:
        raise ContractError(where, "must be a positive integer")
    return raw


def _duration(raw: Any, where: str) -> dt.timedelta:
    match = _DURATION.match(str(raw))
    if not match:
        raise ContractError(where, "must be a duration like 1d, 12h, 30m or 90s")
    return dt.timedelta(**{_DURATION_UNITS[match.group(2)]: int(match.group(1))})
