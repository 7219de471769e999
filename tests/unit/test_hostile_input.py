"""Issue "Trust": files that were read wrongly or sank whole (line ends, encodings, huge records,
deep nesting, odd headers). Each test failed on the code before the issue."""

from __future__ import annotations

import gzip
import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from iotpipe.contract import contract_from_dict, load_contract
from iotpipe.errors import SourceFormatError
from iotpipe.ingest import validate_source
from tests.conftest import EXAMPLES, REAL_DATA
from tests.unit.helpers import NOW, clean_bytes, contract

BEIJING = REAL_DATA / "beijing_airquality" / "PRSA_Data_Dongsi_20130301-20170228.csv"
TRUTH_KEYS = ("rows_read", "rows_valid", "rows_rejected", "rows_duplicate", "rows_conflict")


def report_of(data: bytes, c: Any, **kw: Any) -> dict[str, Any]:
    body: dict[str, Any] = validate_source(
        io.BytesIO(data), c, source="test", now=NOW, **kw
    ).to_dict()
    return body


# -- finding 3: CR-only line ends ---------------------------------------------------------


def test_cr_only_file_reads_like_its_lf_twin() -> None:
    beijing = load_contract(EXAMPLES / "beijing_airquality.yaml")
    crlf = BEIJING.read_bytes()
    assert crlf.count(b"\r\n") == crlf.count(b"\n") > 1000  # the slice is CRLF throughout
    cr_only = crlf.replace(b"\r\n", b"\r")
    lf = crlf.replace(b"\r\n", b"\n")
    expected = report_of(lf, beijing)
    assert expected["rows_read"] == 1050
    for data in (cr_only, gzip.compress(cr_only)):
        got = report_of(data, beijing)
        assert {k: got[k] for k in TRUTH_KEYS} == {k: expected[k] for k in TRUTH_KEYS}
    rows_lf, _, _ = clean_bytes(lf, beijing, batch_rows=300)
    rows_cr, _, _ = clean_bytes(cr_only, beijing, batch_rows=300)
    assert rows_cr.equals(rows_lf)


# -- finding 8: encodings --------------------------------------------------------------------

CSV_TEXT = "id,time,v,kind\nthermo-é,2024-01-01T00:00:00Z,1,a\nplug-€,2024-01-01T00:01:00Z,2,b\n"


@pytest.mark.parametrize(
    ("codec", "declared"),
    [
        ("utf-16", "utf-8"),  # a BOM says what it is, whatever the contract says
        ("utf-16", "utf-16"),
        ("utf-32", "utf-8"),
        ("cp1252", "cp1252"),
    ],
)
def test_declared_or_marked_encodings_read_like_utf8(codec: str, declared: str) -> None:
    c = contract(dialect={"encoding": declared})
    rows, rejected, _ = clean_bytes(CSV_TEXT.encode(codec), c)
    assert not rejected
    assert rows.get_column("device_id").to_list() == ["thermo-é", "plug-€"]


def test_latin1_declared_reads_accents() -> None:
    text = CSV_TEXT.replace("€", "e")
    latin1 = contract(dialect={"encoding": "latin-1"})
    rows, rejected, _ = clean_bytes(text.encode("latin-1"), latin1)
    assert not rejected and rows.get_column("device_id").to_list() == ["thermo-é", "plug-e"]


@pytest.mark.parametrize("fast", [True, False])
def test_invalid_bytes_reject_the_row_with_its_line(fast: bool) -> None:
    # Latin-1 bytes in a UTF-8 file: once stored as "d\ufffdv-00001" and counted nowhere.
    data = (
        b"id,time,v,kind\n"
        b"dev-1,2024-01-01T00:00:00Z,1,a\n"
        b"d\xe9v-2,2024-01-01T00:00:00Z,2,a\n"
        b"dev-3,2024-01-01T00:00:00Z,3,caf\xe9\n"
        b"dev-4,2024-01-01T00:00:00Z,4,b\n"
    )
    c = contract()
    reader_kw: dict[str, Any] = {} if fast else {"fast_csv": False}
    from iotpipe.clean import Cleaner
    from iotpipe.readers import open_records

    cleaner = Cleaner(c, now=NOW)
    rejected = []
    stored = []
    for batch in open_records(io.BytesIO(data), c, **reader_kw):
        out = cleaner.clean(batch)
        rejected += out.rejected
        stored += out.rows.get_column("device_id").to_list()
    assert [(r.line, r.reason) for r in rejected] == [
        (3, "invalid_encoding"),
        (4, "invalid_encoding"),
    ]
    assert stored == ["dev-1", "dev-4"]
    assert cleaner.counters.rows_read == 4


