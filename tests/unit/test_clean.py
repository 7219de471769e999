from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from iotpipe.clean import Cleaner
from iotpipe.timestamps import parse_timestamps, timestamp_expr
from tests.unit.helpers import NOW, clean_bytes, contract

UTC_2024 = dt.datetime(2024, 3, 5, 6, 7, 8)


def parse(values: list[str | None], tz: str = "UTC") -> list[dt.datetime | None]:
    """Parse with the general parser, checking that the fast path gives the same."""
    raw = pl.Series("s", values, dtype=pl.String)
    general = raw.to_frame().select(timestamp_expr(pl.col("s"), tz)).to_series().to_list()
    assert parse_timestamps(raw, tz).to_list() == general
    return general


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-03-05T06:07:08Z", UTC_2024),
        ("2024-03-05T06:07:08z", UTC_2024),
        ("2024-03-05 06:07:08", UTC_2024),
        ("2024-03-05T06:07:08.250Z", UTC_2024.replace(microsecond=250000)),
        ("2024-03-05T06:07:08,5Z", UTC_2024.replace(microsecond=500000)),
        ("2024-03-05T06:07:08.123456789Z", UTC_2024.replace(microsecond=123456)),
        # A fraction without a zone: the same digits, read to the end of the text.
        ("2024-03-05 06:07:08.250", UTC_2024.replace(microsecond=250000)),
        ("2024-03-05T06:07:08.123456789", UTC_2024.replace(microsecond=123456)),
        ("2024-03-05T08:07:08+02:00", UTC_2024),
        ("2024-03-05T08:07:08+0200", UTC_2024),
        ("2024-03-05T01:07:08-05", UTC_2024),
        ("2024-03-05 11:37:08 +05:30", UTC_2024),
        ("2024/03/05 06:07:08", UTC_2024),
        ("2024/3/5 6:07:08", UTC_2024),
        ("2024-03-05T06:07", UTC_2024.replace(second=0)),
        ("2024-03-05", dt.datetime(2024, 3, 5)),
        ("1709618828", UTC_2024),
        ("1709618828000", UTC_2024),
        ("1709618828.5", UTC_2024.replace(microsecond=500000)),
        ("1709618828250", UTC_2024.replace(microsecond=250000)),
        # Milliseconds from 1e11 up (EPOCH_MS_THRESHOLD), seconds below it: both sides.
        ("100000000000", dt.datetime(1973, 3, 3, 9, 46, 40)),
        ("99999999999", dt.datetime(5138, 11, 16, 9, 46, 39)),
        ("-100000000000", dt.datetime(1966, 10, 31, 14, 13, 20)),
        # Rounded to the nearest microsecond, not cut.
        ("1709618828.0000008", UTC_2024.replace(microsecond=1)),
        ("1709618828.0000004", UTC_2024),
        ("99999999999999999999999", None),  # past any datetime: unparseable, no error
        ("2024-02-30 00:00:00", None),
        ("2024-13-01", None),
        ("2024-01-01 24:00:00", None),
        ("yesterday", None),
        ("12/31/2024", None),
        ("", None),
        (None, None),
    ],
)
def test_timestamp_formats(text: str | None, expected: dt.datetime | None) -> None:
    assert parse([text]) == [expected]


# The shapes most loggers write (and bench/messy.py mixes): each is read by the vectorised
# parsers alone, without the general per-shape expression.
COMMON_SHAPES = [
    "2024-03-05T06:07:08Z",
    "2024-03-05 06:07:08",
    "2024-03-05T15:07:08+09:00",
    "2024-03-05T01:07:08-05:00",
    "1709618828",
    "1709618828000",
    "2024/03/05 06:07:08",
    "2024-03-05T06:07:08.000+00:00",
]


