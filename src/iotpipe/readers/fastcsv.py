"""Vectorised CSV reading: cut a byte stream at record boundaries, parse each chunk with Polars.

The csv module costs a Python object per field; Polars parses a chunk in native code. Polars
cannot report ragged rows or line numbers, though, so each chunk is first split into lines and
records with vectorised string operations (quote parity joins the lines of a record with a
quoted newline), field counts are checked, and only then are the well-formed records parsed.
A chunk that is not that simple (a stray quote, an unterminated quoted field, a bare CR)
returns None, and the caller parses it with the csv module instead, with identical results
(from that chunk to the end of the file when a stray quote may have misplaced its end).
"""

from __future__ import annotations

import csv
import functools
import io
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import polars as pl

CHUNK_BYTES = 8 * 1024 * 1024
# The first chunks are smaller, so the first batch reaches the database sooner (it idles
# until then); each is CHUNK_GROWTH times the one before, up to CHUNK_BYTES. The client
# prepares a megabyte only a little faster than the server loads it, and each batch costs it
# about 20 ms besides its rows, so a batch much larger than what the server already has
# keeps it waiting: growing by a quarter from 1 MB (20 batches per 113 MB), the server's
# wait for its batches fell by about 0.1 s per million rows against doubling from 512 KB
# (docs/benchmarks.md, twenty-first round). A file under 1 MB is one batch.
FIRST_CHUNK_BYTES = 1024 * 1024
CHUNK_GROWTH = 1.25
MAX_PENDING_BYTES = 64 * 1024 * 1024
MAX_BOUNDARY_PROBES = 1000


@dataclass
class ParsedChunk:
    """A chunk's well-formed rows (with line numbers and raw text) and its ragged rows."""

    rows: pl.DataFrame  # columns c0..c{width-1}, __line (Int64); __raw (String) unless `lines`
    ragged: list[tuple[int, list[str], str]]  # (line, fields, raw line)
    lines: ChunkLines | None = None  # the texts, when each row is one line of the chunk
    replacement_free: bool = False  # no U+FFFD anywhere in the chunk's text
    newlines: int = 0  # LFs in the chunk (counted once: the next chunk's first line number)

    def records(self, part: pl.DataFrame) -> Sequence[object] | pl.Series:
        """Return the original text of each row of ``part`` (a slice of `rows`): the rejects'."""
        if self.lines is None:
            return part.get_column("__raw")
        return _LineTexts(self.lines, part.get_column("__line"))


class ChunkLines:
    """A chunk's lines by line number, split only when a record's text is asked for.

    ``data`` is valid UTF-8: only the lines asked for are decoded.
    """

    def __init__(self, data: bytes, first_line: int) -> None:
        self._data = data
        self._first = first_line
        self._lines: list[bytes] | None = None

    def __getitem__(self, line: int) -> str:
        if self._lines is None:
            self._lines = self._data.split(b"\n")
        return self._lines[line - self._first].removesuffix(b"\r").decode()


class _LineTexts(Sequence[str]):
    """The texts of some lines of a chunk, in the order of their line numbers given."""

    def __init__(self, lines: ChunkLines, numbers: pl.Series) -> None:
        self._lines = lines
        self._numbers = numbers

    def __len__(self) -> int:
        return self._numbers.len()

    def __getitem__(self, index: int) -> str:  # type: ignore[override] # no slices needed
        return self._lines[int(self._numbers[index])]

    def texts(self, indices: Sequence[int]) -> list[str]:
        """Return the texts at ``indices`` (`iotpipe.readers.batch.BulkTexts`)."""
        return [self._lines[n] for n in self._numbers.gather(list(indices)).to_list()]


