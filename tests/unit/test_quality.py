"""The rules that fail a file as a whole, and the warnings of a contract that looks wrong,
seen through `validate_source` on small files written here (iotpipe.quality)."""

from __future__ import annotations

import io
from collections import Counter

import pytest

from iotpipe.clean import CleanCounters
from iotpipe.contract import contract_from_dict, contract_to_dict, load_contract
from iotpipe.errors import QualityError
from iotpipe.ingest import validate_source
from iotpipe.quality import SHOWN_COLUMNS, check_outcome, warnings_for

ACME = load_contract("acme_usage")
MEASUREMENTS = [f.name for f in ACME.measurements]


def validate(text: str, contract: object = ACME) -> dict[str, object]:
    report = validate_source(io.BytesIO(text.encode()), contract, source="t.csv")  # type: ignore[arg-type]
    body: dict[str, object] = report.to_dict()
    return body


def test_a_file_without_any_measurement_column_fails_naming_what_was_expected() -> None:
    assert MEASUREMENTS  # numbers count as measurements
    body = validate("device_id,timestamp,colour\nd1,2024-01-01T00:00:00Z,red\n")
    assert body["status"] == "failed"
    error = str(body["error"])
    assert error.startswith(f"the file does not match contract {ACME.name}")
    for name in MEASUREMENTS:
        assert name in error
    assert "found [device_id, timestamp, colour]" in error and "more" not in error
    assert error == (
        "the file does not match contract acme_usage: expected any of [battery_pct, "
        "temperature_c, power_w, usage_minutes, signal_dbm, error_count], found [device_id, "
        "timestamp, colour]"
    )


def test_a_wide_foreign_file_shows_its_first_columns_and_how_many_more() -> None:
    extra = [f"c{i}" for i in range(SHOWN_COLUMNS + 5)]
    header = ",".join(["device_id", "timestamp", *extra])
    body = validate(f"{header}\nd1,2024-01-01T00:00:00Z{',1' * len(extra)}\n")
    assert body["status"] == "failed"
    assert "+7 more]" in str(body["error"])  # 37 columns, 30 shown


def test_one_measurement_column_is_enough_to_fit() -> None:
    one = MEASUREMENTS[0]
    body = validate(f"device_id,timestamp,{one}\nd1,2024-01-01T00:00:00Z,1\n")
    assert body["status"] == "validated" and body["rows_valid"] == 1


def test_a_contract_without_measurements_fits_any_file() -> None:
    doc = {
        "name": "labels",
        "device_id": {"source": "device_id"},
        "timestamp": {"source": "timestamp"},
        "fields": [{"name": "colour", "type": "string"}],
    }
    body = validate(
        "device_id,timestamp,colour\nd1,2024-01-01T00:00:00Z,red\n", contract_from_dict(doc)
    )
    assert body["status"] == "validated"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("device_id,timestamp,battery_pct\n", "the file has no data rows"),
        ("device_id,timestamp,battery_pct\n,,1\n,,2\n", "no row is valid: 2 read, 2 rejected"),
    ],
)
def test_files_with_no_valid_row_fail(text: str, message: str) -> None:
    body = validate(text)
    assert body["status"] == "failed"
    assert str(body["error"]).startswith(message)


def test_more_rejected_than_the_contract_allows_fails_with_the_main_reasons() -> None:
    strict = contract_from_dict({**contract_to_dict(ACME), "quality": {"max_rejected_ratio": 0.2}})
    ratio = strict.quality.max_rejected_ratio
    good = 12
    bad = int(good * ratio / (1 - ratio)) + 1  # 4 of 16 (25%): over 20%
    lines = [f"d{i},2024-01-01T00:00:{i:02d}Z,1" for i in range(good)]
    lines += [f",2024-01-01T00:01:{i % 60:02d}Z,1" for i in range(bad)]
    body = validate("device_id,timestamp,battery_pct\n" + "\n".join(lines) + "\n", strict)
    assert body["status"] == "failed"
    error = str(body["error"])
    assert error.startswith(f"{bad:,} of {good + bad:,} rows rejected")
    assert "missing_device_id" in error
    # At the ratio exactly (3 of 15 = 20%), the file loads.
    lines = lines[: good + bad - 1]
    body = validate("device_id,timestamp,battery_pct\n" + "\n".join(lines) + "\n", strict)
    assert body["status"] == "validated", body["error"]
    assert body["rows_rejected"] == 3


