"""NDJSON: one JSON object per line; slots are top-level keys or dotted paths into objects."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator, Sequence
from typing import Any

from iotpipe.contract import DataContract, Slot
from iotpipe.errors import MissingColumnError
from iotpipe.model import RejectedRow
from iotpipe.readers.batch import MALFORMED_JSON, ReaderState, RecordBatch
from iotpipe.readers.streams import text_stream

TEXT_SAMPLE = 1000  # a record too deep to read is kept this long in the rejects file


def ndjson_batches(
    buffered: io.BufferedReader,
    contract: DataContract,
    batch_rows: int,
    batch_bytes: int,
    state: ReaderState,
) -> Iterator[RecordBatch]:
    """Yield the batches of an NDJSON source (see `iotpipe.readers.open_records`)."""
    slots = contract.slots
    paths = [[tuple(source.split(".")) for source in slot.sources] for slot in slots]
    roots = {source.split(".")[0] for slot in slots for source in slot.sources}
    seen = {slot.name: False for slot in slots}
    known: set[str] = set()  # top-level keys listed in state.columns
    values: list[list[str | None]] = [[] for _ in slots]
    nested: list[list[bool]] = [[] for _ in slots]
    lines: list[str] = []
    starts: list[int] = []
    rejected: list[RejectedRow] = []
    nbytes = 0
    first_batch = True
    for line_no, line in enumerate(text_stream(buffered), start=1):
        stripped = line.strip()
        if not stripped:
            continue
        record = _object(line_no, stripped)
        if isinstance(record, RejectedRow):
            rejected.append(record)
            continue
        if first_batch:
            state.unknown.update(k for k in record if k not in roots)
            state.columns.extend(k for k in record if k not in known)
            known.update(record)
        for i, slot_paths in enumerate(paths):
            value = _lookup(record, slot_paths)
            if value is not None:
                seen[slots[i].name] = True
            values[i].append(None if value is None else scalar_text(value))
            nested[i].append(isinstance(value, dict | list))
        lines.append(stripped)
        starts.append(line_no)
        nbytes += len(stripped)
        if len(lines) >= batch_rows or nbytes >= batch_bytes:
            if first_batch:
                _check_seen(slots, seen, state)
                first_batch = False
            yield _batch(slots, values, nested, starts, lines, rejected)
            values, nested = [[] for _ in slots], [[] for _ in slots]
            lines, starts, rejected, nbytes = [], [], [], 0
    if first_batch:
        _check_seen(slots, seen, state, any_records=bool(lines))
    if lines or rejected:
        yield _batch(slots, values, nested, starts, lines, rejected)


def _object(line_no: int, text: str) -> dict[str, Any] | RejectedRow:
    """Parse one line: a JSON object, or the reason it is not one."""
    try:
        record = json.loads(text)
    except ValueError as exc:
        return RejectedRow(line_no, MALFORMED_JSON, f"invalid JSON: {exc}", text)
    except RecursionError:
        detail = "invalid JSON: nested too deeply to read"
        return RejectedRow(line_no, MALFORMED_JSON, detail, text[:TEXT_SAMPLE])
    if not isinstance(record, dict):
        return RejectedRow(
            line_no, MALFORMED_JSON, f"a JSON {type(record).__name__}, not an object", text
        )
    return record


def scalar_text(value: Any) -> str:
    """Render a JSON value as the text a CSV cell would hold (objects and arrays as JSON).

    Parameters
    ----------
    value
        A decoded JSON value (not None).

    Returns
    -------
    str
        ``true``/``false`` for booleans, ``repr`` for floats (every digit), else ``str``.
    """
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return str(value)


def _check_seen(
    slots: list[Slot], seen: dict[str, bool], state: ReaderState, any_records: bool = True
) -> None:
    # JSON is sparse: a key absent from one record is a missing value. A required key that
    # no record of the first batch has at all means the contract does not fit the file.
    if not any_records:
        return
    missing = [s.describe() for s in slots if s.required and not seen[s.name]]
    if missing:
        raise MissingColumnError(missing, state.columns)
    state.absent.update(s.name for s in slots if not seen[s.name])


def _batch(  # noqa: PLR0917 (private; the batch's parts)
    slots: list[Slot],
    values: list[list[str | None]],
    nested: list[list[bool]],
    starts: list[int],
    lines: list[str],
    rejected: list[RejectedRow],
) -> RecordBatch:
    columns: dict[str, Sequence[str | None]] = {s.name: values[i] for i, s in enumerate(slots)}
    marks = {s.name: nested[i] for i, s in enumerate(slots) if any(nested[i])}
    return RecordBatch(starts, columns, lines, rejected, nested=marks)


def _lookup(record: dict[str, Any], paths: list[tuple[str, ...]]) -> Any:
    """Return the first value found at one of the paths (None when there is none)."""
    for path in paths:
        node: Any = record
        for key in path:
            if not isinstance(node, dict):
                node = None
                break
            node = node.get(key)
            if node is None:
                break
        if node is not None:
            return node
    return None