class RecordChunks:
    """Consecutive pieces of ``head`` + ``stream`` that end at record boundaries.

    A newline ends a record when an even number of quote characters precedes it in the piece
    (RFC 4180 quoting doubles quotes inside fields, which keeps the parity). That count is
    exact only where quotes stand around fields: a quote inside an unquoted field (``5"``) is
    text to the csv module but flips the parity, so a piece the fast parser refuses may end
    inside a record (`regularly_quoted` tells). Its reader then takes the piece and `rest`
    and parses them as one with the csv module. A piece that finds no boundary within
    `MAX_PENDING_BYTES` is yielded whole (its quoting is irregular then, too).

    Parameters
    ----------
    head
        Bytes already read (starting at a record boundary).
    stream
        The rest of the source.
    quote
        The quote character, encoded.
    """

    def __init__(self, head: bytes, stream: io.BufferedReader, quote: bytes) -> None:
        self._pending = head
        self._stream = stream
        self._quote = quote

    def __iter__(self) -> Iterator[bytes]:
        """Yield the pieces, in order; together they are the whole input."""
        size = FIRST_CHUNK_BYTES
        while True:
            block = self._stream.read(size)
            size = min(int(CHUNK_GROWTH * size), CHUNK_BYTES)
            if not block:
                if self._pending:
                    piece, self._pending = self._pending, b""
                    yield piece
                return
            # Usually the block's last newline ends a record: the piece is then copied once,
            # not joined to what was pending and cut again (each a copy of the whole).
            end = block.rfind(b"\n")
            if end != -1:
                quotes = self._pending.count(self._quote) + block.count(self._quote, 0, end)
                if quotes % 2 == 0:
                    piece = b"".join((self._pending, memoryview(block)[: end + 1]))
                    self._pending = block[end + 1 :]
                    yield piece
                    continue
            self._pending += block
            cut = _boundary(self._pending, self._quote)
            if cut is None:
                if len(self._pending) >= MAX_PENDING_BYTES:
                    piece, self._pending = self._pending, b""
                    yield piece
                continue
            piece, self._pending = self._pending[:cut], self._pending[cut:]
            yield piece

    def rest(self) -> bytes:
        """Return the bytes read but not yet yielded (the stream holds the others)."""
        return self._pending


def _boundary(buffer: bytes, quote: bytes) -> int | None:
    end = buffer.rfind(b"\n")
    if end == -1:
        return None
    quotes = buffer.count(quote, 0, end)
    for _ in range(MAX_BOUNDARY_PROBES):
        if quotes % 2 == 0:
            return end + 1
        previous = buffer.rfind(b"\n", 0, end)
        if previous == -1:
            return None
        quotes -= buffer.count(quote, previous, end)
        end = previous
    return None


def parse_chunk(
    chunk: bytes,
    first_line: int,
    *,
    delimiter: str,
    quotechar: str,
    width: int,
) -> ParsedChunk | None:
    """Parse a chunk of whole records with Polars, or return None when it is not simple.

    Parameters
    ----------
    chunk
        Bytes that start and end at record boundaries.
    first_line
        The line number of the chunk's first line.
    delimiter, quotechar
        The dialect (single ASCII characters).
    width
        Fields per record (the header's).

    Returns
    -------
    ParsedChunk or None
        None when a quoted field is unterminated, quoting is irregular, or the chunk has a
        bare CR.
    """
    newlines = chunk.count(b"\n")
    try:  # valid UTF-8 (checked by Polars, which copies the text once, not thrice)
        whole = _text_series(chunk)
    except pl.exceptions.ComputeError:
        text = chunk.decode(errors="replace")
    else:
        layout = (delimiter, quotechar, width)
        simple = _one_record_per_line(chunk, whole, first_line, newlines, *layout)
        if simple is not None:
            return simple
        text = chunk.decode()
    has_cr = b"\r" in chunk
    if has_cr and chunk.count(b"\r") != chunk.count(b"\r\n"):
        return None  # the csv module treats a bare CR as a line end
    if text.endswith("\n"):
        text = text[:-1]
    lines = (
        pl.DataFrame({"__raw": _text_series(text).str.split("\n").head(1).explode()})
        .with_row_index("__line", offset=first_line)
        .with_columns(
            pl.col("__line").cast(pl.Int64),
            pl.col("__raw").str.count_matches(quotechar, literal=True).alias("__q"),
        )
    )
    parity = lines.select(
        (pl.col("__q").sum() % 2).alias("total"), ((pl.col("__q") % 2) == 1).any().alias("odd")
    ).row(0)
    if parity[0]:
        return None  # an unterminated quoted field: the csv module decides what it means
    if parity[1]:
        # A quoted newline: a line whose preceding quotes are odd continues the record above.
        # Only the few records that span lines go through the (costly) group-by.
        before = pl.col("__q").cum_sum() - pl.col("__q")
        lines = lines.with_columns(((before % 2) == 0).cum_sum().alias("__record"))
        spans = pl.col("__record").is_duplicated()
        joined = (
            lines.filter(spans)
            .group_by("__record", maintain_order=True)
            .agg(pl.col("__line").first(), pl.col("__raw").str.join("\n"), pl.col("__q").sum())
        )
        single = lines.filter(~spans).select("__record", "__line", "__raw", "__q")
        lines = pl.concat([single, joined]).sort("__record").drop("__record")
    if has_cr:
        lines = lines.with_columns(pl.col("__raw").str.strip_chars_end("\r"))
    q, d = re.escape(quotechar), re.escape(delimiter)
    # Blank records (every field empty: an empty line, ";;;;") are no rows. Lines of nothing
    # but whitespace and delimiters are dropped here; with quotes too they might be blank
    # ("";""), so the csv module judges them (below).
    lines = lines.select("__line", "__raw", "__q").filter(
        pl.col("__raw").str.contains(rf"[^\s{d}]")
    )
    field = rf"{q}(?:[^{q}]|{q}{q})*{q}"  # a quoted field; doubled quotes inside
    plain = rf"[^{q}{d}]*"
    regular = rf"^(?:{field}|{plain})(?:{d}(?:{field}|{plain}))*$"
    # Fields per line. Only the lines with quotes need the (costly) regular expressions; in
    # the others the fields are the pieces between delimiters.
    raw = lines.get_column("__raw")
    fields = raw.str.count_matches(delimiter, literal=True) + 1
    quoted_at = (lines.get_column("__q") > 0).arg_true()
    if quoted_at.len():
        quoted = raw.gather(quoted_at)
        if not quoted.str.contains(regular).all():
            return None  # a quote inside an unquoted field, say: the csv module's rules apply
        unquoted = quoted.str.replace_all(field, "")
        fields = fields.scatter(quoted_at, unquoted.str.count_matches(delimiter, literal=True) + 1)
    lines = lines.with_columns(fields.alias("__fields"))
    names = [f"c{i}" for i in range(width)]
    maybe_blank = pl.col("__raw").str.contains(rf"^[\s{d}{q}]*$")
    fitting = (pl.col("__fields") == width) & ~maybe_blank
    parsed = _polars_rows(lines.filter(fitting), names, delimiter, quotechar)
    if parsed is None:
        return None
    extra, ragged = _python_rows(lines.filter(~fitting), names, delimiter, quotechar, width)
    rows = pl.concat([parsed, extra]).sort("__line") if extra.height else parsed
    return ParsedChunk(rows, ragged, newlines=newlines)


