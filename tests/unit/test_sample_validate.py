from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from iotpipe.cli import main
from iotpipe.contract import load_contract
from iotpipe.ingest import validate_source
from iotpipe.sample import generate, write_sample
from tests.unit.helpers import NOW, clean_bytes


def sample_bytes(rows: int, seed: int) -> tuple[bytes, object]:
    text = io.StringIO(newline="")
    truth = generate(text, rows, devices=20, seed=seed, keep_rows=True)
    return text.getvalue().encode("utf-8"), truth


@pytest.mark.parametrize("batch_rows", [997, 50_000])
def test_clean_rows_equal_the_generated_truth(batch_rows: int) -> None:
    data, truth = sample_bytes(20_000, seed=7)
    rows, rejected, counters = clean_bytes(data, load_contract("acme_usage"), batch_rows=batch_rows)
    assert truth.rows is not None  # type: ignore[attr-defined]
    expected = sorted(truth.rows.values(), key=lambda r: (r[0], r[1]))  # type: ignore[attr-defined]
    got = sorted(rows.rows(), key=lambda r: (r[0], r[1]))
    assert len(got) == len(expected) == counters.rows_valid
    assert got == expected
    assert counters.rows_read == truth.rows_read  # type: ignore[attr-defined]
    assert len(rejected) == truth.rows_rejected  # type: ignore[attr-defined]
    assert all(r.reason and r.detail for r in rejected)


def test_validate_report_equals_truth_plain_and_gzip(tmp_path: Path) -> None:
    contract = load_contract("acme_usage")
    for name in ("s.csv", "s.csv.gz"):
        path = tmp_path / name
        truth = write_sample(path, 30_000, devices=30, seed=3)
        with path.open("rb") as stream:
            report = validate_source(stream, contract, source=str(path), now=NOW, batch_rows=4096)
        body = report.to_dict()
        expected = truth.to_dict()
        for key, value in expected.items():
            assert body[key] == value, key
        assert body["status"] == "validated"
        assert body["compressed"] is name.endswith(".gz")
        assert body["unknown_columns"] == ["note"]
        assert body["rows_read"] == (
            body["rows_valid"]
            + body["rows_rejected"]
            + body["rows_duplicate"]
            + body["rows_conflict"]
        )


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    write_sample(a, 2000, seed=11)
    write_sample(b, 2000, seed=11)
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes().startswith(b"\xef\xbb\xbfDevice_ID,")


def test_cli_sample_then_validate_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out, truth_path, rejects = (
        tmp_path / "acme.csv.gz",
        tmp_path / "truth.json",
        tmp_path / "rejects.csv",
    )
    assert (
        main(
            [
                "sample",
                "--rows",
                "5000",
                "--devices",
                "5",
                "--seed",
                "2",
                "--out",
                str(out),
                "--truth",
                str(truth_path),
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert main(["validate", str(out), "--json", "--rejects", str(rejects)]) == 0
    body = json.loads(capsys.readouterr().out)
    truth = json.loads(truth_path.read_text())
    for key in (
        "rows_read",
        "rows_valid",
        "rows_rejected",
        "rows_duplicate",
        "rows_conflict",
        "reject_reasons",
        "nulled",
    ):
        assert body[key] == truth[key], key
    assert body["status"] == "validated" and body["rows_loaded"] == 0
    assert set(body) >= {
        "status",
        "rows_read",
        "rows_loaded",
        "rows_rejected",
        "rows_duplicate",
        "reject_reasons",
    }
    lines = rejects.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "line,reason,detail,record"
    import csv

    records = list(csv.reader(io.StringIO(rejects.read_text(encoding="utf-8"))))
    assert len(records) - 1 == truth["rows_rejected"]


def test_cli_failure_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("foo,bar\n1,2\n")
    assert main(["validate", str(bad), "--json"]) == 1
    body = json.loads(capsys.readouterr().out)
    assert body["status"] == "failed"
    assert "required column(s) missing" in body["error"]
    assert main(["validate", str(tmp_path / "nope.csv")]) == 2
    assert "no such file" in capsys.readouterr().err
    broken = tmp_path / "c.yaml"
    broken.write_text("name: x\n")
    assert main(["validate", str(bad), "--contract", str(broken)]) == 2
    assert "device_id: is required" in capsys.readouterr().err
    assert main(["contract", "check", "acme_usage"]) == 0


def test_human_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "s.csv"
    write_sample(path, 3000, seed=5)
    assert main(["validate", str(path)]) == 0
    text = capsys.readouterr().out
    assert text.startswith(f"validated: {path} (csv) against contract acme_usage")
    assert "rows rejected" in text and "ignored columns: note" in text