def test_too_many_rejected_says_the_share_and_only_the_three_main_reasons() -> None:
    strict = contract_from_dict({**contract_to_dict(ACME), "quality": {"max_rejected_ratio": 0.2}})
    reasons = Counter(
        {"missing_device_id": 30, "invalid_timestamp": 20, "future_timestamp": 10, "other": 1}
    )
    over = counters(rows_read=200, rows_valid=139, rows_rejected=61, reject_reasons=reasons)
    with pytest.raises(QualityError) as failed:
        check_outcome(strict, over)
    assert str(failed.value) == (
        "61 of 200 rows rejected (30.5%), over quality.max_rejected_ratio 0.2 "
        "(missing_device_id 30, invalid_timestamp 20, future_timestamp 10)"
    )
    none_valid = counters(rows_read=61, rows_rejected=61, reject_reasons=reasons)
    with pytest.raises(QualityError) as failed:
        check_outcome(strict, none_valid)
    assert str(failed.value) == (
        "no row is valid: 61 read, 61 rejected "
        "(missing_device_id 30, invalid_timestamp 20, future_timestamp 10)"
    )


def counters(**values: object) -> CleanCounters:
    c = CleanCounters(one_time_of_day=False)
    for name, value in values.items():
        setattr(c, name, value)
    return c


def test_no_warning_for_an_empty_or_a_healthy_file() -> None:
    assert warnings_for(ACME, counters()) == []
    assert warnings_for(ACME, counters(rows_read=100, rows_valid=100)) == []


def test_key_conflicts_warn_over_ten_percent_exactly() -> None:
    at = counters(rows_read=200, rows_valid=180, rows_conflict=20)  # 10%: no warning
    assert warnings_for(ACME, at) == []
    over = counters(rows_read=200, rows_valid=179, rows_conflict=21)
    assert warnings_for(ACME, over) == [
        "21 of 200 rows (10%) are key conflicts (another reading for the same device and "
        "time): is the timestamp too coarse (a date without its time column?), or the device "
        "id the wrong column?"
    ]
    few = counters(rows_read=3, rows_valid=1, rows_conflict=2)
    assert warnings_for(ACME, few)[0].startswith("2 of 3 rows (67%) are key conflicts")


def test_rejected_rows_warn_over_half_with_the_three_main_reasons() -> None:
    reasons = Counter(
        {"missing_device_id": 30, "invalid_timestamp": 20, "future_timestamp": 10, "other": 1}
    )
    at = counters(rows_read=122, rows_valid=61, rows_rejected=61, reject_reasons=reasons)
    assert warnings_for(ACME, at) == []  # half: no warning
    over = counters(rows_read=121, rows_valid=60, rows_rejected=61, reject_reasons=reasons)
    assert warnings_for(ACME, over) == [
        "61 of 121 rows (50%) were rejected (missing_device_id 30, invalid_timestamp 20, "
        "future_timestamp 10): does the contract describe this file?"
    ]
    single = counters(rows_read=1, rows_rejected=1, reject_reasons=Counter(missing_device_id=1))
    assert warnings_for(ACME, single) == [
        "1 of 1 rows (100%) were rejected (missing_device_id 1): does the contract describe "
        "this file?"
    ]


def test_a_field_mostly_nulled_warns_counting_the_rows_kept() -> None:
    name = MEASUREMENTS[0]
    # 40 read, 20 rejected: 20 kept; 10 nulled is half (no warning), 11 is over.
    at = counters(rows_read=40, rows_valid=20, rows_rejected=20, nulled=Counter({name: 10}))
    assert warnings_for(ACME, at) == []
    over = counters(rows_read=40, rows_valid=20, rows_rejected=20, nulled=Counter({name: 11}))
    assert warnings_for(ACME, over) == [
        f"{name}: 11 of 20 values (55%) were nulled as invalid or out of range: check its "
        "type, constraints and missingValues"
    ]
    everything_rejected = counters(
        rows_read=5, rows_rejected=5, nulled=Counter({name: 5}), reject_reasons=Counter(x=5)
    )
    assert not any(w.startswith(name) for w in warnings_for(ACME, everything_rejected))


def test_one_time_of_day_warns_from_two_valid_rows() -> None:
    one = counters(rows_read=1, rows_valid=1, one_time_of_day=True)
    assert warnings_for(ACME, one) == []
    two = counters(rows_read=2, rows_valid=2, one_time_of_day=True)
    assert warnings_for(ACME, two) == [
        f"every timestamp is at the same time of day in {ACME.timestamp.timezone}: are these "
        "dates without their time (in another column)?"
    ]