def test_common_shapes_never_reach_the_general_parser(monkeypatch: pytest.MonkeyPatch) -> None:
    import iotpipe.timestamps as timestamps

    def general(*args: Any, **kwargs: Any) -> pl.Expr:
        raise AssertionError("a common shape reached the general parser")

    monkeypatch.setattr(timestamps, "timestamp_expr", general)
    raw = pl.Series("s", COMMON_SHAPES * 3)  # interleaved, as in a merged file
    assert timestamps.parse_timestamps(raw).to_list() == [UTC_2024] * len(raw)


def test_naive_times_take_the_contract_zone() -> None:
    assert parse(["2024-01-01 08:00:00"], "Asia/Shanghai") == [dt.datetime(2024, 1, 1, 0, 0)]
    # An explicit offset wins over the zone.
    assert parse(["2024-01-01T08:00:00Z"], "Asia/Shanghai") == [dt.datetime(2024, 1, 1, 8, 0)]
    # Europe/London: the spring-forward gap does not exist; the autumn hour is ambiguous.
    assert parse(["2024-03-31 01:30:00"], "Europe/London") == [None]
    assert parse(["2024-10-27 01:30:00"], "Europe/London") == [dt.datetime(2024, 10, 27, 0, 30)]
    assert parse(["2024-07-01 12:00:00"], "Europe/London") == [dt.datetime(2024, 7, 1, 11, 0)]


HEADER = b"id,time,v,kind\n"


def test_each_reject_reason_in_priority_order() -> None:
    c = contract(
        fields=[
            {"name": "v", "type": "number", "constraints": {"minimum": 0, "maximum": 100}},
            {"name": "kind", "type": "category", "constraints": {"enum": ["a", "b"]}},
            {
                "name": "serial",
                "type": "string",
                "constraints": {"required": True},
                "measurement": False,
            },
            {
                "name": "mode",
                "type": "category",
                "constraints": {"enum": ["x"]},
                "on_invalid": "reject",
            },
        ]
    )
    long_id = "x" * 129
    rows = [
        ",2024-01-01,1,a,s,x",  # 2 missing_device_id
        f"{long_id},2024-01-01,1,a,s,x",  # 3 invalid_device_id
        "d,NA,1,a,s,x",  # 4 missing_timestamp
        "d,soon,1,a,s,x",  # 5 invalid_timestamp
        "d,1999-12-31T23:59:59Z,1,a,s,x",  # 6 timestamp_out_of_range
        "d,2025-06-02T12:00:01Z,1,a,s,x",  # 7 more than now + 1 day
        "d,2024-01-01,1,a,,x",  # 8 missing_value (required serial)
        "d,2024-01-02,1,a,s,y",  # 9 invalid_value (mode rejects)
        "d,2024-01-03,NA,a,s,x",  # 10 no_measurements
        "d,2024-01-04,abc,a,s,x",  # 11 no_measurements (its one value was invalid)
        "d,2024-01-05,1,a,s",  # 12 malformed_row
        "d,2025-06-02T12:00:00Z,1,a,s,x",  # 13 ok: exactly now + 1 day
        "d,2000-01-01T00:00:00Z,1,a,s,x",  # 14 ok: the earliest instant
        f"{long_id[1:]},2024-01-01,1,a,s,x",  # 15 ok: a device id of the longest length
    ]
    data = b"id,time,v,kind,serial,mode\n" + "\n".join(rows).encode() + b"\n"
    clean, rejected, counters = clean_bytes(data, c)
    assert [(r.line, r.reason) for r in rejected] == [
        (2, "missing_device_id"),
        (3, "invalid_device_id"),
        (4, "missing_timestamp"),
        (5, "invalid_timestamp"),
        (6, "timestamp_out_of_range"),
        (7, "timestamp_out_of_range"),
        (8, "missing_value"),
        (9, "invalid_value"),
        (10, "no_measurements"),
        (11, "no_measurements"),
        (12, "malformed_row"),
    ]
    assert [r.detail for r in rejected] == [
        "device_id is missing (column 'id')",
        "device_id is longer than 128 characters",
        "timestamp is missing (column 'time')",
        "unparseable timestamp soon (column 'time')",
        "timestamp 1999-12-31T23:59:59Z is outside 2000-01-01 .. now+1d",
        "timestamp 2025-06-02T12:00:01Z is outside 2000-01-01 .. now+1d",
        "serial is missing",
        "mode: invalid value y",
        "every measurement is missing or invalid",
        "every measurement is missing or invalid",
        "expected 6 fields, found 5",
    ]
    assert rejected[6].record == "d,2024-01-01,1,a,,x"
    assert clean.height == 3
    assert counters.rows_read == 14
    assert counters.rows_valid == 3 and counters.rows_rejected == 11