def test_utf16_ndjson() -> None:
    lines = [
        json.dumps({"id": "é1", "time": "2024-01-01T00:00:00Z", "v": 1}),
        json.dumps({"id": "é2", "time": "2024-01-01T00:00:00Z", "v": 2}),
    ]
    data = "\n".join(lines).encode("utf-16")
    rows, rejected, _ = clean_bytes(data, contract())
    assert not rejected and rows.get_column("device_id").to_list() == ["é1", "é2"]


# -- finding 10: one huge record must not sink the file or the memory ----------------------


@pytest.mark.parametrize("fast", [True, False])
def test_a_line_over_the_limit_is_rejected_and_reading_goes_on(fast: bool) -> None:
    c = contract(dialect={"max_record_bytes": 200})
    big_field = "x" * 5000
    data = (
        "id,time,v,kind\n"
        "d1,2024-01-01T00:00:00Z,1,a\n"
        f"d2,2024-01-01T00:00:00Z,2,{big_field}\n"
        "d3,2024-01-01T00:00:00Z,3,b\n"
        + "y" * 100_000
        + "\n"
        + "d4,2024-01-01T00:00:00Z,4,a\n"
        + "z" * 300  # a long last line without a line end
    ).encode()
    body = report_of(data, c, batch_rows=2) if fast else None
    from iotpipe.clean import Cleaner
    from iotpipe.readers import open_records

    cleaner = Cleaner(c, now=NOW)
    rejected = []
    stored: list[str] = []
    for batch in open_records(io.BytesIO(data), c, batch_rows=2, fast_csv=fast):
        out = cleaner.clean(batch)
        rejected += out.rejected
        stored += out.rows.get_column("device_id").to_list()
    assert stored == ["d1", "d3", "d4"]
    assert [(r.line, r.reason) for r in rejected] == [
        (3, "record_too_large"),
        (5, "record_too_large"),
        (7, "record_too_large"),
    ]
    assert "5,026 bytes" in rejected[0].detail and rejected[0].record.startswith("d2,2024")
    assert cleaner.counters.rows_read == 6
    if body is not None:
        assert body["rows_read"] == 6 and body["reject_reasons"] == {"record_too_large": 3}


def test_a_header_over_the_limit_fails_the_file() -> None:
    c = contract(dialect={"max_record_bytes": 100})
    data = ("id,time,v,kind," + ",".join(f"extra{i}" for i in range(50)) + "\n").encode()
    with pytest.raises(SourceFormatError, match="header line"):
        clean_bytes(data + b"d1,2024-01-01T00:00:00Z,1,a\n", c)


def test_ndjson_line_over_the_limit() -> None:
    c = contract(dialect={"max_record_bytes": 300})
    lines = [
        json.dumps({"id": "a", "time": "2024-01-01T00:00:00Z", "v": 1}),
        json.dumps({"id": "b", "time": "2024-01-01T00:00:00Z", "v": 2, "pad": "p" * 1000}),
        json.dumps({"id": "c", "time": "2024-01-01T00:00:00Z", "v": 3}),
    ]
    rows, rejected, counters = clean_bytes("\n".join(lines).encode(), c)
    assert rows.get_column("device_id").to_list() == ["a", "c"]
    assert [(r.line, r.reason) for r in rejected] == [(2, "record_too_large")]
    assert counters.rows_read == 3


def test_a_gigabyte_line_in_a_small_gzip_stays_under_512_mb(tmp_path: Path) -> None:
    # 1 MB of gzip that expands to one 1 GiB line once drove RSS past 4 GB.
    path = tmp_path / "bomb.csv.gz"
    block = b"x" * (1 << 20)
    with gzip.open(path, "wb", compresslevel=9) as bomb:
        bomb.write(b"id,time,v,kind\nd1,2024-01-01T00:00:00Z,1,a\nd2,2024-01-01T00:00:00Z,")
        for _ in range(1024):
            bomb.write(block)
        bomb.write(b",1,a\nd3,2024-01-01T00:00:00Z,3,b\n")
    assert path.stat().st_size < 2 * (1 << 20)
    probe = (
        "import json, sys\n"
        "from iotpipe.contract import load_contract\n"
        "from iotpipe.ingest import validate_source\n"
        "from tests.unit.helpers import contract\n"
        f"with open({str(path)!r}, 'rb') as f:\n"
        "    body = validate_source(f, contract(), source='bomb').to_dict()\n"
        "rss = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]\n"
        "print(json.dumps({'body': body, 'peak_kb': int(rss)}))\n"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=root, capture_output=True, text=True, check=True
    )
    result = json.loads(out.stdout)
    body = result["body"]
    assert body["rows_read"] == 3 and body["rows_valid"] == 2
    assert body["reject_reasons"] == {"record_too_large": 1}
    assert result["peak_kb"] < 512 * 1024, result["peak_kb"]


