"""Retrieval service: a validated (device, range) query -> the response body.

Lean on purpose: stdlib and the store only, never the ingest engine (Polars), so the
retrieval Lambda starts fast. The body is the fixed interface's (docs/architecture.md):
``{device_id, start, end, count, rows, stats, next_cursor}``; ``count`` and ``stats`` cover the
whole range, ``rows`` is one page ordered by timestamp, and the opaque cursor continues it.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import json
import math
import re
from collections.abc import Mapping
from typing import Any

from iotpipe.contract import IDENTIFIER, MAX_DEVICE_ID_LENGTH, TS, DataContract
from iotpipe.errors import InvalidQueryError
from iotpipe.model import ReadingsQuery, Store
from iotpipe.times import from_epoch, iso_z

DEFAULT_LIMIT = 1000
MAX_LIMIT = 10_000
# Lambda's synchronous response limit is 6 MB; the page stops well before it.
MAX_ROWS_BYTES = 5_000_000
ROW_KEY_TIME = "timestamp"
SHOWN_CHARS = 64  # at most this much of a bad value is echoed in an error
_EPOCH_TEXT = re.compile(r"^[+-]?\d+(\.\d+)?$")
MAX_BUCKETS = 10_000
BUCKET_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_SHORT_WIDTH = re.compile(r"^(\d{1,9})([smhdw])$")
_ISO_WIDTH = re.compile(
    r"^P(?:(?P<w>\d{1,9})W)?(?:(?P<d>\d{1,9})D)?"
    r"(?:T(?:(?P<h>\d{1,9})H)?(?:(?P<m>\d{1,9})M)?(?:(?P<s>\d{1,9})S)?)?$"
)
DEFAULT_DEVICES = 100
MAX_DEVICES = 1000
_SLASHED = re.compile(r"^\d{4}/\d{1,2}/\d{1,2}")


def parse_instant(value: Any, parameter: str) -> dt.datetime:
    """Parse ISO 8601 (with or without offset; naive is UTC) or epoch seconds/milliseconds.

    Parameters
    ----------
    value
        The text or number given.
    parameter
        The parameter name, for the error.

    Returns
    -------
    datetime
        Naive UTC.

    Raises
    ------
    InvalidQueryError
        When the value is missing or unparseable.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        raise InvalidQueryError(parameter, "is required")
    if isinstance(value, bool):
        raise InvalidQueryError(parameter, "must be an ISO 8601 time or epoch seconds/ms")
    text = str(value).strip()
    try:
        if isinstance(value, int | float) or _EPOCH_TEXT.match(text):
            number = float(text)
            if not math.isfinite(number):
                raise ValueError(text)
            return from_epoch(number)
        if _SLASHED.match(text):
            text = text.replace("/", "-", 2)
        parsed = dt.datetime.fromisoformat(text.replace(" ", "T", 1) if " " in text else text)
    except (ValueError, OverflowError) as exc:
        raise InvalidQueryError(
            parameter, f"{text[:SHOWN_CHARS]!r} is not an ISO 8601 time or epoch seconds/ms"
        ) from exc
    if parsed.tzinfo is not None:
        try:
            parsed = parsed.astimezone(dt.UTC).replace(tzinfo=None)
        except OverflowError as exc:  # 9999-12-31T23:59:59-01:00 is after year 9999 in UTC
            raise InvalidQueryError(
                parameter, f"{text[:SHOWN_CHARS]!r} is outside the years 1 to 9999 in UTC"
            ) from exc
    return parsed