def test_trim_markers_casefold_and_nulling() -> None:
    data = HEADER + (
        b" d1 , 2024-01-01T00:00:00Z , 12.5 , A \n"
        b"d1,2024-01-01T00:01:00Z,N/A,b\n"
        b"d1,2024-01-01T00:02:00Z,101,NULL\n"  # out of range -> null; NULL is a marker
        b"d1,2024-01-01T00:03:00Z,5,zebra\n"  # unknown closed-vocabulary value -> null
        b"d1,2024-01-01T00:04:00Z,1e1,?\n"
    )
    rows, rejected, counters = clean_bytes(data, contract())
    assert rejected[0].reason == "no_measurements" and rejected[0].line == 3
    assert rejected[1].reason == "no_measurements" and rejected[1].line == 4
    assert rows.select("device_id", "v", "kind").rows() == [
        ("d1", 12.5, "a"),
        ("d1", 5.0, None),
        ("d1", 10.0, None),
    ]
    assert dict(counters.nulled) == {"kind": 1}  # line 4's invalid v was in a rejected row
    assert rows.schema["ts"] == pl.Datetime("us")


def test_nulled_counts_only_rows_that_stay() -> None:
    data = HEADER + b"d1,2024-01-01,200,a\nd1,2024-01-02,7,zebra\nd1,2024-01-03,8,a\n"
    _, rejected, counters = clean_bytes(data, contract())
    assert [r.reason for r in rejected] == ["no_measurements"]  # 200 nulled -> nothing left
    assert dict(counters.nulled) == {"kind": 1}


def test_duplicates_and_conflicts_last_row_wins_across_batches() -> None:
    lines = [
        "d1,2024-01-01T00:00:00Z,1,a",  # 2 first
        "d1,2024-01-01T00:00:00+00:00,1.0,A",  # 3 exact duplicate once cleaned
        "d2,2024-01-01T00:00:00Z,5,a",  # 4 first
        "d1,1704067200,2,a",  # 5 conflict with line 2 (same key, other value)
        "d1,1704067200000,1,a",  # 6 conflict again (back to the first values): last wins
        "d2, 2024-01-01 00:00:00 ,5,a",  # 7 duplicate of line 4
        "d3,2024-01-01T00:00:00Z,9,b",  # 8 first
    ]
    data = HEADER + "\n".join(lines).encode() + b"\n"
    for batch_rows in (1, 2, 3, 100):
        rows, rejected, counters = clean_bytes(data, contract(), batch_rows=batch_rows)
        assert not rejected
        assert counters.rows_valid == 3, batch_rows
        assert counters.rows_duplicate == 2, batch_rows
        assert counters.rows_conflict == 2, batch_rows
        got = sorted(rows.select("device_id", "v").rows())
        assert got == [("d1", 1.0), ("d2", 5.0), ("d3", 9.0)], batch_rows


