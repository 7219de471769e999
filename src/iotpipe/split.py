"""Split a delimited or NDJSON file into parts that each load within one invocation.

A file is loaded in one transaction, so one that cannot be read within a Lambda's time fails
with `FileTooLongError`, which names a part size. `split_file` cuts the file at record
boundaries - never inside a quoted field, even one holding line breaks - and writes each part
with the original header line (and byte-order mark), gzip-compressed when the source was.
The bytes of every record are copied unchanged: the parts' rows are the file's rows.

A line end is a record boundary when the quote characters before it pair up (RFC 4180: a
quote inside a quoted field is doubled), so the scan only counts quote bytes.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from iotpipe.errors import IotpipeError
from iotpipe.readers.streams import BOMS, GZIP_MAGIC, PARQUET_MAGIC

CHUNK_BYTES = 4 << 20


@dataclass
class SplitResult:
    """The parts written, in order, with their (uncompressed) sizes and record counts."""

    parts: list[Path] = field(default_factory=list)
    part_bytes: list[int] = field(default_factory=list)
    records: list[int] = field(default_factory=list)


def parse_size(text: str) -> int:
    """Parse ``500MB``, ``2GB``, ``750k`` or plain bytes.

    Raises
    ------
    IotpipeError
        Not a size.
    """
    units = {"": 1, "b": 1, "k": 1_000, "kb": 1_000, "m": 10**6, "mb": 10**6, "g": 10**9}
    units["gb"] = 10**9
    value = text.strip().lower()
    number = value.rstrip("bkmg")
    try:
        size = int(float(number) * units[value[len(number) :]])
    except (KeyError, ValueError):
        raise IotpipeError(f"not a size: {text!r} (e.g. 500MB, 2GB)") from None
    if size <= 0:
        raise IotpipeError(f"a part size must be positive: {text!r}")
    return size


def split_file(  # noqa: PLR0913 (the command's options)
    source: Path,
    out_dir: Path,
    *,
    max_rows: int | None = None,
    max_bytes: int | None = None,
    quote: bytes = b'"',
    header: bool = True,
) -> SplitResult:
    """Write ``source`` as parts of at most ``max_rows`` records or ``max_bytes`` bytes each.

    Parameters
    ----------
    source
        A CSV (any delimiter) or NDJSON file, gzip or not, in an ASCII-compatible encoding.
    out_dir
        Where the parts go (``<name>.part-0001.csv[.gz]``...).
    max_rows, max_bytes
        A part ends when it holds this many records, or this many (uncompressed) bytes of
        records; at least one must be given.
    quote
        The quote character (a contract's ``dialect.quotechar``); empty for none.
    header
        Whether the first record is a header to repeat in every part.

    Returns
    -------
    SplitResult
        The parts.

    Raises
    ------
    IotpipeError
        No limit, Parquet (split it by row groups with a Parquet tool), a UTF-16/32 file, or
        a file that ends inside a quoted field.
    """
    if not max_rows and not max_bytes:
        raise IotpipeError("split needs a part size: rows or bytes")
    with source.open("rb") as raw:
        head = raw.read(4)
    if head.startswith(PARQUET_MAGIC):
        raise IotpipeError("a Parquet file is split by its row groups, not by iotpipe split")
    compressed = head.startswith(GZIP_MAGIC)
    name, suffix = _name_parts(source.name)
    out_dir.mkdir(parents=True, exist_ok=True)
    result = SplitResult()
    opener = gzip.open if compressed else open
    with opener(source, "rb") as stream:
        first = stream.peek(4)[:4] if hasattr(stream, "peek") else b""
        if any(first.startswith(bom) for bom, _ in BOMS):
            raise IotpipeError("split reads ASCII-compatible text; this file is UTF-16/32")
        records = _records(stream.read, quote)
        header_bytes = next(records, b"") if header else b""
        part: _Part | None = None
        for record in records:
            # Blank lines stay with the part before them: a part of only blank lines would
            # be a file with no data rows.
            if part is None or (part.full(max_rows, max_bytes) and record.strip()):
                if part is not None:
                    part.close(result)
                path = out_dir / f"{name}.part-{len(result.parts) + 1:04d}{suffix}"
                part = _Part(path, compressed, header_bytes)
            part.add(record)
        if part is not None:
            part.close(result)
    return result


def _name_parts(filename: str) -> tuple[str, str]:
    """``big.csv.gz`` -> (``big``, ``.csv.gz``)."""
    stem, dot, rest = filename.partition(".")
    return stem, f"{dot}{rest}"


class _Part:
    """One part being written: the header, then whole records."""

    def __init__(self, path: Path, compressed: bool, header: bytes) -> None:
        self.path = path
        # Closed by close(): a part stays open across many add() calls.
        self._out = gzip.open(path, "wb") if compressed else path.open("wb")  # noqa: SIM115
        self._out.write(header)
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self.size = len(header)
        self.rows = 0

    def full(self, max_rows: int | None, max_bytes: int | None) -> bool:
        return bool(
            (max_rows and self.rows >= max_rows)
            or (max_bytes and self.size >= max_bytes and self.rows)
        )

    def add(self, record: bytes) -> None:
        self._pending.append(record)
        self._pending_bytes += len(record)
        self.size += len(record)
        self.rows += 1
        if self._pending_bytes >= CHUNK_BYTES:
            self._flush()

    def close(self, result: SplitResult) -> None:
        self._flush()
        self._out.close()
        result.parts.append(self.path)
        result.part_bytes.append(self.size)
        result.records.append(self.rows)

    def _flush(self) -> None:
        self._out.write(b"".join(self._pending))
        self._pending.clear()
        self._pending_bytes = 0


def _records(read: Callable[[int], bytes], quote: bytes) -> Iterator[bytes]:
    """Yield each record's bytes (with its line end); a line end inside quotes is data."""
    buffer, pos, eof = b"", 0, False
    while True:
        search, odd = pos, False
        while True:
            end = buffer.find(b"\n", search)
            if end < 0:
                if eof:
                    if odd or (quote and buffer.count(quote, search) % 2):
                        raise IotpipeError("the file ends inside a quoted field")
                    if pos < len(buffer):
                        yield buffer[pos:]
                    return
                chunk = read(CHUNK_BYTES)
                eof = not chunk
                buffer, search, pos = buffer[pos:] + chunk, search - pos, 0
                continue
            if quote:
                odd ^= buffer.count(quote, search, end) % 2 == 1
            search = end + 1
            if not odd:
                yield buffer[pos:search]
                pos = search
                break
