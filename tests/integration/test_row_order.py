"""A file in random row order loads through sorted runs (`iotpipe.storage.spill`) to exactly
the table writing its batches as they come gives, on both engines, and exactly its report.

The runs keep clean rows; their encodings are rebuilt after the merge from codes learned in
the file's order, so the codes, one-hot columns and category dictionary are the same too."""

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
from tests.integration.conftest import fetch_all, table_rows

ACME = load_contract("acme_usage")


def load(url: str, path: Path, batch_rows: int = 4_000) -> Any:
    store = build_store(url)
    try:
        return ingest_object(
            lambda: path.open("rb"),
            local_object(path),
            ACME,
            store,
            options=IngestOptions(batch_rows=batch_rows),
        )
    finally:
        store.close()


def watch_spilled(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Return a list that gets each load's `FileLoad.spilled` as it finishes."""
    spilled: list[bool] = []
    finish = FileLoad.finish

    def watched(self: FileLoad, report: Any) -> None:
        spilled.append(self.spilled)
        finish(self, report)

    monkeypatch.setattr(FileLoad, "finish", watched)
    return spilled


def dictionary(url: str) -> dict[str, dict[str, int]]:
    store = build_store(url)
    try:
        return store.category_dictionary(ACME.name)
    finally:
        store.close()


def test_a_random_order_file_loads_through_runs_to_the_same_table(
    store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "merged.csv"
    truth = write_messy(path, 40_000, devices=60, order="random", seed=5)
    spilled = watch_spilled(monkeypatch)
    report = load(store_url, path)
    assert spilled == [True]
    assert report.status == "loaded"
    assert {k: report.to_dict()[k] for k in asdict(truth)} == asdict(truth)
    through_runs = table_rows(store_url, ACME, ACME.output_columns)
    assert len(through_runs) == truth.rows_valid
    codes = dictionary(store_url)

    # The same file written batch by batch as it comes (runs turned off), into a new table.
    monkeypatch.setattr(FileLoad, "BEHIND_SHARE", 2.0)
    other = f"sqlite:///{tmp_path}/direct.db"
    assert load(other, path).status == "loaded"
    assert spilled == [True, False]
    assert through_runs == table_rows(other, ACME, ACME.output_columns)
    assert codes == dictionary(other)
    assert all(len(codes[f.name]) > 1 for f in ACME.categories)


def test_codes_follow_the_file_s_order_when_rows_go_through_runs(
    store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A region first seen in the middle of the file, on the last device by key, and one seen
    # only at its end, on the first device: the merge meets them in the other order, but
    # codes are given as the file shows the values (as when batches are written as they
    # come), and each stored row's code and one-hot columns are its value's.
    lines = ["device_id,timestamp,region,status,battery_pct"]
    for i in range(600):
        minute = (i * 337) % 600  # every minute once, in a scrambled order
        device, region = f"d{i % 5}", "north"
        if i == 300:
            device, region = "z9", "middle"
        if i == 599:
            device, region = "a0", "late"
        stamp = f"2025-03-01T{minute // 60:02d}:{minute % 60:02d}:00Z"
        lines.append(f"{device},{stamp},{region},idle,50")
    path = tmp_path / "scrambled.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    spilled = watch_spilled(monkeypatch)
    report = load(store_url, path, batch_rows=50)
    assert (report.status, report.rows_loaded) == ("loaded", 600), report.error
    codes = dictionary(store_url)
    assert spilled == [True]
    assert codes["region"] == {"north": 1, "middle": 2, "late": 3}
    stored = table_rows(store_url, ACME, ["region", "region_code", "status", "status_idle"])
    assert {(r[0], r[1]) for r in stored} == {("north", 1), ("middle", 2), ("late", 3)}
    assert {(r[2], r[3]) for r in stored} == {("idle", 1)}


def test_out_of_order_the_lowest_keys_are_written_while_the_rest_is_read(
    store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The load learns the engine's page cache and, while the file is read, writes the rows of
    # its lowest keys (as many as a third of that cache holds); the merge writes the rest.
    path = tmp_path / "merged.csv"
    truth = write_messy(path, 20_000, devices=40, order="random", seed=8)
    caches: list[int | None] = []
    init = FileLoad.__init__

    def watched_init(self: FileLoad, *args: Any, **kwargs: Any) -> None:
        caches.append(kwargs.get("cache_bytes"))
        init(self, *args, **kwargs)

    written: list[tuple[bool, int]] = []  # (the file was read by then, rows)
    read = [False]
    write, finish = FileLoad._written, FileLoad.finish

    def watched_write(self: FileLoad, ready: Any) -> None:
        write(self, ready)
        written.append((read[0], ready.rows.height))

    def watched_finish(self: FileLoad, report: Any) -> None:
        self._wait_for_writer()
        read[0] = True
        finish(self, report)

    monkeypatch.setattr(FileLoad, "__init__", watched_init)
    monkeypatch.setattr(FileLoad, "_written", watched_write)
    monkeypatch.setattr(FileLoad, "finish", watched_finish)
    report = load(store_url, path, batch_rows=2_000)
    assert report.status == "loaded", report.error
    if store_url.startswith("sqlite"):
        expected = 2_000 * 1024  # SQLite's default cache_size, -2000 (KiB)
    else:
        (((pool,),),) = (fetch_all(store_url, "SELECT @@innodb_buffer_pool_size"),)
        expected = int(pool)
    assert caches == [expected]
    while_reading = [rows for done, rows in written if not done]
    # More than the first batch (written whole, before the file showed it is out of order).
    assert len(while_reading) > 1
    # (A key written as it came and again later, from a later row of it, is written twice.)
    assert sum(rows for _, rows in written) >= truth.rows_valid
    assert len(table_rows(store_url, ACME)) == truth.rows_valid
