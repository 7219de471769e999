"""Issue "Real-world files": each shape in tests/data/shapes, read with the contract a person
writes for it, and with the contract `infer` drafts from the raw bytes, reports the truth that
tests/shapes.py computes with the standard library."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from iotpipe.contract import DataContract, parse_contract
from iotpipe.infer import infer_draft
from iotpipe.ingest import validate_source
from tests.shapes import SEMICOLON, SHAPES, Shape, truth

COUNTS = ("rows_read", "rows_valid", "rows_rejected", "rows_duplicate", "rows_conflict")


def validate(path: Path, contract: DataContract) -> dict[str, Any]:
    with path.open("rb") as stream:
        return validate_source(stream, contract, source=path.as_posix()).to_dict()


def counts(body: dict[str, Any]) -> dict[str, Any]:
    return {**{k: body[k] for k in COUNTS}, "reject_reasons": body["reject_reasons"]}


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: s.name)
def test_the_users_contract_reports_the_truth(shape: Shape) -> None:
    contract = parse_contract(shape.contract)
    for path in shape.paths():
        body = validate(path, contract)
        assert body["status"] == "validated", body["error"]
        assert counts(body) == truth(shape, path).counts(), path.name
        assert body["warnings"] == []


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: s.name)
def test_infer_drafts_a_contract_that_reports_the_truth(shape: Shape) -> None:
    # From the raw bytes (and the path, where the device is in it), no edits.
    first = shape.paths()[0]
    with first.open("rb") as stream:
        draft = infer_draft(stream, name=first.name, path=first.as_posix())
    for path in shape.paths():
        body = validate(path, draft.contract)
        assert body["status"] == "validated", (body["error"], draft.yaml())
        expected = truth(shape, path).counts()
        assert counts(body) == expected, (path.name, draft.yaml(), draft.notes)
    # The draft reads the time the way the person did (a headerless file's columns are
    # called column_1, column_2... in the draft).
    named = {c: f"column_{i + 1}" for i, c in enumerate(shape.columns or ())}
    assert {*draft.contract.timestamp.parts.values()} == {(named.get(c, c),) for c in shape.time}
    if shape.time_format != "epoch":
        formats = draft.contract.timestamp.formats
        assert formats in ((), (shape.time_format,)), formats
    # Each "no reading" number the person knew of, the draft found too.
    by_source = {f.sources[0]: f for f in draft.contract.fields}
    for name, sentinels in shape.sentinels.items():
        source = shape.fields[name]
        assert set(by_source[named.get(source, source)].sentinels) >= sentinels, name


def test_infer_reads_day_first_from_a_day_over_12_and_says_what_it_assumed() -> None:
    path = SEMICOLON.paths()[0]
    with path.open("rb") as stream:
        draft = infer_draft(stream, name=path.name, path=path.as_posix())
    assert draft.contract.timestamp.formats == ("%d/%m/%Y %H.%M.%S",)
    assert draft.contract.device_value == "semicolon_decimal_comma"
    notes = "\n".join(draft.notes)
    assert "timezone: UTC assumed" in notes and "no column is a device id" in notes
    yaml_text = draft.yaml()
    assert parse_contract(yaml_text) == draft.contract  # the comments do not change it
    assert "# observed 144 values" in yaml_text
    # The first ten days (10/03 .. 12/03) alone cannot tell day-first from month-first.
    head = b"".join(path.read_bytes().splitlines(keepends=True)[:40])
    with io.BytesIO(head) as stream:
        unsure = infer_draft(stream, name=path.name)
    assert "day-first or month-first" in "\n".join(unsure.notes)


def test_a_date_only_timestamp_on_hourly_data_does_not_pass_silently() -> None:
    # The collapse the trial found: hourly rows keyed by their date alone.
    path = SEMICOLON.paths()[0]
    contract = parse_contract(
        SEMICOLON.contract.replace("  date: Date\n  time: Time\n", "  source: Date\n").replace(
            '"%d/%m/%Y %H.%M.%S"', '"%d/%m/%Y"'
        )
    )
    body = validate(path, contract)
    assert body["status"] == "validated"
    assert body["rows_conflict"] > 0.9 * body["rows_read"]
    warnings = "\n".join(body["warnings"])
    assert "key conflicts" in warnings and "is the timestamp too coarse" in warnings
    assert "same time of day" in warnings
    # And infer never drafts the date alone when a time column is there.
    with path.open("rb") as stream:
        draft = infer_draft(stream, name=path.name)
    assert draft.contract.timestamp.parts == {"date": ("Date",), "time": ("Time",)}


def test_messages_name_the_source_columns() -> None:
    contract = parse_contract(SEMICOLON.contract)
    data = b"Date;Time;CO(GT)\n10/03/2004;99.00.00;1,0\n"
    with io.BytesIO(data) as stream:
        body = validate_source(stream, contract, source="x.csv").to_dict()
    detail = body["rejected_sample"][0]["detail"]
    assert "columns 'Date' + 'Time'" in detail and "%d/%m/%Y %H.%M.%S" in detail
    with io.BytesIO(b"Day;Hour;CO(GT)\n1;2;3\n") as stream:
        failed = validate_source(stream, contract, source="x.csv").to_dict()
    assert "'Date' (timestamp.date)" in failed["error"], failed["error"]