class CursorCodec:
    """Opaque, tamper-evident keyset cursors bound to one query.

    A cursor carries the last position of a page (a timestamp, or a device id when listing
    devices) and a fingerprint of the query; an HMAC (keyed by ``IOTPIPE_CURSOR_SECRET``)
    makes any edit, or use with another query, fail.
    """

    def __init__(self, secret: str) -> None:
        self._key = hashlib.sha256(secret.encode()).digest()

    def encode(self, query: ReadingsQuery, after: dt.datetime) -> str:
        """Make the cursor that continues ``query`` after ``after``."""
        return self._sign({"a": after.isoformat(), "q": _fingerprint(query)})

    def decode(self, cursor: str, query: ReadingsQuery) -> dt.datetime:
        """Return the position a cursor stands for, after checking it belongs to ``query``.

        Raises
        ------
        InvalidQueryError
            For a malformed, tampered or foreign cursor.
        """
        payload = self._verify(cursor, _fingerprint(query))
        try:
            return dt.datetime.fromisoformat(payload["a"])
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidQueryError("cursor", "belongs to another query") from exc

    def encode_key(self, scope: str, after: str) -> str:
        """Make a cursor that continues a listing (``scope`` names it) after key ``after``."""
        return self._sign({"a": after, "q": _scope_print(scope)})

    def decode_key(self, cursor: str, scope: str) -> str:
        """Return the key a listing's cursor stands for, after checking its ``scope``."""
        after = self._verify(cursor, _scope_print(scope)).get("a")
        if not isinstance(after, str):
            raise InvalidQueryError("cursor", "belongs to another query")
        return after

    def _sign(self, payload: dict[str, Any]) -> str:
        body = json.dumps(payload).encode()
        mac = hmac.new(self._key, body, hashlib.sha256).digest()[:16]
        return f"{_b64(body)}.{_b64(mac)}"

    def _verify(self, cursor: str, fingerprint: str) -> dict[str, Any]:
        try:
            body_text, mac_text = cursor.split(".", 1)
            body, mac = _unb64(body_text), _unb64(mac_text)
        except (ValueError, binascii.Error) as exc:
            raise InvalidQueryError("cursor", "is malformed") from exc
        expected = hmac.new(self._key, body, hashlib.sha256).digest()[:16]
        if not hmac.compare_digest(mac, expected):
            raise InvalidQueryError("cursor", "is not valid (tampered with, or from elsewhere)")
        payload = json.loads(body)
        if not isinstance(payload, dict) or payload.get("q") != fingerprint:
            raise InvalidQueryError("cursor", "belongs to another query")
        return payload


def _scope_print(scope: str) -> str:
    return hashlib.sha256(("listing\n" + scope).encode()).hexdigest()[:24]


def _fingerprint(query: ReadingsQuery) -> str:
    text = "\n".join(
        [query.dataset, query.device_id, query.start.isoformat(), query.end.isoformat()]
    )
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def parse_query(
    params: Mapping[str, Any], *, default_dataset: str, store: Store, cursors: CursorCodec
) -> tuple[ReadingsQuery, DataContract]:
    """Validate raw parameters into a query and the dataset's contract.

    Parameters
    ----------
    params
        ``device_id``, ``start``, ``end`` and optional ``limit``, ``cursor``, ``dataset``.
    default_dataset
        The dataset when none is named.
    store
        Where registered datasets are looked up.
    cursors
        Verifies the cursor.

    Returns
    -------
    tuple
        The query and its dataset's contract.

    Raises
    ------
    InvalidQueryError
        Naming the first bad parameter.
    """
    device_id = params.get("device_id")
    if not isinstance(device_id, str) or not device_id.strip():
        raise InvalidQueryError("device_id", "is required")
    if len(device_id) > MAX_DEVICE_ID_LENGTH:  # before any lookup: no contract allows more
        raise InvalidQueryError("device_id", f"is longer than {MAX_DEVICE_ID_LENGTH} characters")
    start = parse_instant(params.get("start"), "start")
    end = parse_instant(params.get("end"), "end")
    if start > end:
        raise InvalidQueryError("start", "is after end")
    limit = _limit(params.get("limit"))
    contract = known_dataset(params.get("dataset"), default_dataset, store)
    dataset = contract.name
    if len(device_id) > contract.device_id_length:
        raise InvalidQueryError(
            "device_id", f"is longer than {contract.device_id_length} characters"
        )
    query = ReadingsQuery(device_id, start, end, limit, dataset)
    cursor = params.get("cursor")
    if cursor not in (None, ""):
        if not isinstance(cursor, str):
            raise InvalidQueryError("cursor", "must be a string")
        after = cursors.decode(cursor, query)
        query = ReadingsQuery(device_id, start, end, limit, dataset, after)
    return query, contract


def _limit(raw: Any, default: int = DEFAULT_LIMIT, most: int = MAX_LIMIT) -> int:
    if raw in (None, ""):
        return default
    try:
        limit = int(str(raw).strip())
    except ValueError as exc:
        raise InvalidQueryError("limit", f"must be an integer 1..{most}") from exc
    if not 1 <= limit <= most or isinstance(raw, bool | float):
        raise InvalidQueryError("limit", f"must be an integer 1..{most}")
    return limit