# -- finding 9: JSON device ids that are not scalars, duplicate header names ---------------


def test_ndjson_device_ids_that_are_arrays_or_objects_are_rejected() -> None:
    lines = [
        {"id": "ok", "time": "2024-01-01T00:00:00Z", "v": 1},
        {"id": ["a", "b"], "time": "2024-01-01T00:00:00Z", "v": 2},
        {"id": {"x": 1}, "time": "2024-01-01T00:00:00Z", "v": 3},
        {"id": 17, "time": "2024-01-01T00:00:00Z", "v": 4},
    ]
    rows, rejected, _ = clean_bytes("\n".join(json.dumps(r) for r in lines).encode(), contract())
    assert rows.get_column("device_id").to_list() == ["ok", "17"]
    assert [(r.line, r.reason) for r in rejected] == [
        (2, "invalid_device_id"),
        (3, "invalid_device_id"),
    ]
    assert "array" in rejected[0].detail and "object" in rejected[1].detail


def test_duplicate_header_names_fail_the_file_naming_them() -> None:
    data = b"id,time,v,V,kind\nd1,2024-01-01T00:00:00Z,1,2,a\n"
    with pytest.raises(SourceFormatError) as info:
        clean_bytes(data, contract())
    message = str(info.value)
    assert "'v'" in message and "columns 3 and 4" in message and "v#2" in message


def test_the_contract_says_which_duplicate_to_take() -> None:
    data = b"id,time,v,V,kind\nd1,2024-01-01T00:00:00Z,1,2,a\n"
    c = contract(
        fields=[
            {"name": "v", "type": "number", "source": "v#2"},
            {"name": "kind", "type": "category"},
        ]
    )
    rows, _, _ = clean_bytes(data, c)
    assert rows.get_column("v").to_list() == [2.0]


def test_unused_duplicate_columns_are_only_listed() -> None:
    data = b"id,time,v,kind,note,note\nd1,2024-01-01T00:00:00Z,1,a,x,y\n"
    body = report_of(data, contract())
    assert body["status"] == "validated" and body["unknown_columns"] == ["note"]


# -- finding 11: row-level problems stay row-level -----------------------------------------


def test_deeply_nested_json_line_is_one_reject() -> None:
    deep = '{"id": "x", "time": "2024-01-01T00:00:00Z", "v": ' + "[" * 100_000 + "]" * 100_000 + "}"
    lines = [
        json.dumps({"id": "a", "time": "2024-01-01T00:00:00Z", "v": 1}),
        deep,
        json.dumps({"id": "b", "time": "2024-01-01T00:00:00Z", "v": 2}),
    ]
    c = contract(dialect={"max_record_bytes": 1 << 20})
    rows, rejected, _ = clean_bytes("\n".join(lines).encode(), c)
    assert rows.get_column("device_id").to_list() == ["a", "b"]
    assert [(r.line, r.reason) for r in rejected] == [(2, "malformed_json")]
    assert "deep" in rejected[0].detail


def test_parquet_list_column_as_category_is_nulled_not_fatal(tmp_path: Path) -> None:
    # It raised Polars' InvalidOperationError and failed the whole file.
    frame = pl.DataFrame(
        {
            "id": ["d1", "d2"],
            "time": ["2024-01-01T00:00:00Z", "2024-01-01T00:01:00Z"],
            "v": [1.0, 2.0],
            "kind": [[1, 2], [3]],
        }
    )
    path = tmp_path / "nested.parquet"
    frame.write_parquet(path)
    c = contract_from_dict(
        {
            "name": "t",
            "device_id": "id",
            "timestamp": "time",
            "fields": [
                {"name": "v", "type": "number"},
                {"name": "kind", "type": "category"},
                {"name": "kind_text", "type": "string", "source": "kind"},
            ],
        }
    )
    body = report_of(path.read_bytes(), c)
    assert body["status"] == "validated" and body["rows_valid"] == 2
    assert body["nulled"] == {"kind": 2}
    rows, _, _ = clean_bytes(path.read_bytes(), c)
    assert rows.get_column("kind").to_list() == [None, None]
    # A string field keeps such a value, as compact JSON: nothing is lost.
    assert rows.get_column("kind_text").to_list() == ["[1,2]", "[3]"]