def _text_series(text: bytes | str) -> pl.Series:
    """Return a String Series whose first value is ``text`` (bytes: checked to be UTF-8).

    A second, empty value follows it: Polars takes a one-value Series into an expression as a
    constant and copies that value three times per call (a chunk's 8 MB each time).
    """
    if isinstance(text, bytes):
        return pl.Series([text, b""], dtype=pl.Binary).cast(pl.String)
    return pl.Series([text, ""], dtype=pl.String)


def regularly_quoted(piece: bytes, delimiter: str, quotechar: str) -> bool:
    """Tell whether every quote of ``piece`` stands around a field (doubled inside it).

    Then the parity of the quotes before a newline says exactly whether it ends a record, so
    a piece cut that way ends where a record does. Fields may hold line ends.
    """
    text = piece.decode(errors="replace")
    return bool(_text_series(text).str.contains(_regular_records(delimiter, quotechar))[0])


@functools.lru_cache(maxsize=16)
def _regular_records(delimiter: str, quotechar: str) -> str:
    q, d = re.escape(quotechar), re.escape(delimiter)
    field = rf"(?:{q}(?:[^{q}]|{q}{q})*{q}|[^{q}{d}\r\n]*)"
    record = rf"{field}(?:{d}{field})*"
    return rf"\A(?:{record}(?:\r\n|\n|\r))*(?:{record})?\z"


@functools.lru_cache(maxsize=16)
def _regular_lines(delimiter: str, quotechar: str, width: int) -> str:
    """Return the pattern of a text whose every line holds ``width`` regularly quoted fields."""
    q, d = re.escape(quotechar), re.escape(delimiter)
    field = rf"(?:{q}(?:[^{q}\r\n]|{q}{q})*{q}|[^{q}{d}\r\n]*)"
    line = rf"{field}(?:{d}{field}){{{width - 1}}}\r?"
    return rf"\A(?:{line}\n)*{line}\n?\z"  # the text's last LF ends its last line