def parse_bucket(value: Any) -> int:
    """Parse a bucket width into seconds.

    ``1m``, ``5m``, ``15m``, ``1h``, ``6h``, ``1d`` (any ``<n>`` with ``s``, ``m``, ``h``,
    ``d`` or ``w``), or an ISO 8601 duration of fixed length (``PT1H``, ``P1D``, ``PT15M``).

    Returns
    -------
    int
        The width in seconds.

    Raises
    ------
    InvalidQueryError
        Naming ``bucket``: not a width, zero, or months and years (not fixed lengths).
    """
    text = str(value).strip() if isinstance(value, str | int) else ""
    seconds = 0
    if short := _SHORT_WIDTH.match(text.lower()):
        seconds = int(short[1]) * BUCKET_UNITS[short[2]]
    elif (iso := _ISO_WIDTH.match(text.upper())) and text.upper() not in ("P", "PT"):
        units = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}
        seconds = sum(int(iso[k] or 0) * n for k, n in units.items())
    else:
        raise InvalidQueryError(
            "bucket",
            f"{text[:SHOWN_CHARS]!r} is not a width such as 1m, 5m, 15m, 1h, 6h, 1d, PT1H or P1D "
            "(months and years have no fixed length)",
        )
    if seconds <= 0:
        raise InvalidQueryError("bucket", "must be longer than zero")
    return seconds


def check_bucket_count(query: ReadingsQuery, width_seconds: int) -> int:
    """Return how many buckets the range spans; more than `MAX_BUCKETS` is a 400."""
    width = dt.timedelta(seconds=width_seconds)
    first = (query.start - dt.datetime.min) // width
    last = (query.end - dt.datetime.min) // width
    spans = int(last - first) + 1
    if spans > MAX_BUCKETS:
        raise InvalidQueryError(
            "bucket",
            f"the range spans {spans:,} buckets of this width; at most {MAX_BUCKETS:,} "
            "(choose a wider bucket or a shorter range)",
        )
    return spans


def answer(
    params: Mapping[str, Any], *, default_dataset: str, store: Store, cursors: CursorCodec
) -> dict[str, Any]:
    """Validate raw parameters (`parse_query`) and run the query (`retrieve`).

    With a ``bucket`` width the body carries ``buckets`` (`retrieve_buckets`) and no rows.

    Returns
    -------
    dict
        The retrieval body.

    Raises
    ------
    InvalidQueryError
        Naming the first bad parameter.
    """
    bucket = params.get("bucket")
    width = None if bucket in (None, "") else parse_bucket(bucket)
    query, contract = parse_query(
        params, default_dataset=default_dataset, store=store, cursors=cursors
    )
    if width is not None:
        return retrieve_buckets(query, contract, store, str(bucket).strip(), width)
    return retrieve(query, contract, store, cursors)


def retrieve_buckets(
    query: ReadingsQuery, contract: DataContract, store: Store, label: str, width_seconds: int
) -> dict[str, Any]:
    """Run a bucketed query: the range's non-empty buckets, in one ``GROUP BY``.

    Returns
    -------
    dict
        ``{device_id, start, end, bucket, bucket_seconds, count, buckets}``; each bucket is
        ``{start, count, stats: {field: {count, mean, min, max}}}``, its start a UTC multiple
        of the width; ``count`` is the range's rows (the sum of the buckets').
    """
    check_bucket_count(query, width_seconds)
    buckets = store.buckets(contract, query, width_seconds)
    return {
        "device_id": query.device_id,
        "start": iso_z(query.start),
        "end": iso_z(query.end),
        "bucket": label,
        "bucket_seconds": width_seconds,
        "count": sum(b.count for b in buckets),
        "buckets": [{"start": iso_z(b.start), "count": b.count, "stats": b.stats} for b in buckets],
    }


# ------------------------------------------------------------------------------------------
# Browsing: datasets, devices, the category dictionary
# ------------------------------------------------------------------------------------------


def list_datasets(store: Store) -> dict[str, Any]:
    """Return ``{"datasets": [{name, table, fields: [{name, type}], first, last}]}``."""
    return {
        "datasets": [
            {
                "name": d.name,
                "table": d.table,
                "fields": [{"name": n, "type": t} for n, t in d.fields],
                "first": iso_z(d.first) if d.first else None,
                "last": iso_z(d.last) if d.last else None,
            }
            for d in store.list_datasets()
        ]
    }


def known_dataset(value: Any, default_dataset: str, store: Store) -> DataContract:
    """Return the contract of a named (else the default) dataset; a 400 when unknown."""
    dataset = value or default_dataset
    if not isinstance(dataset, str) or not IDENTIFIER.match(dataset):
        raise InvalidQueryError(
            "dataset", "must be a dataset name (a-z first, then a-z, 0-9 or _; 64 at most)"
        )
    contract = store.dataset(dataset)
    if contract is None:
        raise InvalidQueryError("dataset", f"unknown dataset {dataset!r}")
    return contract


