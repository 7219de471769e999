from __future__ import annotations

import gzip
import io
from typing import Any

import polars as pl
import pytest

from iotpipe.errors import MissingColumnError, SourceFormatError
from iotpipe.readers import RecordBatch, detect_format, open_records, sniff_delimiter
from tests.unit.helpers import contract


def read_all(data: bytes, **kw: Any) -> tuple[list[RecordBatch], Any]:
    c = kw.pop("c", None) or contract()
    reader = open_records(io.BytesIO(data), c, **kw)
    return list(reader), reader


class OnlyRead:
    """A stream with nothing but read(): like an S3 StreamingBody."""

    def __init__(self, data: bytes) -> None:
        self._inner = io.BytesIO(data)

    def read(self, n: int = -1) -> bytes:
        return self._inner.read(n)


def test_detect_format() -> None:
    assert detect_format(b"a,b\n1,2\n") == "csv"
    assert detect_format(b'\xef\xbb\xbf  {"a": 1}\n') == "ndjson"
    assert detect_format(b"PAR1\x00\x00") == "parquet"
    with pytest.raises(SourceFormatError, match="empty"):
        detect_format(b"  \n\n")
    with pytest.raises(SourceFormatError, match="binary"):
        detect_format(b"\x89PNG\r\n\x1a\n\x00\x00\x00")


def test_csv_crlf_bom_quotes_newlines_and_blank_lines() -> None:
    data = (
        b"\xef\xbb\xbf ID ,Time,V,kind,extra\r\n"
        b'd1,2024-01-01T00:00:00Z,1,a,"x, y"\r\n'
        b'd2,2024-01-01T00:00:00Z,2,b,"multi\r\nline"\r\n'
        b"\r\n"
        b'"d,3",2024-01-01T00:00:00Z,3,a,\r\n'
        b"\r\n\r\n   \r\n"
    )
    batches, reader = read_all(data)
    assert reader.format == "csv" and not reader.compressed
    assert reader.unknown_columns == ["extra"]
    (batch,) = batches
    assert list(batch.lines) == [2, 3, 6]
    assert list(batch.columns["device_id"]) == ["d1", "d2", "d,3"]
    assert list(batch.columns["v"]) == ["1", "2", "3"]
    assert batch.rows_read == 3


@pytest.mark.parametrize("start", [b"x\x01", b"x^", b"\x1f\x8b", b"(\xb5/\xfd"])
def test_a_record_starting_with_compression_magic_is_text(start: bytes) -> None:
    # Polars decompresses bytes that start with a gzip/zlib/zstd magic number; the reader
    # hands it whole records, any of which may start that way.
    data = b"id,time,v,kind\n" + start + b",2024-01-01T00:00:00Z,1,a\nd2,2024-01-01,2,b\n"
    c = contract(dialect={"encoding": "latin-1"})
    for batch_rows in (1, 10):
        batches, _ = read_all(data, c=c, batch_rows=batch_rows)
        ids = [v for b in batches for v in b.columns["device_id"]]
        assert ids == [start.decode("latin-1"), "d2"]


def test_ragged_rows_are_rejected_not_fatal() -> None:
    data = b"id,time,v,kind\nd1,t,1,a\nd2,t\nd3,t,3,a,surplus\nd4,t,4,a,,\nd5,t,5,a\n"
    (batch,), _ = read_all(data)
    assert list(batch.lines) == [2, 5, 6]  # trailing empty fields (a trailing delimiter) are fine
    assert [(r.line, r.reason) for r in batch.rejected] == [
        (3, "malformed_row"),
        (4, "malformed_row"),
    ]
    assert batch.rejected[0].record == "d2,t"
    assert "expected 4 fields, found 2" in batch.rejected[0].detail
    assert batch.rows_read == 5


def test_batches_are_bounded() -> None:
    rows = "".join(f"d{i},2024-01-01,{i % 100},a\n" for i in range(95))
    batches, _ = read_all(("id,time,v,kind\n" + rows).encode(), batch_rows=10)
    assert [len(b.lines) for b in batches] == [10] * 9 + [5]
    assert batches[-1].lines[-1] == 96


def test_missing_required_column_fails_the_file() -> None:
    with pytest.raises(MissingColumnError) as info:
        read_all(b"id,v,kind\nd1,1,a\n")
    assert "'time' (timestamp.source)" in str(info.value)
    assert info.value.available == ["id", "v", "kind"]


def test_optional_column_may_be_absent() -> None:
    (batch,), reader = read_all(b"id,time,v\nd1,2024-01-01,1\n")
    assert reader.absent_columns == ["kind"]
    assert "kind" not in batch.columns


def test_headerless_with_column_list_and_sniffed_semicolons() -> None:
    c = contract(
        dialect={
            "header": False,
            "columns": ["id", "time", "v", "kind"],
            "delimiter": "auto",
            "decimal": ",",
        }
    )
    (batch,), _ = read_all(b"d1;2024-01-01;1,5;a\nd2;2024-01-02;2,5;b\n", c=c)
    assert list(batch.lines) == [1, 2]
    assert list(batch.columns["v"]) == ["1,5", "2,5"]
    assert sniff_delimiter("a\tb\tc\n1\t2\t3\n") == "\t"


