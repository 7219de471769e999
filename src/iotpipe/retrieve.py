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

    A cursor carries the last timestamp of a page and a fingerprint of the query; an HMAC
    (keyed by ``IOTPIPE_CURSOR_SECRET``) makes any edit, or use with another query, fail.
    """

    def __init__(self, secret: str) -> None:
        self._key = hashlib.sha256(secret.encode()).digest()

    def encode(self, query: ReadingsQuery, after: dt.datetime) -> str:
        """Make the cursor that continues ``query`` after ``after``."""
        body = json.dumps({"a": after.isoformat(), "q": _fingerprint(query)}).encode()
        mac = hmac.new(self._key, body, hashlib.sha256).digest()[:16]
        return f"{_b64(body)}.{_b64(mac)}"

    def decode(self, cursor: str, query: ReadingsQuery) -> dt.datetime:
        """Return the position a cursor stands for, after checking it belongs to ``query``.

        Raises
        ------
        InvalidQueryError
            For a malformed, tampered or foreign cursor.
        """
        try:
            body_text, mac_text = cursor.split(".", 1)
            body, mac = _unb64(body_text), _unb64(mac_text)
        except (ValueError, binascii.Error) as exc:
            raise InvalidQueryError("cursor", "is malformed") from exc
        expected = hmac.new(self._key, body, hashlib.sha256).digest()[:16]
        if not hmac.compare_digest(mac, expected):
            raise InvalidQueryError("cursor", "is not valid (tampered with, or from elsewhere)")
        payload = json.loads(body)
        if payload.get("q") != _fingerprint(query):
            raise InvalidQueryError("cursor", "belongs to another query")
        return dt.datetime.fromisoformat(payload["a"])


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
    dataset = params.get("dataset") or default_dataset
    if not isinstance(dataset, str) or not IDENTIFIER.match(dataset):
        raise InvalidQueryError(
            "dataset", "must be a dataset name (a-z first, then a-z, 0-9 or _; 64 at most)"
        )
    contract = store.dataset(dataset)
    if contract is None:
        raise InvalidQueryError("dataset", f"unknown dataset {dataset!r}")
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


def _limit(raw: Any) -> int:
    if raw in (None, ""):
        return DEFAULT_LIMIT
    try:
        limit = int(str(raw).strip())
    except ValueError as exc:
        raise InvalidQueryError("limit", f"must be an integer 1..{MAX_LIMIT}") from exc
    if not 1 <= limit <= MAX_LIMIT or isinstance(raw, bool | float):
        raise InvalidQueryError("limit", f"must be an integer 1..{MAX_LIMIT}")
    return limit


def answer(
    params: Mapping[str, Any], *, default_dataset: str, store: Store, cursors: CursorCodec
) -> dict[str, Any]:
    """Validate raw parameters (`parse_query`) and run the query (`retrieve`).

    Returns
    -------
    dict
        The retrieval body.

    Raises
    ------
    InvalidQueryError
        Naming the first bad parameter.
    """
    query, contract = parse_query(
        params, default_dataset=default_dataset, store=store, cursors=cursors
    )
    return retrieve(query, contract, store, cursors)


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