@settings(max_examples=60, deadline=None)
@given(
    rows=st.lists(
        st.tuples(st.sampled_from(["d1", "d2", "d3"]), st.integers(0, 6), st.integers(0, 2)),
        max_size=40,
    ),
    batch_rows=st.integers(1, 7),
)
def test_every_key_is_judged_against_all_earlier_batches(
    rows: list[tuple[str, int, int]], batch_rows: int
) -> None:
    # Keys later than their device's latest earlier key skip the key index; earlier ones,
    # repeats and devices seen before must still find what earlier batches held.
    holder: dict[tuple[str, int], int] = {}
    duplicate = conflict = 0
    for device, minute, value in rows:  # the rule, counted independently
        if (device, minute) not in holder:
            pass
        elif holder[device, minute] == value:
            duplicate += 1
            continue
        else:
            conflict += 1
        holder[device, minute] = value
    lines = [f"{d},2024-01-01T00:{m:02d}:00Z,{v},a" for d, m, v in rows]
    data = HEADER + "".join(f"{line}\n" for line in lines).encode()
    got, _, counters = clean_bytes(data, contract(), batch_rows=batch_rows)
    event(f"batches: {min(3, -(-len(rows) // batch_rows))}+")
    assert (counters.rows_valid, counters.rows_duplicate, counters.rows_conflict) == (
        len(holder),
        duplicate,
        conflict,
    )
    values = got.select("device_id", "ts", "v").rows() if got.height else []
    stored = {(d, t.minute): int(v) for d, t, v in values}
    assert stored == holder


def test_rows_within_a_batch_are_unique_per_key_in_file_order() -> None:
    data = HEADER + b"d1,2024-01-01,1,a\nd2,2024-01-01,2,a\nd1,2024-01-01,3,a\n"
    rows, _, _ = clean_bytes(data, contract())
    assert rows.select("device_id", "v").rows() == [("d2", 2.0), ("d1", 3.0)]


def test_types_integer_boolean_datetime_decimal_comma() -> None:
    c = contract(
        dialect={"delimiter": ";", "decimal": ","},
        fields=[
            {"name": "v", "type": "number"},
            {"name": "n", "type": "integer", "constraints": {"minimum": 0}},
            {"name": "on", "type": "boolean"},
            {"name": "seen", "type": "datetime"},
        ],
    )
    data = (
        b"id;time;v;n;on;seen\n"
        b"d;2024-01-01;1,5;3;Yes;2024-01-01T10:00:00+01:00\n"
        b"d;2024-01-02;-0,25;3.0;off;\n"
        b"d;2024-01-03;2;3.5;maybe;never\n"
        b"d;2024-01-04;inf;7;1;2024-01-01\n"
        b"d;2024-01-05;inf;-1;1;\n"  # both measurements invalid: nothing left
    )
    rows, rejected, counters = clean_bytes(data, c)
    assert [(r.line, r.reason) for r in rejected] == [(6, "no_measurements")]
    assert rows.select("v", "n", "on", "seen").rows() == [
        (1.5, 3, True, dt.datetime(2024, 1, 1, 9)),
        (-0.25, 3, False, None),
        (2.0, None, None, None),
        (None, 7, True, dt.datetime(2024, 1, 1)),
    ]
    assert dict(counters.nulled) == {"v": 1, "n": 1, "on": 1, "seen": 1}
    assert rows.schema["n"] == pl.Int64


def test_composite_timestamps() -> None:
    c = contract(
        timestamp={
            "year": "year",
            "month": "month",
            "day": "day",
            "hour": "hour",
            "timezone": "Asia/Shanghai",
        }
    )
    data = (
        b"id,year,month,day,hour,v,kind\n"
        b"s,2013,3,1,0,1,a\n"
        b"s,2013,3,1,x,1,a\n"
        b"s,NA,NA,NA,NA,1,a\n"
        b"s,2013,2,30,0,1,a\n"
    )
    rows, rejected, _ = clean_bytes(data, c)
    assert rows.get_column("ts").to_list() == [dt.datetime(2013, 2, 28, 16, 0)]
    assert [(r.line, r.reason) for r in rejected] == [
        (3, "invalid_timestamp"),
        (4, "missing_timestamp"),
        (5, "invalid_timestamp"),
    ]
    d = contract(timestamp={"date": "Date", "time": "Time"})
    rows, rejected, _ = clean_bytes(
        b"id,date,time,v\nx,2024/01/02,03:04:05,1\nx,2024-01-02,,1\n", d
    )
    assert rows.get_column("ts").to_list() == [dt.datetime(2024, 1, 2, 3, 4, 5)]
    assert [r.reason for r in rejected] == ["invalid_timestamp"]


