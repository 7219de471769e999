"""A file in random row order loads through sorted runs (`iotpipe.storage.spill`) to exactly
the table writing its batches as they come gives, on both engines, and exactly its report."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

from bench.messy import write_messy
from iotpipe.bootstrap import build_store
from iotpipe.contract import load_contract
from iotpipe.ingest import IngestOptions, ingest_object
from iotpipe.sources import local_object
from iotpipe.storage.readings import FileLoad
from tests.integration.conftest import table_rows

ACME = load_contract("acme_usage")


def load(url: str, path: Path) -> Any:
    store = build_store(url)
    try:
        return ingest_object(
            lambda: path.open("rb"),
            local_object(path),
            ACME,
            store,
            options=IngestOptions(batch_rows=4_000),
        )
    finally:
        store.close()


def test_a_random_order_file_loads_through_runs_to_the_same_table(
    store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "merged.csv"
    truth = write_messy(path, 40_000, devices=60, order="random", seed=5)
    spilled: list[bool] = []
    finish = FileLoad.finish

    def watched(self: FileLoad, report: Any) -> None:
        spilled.append(self.spilled)
        finish(self, report)

    monkeypatch.setattr(FileLoad, "finish", watched)
    report = load(store_url, path)
    assert spilled == [True]
    assert report.status == "loaded"
    assert {k: report.to_dict()[k] for k in asdict(truth)} == asdict(truth)
    through_runs = table_rows(store_url, ACME)
    assert len(through_runs) == truth.rows_valid

    # The same file written batch by batch as it comes (runs turned off), into a new table.
    monkeypatch.setattr(FileLoad, "BEHIND_SHARE", 2.0)
    other = f"sqlite:///{tmp_path}/direct.db"
    assert load(other, path).status == "loaded"
    assert spilled == [True, False]
    assert through_runs == table_rows(other, ACME)
