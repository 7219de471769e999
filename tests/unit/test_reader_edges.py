"""The readers' edges, found by mutation testing (docs/testing.md, "Mutation testing"): what
each reader hands the cleaning, exactly, where the cleaning would hide a difference."""

from __future__ import annotations

import csv
import datetime as dt
import io
import random
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from iotpipe.errors import SourceFormatError
from iotpipe.readers import delimited, fastcsv, open_records, scalar_text, sniff_delimiter
from iotpipe.readers.fastcsv import RecordChunks, parse_chunk
from iotpipe.readers.streams import LineLimit, ReadStream
from tests.unit.helpers import clean_bytes, contract


def columns(data: bytes, c: Any = None, **kw: Any) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for batch in open_records(io.BytesIO(data), c or contract(), **kw):
        for name, values in batch.columns.items():
            out.setdefault(name, []).extend(values)
    return out


def test_parquet_values_read_as_the_text_a_csv_cell_would_hold(tmp_path: Path) -> None:
    aware = dt.datetime(2024, 1, 1, 12, 0, 0, 500000, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    frame = pl.DataFrame(
        {
            "id": ["d1", "d2", "d3"],
            "time": pl.Series([aware, aware, None], dtype=pl.Datetime("us", "Europe/Paris")),
            "v": [True, False, None],
            "kind": pl.Series(
                [dt.datetime(2024, 5, 6, 7, 8, 9), dt.datetime(2024, 5, 6, 7, 8, 9, 250000), None]
            ),
        }
    )
    path = tmp_path / "f.parquet"
    frame.write_parquet(path)
    got = columns(path.read_bytes())
    # Aware times in UTC with Z; naive ones as they are; booleans as true/false; nulls stay.
    assert got["ts"] == ["2024-01-01T10:00:00.500Z", "2024-01-01T10:00:00.500Z", None]
    assert got["v"] == ["true", "false", None]
    assert got["kind"] == ["2024-05-06 07:08:09", "2024-05-06 07:08:09.250", None]


def test_json_values_read_as_the_text_a_csv_cell_would_hold() -> None:
    assert scalar_text(True) == "true" and scalar_text(False) == "false"
    assert scalar_text(0.1) == "0.1" and scalar_text(7) == "7"
    assert scalar_text({"b": [1, "é"]}) == '{"b":[1,"é"]}'  # compact, non-ASCII kept
    data = b'{"id": "d", "time": 1704067200, "v": false, "kind": {"x": "\\u00e9"}}\n'
    got = columns(data)
    assert got["v"] == ["false"] and got["kind"] == ['{"x":"é"}']


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_sniffing_picks_the_delimiter_that_splits_every_line_alike(delimiter: str) -> None:
    # Commas inside the values too: only the real delimiter splits every line the same.
    rows = [["id", "time", "v, w"], ["a, b", "2024", "1"], ["c", "2025", "2"]]
    text = "\n".join(delimiter.join(r) for r in rows)
    if delimiter != ",":
        assert sniff_delimiter(text) == delimiter


def test_sniffing_ties_consistency_and_fallbacks() -> None:
    # ";" splits every line alike, "," only the header: consistency wins over count.
    assert sniff_delimiter("a,b,c;d\n1;2\n3;4\n") == ";"
    # Both split every line alike: the one that splits the first line more wins.
    assert sniff_delimiter("a;b|c|d\n1;2|3|4\n") == "|"
    # A candidate absent from the first line is never taken, even if later lines have it.
    assert sniff_delimiter("abc\n1;2\n") == ","
    # Nothing at all: a comma.
    assert sniff_delimiter("") == ","
    assert sniff_delimiter("onecolumn\nvalue\n") == ","
    # Spaces, only when no other candidate splits nine lines in ten alike.
    assert sniff_delimiter("2004-02-28 00:59:16 3 1\n2004-02-28 01:00:00 4 2\n") == " "
    assert sniff_delimiter("a b,c\n1 2,3\n") == ","


def test_the_header_may_follow_blank_lines_and_a_bom() -> None:
    data = b"\xef\xbb\xbf\n\n  \nid,time,v\nd1,2024-01-01T00:00:00Z,1\n"
    batches = list(open_records(io.BytesIO(data), contract()))
    assert [list(b.lines) for b in batches] == [[5]]
    assert list(batches[0].columns["device_id"]) == ["d1"]
    with pytest.raises(SourceFormatError, match="empty"):
        list(open_records(io.BytesIO(b"\xef\xbb\xbf\n\n"), contract()))


def test_a_header_only_file_has_no_rows() -> None:
    for data in (b"id,time,v", b"id,time,v\n", b"id,time,v\r\n\r\n"):
        batches = list(open_records(io.BytesIO(data), contract()))
        assert sum(b.rows_read for b in batches) == 0


def test_crlf_records_keep_no_carriage_return_in_values_or_rejects() -> None:
    data = b'id,time,v\r\nd1,2024-01-01T00:00:00Z,1\r\nd2,x\r\n"d3",2024-01-02,"a\r\nb"\r\n'
    for fast in (True, False):
        batches = list(open_records(io.BytesIO(data), contract(), fast_csv=fast))
        values = [v for b in batches for v in b.columns["v"]]
        assert values == ["1", "a\r\nb"], fast
        (reject,) = [r for b in batches for r in b.rejected]
        assert (reject.line, reject.record) == (3, "d2,x"), fast
        texts = [b.record_text(i) for b in batches for i in range(len(b.lines))]
        assert texts[0] == "d1,2024-01-01T00:00:00Z,1", fast


def test_a_bare_cr_inside_a_quoted_field_is_read_by_the_csv_module() -> None:
    chunk = b'd1,"a\rb",1\r\nd2,c,2\r\n'
    assert parse_chunk(chunk, 2, delimiter=",", quotechar='"', width=3) is None
    data = b"id,v,time\r\n" + chunk
    got = columns(data, contract(), fast_csv=True)
    assert got["v"] == ["a\rb", "c"]


def test_parse_chunk_reports_lines_raw_text_and_ragged_rows() -> None:
    chunk = b'a,"x\ny",1\nb,2\n\nc,,3,,\n,,\n"",""\nd,4,5,6\n'
    parsed = parse_chunk(chunk, 10, delimiter=",", quotechar='"', width=3)
    assert parsed is not None
    rows = parsed.rows
    assert rows.get_column("__line").to_list() == [10, 14]
    assert rows.get_column("__raw").to_list() == ['a,"x\ny",1', "c,,3,,"]
    assert rows.select("c0", "c1", "c2").rows() == [("a", "x\ny", "1"), ("c", "", "3")]
    # Short rows and rows with extra non-empty fields are ragged; blank records are no rows.
    assert parsed.ragged == [(12, ["b", "2"], "b,2"), (17, ["d", "4", "5", "6"], "d,4,5,6")]
    assert parse_chunk(b'a,"unterminated\n', 1, delimiter=",", quotechar='"', width=2) is None
    assert parse_chunk(b'a,b"c\n', 1, delimiter=",", quotechar='"', width=2) is None


@pytest.mark.parametrize(
    "first",
    # Read as they are: a letter, a digit, the quote. With a header line of our own first:
    # compression magic numbers, a byte-order mark, a blank line, anything else.
    [
        "d1",
        "7",
        '"q,1"',
        "x^",
        "x\x01",
        "\x1f\x8b",
        "(\xb5/\xfd",
        "\ufeffd",
        "",
        " d",
        "#d",
        "-1",
        ",",
        "é",
    ],
)
def test_a_chunk_reads_like_the_csv_module_whatever_its_first_bytes(first: str) -> None:
    text = f"{first},a\r\nd2,b\r\n"
    chunk = text.encode()
    parsed = parse_chunk(chunk, 5, delimiter=",", quotechar='"', width=2)
    lines = text.split("\r\n")[:2]
    records = [next(csv.reader([line])) for line in lines]
    kept = [(line, record) for line, record in zip(lines, records, strict=True) if len(record) == 2]
    assert parsed is not None
    assert parsed.rows.select("c0", "c1").rows() == [tuple(record) for _, record in kept]
    assert list(parsed.records(parsed.rows)) == [line for line, _ in kept]
    assert [(line, fields) for line, fields, _ in parsed.ragged] == [
        (5 + i, record) for i, record in enumerate(records) if len(record) != 2
    ]
    assert parsed.newlines == 2  # the next chunk's first line is 7


def test_a_chunk_of_one_field_per_line_keeps_its_blank_lines_out() -> None:
    # One field per record: an empty line is a blank record, no row (the csv module's rule).
    for chunk in (b"\na\n\nb\n", b"a\n\nb"):
        parsed = parse_chunk(chunk, 1, delimiter=",", quotechar='"', width=1)
        assert parsed is not None
        assert parsed.rows.get_column("c0").to_list() == ["a", "b"]
        assert parsed.newlines == chunk.count(b"\n")


def test_a_chunk_of_one_record_per_line_is_read_in_one_go() -> None:
    # Regular quoting, CRLF, a quoted delimiter and doubled quotes, a record of blank fields
    # (spaces, and "\x1c", which Python's str.strip takes for whitespace): one Polars read.
    chunk = b'x^,"a,b",1\r\nd2,"say ""hi""",2\r\n , ,\r\n\x1c,"",\r\nd3,c,3\r\n'
    parsed = parse_chunk(chunk, 7, delimiter=",", quotechar='"', width=3)
    assert parsed is not None and parsed.lines is not None  # the one-read path
    rows = parsed.rows
    assert rows.get_column("__line").to_list() == [7, 8, 11]
    assert rows.select("c0", "c1", "c2").rows() == [
        ("x^", "a,b", "1"),
        ("d2", 'say "hi"', "2"),
        ("d3", "c", "3"),
    ]
    assert list(parsed.records(rows)) == ['x^,"a,b",1', 'd2,"say ""hi""",2', "d3,c,3"]
    assert parsed.ragged == []
    # A ragged row, a bare CR at the end or a quote inside a field: the line-by-line path.
    for other in (b"a,b,c\nd,e\n", b"a,b,c\r", b'a,b"x",c\n'):
        again = parse_chunk(other, 1, delimiter=",", quotechar='"', width=3)
        assert again is None or again.lines is None, other


def test_a_last_chunk_without_a_final_newline_is_read_in_one_go() -> None:
    # Many loggers end a file without one: its last line is a record all the same.
    parsed = parse_chunk(b"a,1\nb,2\nc,3", 4, delimiter=",", quotechar='"', width=2)
    assert parsed is not None and parsed.lines is not None  # the one-read path
    assert parsed.rows.select("c0", "c1", "__line").rows() == [
        ("a", "1", 4),
        ("b", "2", 5),
        ("c", "3", 6),
    ]
    assert parsed.newlines == 2


def test_record_chunks_end_at_record_boundaries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fastcsv, "FIRST_CHUNK_BYTES", 8)
    monkeypatch.setattr(fastcsv, "CHUNK_BYTES", 32)
    rows = [
        [f"d{i}", "line one\nline two" if i % 3 == 0 else f"v{i}", '"q"' * (i % 2)]
        for i in range(60)
    ]
    out = io.StringIO(newline="")
    csv.writer(out, lineterminator="\n").writerows(rows)
    data = out.getvalue().encode()
    pieces = list(RecordChunks(data[:5], io.BufferedReader(io.BytesIO(data[5:])), b'"'))
    assert b"".join(pieces) == data
    assert len(pieces) > 10
    for piece in pieces:
        assert piece.endswith(b"\n") and piece.count(b'"') % 2 == 0
        # Whole records: the csv module reads each piece on its own without a dangling quote.
        list(csv.reader(io.StringIO(piece.decode(), newline=""), strict=True))
    monkeypatch.setattr(fastcsv, "MAX_PENDING_BYTES", 64)
    unending = b'a,"' + b"x" * 200 + b"\n"  # no boundary: yielded whole once it is too long
    pieces = list(RecordChunks(b"", io.BufferedReader(io.BytesIO(unending)), b'"'))
    assert b"".join(pieces) == unending