def test_now_bound_uses_the_injected_clock() -> None:
    data = HEADER + b"d,2025-06-02T11:59:59Z,1,a\n"
    _, rejected, _ = clean_bytes(data, contract(), now=NOW)
    assert not rejected
    _, rejected, _ = clean_bytes(data, contract(), now=NOW - dt.timedelta(hours=1))
    assert [r.reason for r in rejected] == ["timestamp_out_of_range"]


# -- issue "Trust", finding 17: local times the zone skips or repeats ---------------------

ROME_GAP = "2004-03-28 02:30:00"  # clocks went from 02:00 to 03:00 (CET -> CEST)
ROME_TWICE = "2004-10-31 02:30:00"  # clocks went from 03:00 back to 02:00 (CEST -> CET)


@pytest.mark.parametrize(
    ("ambiguous", "expected"),
    [
        ("earliest", dt.datetime(2004, 10, 31, 0, 30)),  # 02:30 CEST
        ("latest", dt.datetime(2004, 10, 31, 1, 30)),  # 02:30 CET
        ("reject", None),
    ],
)
def test_local_times_in_a_dst_gap_or_repeated_hour(ambiguous: str, expected: Any) -> None:
    c = contract(timestamp={"source": "time", "timezone": "Europe/Rome", "ambiguous": ambiguous})
    data = (
        "id,time,v,kind\n"
        f"d1,{ROME_GAP},1,a\n"
        f"d1,{ROME_TWICE},2,a\n"
        "d1,2004-03-28 01:30:00,3,a\n"
        "d1,not a time,4,a\n"
    ).encode()
    rows, rejected, _ = clean_bytes(data, c)
    reasons = {r.line: r.reason for r in rejected}
    details = {r.line: r.detail for r in rejected}
    assert reasons[2] == "nonexistent_local_time"
    assert details[2] == (
        f"local time {ROME_GAP} does not exist in Europe/Rome (the clocks skipped it)"
    )
    assert reasons[5] == "invalid_timestamp"
    stamps = rows.get_column("ts").to_list()
    assert dt.datetime(2004, 3, 28, 0, 30) in stamps  # 01:30 CET exists
    if expected is None:
        assert reasons[3] == "ambiguous_local_time"
        assert details[3] == (
            f"local time {ROME_TWICE} happens twice in Europe/Rome (timestamp.ambiguous: reject)"
        )
    else:
        assert 3 not in reasons and expected in stamps


def test_numeric_sentinels_match_by_value_next_to_text_that_is_no_number() -> None:
    from iotpipe.values import null_sentinels

    texts = ["-200", "-200.0", "-200,0", "-2e2", "n/a", "12", "-200.5", "", None]
    out = pl.DataFrame({"co": texts}).select(null_sentinels("co", (-200.0,))).to_series()
    assert out.to_list() == [None, None, None, None, "n/a", "12", "-200.5", "", None]


def test_string_fields_keep_their_case_categories_are_folded() -> None:
    c = contract(
        fields=[
            {"name": "v", "type": "number"},
            {"name": "note", "type": "string"},
            {"name": "kind", "type": "category"},
        ]
    )
    rows, _, _ = clean_bytes(b"id,time,v,note,kind\nd,2024-01-01,1,MiXeD Case,ThErMo\n", c)
    assert rows.select("note", "kind").rows() == [("MiXeD Case", "thermo")]