def test_latin1_encoding() -> None:
    c = contract(dialect={"encoding": "latin-1"})
    (batch,), _ = read_all("id,time,v,kind\nS\u00e3o,2024-01-01,1,a\n".encode("latin-1"), c=c)
    assert list(batch.columns["device_id"]) == ["S\u00e3o"]


def test_gzip_by_magic_and_non_seekable_stream() -> None:
    data = gzip.compress(b"id,time,v,kind\nd1,2024-01-01,1,a\n")
    reader = open_records(OnlyRead(data), contract())  # type: ignore[arg-type]
    assert reader.compressed and reader.format == "csv"
    (batch,) = list(reader)
    assert list(batch.columns["device_id"]) == ["d1"]


def test_truncated_gzip_is_a_source_error() -> None:
    rows = "".join(f"d{i},2024-01-01,{i},a\n" for i in range(20000)).encode()
    data = gzip.compress(b"id,time,v,kind\n" + rows)
    with pytest.raises(SourceFormatError, match="cannot be read to the end"):
        list(open_records(io.BytesIO(data[: len(data) // 2]), contract(), batch_rows=100))


def test_gzip_members_are_read_in_turn() -> None:
    # Firehose and `cat a.gz b.gz` write several gzip members to one object.
    data = gzip.compress(b"id,time,v,kind\nd1,2024-01-01,1,a\n") + gzip.compress(
        b"d2,2024-01-01,2,b\n"
    )
    (batch,) = list(open_records(OnlyRead(data), contract()))  # type: ignore[arg-type]
    assert list(batch.columns["device_id"]) == ["d1", "d2"]


def test_corrupt_gzip_is_a_source_error() -> None:
    rows = "".join(f"d{i},2024-01-01,{i},a\n" for i in range(20000)).encode()
    data = bytearray(gzip.compress(b"id,time,v,kind\n" + rows))
    data[len(data) // 2] ^= 0xFF
    with pytest.raises(SourceFormatError, match="cannot be read to the end"):
        list(open_records(io.BytesIO(bytes(data)), contract(), batch_rows=100))


def test_ndjson_paths_aliases_and_bad_lines() -> None:
    c = contract(
        device_id={"source": ["dev_eui", "devEUI"]},
        timestamp={"source": "meta.time"},
        fields=[{"name": "v", "type": "number", "source": ["decoded.payload.v", "object.v"]}],
    )
    data = (
        b'{"dev_eui": "A", "meta": {"time": "2024-01-01T00:00:00Z"}, '
        b'"decoded": {"payload": {"v": 1.5}}}\n'
        b"\n"
        b"{not json}\n"
        b"[1, 2]\n"
        b'{"devEUI": "b", "meta": {"time": 1704067200000}, "object": {"v": 7}, "other": true}\n'
        b'{"devEUI": "c", "meta": {"time": null}, "object": {"v": {"deep": 1}}}\n'
    )
    (batch,), reader = read_all(data, c=c)
    assert reader.format == "ndjson"
    assert list(batch.lines) == [1, 5, 6]
    assert list(batch.columns["device_id"]) == ["A", "b", "c"]
    assert list(batch.columns["ts"]) == ["2024-01-01T00:00:00Z", "1704067200000", None]
    assert list(batch.columns["v"]) == ["1.5", "7", '{"deep":1}']
    assert [(r.line, r.reason) for r in batch.rejected] == [
        (3, "malformed_json"),
        (4, "malformed_json"),
    ]
    assert "not an object" in batch.rejected[1].detail
    assert batch.record_text(1).startswith('{"devEUI": "b"')


def test_ndjson_without_required_key_fails() -> None:
    with pytest.raises(MissingColumnError):
        read_all(b'{"x": 1, "time": "2024-01-01"}\n')


def test_parquet(tmp_path: Any) -> None:
    frame = pl.DataFrame(
        {
            "ID": ["d1", "d2"],
            "time": ["2024-01-01T00:00:00Z", None],
            "v": [1.25, None],
            "other": [1, 2],
        }
    )
    path = tmp_path / "x.parquet"
    frame.write_parquet(path)
    batches, reader = read_all(path.read_bytes(), batch_rows=1)
    assert reader.format == "parquet"
    assert reader.unknown_columns == ["other"]
    assert [b.lines for b in batches] == [[1], [2]]
    assert list(batches[0].columns["v"]) == ["1.25"]
    assert list(batches[1].columns["ts"]) == [None]
    assert '"ID":"d1"' in batches[0].record_text(0).replace(" ", "")


def test_empty_source_is_a_source_error() -> None:
    with pytest.raises(SourceFormatError, match="empty"):
        read_all(b"\r\n\n   \n")
    with pytest.raises(SourceFormatError, match="empty"):
        read_all(gzip.compress(b""))


def test_a_rejected_record_with_a_newline_inside_a_field_parses_back() -> None:
    # The csv-module path re-rendered records with no line terminator, so a field holding a
    # newline was written unquoted: the rejects file's record no longer parsed to its fields.
    import csv

    data = b'id,time,v,kind\nd1,2024-01-01T00:00:00Z,"1\n2",a,"x\ry"\n'
    (batch,), _ = read_all(data, fast_csv=False)
    (row,) = batch.rejected  # ragged: five fields
    assert list(csv.reader(io.StringIO(row.record, newline=""))) == [
        ["d1", "2024-01-01T00:00:00Z", "1\n2", "a", "x\ry"]
    ]
