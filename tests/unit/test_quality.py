"""The rules that fail a file as a whole, and the warnings of a contract that looks wrong,
seen through `validate_source` on small files written here (iotpipe.quality)."""

from __future__ import annotations

import io

import pytest

from iotpipe.contract import contract_from_dict, contract_to_dict, load_contract
from iotpipe.ingest import validate_source
from iotpipe.quality import SHOWN_COLUMNS

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