@pytest.mark.parametrize(
    ("lines", "zone", "one_time"),
    [
        # Dates only, one row per batch: still one time of day across the batches.
        (["2024-01-01", "2024-01-02", "2024-01-03"], "UTC", True),
        # A first batch whose only row is rejected has no time of day to tell.
        (["not a time", "2024-01-01", "2024-01-02", "2024-01-03"], "UTC", True),
        # The same time in a later batch as in the first, then another: not one time.
        (["2024-01-01 06:00", "2024-01-02 06:00", "2024-01-03 07:00"], "UTC", False),
        (["2024-01-01 06:00", "2024-01-01 07:00", "2024-01-02 06:00"], "UTC", False),
        # Local midnights in Paris are 23:00 UTC (22:00 in summer): one local time of day.
        (["2024-01-01", "2024-01-15", "2024-07-01"], "Europe/Paris", True),
    ],
)
def test_one_time_of_day_is_tracked_across_batches_in_the_local_zone(
    lines: list[str], zone: str, one_time: bool
) -> None:
    c = contract(
        timestamp={"source": "time", "timezone": zone}, fields=[{"name": "v", "type": "number"}]
    )
    data = "id,time,v\n" + "".join(f"d,{t},1\n" for t in lines)
    _, _, counters = clean_bytes(data.encode(), c, batch_rows=1)
    assert counters.rows_valid == 3
    assert counters.one_time_of_day is one_time


def test_local_time_faults_with_a_timestamp_format() -> None:
    c = contract(
        timestamp={
            "source": "time",
            "timezone": "Europe/Rome",
            "ambiguous": "reject",
            "format": "%d/%m/%Y %H.%M.%S",
        }
    )
    data = (
        b"id,time,v,kind\n"
        b"d1,28/03/2004 02.30.00,1,a\n"  # skipped by the spring gap
        b"d1,31/10/2004 02.30.00,2,a\n"  # happens twice in the autumn
        b"d1,28/03/2004 01.30.00,3,a\n"
        b"d1,2004-03-28 01:30:00,4,a\n"  # not the contract's format
    )
    rows, rejected, _ = clean_bytes(data, c)
    assert {r.line: r.reason for r in rejected} == {
        2: "nonexistent_local_time",
        3: "ambiguous_local_time",
        5: "invalid_timestamp",
    }
    assert rows.get_column("ts").to_list() == [dt.datetime(2004, 3, 28, 0, 30)]


def test_constraint_boundaries_and_non_finite_integers() -> None:
    c = contract(
        fields=[
            {"name": "v", "type": "number", "constraints": {"minimum": 0, "maximum": 100}},
            {"name": "n", "type": "integer"},
            {"name": "s", "type": "string", "constraints": {"maxLength": 3}},
        ]
    )
    big = 2**53
    data = (
        "id,time,v,n,s\n"
        f"d,2024-01-01,100,{big},abc\n"  # each at its limit: kept
        f"d,2024-01-02,0,-{big},ab\n"
        "d,2024-01-03,100.5,5,abcd\n"  # over the limits: nulled
        "d,2024-01-04,-0.5,6,x\n"
        f"d,2024-01-05,1,{2 * big},x\n"
        "d,2024-01-06,1,inf,x\n"
        "d,2024-01-07,1,nan,x\n"
        "d,2024-01-08,1,-inf,x\n"
    ).encode()
    rows, rejected, counters = clean_bytes(data, c)
    assert rejected == []
    assert rows.select("v", "n", "s").rows() == [
        (100.0, big, "abc"),
        (0.0, -big, "ab"),
        (None, 5, None),
        (None, 6, "x"),
        (1.0, None, "x"),
        (1.0, None, "x"),
        (1.0, None, "x"),
        (1.0, None, "x"),
    ]
    assert dict(counters.nulled) == {"v": 2, "n": 3, "s": 1}  # "nan" is a missing marker


def test_a_batch_keeps_one_row_per_key_the_last() -> None:
    from iotpipe.dedupe import Deduplicator

    t = dt.datetime(2024, 1, 1)
    batch = pl.DataFrame(
        {
            "device_id": ["a", "b", "a", "a", "b"],
            "ts": [t, t, t, t, t],
            "v": [1.0, 2.0, 3.0, 3.0, 2.0],
        }
    )
    winners, counts = Deduplicator(["device_id", "ts", "v"]).apply(batch)
    assert winners.select("device_id", "ts", "v").rows() == [("b", t, 2.0), ("a", t, 3.0)]
    assert (counts.new, counts.duplicate, counts.conflict) == (2, 2, 1)