@pytest.mark.parametrize("size", [2, 3, 5, 7, 11])
def test_record_chunks_end_at_record_boundaries_whatever_the_reads(
    size: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Reads that end inside a quoted line break (an odd count of quotes before the block's last
    # newline: 1 or 3) or hold no newline at all (a record longer than a read).
    monkeypatch.setattr(fastcsv, "FIRST_CHUNK_BYTES", size)
    monkeypatch.setattr(fastcsv, "CHUNK_BYTES", size)
    data = b'a,"x"\nb,"y\nz"\nc,"p""\nq"\n' + b"d," + b"w" * 40 + b"\ne,1\n"
    pieces = list(RecordChunks(b"", io.BufferedReader(io.BytesIO(data)), b'"'))
    assert b"".join(pieces) == data
    for piece in pieces:
        assert piece.endswith(b"\n") and piece.count(b'"') % 2 == 0, pieces
        list(csv.reader(io.StringIO(piece.decode(), newline=""), strict=True))


def test_parquet_nested_values_and_rejected_rows_read_as_compact_json(tmp_path: Path) -> None:
    at = dt.datetime(2024, 5, 6, 7, 8, 9)
    frame = pl.DataFrame(
        {
            "id": ["d1", "d2"],
            "time": ["2024-01-01T00:00:00Z", "2024-01-01T00:01:00Z"],
            "v": ["1.5", "2"],
            "kind": [{"at": at, "name": "é"}, None],
        }
    )
    path = tmp_path / "nested.parquet"
    frame.write_parquet(path)
    batches = list(open_records(io.BytesIO(path.read_bytes()), contract()))
    kind = [v for b in batches for v in b.columns["kind"]]
    # Compact, dates as text, non-ASCII kept; a missing value stays missing (not "null").
    assert kind == ['{"at":"2024-05-06 07:08:09","name":"é"}', None]
    assert [list(b.nested["kind"]) for b in batches] == [[True, False]]
    # A row's text for the rejects file: every column, compact, as read.
    assert batches[0].record_texts([0, 1]) == [
        '{"id":"d1","time":"2024-01-01T00:00:00Z","v":"1.5",'
        '"kind":{"at":"2024-05-06 07:08:09","name":"é"}}',
        '{"id":"d2","time":"2024-01-01T00:01:00Z","v":"2","kind":null}',
    ]


def test_an_unreadable_parquet_file_says_so() -> None:
    with pytest.raises(SourceFormatError, match=r"^unreadable Parquet file: "):
        list(open_records(io.BytesIO(b"PAR1" + b"\x00" * 64), contract()))


def batch_sizes(data: bytes, c: Any = None, **kw: Any) -> list[int]:
    return [len(b.lines) for b in open_records(io.BytesIO(data), c or contract(), **kw)]


def test_csv_module_batches_end_at_the_row_and_byte_bounds_exactly() -> None:
    # Each row's fields hold 2 + 20 + 1 = 23 characters.
    data = b"id,time,v\n" + b"".join(b"d%d,2024-01-01T00:00:0%dZ,1\n" % (i, i) for i in range(7))
    assert batch_sizes(data, batch_rows=2, fast_csv=False) == [2, 2, 2, 1]
    assert batch_sizes(data, batch_bytes=46, fast_csv=False) == [2, 2, 2, 1]  # 46 reached
    assert batch_sizes(data, batch_bytes=47, fast_csv=False) == [3, 3, 1]  # 46 < 47 <= 69


def test_ndjson_batches_end_at_the_row_and_byte_bounds_exactly() -> None:
    line = b'{"id":"d%d","time":"2024-01-01T00:00:0%dZ","v":1}\n'
    data = b"".join(line % (i, i) for i in range(7))
    size = len(line % (0, 0)) - 1  # the bytes counted: the line without its end
    assert batch_sizes(data, batch_rows=2) == [2, 2, 2, 1]
    assert batch_sizes(data, batch_bytes=2 * size) == [2, 2, 2, 1]
    assert batch_sizes(data, batch_bytes=2 * size + 1) == [3, 3, 1]


@pytest.mark.parametrize("fast", [True, False])
def test_a_quote_inside_an_unquoted_field_is_read_leniently(fast: bool) -> None:
    data = b'id,time,v\nd1,"2024-01-01T00:00:00Z"x,1\nd2,2024-01-02T00:00:00Z,2\n'
    batches = list(open_records(io.BytesIO(data), contract(), fast_csv=fast))
    ts = [v for b in batches for v in b.columns["ts"]]
    assert ts == ["2024-01-01T00:00:00Zx", "2024-01-02T00:00:00Z"]
    assert [r for b in batches for r in b.rejected] == []  # nothing read twice or invented


@pytest.mark.parametrize("fast", [True, False])
def test_the_contracts_quote_character_reads_and_renders_rejects(fast: bool) -> None:
    c = contract(dialect={"quotechar": "'"})
    data = b"'id',time,v,kind\n'd,1',2024-01-01T00:00:00Z,1,a\nd2,2024-01-01T00:00:00Z,'x,y'\n"
    batches = list(open_records(io.BytesIO(data), c, fast_csv=fast))
    assert [v for b in batches for v in b.columns["device_id"]] == ["d,1"]
    (reject,) = [r for b in batches for r in b.rejected]
    assert (reject.line, reject.detail) == (3, "expected 4 fields, found 3")
    assert reject.record == "d2,2024-01-01T00:00:00Z,'x,y'"  # re-quoted with the same quote


def test_trailing_empty_fields_are_no_extra_fields_on_either_path() -> None:
    data = b"id,time,v\nd1,2024-01-01T00:00:00Z,1,,\nd2,2024-01-02T00:00:00Z,2,x\n"
    for fast in (True, False):
        batches = list(open_records(io.BytesIO(data), contract(), fast_csv=fast))
        assert [line for b in batches for line in b.lines] == [2], fast
        rejected = [(r.line, r.detail) for b in batches for r in b.rejected]
        assert rejected == [(3, "expected 3 fields, found 4")], fast


def test_long_fields_read_alike_on_both_paths() -> None:
    # The csv module's own limit (128 KiB a field) would reject what Polars reads.
    data = b'id,time,v,kind\nd1,2024-01-01T00:00:00Z,1,"' + b"x" * 200_000 + b'"\n'
    for fast in (True, False):
        got = columns(data, fast_csv=fast)
        assert [len(v) for v in got["kind"]] == [200_000], fast


def test_a_record_the_csv_module_cannot_read_is_rejected_and_reading_goes_on() -> None:
    data = (
        b"id,time,v\nd1,2024-01-01T00:00:00Z,1\n"
        b"d2,2024-01-01T00:00:00Z,1234567890123456789012345\nd3,2024-01-02T00:00:00Z,3\n"
    )
    limit = csv.field_size_limit(24)  # what no real limit lets happen: a csv.Error
    try:
        batches = list(open_records(io.BytesIO(data), contract(), fast_csv=False))
    finally:
        csv.field_size_limit(limit)
    assert [line for b in batches for line in b.lines] == [2, 4]
    rejected = [(r.line, r.reason, r.detail, r.record) for b in batches for r in b.rejected]
    assert rejected == [(3, "malformed_row", "CSV error: field larger than field limit (24)", "")]


def test_sniffing_at_the_edges_of_consistency() -> None:
    # Equal on every count: the first candidate in ", ; TAB |" wins.
    assert sniff_delimiter("a,b;c\n1,2;3\n") == ","
    # One line of spaces is a consistent space-delimited sample.
    assert sniff_delimiter("date time value") == " "
    # A comma on the first line only, spaces alike on every line: spaces.
    assert sniff_delimiter("a b c,x\n1 2 3x\n4 5 6x\n") == " "
    # Spaces that do not split the lines alike are no delimiter.
    assert sniff_delimiter("a b\n1 2 3\n4 5 6 7\n") == ","
    # Exactly nine lines in ten: a comma that consistent is kept, spaces that consistent win.
    assert sniff_delimiter("a b,c\n" * 9 + "a bc\n") == ","
    assert sniff_delimiter("a b\n" * 9 + "a b c\n") == " "


def test_ndjson_columns_are_the_first_batchs_keys_and_nested_roots_are_known() -> None:
    c = contract(fields=[{"name": "v", "type": "number", "source": ["m.v", "v"]}])
    data = (
        b'{"id": "d1", "time": "2024-01-01T00:00:00Z", "m": {"v": 1}, "x": 0}\n'
        b'{"id": "d2", "time": "2024-01-01T00:00:00Z", "m": 5, "v": 2, "y": 0}\n'
        b'{"id": "d3", "time": "2024-01-01T00:00:00Z", "v": 3, "z": 0}\n'
    )
    reader = open_records(io.BytesIO(data), c, batch_rows=2)
    values = [v for b in reader for v in b.columns["v"]]
    # "m" is no dict in the second record: the next source is tried.
    assert values == ["1", "2", "3"]
    assert reader.columns == ["id", "time", "m", "x", "v", "y"]
    assert reader.unknown_columns == ["x", "y"]


def test_ndjson_required_keys_are_checked_on_the_first_batch_only_when_it_has_records() -> None:
    first_lacks_time = b'{"id": "d1", "v": 1}\n{"id": "d2", "time": "2024-01-01", "v": 2}\n'
    with pytest.raises(SourceFormatError) as raised:
        list(open_records(io.BytesIO(first_lacks_time), contract(), batch_rows=1))
    assert str(raised.value) == (
        "required column(s) missing: 'time' (timestamp.source); the source has: id, v"
    )
    # Nothing but malformed lines: every line a reject, no missing-column failure.
    batches = list(open_records(io.BytesIO(b"{oops\n[1]\n"), contract()))
    rejected = [(r.line, r.reason, r.detail) for b in batches for r in b.rejected]
    assert rejected[1] == (2, "malformed_json", "a JSON list, not an object")
    assert [r[0] for r in rejected] == [1, 2]


def test_a_json_line_nested_too_deeply_is_rejected_with_its_start() -> None:
    deep = b'{"id": "x", "v": ' + b"[" * 100_000 + b"]" * 100_000 + b"}\n"
    c = contract(dialect={"max_record_bytes": 1 << 20})
    (batch,) = open_records(io.BytesIO(b'{"id": "a", "time": 1}\n' + deep), c)
    (reject,) = batch.rejected
    assert (reject.line, reject.detail) == (2, "invalid JSON: nested too deeply to read")
    assert reject.record == deep.decode().strip()[:1000]


def test_a_record_boundary_is_the_last_newline_after_an_even_number_of_quotes() -> None:
    boundary = fastcsv._boundary
    assert boundary(b"abc", b'"') is None  # no newline at all
    assert boundary(b"a\nb", b'"') == 2
    assert boundary(b'"a",1\n"b",2\n', b'"') == 12  # a quote as the very first byte counts
    assert boundary(b'a,1\nb,"x\ny', b'"') == 4  # the last newline is inside quotes
    assert boundary(b'a,"x\ny\nz', b'"') is None  # every newline is inside quotes
    # Walking back one line at a time, counting only the quotes of the lines passed over:
    assert boundary(b'a,1\nb,2\nc,"x\ny', b'"') == 8
    assert boundary(b'a,1\nb,"x\ny",2', b'"') == 4  # quotes after the last newline
    assert boundary(b'\na,"x\ny', b'"') == 1  # a newline as the very first byte
    assert boundary(b'a\nb,"x\ny', b'"') == 2
    assert boundary(b'"\n"x', b'"') is None  # no line before: the walk stops, never wraps


def test_a_chunk_whose_every_row_has_trailing_delimiters_is_read() -> None:
    # No row fits the header's width as written, so the csv module reads them all.
    chunk = b"d1,t1,1,,\nd2,t2,2,\n"
    parsed = parse_chunk(chunk, 2, delimiter=",", quotechar='"', width=3)
    assert parsed is not None
    assert parsed.rows.select("c0", "c1", "c2", "__line").rows() == [
        ("d1", "t1", "1", 2),
        ("d2", "t2", "2", 3),
    ]
    semicolons = parse_chunk(b"d1;t1;1;;\nd2;t2\n", 2, delimiter=";", quotechar='"', width=3)
    assert semicolons is not None
    assert semicolons.rows.select("c0", "c1", "c2").rows() == [("d1", "t1", "1")]
    assert semicolons.ragged == [(3, ["d2", "t2"], "d2;t2")]


def test_a_row_of_nothing_but_quotes_and_delimiters_may_still_hold_a_value() -> None:
    # '""""' is a field holding one quote: not blank, though it looks it; a ragged row beside
    # it sends the chunk down the line-by-line path.
    parsed = parse_chunk(b'"""",,\nb,2\n', 5, delimiter=",", quotechar='"', width=3)
    assert parsed is not None
    assert parsed.rows.select("c0", "c1", "c2", "__line").rows() == [('"', "", "", 5)]
    assert parsed.ragged == [(6, ["b", "2"], "b,2")]


def test_a_one_read_chunk_says_whether_it_holds_a_replacement_character() -> None:
    def parse(chunk: bytes, width: int = 2) -> Any:
        parsed = parse_chunk(chunk, 1, delimiter=",", quotechar='"', width=width)
        assert parsed is not None and parsed.lines is not None  # the one-read path
        return parsed

    assert parse(b"a,b\nc,d\n").replacement_free
    assert not parse("a,\ufffd\nc,d\n".encode()).replacement_free
    assert parse(b"a\nb\n", width=1).rows.get_column("c0").to_list() == ["a", "b"]
    # A literal U+FFFD and undecodable bytes are rejected alike (the cleaner cannot tell).
    reasons = []
    for device in ("d\ufffd".encode(), b"d\xff"):
        data = b"id,time,v\n" + device + b",2024-01-01T00:00:00Z,1\n"
        _, rejected, _ = clean_bytes(data, contract())
        reasons.append([(r.line, r.reason) for r in rejected])
    assert reasons[0] == reasons[1] and len(reasons[0]) == 1


def test_ndjson_after_a_bom_reads_as_utf8() -> None:
    data = '\ufeff{"id": "é", "time": "2024-01-01T00:00:00Z", "v": 1}\n'.encode()
    (batch,) = open_records(io.BytesIO(data), contract())
    assert (list(batch.lines), list(batch.columns["device_id"]), batch.rejected) == ([1], ["é"], [])


@pytest.mark.parametrize("fast", [True, False])
def test_a_headerless_files_first_line_may_be_a_reject(fast: bool) -> None:
    c = contract(dialect={"header": False, "columns": ["id", "time", "v"]})
    data = b"d0,2024-01-01T00:00:00Z\nd1,2024-01-01T00:00:00Z,1\n"
    batches = list(open_records(io.BytesIO(data), c, fast_csv=fast))
    assert [line for b in batches for line in b.lines] == [2]
    rejected = [(r.line, r.detail) for b in batches for r in b.rejected]
    assert rejected == [(1, "expected 3 fields, found 2")]


def test_the_header_row_in_every_shape_it_comes() -> None:
    # Two BOMs (a tool that added its own to a file that had one): both dropped.
    data = b"\xef\xbb\xbf\xef\xbb\xbfid,time,v\nd1,2024-01-01T00:00:00Z,1\n"
    assert columns(data)["device_id"] == ["d1"]
    # A quoted header name keeps its CRLF (the header is read as the file has it).
    data = b'id,time,v,"x\r\ny"\r\nd1,2024-01-01T00:00:00Z,1,2\r\n'
    reader = open_records(io.BytesIO(data), contract())
    assert reader.columns == ["id", "time", "v", "x\r\ny"]
    # Nothing but records of empty fields: no header at all.
    with pytest.raises(SourceFormatError, match=r"^the CSV has no header row$"):
        list(open_records(io.BytesIO(b",,,\n , ,\n,\n"), contract()))
    limit = csv.field_size_limit(8)  # no real limit lets this happen: a header csv.Error
    try:
        with pytest.raises(SourceFormatError) as raised:
            list(open_records(io.BytesIO(b"id,time,a_long_name\n"), contract()))
    finally:
        csv.field_size_limit(limit)
    assert str(raised.value) == (
        "the CSV header cannot be parsed: CSV error: field larger than field limit (8)"
    )


def _messy_csv(q: str, stray: bool) -> bytes:
    """Rows of every shape the chunked reader treats apart, in an order that mixes them.

    Shape 7 alternates trailing delimiters with a line longer than a chunk.
    """
    lines = [b"id,time,v"]
    for i in range(300):
        ts = f"2024-01-01T{i // 60:02d}:{i % 60:02d}:00Z"
        shape = i % 8
        text = {
            0: f"d{i},{ts},{i}",
            1: f"d{i},{ts},{q}{i}{q}\r",  # CRLF
            2: f"d{i},x",  # ragged
            3: f"d{i},{ts},{q}a\nb{q}",  # a quoted newline
            4: f"d{i},{ts},{q}a\rb{q}",  # a bare CR inside quotes: the csv module's
            5: f"d{i}\udcff,{ts},{i}",  # an undecodable byte
            6: f"d{i},{ts},{i}{q}x" if stray else f"d{i},{ts},{q}{i}{q}{q}{q}",
            7: f"d{i}ab,{ts},{i},," if i % 16 else f"d{i},{ts},{'y' * 300}",  # a long line
        }[shape]
        lines.append(text.encode("utf-8", "surrogateescape"))
    return b"\n".join(lines) + b"\n"


@pytest.mark.parametrize("quote", ['"', "|"])
@pytest.mark.parametrize("stray", [False, True], ids=["regular", "stray-quotes"])
def test_many_small_chunks_read_exactly_as_the_csv_module_reads_the_file(
    monkeypatch: pytest.MonkeyPatch, quote: str, stray: bool
) -> None:
    # Chunks of 64-128 bytes: every shape lands at a chunk's start, middle and end, some
    # chunks go to Polars and some to the csv module, and the line numbers must run on.
    # A quote inside an unquoted field ("stray") used to misplace a cut inside a later
    # quoted line end, and the fast path then read "a\n" where the file says "a\nb".
    monkeypatch.setattr(delimited, "SNIFF_BYTES", 64)  # the head read before the chunks
    monkeypatch.setattr(fastcsv, "FIRST_CHUNK_BYTES", 64)
    monkeypatch.setattr(fastcsv, "CHUNK_BYTES", 128)
    c = contract(dialect={"quotechar": quote})
    data = _messy_csv(quote, stray)
    seen = []
    for fast in (True, False):
        batches = list(open_records(io.BytesIO(data), c, fast_csv=fast))
        rows = [
            (line, *(b.columns[name][i] for name in ("device_id", "ts", "v")))
            for b in batches
            for i, line in enumerate(b.lines)
        ]
        rejected = sorted(
            (r.line, r.reason, r.detail, r.record) for b in batches for r in b.rejected
        )
        seen.append((rows, rejected))
    assert seen[0] == seen[1]
    rows, rejected = seen[0]
    ragged = [i for i in range(300) if i % 8 == 2]
    assert [r[0] for r in rejected] == [i + 2 + (i // 8) * 2 for i in ragged]
    assert len(rows) == 300 - len(ragged)
    # Row i starts on line i + 2, plus a line for each quoted LF and each bare CR above it.
    assert rows[-1][0] == 299 + 2 + (299 // 8) * 2


@pytest.mark.parametrize("delimiter", ["|", "X"])
def test_field_counts_take_the_delimiter_literally(delimiter: str) -> None:
    # "|" is a pattern that matches everywhere, and "X" could be mistaken for a placeholder:
    # a short row counted as full would come back from Polars padded with nulls.
    d = delimiter
    chunk = f"a{d}b\n'q'{d}bc\n'd1'\nd1{d}t{d}1{d}k{d}e\n".encode()
    parsed = parse_chunk(chunk, 2, delimiter=d, quotechar="'", width=5)
    assert parsed is not None
    assert parsed.rows.select("c0", "c1", "c4", "__line").rows() == [("d1", "t", "e", 5)]
    assert parsed.ragged == [
        (2, ["a", "b"], f"a{d}b"),
        (3, ["q", "bc"], f"'q'{d}bc"),
        (4, ["d1"], "'d1'"),
    ]


def test_the_general_path_drops_crs_and_blank_records_of_quoted_empties() -> None:
    # A quoted line end sends the chunk past the one-read path; CRLF ends its records.
    chunk = b'd1,"a\r\nb",X\r\n"","",""\r\nd2,c,XX\r\nd3,x\r\n'
    parsed = parse_chunk(chunk, 2, delimiter=",", quotechar='"', width=3)
    assert parsed is not None and parsed.lines is None
    assert parsed.rows.select("c0", "c1", "c2", "__line").rows() == [
        ("d1", "a\r\nb", "X", 2),
        ("d2", "c", "XX", 5),
    ]
    assert parsed.rows.get_column("__raw").to_list() == ['d1,"a\r\nb",X', "d2,c,XX"]
    assert parsed.ragged == [(6, ["d3", "x"], "d3,x")]


def test_a_repeated_column_name_must_be_chosen_by_number() -> None:
    data = b"id,time,v,id\nd1,2024-01-01T00:00:00Z,1,d2\n"
    with pytest.raises(SourceFormatError) as raised:
        list(open_records(io.BytesIO(data), contract()))
    assert str(raised.value) == (
        "column 'id' appears 2 times (columns 1 and 4); "
        "say which one in the contract's source: 'id#1' or 'id#2'"
    )
    first = columns(data, contract(device_id={"source": "id#1"}))
    second = columns(data, contract(device_id={"source": "id#2"}))
    assert (first["device_id"], second["device_id"]) == (["d1"], ["d2"])
    with pytest.raises(SourceFormatError, match="required column"):
        columns(data, contract(device_id={"source": "id#3"}))


@pytest.mark.parametrize(
    ("delimiter", "quote", "fast", "polars"),
    [
        (",", '"', True, True),
        (",", '"', False, False),  # the tests' switch: the csv module everywhere
        ("§", '"', True, False),  # multi-byte characters: Polars takes single bytes only
        (",", "§", True, False),
    ],
)
def test_which_parser_reads_a_csv(delimiter: str, quote: str, fast: bool, polars: bool) -> None:
    c = contract(dialect={"delimiter": delimiter, "quotechar": quote})
    data = delimiter.join(["id", "time", "v"]) + "\n" + delimiter.join(["d1", "2024", "1"])
    (batch,) = open_records(io.BytesIO(data.encode()), c, fast_csv=fast)
    assert list(batch.columns["device_id"]) == ["d1"]
    # The csv module's batches render their records from fields; Polars' keep the text.
    assert (batch.render is None) is polars
    if fast:  # the default
        (batch,) = open_records(io.BytesIO(data.encode()), c)
        assert (batch.render is None) is polars


def test_line_limit_cuts_exactly_the_lines_over_the_limit_wherever_the_pieces_fall() -> None:
    rng = random.Random(20261128)
    for _ in range(300):
        limit = rng.randint(1, 12)
        lines = [
            (b"x" * rng.choice([0, 1, limit - 1, limit, limit + 1, 2 * limit, 3 * limit + 2]))
            + (b"\r" if rng.random() < 0.2 else b"")
            for _ in range(rng.randint(1, 8))
        ]
        lines = [line.replace(b"x", bytes([97 + i % 26]), 1) for i, line in enumerate(lines)]
        data = b"\n".join(lines) + rng.choice([b"", b"\n"])
        cut = LineLimit(io.BytesIO(data), limit)
        out = cut.stream().read()
        rows = data.split(b"\n")
        assert out == b"\n".join(b"" if len(r) > limit else r for r in rows), (limit, data)
        long = [(i + 1, len(r)) for i, r in enumerate(rows) if len(r) > limit]
        assert [(c.line, c.size) for c in cut.long_lines] == long, (limit, data)
        for c in cut.long_lines:
            row = rows[c.line - 1]
            assert row.startswith(c.head) and len(c.head) >= min(len(row), limit + 1), c


def test_a_line_cut_out_for_its_size_is_rejected_in_the_batch_of_its_place() -> None:
    c = contract(dialect={"max_record_bytes": 64})
    head = "d9,2024-01-01T00:00:00Z,x" + "é" * 200  # an odd prefix, then two-byte letters
    data = "\n".join(
        ["id,time,v", "d1,2024-01-01T00:00:00Z,1", "d2,2024-01-01T00:00:01Z,2", head]
        + ["d3,2024-01-01T00:00:02Z,3"]
    ).encode()
    batches = list(open_records(io.BytesIO(data), c, batch_rows=1))
    placed = [(list(b.lines), [(r.line, r.reason) for r in b.rejected]) for b in batches]
    assert placed == [([2], []), ([3], []), ([5], [(4, "record_too_large")])]
    (reject,) = batches[2].rejected
    # The bytes kept (what was read of the line once it was over the limit) end inside an
    # "é", which the rejects file shows as U+FFFD.
    kept = reject.record.removesuffix("\ufffd")
    assert kept != reject.record and head.startswith(kept) and len(kept.encode()) >= 64


def test_a_transcoded_file_cut_inside_its_last_character_ends_in_u_fffd() -> None:
    c = contract(dialect={"encoding": "utf-16"})
    text = "id,time,v\nd1,2024-01-01T00:00:00Z,1\nd2,2024-01-01T00:00:01Z,2"
    got = columns(text.encode("utf-16") + b"\x00", c)  # half of a UTF-16 code unit at the end
    assert got["v"] == ["1", "2\ufffd"]


def test_what_a_source_that_cannot_be_read_at_all_is_told() -> None:
    def message(data: bytes) -> str:
        with pytest.raises(SourceFormatError) as raised:
            list(open_records(io.BytesIO(data), contract()))
        return str(raised.value)

    assert message(b"  \r\n\n") == "the source is empty"
    assert message(b"id,time\x00,v\n") == "the source looks binary: not CSV, NDJSON or Parquet"
    assert message(b"\x1f\x8b\x08\x00garbage").startswith("cannot read the source: ")
    # Only the first 4,096 bytes are looked at for NUL bytes.
    late_nul = b"id,time,v\n" + b"d1,2024-01-01T00:00:00Z,1\n" * 200
    late_nul = late_nul[:4096] + b"\x00" + late_nul[4096:]
    assert late_nul.index(b"\x00") == 4096
    assert sum(b.rows_read for b in open_records(io.BytesIO(late_nul), contract())) == 200


def test_an_ndjson_first_line_over_the_limit_is_a_reject_not_a_header() -> None:
    c = contract(dialect={"max_record_bytes": 64})
    long = b'{"id": "d0", "time": "2024-01-01T00:00:00Z", "v": "' + b"x" * 100 + b'"}'
    data = long + b'\n{"id": "d1", "time": "2024-01-01T00:00:00Z", "v": 1}\n'
    batches = list(open_records(io.BytesIO(data), c))
    assert [line for b in batches for line in b.lines] == [2]
    assert [(r.line, r.reason) for b in batches for r in b.rejected] == [(1, "record_too_large")]


def test_a_read_stream_closes_its_source_once() -> None:
    closed = []
    stream = ReadStream(lambda n: b"", lambda: closed.append(True))
    stream.close()
    assert closed == [True]  # at the first close
    stream.close()
    assert closed == [True]
