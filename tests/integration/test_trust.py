"""Issue "Trust": no success reported for data that was not loaded, a ledger that knows the
dataset, and a killed worker that no longer locks its file out. On SQLite and MariaDB."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from iotpipe.cli import main
from iotpipe.sample import write_sample
from tests.integration.conftest import fetch_all, scalar

# The file a user tried with the default contract: none of its columns is an Acme measurement.
HVAC = "device_id,timestamp,temperature,humidity,hvac_status\n" + "".join(
    f"hvac-{i % 3},2024-05-01T00:{i:02d}:00Z,{20 + i % 5},{40 + i % 7},{'on' if i % 2 else 'off'}\n"
    for i in range(40)
)
HVAC_CONTRACT = """
name: hvac
device_id: device_id
timestamp: timestamp
fields:
  - {name: temperature, type: number}
  - {name: humidity, type: number}
  - {name: hvac_status, type: category}
"""


def run(*args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any]]:
    code = main([*args, "--json"])
    out = capsys.readouterr().out
    return code, json.loads(out)


def test_a_file_the_contract_does_not_describe_fails_and_can_be_loaded_later(
    store_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "hvac.csv"
    path.write_text(HVAC, encoding="utf-8")
    # Findings 1 and 4: "loaded", exit 0, every row rejected, and the ledger said loaded.
    code, body = run("validate", str(path), capsys=capsys)
    assert code == 1 and body["status"] == "failed"
    assert "does not match contract acme_usage" in body["error"]
    assert "temperature" in body["error"] and "battery_pct" in body["error"]
    code, body = run("ingest", str(path), "--database-url", store_url, capsys=capsys)
    assert code == 1 and body["status"] == "failed"
    assert fetch_all(store_url, "SELECT dataset, status FROM iotpipe_ledger") == [
        ("acme_usage", "failed")
    ]
    # Finding 2: the same bytes with the right contract load (the ledger key has the dataset).
    contract = tmp_path / "hvac.yaml"
    contract.write_text(HVAC_CONTRACT, encoding="utf-8")
    args = ("ingest", str(path), "--contract", str(contract), "--database-url", store_url)
    code, body = run(*args, capsys=capsys)
    assert code == 0 and body["status"] == "loaded" and body["rows_loaded"] == 40
    assert scalar(store_url, "SELECT COUNT(*) FROM hvac") == 40
    # Again: skipped, saying what it matched; --force loads it again.
    code, body = run(*args, capsys=capsys)
    assert code == 0 and body["status"] == "skipped"
    assert body["matched"]["dataset"] == "hvac" and body["matched"]["rows_loaded"] == 40
    assert body["matched"]["status"] == "loaded" and body["matched"]["loaded_at"].endswith("Z")
    ((source, version),) = fetch_all(
        store_url, "SELECT source, version FROM iotpipe_ledger WHERE dataset = 'hvac'"
    )
    assert (body["matched"]["source"], body["matched"]["version"]) == (source, version)
    assert len(body["matched"]) == 6  # source, version, dataset, status, loaded_at, rows
    code, body = run(*args, "--force", capsys=capsys)
    assert code == 0 and body["status"] == "loaded" and body["rows_loaded"] == 40
    assert scalar(store_url, "SELECT COUNT(*) FROM hvac") == 40
    # iotpipe files lists both entries, newest first; filters work.
    code, listing = run("files", "--database-url", store_url, capsys=capsys)
    assert code == 0
    assert [(f["dataset"], f["status"], f["attempts"]) for f in listing["files"]] == [
        ("hvac", "loaded", 2),
        ("acme_usage", "failed", 1),
    ]
    failed = listing["files"][1]
    assert failed["source"] == path.resolve().as_uri() and "does not match" in failed["error"]
    code, listing = run("files", "--status", "failed", "--database-url", store_url, capsys=capsys)
    assert [f["dataset"] for f in listing["files"]] == ["acme_usage"]


def test_one_file_into_two_datasets(
    store_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "hvac.csv"
    path.write_text(HVAC, encoding="utf-8")
    for name in ("hvac_a", "hvac_b"):
        contract = tmp_path / f"{name}.yaml"
        contract.write_text(HVAC_CONTRACT.replace("name: hvac", f"name: {name}"), encoding="utf-8")
        code, body = run(
            "ingest", str(path), "--contract", str(contract), "--database-url", store_url,
            capsys=capsys,
        )  # fmt: skip
        assert code == 0 and body["status"] == "loaded", body
    assert scalar(store_url, "SELECT COUNT(*) FROM hvac_a") == 40
    assert scalar(store_url, "SELECT COUNT(*) FROM hvac_b") == 40


def test_every_row_rejected_is_a_failed_file(
    store_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad times.csv"
    path.write_text(
        "device_id,timestamp,battery_pct\n" + "".join(f"d{i},yesterday,50\n" for i in range(10)),
        encoding="utf-8",
    )
    code, body = run("ingest", str(path), "--database-url", store_url, capsys=capsys)
    assert code == 1 and body["status"] == "failed"
    assert body["rows_read"] == 10 and body["rows_rejected"] == 10
    assert "no row is valid" in body["error"] and "invalid_timestamp 10" in body["error"]
    assert scalar(store_url, "SELECT status FROM iotpipe_ledger") == "failed"
    assert scalar(store_url, "SELECT COUNT(*) FROM device_usage") == 0


def test_max_rejected_ratio_fails_the_file_and_rolls_back(
    store_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "some bad.csv"
    rows = [f"d{i},2024-05-01T00:00:{i:02d}Z,50\n" for i in range(6)]
    rows += [f"d{i},yesterday,50\n" for i in range(4)]
    path.write_text("device_id,timestamp,battery_pct\n" + "".join(rows), encoding="utf-8")
    strict = tmp_path / "strict.yaml"
    strict.write_text(
        "name: strict\ntable: strict\ndevice_id: device_id\ntimestamp: timestamp\n"
        "fields: [{name: battery_pct, type: number}]\nquality: {max_rejected_ratio: 0.25}\n",
        encoding="utf-8",
    )
    args = ("ingest", str(path), "--contract", str(strict), "--database-url", store_url)
    code, body = run(*args, capsys=capsys)
    assert code == 1 and "4 of 10 rows rejected (40.0%)" in body["error"]
    assert scalar(store_url, "SELECT COUNT(*) FROM strict") == 0  # rolled back


@pytest.mark.parametrize("fmt", ["csv", "ndjson"])
def test_a_header_only_file_fails(
    store_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], fmt: str
) -> None:
    path = tmp_path / f"empty.{fmt}"
    path.write_text("device_id,timestamp,battery_pct\n" if fmt == "csv" else "\n\n")
    code, body = run("ingest", str(path), "--database-url", store_url, capsys=capsys)
    assert code == 1 and body["status"] == "failed"


def _wait_for(url: str, sql: str, expected: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if fetch_all(url, sql) == expected:
                return
        except Exception:  # the tables may not exist yet
            pass
        time.sleep(0.05)
    raise AssertionError(f"{sql} never gave {expected}")


def test_a_killed_ingest_does_not_lock_its_file_out(store_url: str, tmp_path: Path) -> None:
    # Finding 5: after kill -9 mid-file a rerun was refused for the whole 900 s lease.
    path = tmp_path / "big.csv"
    truth = write_sample(path, 400_000, devices=50, seed=91)
    env = {**os.environ, "IOTPIPE_DATABASE_URL": store_url}
    cmd = [sys.executable, "-m", "iotpipe", "ingest", str(path), "--json"]
    first = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        _wait_for(store_url, "SELECT status FROM iotpipe_ledger", [("loading",)])
        time.sleep(0.3)  # mid-file: batches are being written
        assert first.poll() is None, "the first ingest finished before it could be killed"
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
    finally:
        if first.poll() is None:
            first.kill()
    assert scalar(store_url, "SELECT status FROM iotpipe_ledger") == "loading"  # never finished
    started = time.monotonic()
    rerun = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    body = json.loads(rerun.stdout)
    assert rerun.returncode == 0 and body["status"] == "loaded", rerun.stderr[-2000:]
    assert body["rows_loaded"] == truth.rows_valid
    assert scalar(store_url, "SELECT COUNT(*) FROM device_usage") == truth.rows_valid
    assert fetch_all(store_url, "SELECT status, attempts FROM iotpipe_ledger") == [("loaded", 2)]
    assert time.monotonic() - started < 120  # not the 900 s lease