def test_numeric_missing_markers_null_the_value_in_any_spelling() -> None:
    # Through the cleaner (the test above checks the expression alone): -200 as text
    # marks a missing value, and so does every other spelling of the number -200.
    c = contract(
        fields=[
            {"name": "v", "type": "number", "missingValues": ["-200"]},
            {"name": "w", "type": "number"},
        ],
    )
    data = b"id,time,v,w\n" + b"".join(
        b"d,2024-01-0%d,%s,1\n" % (i, v)
        for i, v in enumerate([b"-200", b"-200.0", b"-2e2", b"-200.5", b"5"], start=1)
    )
    rows, rejected, counters = clean_bytes(data, c)
    assert rejected == []
    assert rows.get_column("v").to_list() == [None, None, None, -200.5, 5.0]
    assert dict(counters.nulled) == {}  # missing, not invalid


def test_reject_details_name_the_source_columns() -> None:
    c = contract(
        timestamp="ts",  # a source column named like the key: still named in the detail
        fields=[
            {
                "name": "v",
                "type": "number",
                "on_invalid": "reject",
                "source": ["CO(GT)", "co"],
                "constraints": {"required": True, "minimum": 0},
            },
            {"name": "w", "type": "number"},
        ],
    )
    data = b"id,ts,co,w\nd,2024-01-01,-5,1\nd,yesterday,1,1\nd,2024-01-02,,1\n"
    _, rejected, _ = clean_bytes(data, c)
    assert [(r.line, r.reason, r.detail) for r in rejected] == [
        (2, "invalid_value", "v: invalid value -5 (column 'CO(GT)' or 'co')"),
        (3, "invalid_timestamp", "unparseable timestamp yesterday (column 'ts')"),
        (4, "missing_value", "v is missing (column 'CO(GT)' or 'co')"),
    ]


def test_a_contract_with_no_field_to_null_cleans() -> None:
    # Every field rejects its row when invalid: nothing is ever nulled, nothing to count.
    c = contract(fields=[{"name": "v", "type": "number", "on_invalid": "reject"}])
    rows, rejected, counters = clean_bytes(b"id,time,v\nd,2024-01-01,1\nd,2024-01-02,x\n", c)
    assert rows.get_column("v").to_list() == [1.0]
    assert [r.reason for r in rejected] == ["invalid_value"]
    assert dict(counters.nulled) == {}


def test_composite_timestamps_with_minutes_seconds_or_a_date_alone() -> None:
    full = contract(
        timestamp={
            "year": "yr", "month": "mo", "day": "dy", "hour": "hr", "minute": "mi", "second": "se",
        },
    )  # fmt: skip
    rows, rejected, _ = clean_bytes(b"id,yr,mo,dy,hr,mi,se,v\nx,2024,1,2,3,4,5,1\n", full)
    assert rejected == []
    assert rows.get_column("ts").to_list() == [dt.datetime(2024, 1, 2, 3, 4, 5)]
    dated = contract(timestamp={"date": "Day"})
    rows, rejected, _ = clean_bytes(b"id,Day,v\nx,2024-01-02,1\nx,soon,1\n", dated)
    assert rows.get_column("ts").to_list() == [dt.datetime(2024, 1, 2)]
    assert [r.reason for r in rejected] == ["invalid_timestamp"]


def test_datetime_fields_take_the_contract_zone() -> None:
    c = contract(
        timestamp={"source": "time", "timezone": "Asia/Shanghai"},
        fields=[{"name": "v", "type": "number"}, {"name": "seen", "type": "datetime"}],
    )
    rows, _, _ = clean_bytes(b"id,time,v,seen\nd,2024-01-01 08:00,1,2024-01-01 09:00\n", c)
    assert rows.select("ts", "seen").rows() == [
        (dt.datetime(2024, 1, 1, 0, 0), dt.datetime(2024, 1, 1, 1, 0))
    ]


