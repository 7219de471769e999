"""CSV (any single-character delimiter): the header, the delimiter sniffer, and two parsers.

The source is UTF-8 by now (`iotpipe.readers.streams.utf8_text`). Chunks of simple records go
through Polars (`iotpipe.readers.fastcsv`); anything else (odd quoting, multi-line records,
bare CRs, multi-byte delimiters) through the csv module. Both give the same values, line
numbers and rejects; the tests compare them.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import IO, Any

from iotpipe.contract import DataContract
from iotpipe.errors import SourceFormatError
from iotpipe.model import RejectedRow
from iotpipe.readers.batch import MALFORMED_ROW, ReaderState, RecordBatch, resolve_slots
from iotpipe.readers.fastcsv import ParsedChunk, RecordChunks, parse_chunk, regularly_quoted
from iotpipe.readers.streams import SNIFF_BYTES, UTF8_BOM, chained, text_stream

SNIFF_DELIMITERS = ",;\t|"
SNIFF_LINES = 50
CONSISTENT_SHARE = 0.9  # lines that must split alike for a space to be the delimiter
# The csv module refuses a field over 128 KiB; Polars takes any. Lines over the contract's
# max_record_bytes are cut out before either parser sees them, so the csv module may take as
# much as Polars does (else the same file would read differently on the two paths).
csv.field_size_limit(max(csv.field_size_limit(), 2**31 - 1))


@dataclass(frozen=True)
class _CsvLayout:
    delimiter: str
    quotechar: str
    width: int
    resolved: dict[str, int]  # slot -> column index


def csv_batches(
    buffered: io.BufferedReader,
    contract: DataContract,
    batch_rows: int,
    batch_bytes: int,
    state: ReaderState,
    *,
    fast: bool = True,
) -> Iterator[RecordBatch]:
    """Yield the batches of a CSV source (see `iotpipe.readers.open_records`)."""
    dialect = contract.dialect
    # The head, read to a line end, is enough to sniff the delimiter and find the header.
    head = (buffered.read(SNIFF_BYTES) + buffered.readline()).removeprefix(UTF8_BOM)
    head_text = head.decode("utf-8", errors="replace")
    delimiter = dialect.delimiter or sniff_delimiter(head_text)
    if dialect.header:
        header, header_lines = _header_of(head_text, delimiter, dialect.quotechar)
    else:
        header, header_lines = list(dialect.columns or ()), 0
    resolved = _resolve_header(contract, header, state)
    eligible = fast and len(delimiter.encode()) == 1 and len(dialect.quotechar.encode()) == 1
    layout = _CsvLayout(delimiter, dialect.quotechar, len(header), resolved)
    data = _after_lines(head, header_lines)
    if eligible:
        yield from _fast_batches(layout, data, buffered, header_lines + 1, batch_rows, batch_bytes)
        return
    text = text_stream(chained(data, buffered))
    yield from _python_batches(layout, text, header_lines, batch_rows, batch_bytes)


def sniff_delimiter(sample: str) -> str:
    """Guess the CSV delimiter from a sample of whole lines.

    Parameters
    ----------
    sample
        The first lines of the file.

    Returns
    -------
    str
        The delimiter among ``, ; TAB |`` that splits the lines most consistently; a single
        space when none of those splits nine lines in ten alike but spaces do (loggers that
        write ``date time id value ...``); else ``,``.
    """
    # Judge each candidate by how many lines split into as many fields as the first (the
    # header) does; ties go to the candidate that splits the first line most. The stdlib
    # Sniffer (which understands quoting) decides when no candidate is on the first line.
    lines = [line for line in sample.splitlines()[:SNIFF_LINES] if line.strip()]
    best, best_score = "", (0.0, 0)
    for candidate in SNIFF_DELIMITERS:
        first = lines[0].count(candidate) if lines else 0
        if first == 0:
            continue
        share = sum(line.count(candidate) == first for line in lines) / len(lines)
        if (share, first) > best_score:
            best, best_score = candidate, (share, first)
    spaces = lines[0].count(" ") if lines else 0
    if spaces and best_score[0] < CONSISTENT_SHARE:
        share = sum(line.count(" ") == spaces for line in lines) / len(lines)
        if share >= CONSISTENT_SHARE:
            return " "
    if best:
        return best
    try:
        return csv.Sniffer().sniff(sample, delimiters=SNIFF_DELIMITERS).delimiter
    except csv.Error:
        return ","


def _header_of(head_text: str, delimiter: str, quotechar: str) -> tuple[list[str], int]:
    reader = csv.reader(
        io.StringIO(head_text, newline=""), delimiter=delimiter, quotechar=quotechar
    )
    for _, row, error in _records(reader):
        if row is None:
            raise SourceFormatError(f"the CSV header cannot be parsed: {error}")
        row[0] = row[0].removeprefix("\ufeff")
        return row, reader.line_num
    raise SourceFormatError("the CSV has no header row")


def _after_lines(head: bytes, lines: int) -> bytes:
    """Drop the first ``lines`` physical lines (the header and any blank lines before it)."""
    position = 0
    for _ in range(lines):
        found = head.find(b"\n", position)
        if found == -1:
            return b""
        position = found + 1
    return head[position:]


def _resolve_header(
    contract: DataContract, header: list[str], state: ReaderState
) -> dict[str, int]:
    resolved = resolve_slots(contract.slots, header)
    state.columns.extend(h.strip() for h in header)
    used = set(resolved.values())
    # Unnamed columns (a trailing delimiter on every line) are no one's data.
    state.unknown.update(h.strip() for i, h in enumerate(header) if i not in used and h.strip())
    state.absent.update(s.name for s in contract.slots if s.name not in resolved)
    return resolved


def _fast_batches(  # noqa: PLR0917 (private; the reader's inputs)
    layout: _CsvLayout,
    data: bytes,
    buffered: io.BufferedReader,
    first_line: int,
    batch_rows: int,
    batch_bytes: int,
) -> Iterator[RecordBatch]:
    line = first_line
    chunks = RecordChunks(data, buffered, layout.quotechar.encode())
    for chunk in chunks:
        parsed = parse_chunk(
            chunk,
            line,
            delimiter=layout.delimiter,
            quotechar=layout.quotechar,
            width=layout.width,
        )
        if parsed is not None:
            yield from _frame_batches(parsed, layout, batch_rows)
            line += parsed.newlines  # parse_chunk takes no chunk with a bare CR
        elif regularly_quoted(chunk, layout.delimiter, layout.quotechar):
            # Not simple enough for Polars (a bare CR, say), but it ends where a record does:
            # the csv module reads it alone, with the same results.
            alone = io.StringIO(chunk.decode(errors="replace"), newline="")
            yield from _python_batches(layout, alone, line - 1, batch_rows, len(chunk) + 1)
            # Lines end at LF, CRLF or a bare CR (a CR inside a quoted field, say), as for
            # the csv module: the next chunk's first line number counts them all.
            line += chunk.count(b"\n") + chunk.count(b"\r") - chunk.count(b"\r\n")
        else:
            # A quote inside an unquoted field misleads the cut: this chunk may end inside a
            # record. The csv module reads from its start to the end of the file.
            rest = text_stream(chained(chunk + chunks.rest(), buffered))
            yield from _python_batches(layout, rest, line - 1, batch_rows, batch_bytes)
            return


def _frame_batches(
    parsed: ParsedChunk, layout: _CsvLayout, batch_rows: int
) -> Iterator[RecordBatch]:
    width, resolved = layout.width, layout.resolved
    rejected = [
        RejectedRow(line, MALFORMED_ROW, f"expected {width} fields, found {len(fields)}", raw)
        for line, fields, raw in parsed.ragged
    ]
    rows = parsed.rows
    if rows.height == 0:
        if rejected:
            yield RecordBatch([], {slot: () for slot in resolved}, [], rejected)
        return
    previous_high = -1
    for offset in range(0, rows.height, batch_rows):
        part = rows.slice(offset, batch_rows)
        lines = part.get_column("__line")
        last = offset + batch_rows >= rows.height
        high = lines[-1]
        # Each ragged row travels with the batch whose line range it falls in.
        mine = [r for r in rejected if r.line > previous_high and (last or r.line <= high)]
        previous_high = high
        yield RecordBatch(
            lines,
            {slot: part.get_column(f"c{index}") for slot, index in resolved.items()},
            parsed.records(part),
            mine,
            replacement_free=parsed.replacement_free,
        )


def _python_batches(
    layout: _CsvLayout, text: IO[str], line_offset: int, batch_rows: int, batch_bytes: int
) -> Iterator[RecordBatch]:
    """Parse with the csv module (any quoting, multi-line records); lines after ``line_offset``."""
    width, resolved = layout.width, layout.resolved
    reader = csv.reader(text, delimiter=layout.delimiter, quotechar=layout.quotechar, strict=False)
    render = _renderer(layout.delimiter, layout.quotechar)
    rows: list[list[str]] = []
    records: list[list[str]] = []
    starts: list[int] = []
    rejected: list[RejectedRow] = []
    nbytes = 0
    for record_line, record, error in _records(reader):
        start = record_line + line_offset
        if record is None:
            rejected.append(RejectedRow(start, MALFORMED_ROW, error, ""))
            continue
        if len(record) != width and (len(record) < width or any(v.strip() for v in record[width:])):
            detail = f"expected {width} fields, found {len(record)}"
            rejected.append(RejectedRow(start, MALFORMED_ROW, detail, render(record)))
            continue
        row = record[:width]  # trailing empty fields (a trailing delimiter) are harmless
        records.append(record)  # as the file has it, for the rejects file
        rows.append(row)
        starts.append(start)
        nbytes += sum(map(len, row))
        if len(rows) >= batch_rows or nbytes >= batch_bytes:
            yield _batch(rows, records, starts, rejected, resolved, render)
            rows, records, starts, rejected, nbytes = [], [], [], [], 0
    if rows or rejected:
        yield _batch(rows, records, starts, rejected, resolved, render)


def _records(reader: Any) -> Iterator[tuple[int, list[str] | None, str]]:
    """Yield ``(start line, fields, "")`` per non-blank record, or ``(start, None, error)``.

    A record is blank when every field is empty or whitespace: an empty line, or a line of
    nothing but delimiters (what spreadsheets export below the data).
    """
    line_no = reader.line_num
    while True:
        start = line_no + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            if reader.line_num == line_no:  # no progress: the stream itself is broken
                raise SourceFormatError(f"CSV parse error at line {start}: {exc}") from exc
            line_no = reader.line_num
            yield start, None, f"CSV error: {exc}"
            continue
        line_no = reader.line_num
        if any(v.strip() for v in row):  # a record of empty fields (";;;;") is a blank line
            yield start, row, ""


def _batch(  # noqa: PLR0917 (private; the batch's parts)
    rows: list[list[str]],
    records: list[list[str]],
    starts: list[int],
    rejected: list[RejectedRow],
    resolved: dict[str, int],
    render: Any,
) -> RecordBatch:
    transposed = list(zip(*rows, strict=True)) if rows else []
    columns: dict[str, Sequence[str | None]] = {
        slot: (transposed[index] if transposed else ()) for slot, index in resolved.items()
    }
    return RecordBatch(starts, columns, records, rejected, render)


def _renderer(delimiter: str, quotechar: str) -> Any:
    def render(row: list[str]) -> str:
        # The terminator decides what gets quoted: with "\r\n" a field holding either a CR
        # or a LF is quoted, so the record parses back to the same fields; then it is dropped.
        out = io.StringIO()
        csv.writer(out, delimiter=delimiter, quotechar=quotechar, lineterminator="\r\n").writerow(
            row
        )
        return out.getvalue().removesuffix("\r\n")

    return render
