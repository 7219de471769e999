"""`iotpipe split`: parts cut at record boundaries, header repeated, bytes unchanged."""

from __future__ import annotations

import csv
import gzip
import io
from pathlib import Path

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from iotpipe.cli import main
from iotpipe.errors import IotpipeError
from iotpipe.split import parse_size, split_file

HEADER = b"\xef\xbb\xbfdevice_id,timestamp,note\r\n"


def records_of(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def write(path: Path, data: bytes, compressed: bool = False) -> Path:
    path.write_bytes(gzip.compress(data) if compressed else data)
    return path


@pytest.mark.parametrize("compressed", [False, True])
def test_quoted_line_breaks_stay_inside_their_record(tmp_path: Path, compressed: bool) -> None:
    body = b"".join(
        b'd%d,2025-01-01T00:00:%02dZ,"two\nlines, ""quoted"""\r\n' % (i, i) for i in range(25)
    )
    name = "f.csv.gz" if compressed else "f.csv"
    source = write(tmp_path / name, HEADER + body, compressed)
    result = split_file(source, tmp_path / "out", max_rows=10)
    assert result.records == [10, 10, 5]
    assert [p.name for p in result.parts] == [f"f.part-000{i}{name[1:]}" for i in (1, 2, 3)]
    raw = [p.read_bytes() for p in result.parts]
    texts = [gzip.decompress(r) for r in raw] if compressed else raw
    assert all(t.startswith(HEADER) for t in texts)
    assert b"".join(t[len(HEADER) :] for t in texts) == body  # every byte, in order
    rows = [r for t in texts for r in records_of(t)[1:]]
    assert rows == records_of(HEADER + body)[1:]
    assert rows[0][2] == 'two\nlines, "quoted"'


def test_a_byte_limit_cuts_at_the_next_boundary_and_a_last_line_may_lack_its_end(
    tmp_path: Path,
) -> None:
    body = b"".join(b"d,%d,x\n" % i for i in range(100)) + b"d,100,last"
    source = write(tmp_path / "g.csv", b"a,b,c\n" + body)
    result = split_file(source, tmp_path / "out", max_bytes=200)
    texts = [p.read_bytes() for p in result.parts]
    assert b"".join(t[len(b"a,b,c\n") :] for t in texts) == body
    assert sum(result.records) == 101
    assert all(t.endswith(b"\n") for t in texts[:-1]) and texts[-1].endswith(b"last")
    assert all(size >= 200 for size in result.part_bytes[:-1])


def test_trailing_blank_lines_stay_with_the_last_part(tmp_path: Path) -> None:
    source = write(tmp_path / "b.csv", b"h\n1\n2\n\n\r\n")
    result = split_file(source, tmp_path / "out", max_rows=2)
    assert [p.read_bytes() for p in result.parts] == [b"h\n1\n2\n\n\r\n"]
    assert result.records == [4]


def test_a_headerless_file_and_ndjson(tmp_path: Path) -> None:
    source = write(tmp_path / "h.csv", b"1,2\n3,4\n5,6\n")
    result = split_file(source, tmp_path / "out", max_rows=2, header=False)
    assert [p.read_bytes() for p in result.parts] == [b"1,2\n3,4\n", b"5,6\n"]
    lines = b"".join(b'{"device_id": "d", "v": "a\\nb", "i": %d}\n' % i for i in range(5))
    result = split_file(write(tmp_path / "n.ndjson", lines), tmp_path / "nd", max_rows=2,
                        header=False)  # fmt: skip
    assert b"".join(p.read_bytes() for p in result.parts) == lines
    assert result.records == [2, 2, 1]


def test_what_split_refuses(tmp_path: Path) -> None:
    with pytest.raises(IotpipeError, match="inside a quoted field"):
        split_file(write(tmp_path / "q.csv", b'a,b\n1,"open\n2,3\n'), tmp_path / "o", max_rows=1)
    with pytest.raises(IotpipeError, match="row groups"):
        split_file(write(tmp_path / "p.parquet", b"PAR1...."), tmp_path / "o", max_rows=1)
    utf16 = "a,b\n1,2\n".encode("utf-16")
    with pytest.raises(IotpipeError, match="UTF-16"):
        split_file(write(tmp_path / "u.csv", utf16), tmp_path / "o", max_rows=1)
    with pytest.raises(IotpipeError, match="part size"):
        split_file(write(tmp_path / "x.csv", b"a\n1\n"), tmp_path / "o")
    assert (parse_size("500MB"), parse_size("2gb"), parse_size("750k"), parse_size("10")) == (
        500_000_000,
        2_000_000_000,
        750_000,
        10,
    )
    for bad in ("", "MB", "-1", "5 parsecs"):
        with pytest.raises(IotpipeError):
            parse_size(bad)


def test_the_command_prints_each_part(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = write(tmp_path / "c.csv", b"device_id,timestamp\n" + b"d,1\n" * 5)
    assert main(["split", str(source), "--rows", "2", "--out", str(tmp_path / "o")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split("  ")[1] for line in out] == [
        "2 records, 28 bytes of text",
        "2 records, 28 bytes of text",
        "1 records, 24 bytes of text",
    ]


@settings(max_examples=60, deadline=None)
@given(
    rows=st.lists(
        st.lists(st.text(alphabet='ab,"\n\r ', max_size=6), min_size=2, max_size=2),
        max_size=30,
    ),
    per_part=st.integers(1, 7),
)
def test_any_csv_the_csv_module_writes_splits_into_the_same_records(
    rows: list[list[str]], per_part: int, tmp_path_factory: pytest.TempPathFactory
) -> None:
    out = io.StringIO(newline="")
    csv.writer(out, lineterminator="\n").writerows([["h1", "h2"], *rows])
    data = out.getvalue().encode()
    where = tmp_path_factory.mktemp("split")
    result = split_file(write(where / "r.csv", data), where / "o", max_rows=per_part)
    got = [r for p in result.parts for r in records_of(p.read_bytes())[1:]]
    assert got == records_of(data)[1:]
    assert all(n == per_part for n in result.records[:-1])
    event(f"parts: {min(len(result.parts), 4)}{'+' if len(result.parts) >= 4 else ''}")
    event("a quoted line break" if any("\n" in v for r in rows for v in r) else "no line break")