@pytest.mark.parametrize(
    ("max_future", "shown"),
    [("1d", "1d"), ("2h", "2h"), ("24h", "1d"), ("5m", "5m"), ("90s", "90s")],
)
def test_the_future_bound_is_shown_in_its_largest_whole_unit(max_future: str, shown: str) -> None:
    c = contract(timestamp={"source": "time", "max_future": max_future})
    _, rejected, _ = clean_bytes(b"id,time,v,kind\nd,2030-01-01,1,a\n", c)
    assert [r.detail for r in rejected] == [
        f"timestamp 2030-01-01T00:00:00Z is outside 2000-01-01 .. now+{shown}"
    ]


def test_reject_details_of_timestamps_by_parts_formats_bytes_and_nested_ids() -> None:
    parts = contract(timestamp={"year": "year", "month": "month", "day": "day", "hour": "hour"})
    _, rejected, _ = clean_bytes(
        b"id,year,month,day,hour,v,kind\ns,2013,3,1,x,1,a\ns,2013,2,30,0,1,a\n", parts
    )
    where = "(columns 'year' + 'month' + 'day' + 'hour')"
    assert [r.detail for r in rejected] == [
        f"unparseable timestamp (parts) {where}",  # a part is no number: no text to show
        f"unparseable timestamp 2013-2-30 0:0:0 {where}",
    ]
    given = contract(timestamp={"source": "time", "format": ["%d/%m/%Y", "%Y%m%d"]})
    _, rejected, _ = clean_bytes(b"id,time,v,kind\nd,2024-01-01,1,a\n", given)
    assert [r.detail for r in rejected] == [
        "unparseable timestamp 2024-01-01 (column 'time') (timestamp.format: %d/%m/%Y or %Y%m%d)"
    ]
    _, rejected, _ = clean_bytes(b"id,time,v,kind\nd\xe9,2024-01-01,1,a\n", contract())
    assert [(r.reason, r.detail) for r in rejected] == [
        ("invalid_encoding", "the record holds bytes that are not valid utf-8 (shown as U+FFFD)")
    ]
    nested = b'{"id": ["a", "b"], "time": "2024-01-01", "v": 1, "kind": "a"}\n'
    _, rejected, _ = clean_bytes(nested, contract())
    assert [(r.reason, r.detail) for r in rejected] == [
        ("invalid_device_id", "device_id is an array or object, not one value")
    ]


def test_only_fields_whose_plain_texts_need_no_trimming_are_read_before_it() -> None:
    # `Cleaner._quick`: a text Polars reads as a finite number, or one of a category's
    # values, is kept as it is, which is what trimming, the markers and case-folding would
    # give only when no marker is a number and the values are plain and no markers.
    fields = [
        {"name": "v", "type": "number"},
        {"name": "i", "type": "integer"},
        {"name": "s", "type": "number", "missingValues": ["-200"]},  # a sentinel
        {"name": "e", "type": "number", "missingValues": ["1e3"]},
        {"name": "kind", "type": "category", "constraints": {"enum": ["a", "b"]}},
        {"name": "open", "type": "category"},  # any value
        {"name": "na", "type": "category", "constraints": {"enum": ["ok", "na"]}},  # a marker
        # Case-folded, U+13A0 stays a capital: Polars' lowercase of the text would differ.
        {"name": "up", "type": "category", "constraints": {"enum": ["\u13a0"]}, "encoding": "code"},
        {"name": "on", "type": "boolean"},
    ]
    assert set(Cleaner(contract(fields=fields))._values.quick) == {"v", "i", "kind"}
    comma = contract(fields=fields, dialect={"decimal": ",", "delimiter": ";"})  # 1,5: a number
    assert set(Cleaner(comma)._values.quick) == {"kind"}
