"""The readers' edges, found by mutation testing (docs/testing.md, "Mutation testing"): what
each reader hands the cleaning, exactly, where the cleaning would hide a difference."""

from __future__ import annotations

import csv
import datetime as dt
import io
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from iotpipe.errors import SourceFormatError
from iotpipe.readers import fastcsv, open_records, scalar_text, sniff_delimiter
from iotpipe.readers.fastcsv import parse_chunk, record_chunks
from tests.unit.helpers import contract


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
    assert [b.lines for b in batches] == [[5]]
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
    pieces = list(record_chunks(data[:5], io.BufferedReader(io.BytesIO(data[5:])), b'"'))
    assert b"".join(pieces) == data
    assert len(pieces) > 10
    for piece in pieces:
        assert piece.endswith(b"\n") and piece.count(b'"') % 2 == 0
        # Whole records: the csv module reads each piece on its own without a dangling quote.
        list(csv.reader(io.StringIO(piece.decode(), newline=""), strict=True))
    monkeypatch.setattr(fastcsv, "MAX_PENDING_BYTES", 64)
    unending = b'a,"' + b"x" * 200 + b"\n"  # no boundary: yielded whole once it is too long
    pieces = list(record_chunks(b"", io.BufferedReader(io.BytesIO(unending)), b'"'))
    assert b"".join(pieces) == unending
