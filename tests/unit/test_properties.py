"""Property tests: every row read is accounted for exactly once; fast paths equal slow ones."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from dataclasses import dataclass
from typing import Any
from unittest import mock

import polars as pl
import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from polars.testing import assert_series_equal

from iotpipe.clean import Cleaner
from iotpipe.errors import SourceFormatError
from iotpipe.readers import RecordBatch, fastcsv, open_records
from iotpipe.timestamps import parse_timestamps, timestamp_expr
from iotpipe.values import marker_spellings
from tests.budget import examples
from tests.unit.helpers import NOW, contract

REASONS = {
    "malformed_row", "malformed_json", "missing_device_id", "invalid_device_id",
    "missing_timestamp", "invalid_timestamp", "timestamp_out_of_range", "missing_value",
    "invalid_value", "no_measurements", "invalid_encoding", "record_too_large",
}  # fmt: skip
TIMESTAMPS = st.sampled_from(
    ["2024-01-01T00:00:00Z", "2024-01-01 00:00:00", "1704067200", "1704067200000",
     "2024/01/01 00:00:01", "2024-01-01T01:00:00+01:00", "bad", "", "NA", "1999-01-01",
     "2024-02-30", "2024-01-01T00:00:00.5Z"]
)  # fmt: skip
# A bare CR is left out: the csv writer does not quote it, so such a file is ambiguous.
TEXT = st.text(alphabet=st.characters(codec="latin-1", exclude_characters="\x00\r"), max_size=12)
VALUES = st.one_of(
    TEXT, st.sampled_from(["1", "2.5", "-3", "1e3", "NA", " 7 ", "101", "a", "B", "?"])
)
DEVICES = st.one_of(st.sampled_from(["d1", "d2", " d3 ", "", "NA"]), TEXT)


def run(data: bytes, c: Any, batch_rows: int) -> tuple[Any, pl.DataFrame, list[int]]:
    """Read and clean everything: the counters, the stored rows (last per key), rejected lines."""
    cleaner = Cleaner(c, now=NOW)
    frames: list[pl.DataFrame] = []
    lines: list[int] = []
    for batch in open_records(io.BytesIO(data), c, batch_rows=batch_rows):
        out = cleaner.clean(batch)
        frames.append(out.rows)
        for r in out.rejected:
            assert r.reason in REASONS
            lines.append(r.line)
    stored = pl.concat(frames) if frames else pl.DataFrame()
    if stored.height:  # what a store holds: one row per key, the last one
        stored = stored.unique(["device_id", "ts"], keep="last", maintain_order=True)
    return cleaner.counters, stored, lines


def assert_accounted(counters: Any, rejected_lines: list[int]) -> None:
    assert counters.rows_read == (
        counters.rows_valid
        + counters.rows_rejected
        + counters.rows_duplicate
        + counters.rows_conflict
    )
    assert counters.rows_rejected == len(rejected_lines) == sum(counters.reject_reasons.values())
    assert len(set(rejected_lines)) == len(rejected_lines)


@dataclass
class CsvFile:
    """A generated CSV file and what the generator knows about it (counted here, not read)."""

    data: bytes
    delimiter: str
    encoding: str
    starts: list[int]  # the line each data record starts on
    offsets: list[int]  # the byte offset each data record starts at
    header_bytes: int  # where the data (or a blank line before it) starts

    def contract(self) -> Any:
        return contract(dialect={"delimiter": self.delimiter, "encoding": self.encoding})


@st.composite
def csv_files(draw: st.DrawFn) -> CsvFile:
    delimiter = draw(st.sampled_from(",;\t|"))
    encoding = draw(st.sampled_from(["utf-8", "latin-1"]))
    rows = draw(
        st.lists(
            st.one_of(
                st.tuples(DEVICES, TIMESTAMPS, VALUES, VALUES).map(list),
                st.lists(VALUES, min_size=2, max_size=6),  # ragged, mostly
            ),
            max_size=40,
        )
    )
    terminator = draw(st.sampled_from(["\n", "\r\n"]))
    if terminator == "\r\n" and draw(st.booleans()):
        # With CRLF line ends the writer quotes a field holding a bare CR: unambiguous.
        rows = [[v.replace("a", "a\r") for v in row] for row in rows]
    out = io.StringIO(newline="")
    writer = csv.writer(
        out,
        delimiter=delimiter,
        lineterminator=terminator,
        quoting=draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL])),
    )
    bom = "\ufeff" if encoding == "utf-8" and draw(st.booleans()) else ""
    out.write(bom)
    writer.writerow(["id", "time", "v", "kind"])
    header = len(out.getvalue().encode(encoding))
    starts, offsets = [], []
    for row in rows:
        if draw(st.booleans()) and draw(st.booleans()):
            out.write("\n")  # a blank line: not a row
        text = out.getvalue()
        if any(value.strip() for value in row):  # every field empty (",,,"): a blank line
            # A line ends at LF, CRLF or a bare CR (inside a quoted field too).
            starts.append(len(re.findall(r"\r\n|\r|\n", text)) + 1)
            offsets.append(len(text.encode(encoding)))
        writer.writerow(row)
    out.write(draw(st.sampled_from(["", "\n", "\n\n", "\r\n  \r\n"])))
    return CsvFile(out.getvalue().encode(encoding), delimiter, encoding, starts, offsets, header)


@settings(max_examples=examples(150), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(csv_files(), st.integers(min_value=1, max_value=50))
def test_csv_every_row_accounted(file: CsvFile, batch_rows: int) -> None:
    counters, stored, lines = run(file.data, file.contract(), batch_rows)
    event(f"delimiter {file.delimiter!r}, {file.encoding}")
    event("some rows rejected" if lines else "no row rejected")
    # Against the generator's own count: every record written is read, none split, merged
    # or dropped, whatever the dialect; each reject is at the line its record starts on.
    assert counters.rows_read == len(file.starts)
    assert set(lines) <= set(file.starts)
    assert_accounted(counters, lines)
    assert stored.height == counters.rows_valid  # one stored row per valid key


@settings(max_examples=examples(100), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(csv_files(), st.data())
def test_truncated_csv_is_accounted(file: CsvFile, data: st.DataObject) -> None:
    # Cut anywhere after the header (a cut header fails the file as a whole: a reader test).
    cut = data.draw(st.integers(min_value=file.header_bytes, max_value=len(file.data)))
    started = [o for o in file.offsets if o < cut]
    expected = len(started)
    if started:  # the last record begun may be cut to nothing but blanks: then it is no row
        partial = file.data[started[-1] : cut].decode(file.encoding, errors="replace")
        fields = list(csv.reader(io.StringIO(partial, newline=""), delimiter=file.delimiter))
        if not any(value.strip() for record in fields for value in record):
            expected -= 1
    counters, _, lines = run(file.data[:cut], file.contract(), 7)
    event(
        "cut inside a record" if cut not in (*file.offsets, len(file.data)) else "cut at a boundary"
    )
    assert counters.rows_read == expected
    assert_accounted(counters, lines)


JSON_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), TEXT),
    lambda children: st.one_of(
        st.lists(children, max_size=3), st.dictionaries(TEXT, children, max_size=3)
    ),
    max_leaves=6,
)


@st.composite
def ndjson_files(draw: st.DrawFn) -> tuple[bytes, int]:
    lines: list[str] = []
    records = 0
    for _ in range(draw(st.integers(min_value=1, max_value=40))):
        kind = draw(st.sampled_from(["good", "good", "noise", "blank", "array"]))
        if kind == "blank":
            lines.append(draw(st.sampled_from(["", "  "])))
            continue
        records += 1
        if kind == "good":
            record = {
                "id": draw(DEVICES),
                "time": draw(TIMESTAMPS),
                "v": draw(JSON_VALUES),
                "kind": draw(JSON_VALUES),
            }
            lines.append(json.dumps(record))
        elif kind == "array":
            lines.append(json.dumps([1, {"id": "x"}]))
        else:
            lines.append("{" + draw(TEXT).replace("\n", " ").replace("\r", " "))
    # The first record is an object with the required keys, so the file fits the contract.
    head = json.dumps({"id": "d0", "time": "2024-01-01", "v": 1})
    return ("\n".join([head, *lines]) + "\n").encode("utf-8"), records + 1


@settings(max_examples=examples(150), deadline=None)
@given(ndjson_files(), st.integers(min_value=1, max_value=20))
def test_ndjson_every_line_accounted(file: tuple[bytes, int], batch_rows: int) -> None:
    data, records = file
    counters, _, lines = run(data, contract(), batch_rows)
    event("some lines rejected" if lines else "no line rejected")
    assert counters.rows_read == records
    assert_accounted(counters, lines)


@settings(max_examples=examples(100), deadline=None)
@given(
    st.binary(max_size=2000),
    st.sampled_from([b"", b"id,time,v\n", b'{"id": "a", "time": 1}\n', b"\x1f\x8b"]),
)
def test_binary_noise_never_crashes(noise: bytes, prefix: bytes) -> None:
    # Noise either fails the file as a whole (SourceFormatError) or is read row by row, and
    # then every row it makes is accounted for; nothing else may happen.
    try:
        counters, _, lines = run(prefix + noise, contract(), 5)
    except SourceFormatError:
        event("failed as a whole")
        return
    event("read row by row")
    assert_accounted(counters, lines)


def _flatten(file: CsvFile, fast: bool, batch_rows: int) -> tuple[Any, ...]:
    lines: list[int] = []
    values: dict[str, list[Any]] = {}
    records: list[list[list[str]]] = []
    rejected: list[tuple[int, str, list[list[str]]]] = []

    def fields(text: str) -> list[list[str]]:  # a record's text, as the csv module parses it
        return list(csv.reader(io.StringIO(text, newline=""), delimiter=file.delimiter))

    reader = open_records(
        io.BytesIO(file.data), file.contract(), batch_rows=batch_rows, fast_csv=fast
    )
    for batch in reader:
        lines += list(batch.lines)
        for name, column in batch.columns.items():
            values.setdefault(name, []).extend(list(column))
        records += [fields(batch.record_text(i)) for i in range(len(batch.lines))]
        rejected += [(r.line, r.reason, fields(r.record)) for r in batch.rejected]
    return lines, values, sorted(rejected), records


@settings(max_examples=examples(200), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(csv_files(), st.integers(min_value=1, max_value=50))
def test_polars_chunks_read_exactly_like_the_csv_module(file: CsvFile, batch_rows: int) -> None:
    slow = _flatten(file, False, batch_rows)
    fast = _flatten(file, True, batch_rows)
    event("with rejects" if slow[2] else "no rejects")
    assert fast[0] == slow[0]  # the same records, at the same lines
    assert fast[1] == slow[1]  # the same values
    assert fast[2] == slow[2]  # the same rejects, reasons and records
    assert fast[3] == slow[3]  # the same record texts (as fields: quoting may differ)


@settings(max_examples=examples(100), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(csv_files(), st.integers(min_value=1, max_value=50))
def test_polars_chunks_cut_small_read_exactly_like_the_csv_module(
    file: CsvFile, batch_rows: int
) -> None:
    # Chunks of 16 to 64 bytes: records cross chunk boundaries, quoted newlines included.
    with (
        mock.patch.object(fastcsv, "FIRST_CHUNK_BYTES", 16),
        mock.patch.object(fastcsv, "CHUNK_BYTES", 64),
    ):
        fast = _flatten(file, True, batch_rows)
    slow = _flatten(file, False, batch_rows)
    event("with rejects" if slow[2] else "no rejects")
    assert fast == slow


@pytest.mark.slow
@settings(max_examples=examples(3000), deadline=None, suppress_health_check=list(HealthCheck))
@given(csv_files(), st.integers(min_value=1, max_value=50))
def test_polars_chunks_equal_the_csv_module_long(file: CsvFile, batch_rows: int) -> None:
    test_polars_chunks_read_exactly_like_the_csv_module.hypothesis.inner_test(file, batch_rows)  # type: ignore[attr-defined]


@pytest.mark.slow
@settings(max_examples=examples(2000), deadline=None, suppress_health_check=list(HealthCheck))
@given(csv_files(), st.integers(min_value=1, max_value=50))
def test_csv_every_row_accounted_long(file: CsvFile, batch_rows: int) -> None:
    test_csv_every_row_accounted.hypothesis.inner_test(file, batch_rows)  # type: ignore[attr-defined]


@st.composite
def timestamp_texts(draw: st.DrawFn) -> str:
    """Strings near the timestamp shapes: digits of any width, mixed separators, offsets."""

    def digits(low: int, high: int) -> str:
        return draw(st.text(alphabet="0123456789", min_size=low, max_size=high))

    if draw(st.booleans()):  # the canonical shapes, with any values (day 31 of February...)

        def two(high: int) -> str:  # mostly valid, sometimes one past the end
            return f"{draw(st.integers(0, high)):02d}"

        dash = st.sampled_from("-/")  # loggers write 2024/05/01 too
        text = (
            f"{draw(st.integers(0, 9999)):04d}{draw(dash)}{two(13)}{draw(dash)}{two(32)}"
            f"{draw(st.sampled_from('T '))}{two(24)}:{two(60)}:{two(60)}"
        )
        if draw(st.booleans()):
            text += "." + digits(1, 9)
        sign = draw(st.sampled_from(["", "Z", "+", "-"]))
        return text + sign + (f"{two(25)}:{two(60)}" if sign in {"+", "-"} else "")
    date = draw(st.sampled_from(["-", "/"])).join([digits(3, 5), digits(1, 3), digits(1, 3)])
    if draw(st.booleans()):
        return (
            draw(st.sampled_from(["", "+", "-"]))
            + digits(1, 14)
            + ("." + digits(1, 4) if draw(st.booleans()) else "")
        )
    text = date
    if draw(st.integers(0, 5)):
        text += draw(st.sampled_from(["T", " ", "  ", "t", "_"]))
        text += ":".join(digits(1, 3) for _ in range(draw(st.integers(2, 3))))
        if draw(st.booleans()):
            text += draw(st.sampled_from([".", ","])) + digits(1, 11)
        text += draw(st.sampled_from(["", "", "Z", "z", " Z", "+", "-"])) + draw(
            st.sampled_from(["", "00:00", "05:30", "0530", "14", "99:99", "1:00", "23:59"])
        )
    return text + draw(st.sampled_from(["", "", "x", " "]))


@settings(max_examples=examples(400), deadline=None)
@given(
    st.lists(timestamp_texts(), min_size=1, max_size=30),
    st.sampled_from(["UTC", "Europe/London", "America/St_Johns", "Asia/Kathmandu"]),
)
@example(  # canonical but for a tenth fraction digit: not the fast path's, and null
    texts=["2024-01-05 03:04:05.1234567891", "2024-01-05T03:04:05.1234567891Z"],
    timezone="UTC",
)
def test_fast_timestamps_equal_the_general_parser(texts: list[str], timezone: str) -> None:
    raw = pl.Series("t", texts, dtype=pl.String)
    general = raw.to_frame().select(timestamp_expr(pl.col("t"), timezone)).to_series()
    assert_series_equal(parse_timestamps(raw, timezone), general, check_names=False)


MARKER_TEXT = st.text(alphabet="naNAulLoOe/-?kK\u212a\u0130\u0131 \t", max_size=6)

NUMBER_TEXT = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-(10**20), 10**20).map(str),
    st.text(alphabet="0123456789.,eE+-_ \t\u00a0naNiIfxX?/", max_size=8),
    st.sampled_from(["", " 5 ", "nan", "NaN", "-", "N/A", "1e400", "0x10", "-0", ".5", "5."]),
)


CATEGORY_TEXT = st.one_of(
    st.sampled_from(["a", "b", "A", " a", "b\t", "na", "NA", "", "c", "\u00a0a"]),
    st.text(alphabet="abAB \tn", max_size=3),
)


@settings(max_examples=examples(300), deadline=None)
@given(st.lists(st.tuples(NUMBER_TEXT, NUMBER_TEXT, CATEGORY_TEXT), min_size=1, max_size=40))
def test_texts_read_before_trimming_equal_trimmed_and_nulled_ones(
    rows: list[tuple[str, str, str]],
) -> None:
    # `Cleaner._quick` reads the texts of number fields and closed categories before
    # trimming them or nulling their markers; the checked rows (values, texts in the
    # details, nulled counts) are the same as when every text is trimmed, nulled and
    # parsed. An invalid value of v or kind rejects its row, one of n is nulled; a marker is
    # a missing value.
    c = contract(
        fields=[
            {
                "name": "v",
                "type": "number",
                "on_invalid": "reject",
                "constraints": {"minimum": -50, "maximum": 1e300},
            },
            {"name": "n", "type": "integer", "on_invalid": "null"},
            {
                "name": "kind",
                "type": "category",
                "on_invalid": "reject",
                "constraints": {"enum": ["a", "b"]},
            },
        ]
    )
    n = len(rows)
    columns = {name: [r[i] for r in rows] for i, name in enumerate(["v", "n", "kind"])}
    batch = RecordBatch(
        list(range(2, n + 2)),
        {"device_id": ["d"] * n, "ts": ["2024-01-01T00:00:00Z"] * n, **columns},
        ["|".join(r) for r in rows],
    )
    quick = Cleaner(c, now=NOW)
    assert set(quick._values.quick) == {"v", "n", "kind"}
    with mock.patch("iotpipe.clean._reads_quickly", return_value=False):
        slow = Cleaner(c, now=NOW)
    assert not slow._values.quick
    with mock.patch("iotpipe.clean.QUICK_MIN_ROWS", 0):  # the quick path, at any size
        got = quick.check(batch)
    small = quick.check(batch)  # a small batch: every text through the full path
    want = slow.check(batch)
    for checked in (got, small):
        assert checked.kept.to_dicts() == want.kept.to_dicts()
        assert checked.rejected == want.rejected
        assert checked.counters == want.counters


@settings(max_examples=examples(300), deadline=None)
@given(
    st.lists(MARKER_TEXT, max_size=40),
    st.frozensets(st.text(alphabet="nauloe/-?k ", max_size=5), max_size=6),
)
def test_marker_spellings_match_like_lowercasing(
    values: list[str], markers: frozenset[str]
) -> None:
    spellings = marker_spellings(markers)
    assert spellings is not None
    raw = pl.Series("v", values, dtype=pl.String)
    fast = raw.is_in(spellings)
    slow = raw.str.to_lowercase().is_in(sorted(markers))
    assert fast.to_list() == slow.to_list()


def test_marker_spellings_give_up_on_what_they_cannot_enumerate() -> None:
    assert marker_spellings(frozenset({"não"})) is None  # not ASCII
    assert marker_spellings(frozenset({"NA"})) is None  # not lowercase
    assert marker_spellings(frozenset({"not available here"})) is None  # 2**16 spellings
    assert marker_spellings(frozenset({"na", ""})) == ["", "NA", "Na", "nA", "na"]


def reference_dedupe(
    batches: list[list[tuple[str, int, int]]],
) -> tuple[list[list[tuple[str, int, int]]], tuple[int, int, int]]:
    """De-duplicate row by row, the rule written out: the winners of each batch and the counts.

    A key's first row is new; a row equal to the row that holds its key is a duplicate, and a
    different one a conflict that takes the key over. Each batch keeps, per key, its last row
    that was not a duplicate, in file order.
    """
    holder: dict[tuple[str, int], tuple[str, int, int]] = {}
    new = duplicate = conflict = 0
    winners = []
    for batch in batches:
        last: dict[tuple[str, int], int] = {}  # key -> position of its last non-duplicate row
        for position, row in enumerate(batch):
            key = row[:2]
            if key not in holder:
                new += 1
            elif holder[key] == row:
                duplicate += 1
                continue
            else:
                conflict += 1
            holder[key] = row
            last[key] = position
        winners.append([batch[p] for p in sorted(last.values())])
    return winners, (new, duplicate, conflict)


@settings(max_examples=examples(300), deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["a", "b", "c", "d"]), st.integers(0, 6), st.integers(0, 2)),
        max_size=60,
    ),
    st.lists(st.integers(1, 20), min_size=1, max_size=8),
    st.sampled_from([0, 1, 7, 1000]),
)
# One key in three batches, the last row equal to the first but not to the newest: its holder
# is the newest row, whether kept unsorted (7) or sorted into a level with the older one (1).
@example(rows=[("a", 0, 0), ("a", 0, 1), ("a", 0, 0)], sizes=[1], pending_keys=7)
@example(rows=[("a", 0, 0), ("a", 0, 1), ("a", 0, 0)], sizes=[1], pending_keys=1)
def test_deduplication_follows_the_rule_row_by_row(
    rows: list[tuple[str, int, int]], sizes: list[int], pending_keys: int
) -> None:
    # Few devices, times and values: keys repeat within a batch and across batches, earlier
    # and later than their device's latest time, as duplicates and as conflicts. The key
    # index keeps none, some or all of its keys unsorted (sorted levels, both, or none).
    from iotpipe.dedupe import Deduplicator

    batches, start = [], 0
    for size in sizes * (len(rows) // max(sum(sizes), 1) + 1):
        if start >= len(rows):
            break
        batches.append(rows[start : start + size])
        start += size
    expected, counts = reference_dedupe(batches)
    event("duplicates and conflicts" if counts[1] and counts[2] else "not both")
    event(f"pending keys {pending_keys}")
    dedupe = Deduplicator(["device_id", "ts", "v"], pending_keys=pending_keys)
    total = [0, 0, 0]
    epoch = dt.datetime(2024, 1, 1)
    for batch, winners in zip(batches, expected, strict=True):
        frame = pl.DataFrame(
            {
                "device_id": [r[0] for r in batch],
                "ts": [epoch + dt.timedelta(seconds=r[1]) for r in batch],
                "v": [float(r[2]) for r in batch],
            },
            schema={"device_id": pl.String, "ts": pl.Datetime("us"), "v": pl.Float64},
        )
        got, found = dedupe.apply(frame)
        assert [(d, int((t - epoch).total_seconds()), int(v)) for d, t, v in got.rows()] == winners
        total = [total[0] + found.new, total[1] + found.duplicate, total[2] + found.conflict]
    assert tuple(total) == counts
    assert sum(counts) == len(rows)