def list_devices(
    params: Mapping[str, Any], *, default_dataset: str, store: Store, cursors: CursorCodec
) -> dict[str, Any]:
    """Return ``{"devices": [{device_id, first, last}], "next_cursor"}``: one page, by id.

    Parameters
    ----------
    params
        ``dataset``, ``prefix`` (ids starting with it), ``limit`` (1..1000, default 100) and
        ``cursor`` (from the previous page).
    """
    contract = known_dataset(params.get("dataset"), default_dataset, store)
    prefix = params.get("prefix") or ""
    if not isinstance(prefix, str) or len(prefix) > MAX_DEVICE_ID_LENGTH:
        raise InvalidQueryError("prefix", f"must be text of at most {MAX_DEVICE_ID_LENGTH}")
    limit = _limit(params.get("limit"), DEFAULT_DEVICES, MAX_DEVICES)
    scope = f"{contract.name}\n{prefix}"
    cursor = params.get("cursor")
    after = None
    if cursor not in (None, ""):
        if not isinstance(cursor, str):
            raise InvalidQueryError("cursor", "must be a string")
        after = cursors.decode_key(cursor, scope)
    page = store.list_devices(contract, prefix=prefix, after=after, limit=limit + 1)
    more = len(page) > limit
    page = page[:limit]
    return {
        "dataset": contract.name,
        "devices": [
            {"device_id": d.device_id, "first": iso_z(d.first), "last": iso_z(d.last)} for d in page
        ],
        "next_cursor": cursors.encode_key(scope, page[-1].device_id) if more else None,
    }


def category_dictionary(dataset: Any, *, default_dataset: str, store: Store) -> dict[str, Any]:
    """Return ``{"dataset", "categories": {field: {value: code}}, "onehot": {field: [...]}}``."""
    contract = known_dataset(dataset, default_dataset, store)
    stored = store.category_dictionary(contract.name)
    return {
        "dataset": contract.name,
        "categories": {f.name: stored.get(f.name, {}) for f in contract.categories},
        "onehot": {
            f.name: list(f.onehot_columns.values()) for f in contract.categories if f.onehot_columns
        },
    }


def retrieve(
    query: ReadingsQuery, contract: DataContract, store: Store, cursors: CursorCodec
) -> dict[str, Any]:
    """Run a validated query and build the response body.

    Parameters
    ----------
    query
        The validated query.
    contract
        Its dataset's contract.
    store
        The store.
    cursors
        Makes the next cursor.

    Returns
    -------
    dict
        The JSON-ready body; rows carry ``timestamp`` (ISO 8601 Z) and each field.
    """
    count, stats = store.count_and_stats(contract, query)
    raw_rows = store.page(contract, query, query.limit + 1)  # one more tells "there is more"
    rows = _json_rows(raw_rows[: query.limit], contract)
    if len(json.dumps(rows)) > MAX_ROWS_BYTES:  # one encoding tells; only then row by row
        rows = _cut_by_bytes(rows)
    last: dt.datetime | None = raw_rows[len(rows) - 1][TS] if rows else None
    more = len(rows) < len(raw_rows)
    return {
        "device_id": query.device_id,
        "start": iso_z(query.start),
        "end": iso_z(query.end),
        "count": count,
        "rows": rows,
        "stats": {name: s.to_dict() for name, s in stats.items()},
        "next_cursor": cursors.encode(query, last) if more and last is not None else None,
    }


def _cut_by_bytes(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return the first rows whose JSON stays within `MAX_ROWS_BYTES` (at least one)."""
    size = 0
    for n, row in enumerate(rows):
        size += len(json.dumps(row)) + 1
        if n and size > MAX_ROWS_BYTES:
            return rows[:n]  # the cursor continues from the last row sent
    return rows


def _json_rows(raws: list[dict[str, Any]], contract: DataContract) -> list[dict[str, Any]]:
    """Return the rows as JSON values: ``timestamp`` first, times ISO 8601 Z, NaN/inf null.

    Only the columns whose type can hold such values are looked at (one pass per row).
    """
    times = [f.name for f in contract.fields if f.type == "datetime"]
    floats = [f.name for f in contract.fields if f.type in ("number", "integer")]
    rows = []
    for raw in raws:
        row = {ROW_KEY_TIME: iso_z(raw[TS]), **raw}
        del row[TS]
        for name in times:
            if row[name] is not None:
                row[name] = iso_z(row[name])
        for name in floats:
            value = row[name]
            if value is not None and not math.isfinite(value):
                row[name] = None
        rows.append(row)
    return rows