def _one_record_per_line(  # noqa: PLR0917 (private; parse_chunk's arguments)
    chunk: bytes,
    whole: pl.Series,
    first_line: int,
    newlines: int,
    delimiter: str,
    quotechar: str,
    width: int,
) -> ParsedChunk | None:
    """Parse the common chunk in one go, or return None when it is not that simple.

    Simple: every line is one record of ``width`` fields, no CR but before a LF, no quote but
    around a field (one regular expression over the whole text, the first value of ``whole``,
    says so). Polars then reads the bytes as they are, and row i is line ``first_line + i``.
    """
    if chunk in (b"", b"\n") or width < 1 or chunk.endswith(b"\r"):  # (a tuple: no hashing)
        return None  # nothing to read, or a bare CR at the end
    if not whole.str.contains(_regular_lines(delimiter, quotechar, width))[0]:
        return None
    frame = _read_records(chunk, [f"c{i}" for i in range(width)], delimiter, quotechar)
    count = newlines if chunk.endswith(b"\n") else newlines + 1  # the body's lines
    if frame.height != count or frame.width != width:
        return None
    lines = ChunkLines(chunk, first_line)
    frame = frame.with_columns(
        pl.int_range(first_line, first_line + count, dtype=pl.Int64).alias("__line")
    )
    # A record whose every field is blank is no row (the csv module's rule, judged by it).
    # Its first field is blank too (whitespace as Python's str.strip sees it, at least).
    maybe_blank = frame.get_column("c0").str.contains(r"^[\s\x1c-\x1f]*$").arg_true()
    if maybe_blank.len():
        blank = [
            int(line)
            for line in frame.get_column("__line").gather(maybe_blank)
            if not any(v.strip() for v in _fields(lines[line], delimiter, quotechar))
        ]
        if blank:
            frame = frame.filter(~pl.col("__line").is_in(blank))
    replacement_free = not whole.str.contains("\ufffd", literal=True)[0]
    return ParsedChunk(frame, [], lines, replacement_free, newlines)


def _polars_rows(
    lines: pl.DataFrame, names: list[str], delimiter: str, quotechar: str
) -> pl.DataFrame | None:
    if lines.height == 0:
        return _empty(names)
    body = lines.select(pl.col("__raw").str.join("\n")).item()
    frame = _read_records(body.encode(), names, delimiter, quotechar)
    if frame.height != lines.height or frame.width != len(names):
        return None
    return frame.with_columns(lines.get_column("__line"), lines.get_column("__raw"))


def _read_records(data: bytes, names: list[str], delimiter: str, quotechar: str) -> pl.DataFrame:
    """Read whole records with Polars: every value a string, as the file has it."""
    # Polars decompresses input that starts with a gzip, zlib or zstd magic number (1f 8b,
    # 78 xx, 28 b5 2f fd), and a record may begin with those bytes ("x^", say); it skips a
    # byte-order mark, and without a header it takes the column count from the first line
    # (an empty one is an error). So only data that starts with a letter (not x), a digit or
    # the quote character is read as it is; the rest gets a header line of our own first
    # (prepending it copied every chunk).
    header = not (data[:1].isalnum() and data[:1] != b"x" or data[:1] == quotechar.encode())
    return pl.read_csv(
        (delimiter.join(names) + "\n").encode() + data if header else data,
        has_header=header,
        schema=dict.fromkeys(names, pl.String),
        empty_string_is_null=False,
        separator=delimiter,
        quote_char=quotechar,
        truncate_ragged_lines=False,
        raise_if_empty=False,
    )


def _python_rows(
    lines: pl.DataFrame, names: list[str], delimiter: str, quotechar: str, width: int
) -> tuple[pl.DataFrame, list[tuple[int, list[str], str]]]:
    """Judge, as the csv module does, the lines the fast path cannot: ragged or maybe blank."""
    good: list[tuple[int, list[str], str]] = []
    ragged: list[tuple[int, list[str], str]] = []
    for line, raw in lines.select("__line", "__raw").iter_rows():
        fields = _fields(raw, delimiter, quotechar)
        if not any(v.strip() for v in fields):
            continue  # blank once parsed (quoted empty strings, say)
        if len(fields) < width or any(v.strip() for v in fields[width:]):
            ragged.append((line, fields, raw))
        else:
            good.append((line, fields[:width], raw))
    if not good:
        return _empty(names), ragged
    frame = pl.DataFrame(
        {
            **{name: [g[1][i] for g in good] for i, name in enumerate(names)},
            "__line": pl.Series([g[0] for g in good], dtype=pl.Int64),
            "__raw": [g[2] for g in good],
        },
        schema={**dict.fromkeys(names, pl.String), "__line": pl.Int64, "__raw": pl.String},
    )
    return frame, ragged


def _fields(line: str, delimiter: str, quotechar: str) -> list[str]:
    """Split one line into fields as the csv module does."""
    return next(csv.reader([line], delimiter=delimiter, quotechar=quotechar), [])


def _empty(names: list[str]) -> pl.DataFrame:
    schema = {**dict.fromkeys(names, pl.String), "__line": pl.Int64, "__raw": pl.String}
    return pl.DataFrame(schema=schema)
