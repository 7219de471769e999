"""`FileLoad` prepares each batch in a worker while the one before it is written.

Sorting a batch and writing its LOAD DATA file used to run between two statements, with the
server idle; now they overlap the previous statement. These tests pin the order of writes,
the overlap itself, where errors surface, and that no staged file outlives the load.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from iotpipe.contract import DEVICE_ID, TS, load_contract
from iotpipe.storage.readings import FileLoad

T0 = dt.datetime(2025, 1, 1)
WAIT = 10.0  # seconds; only reached when the overlap is missing


def batch(start: int, rows: int = 50) -> pl.DataFrame:
    """Rows of three devices, in time order after ``start`` minutes, given unsorted by key."""
    keys = [(f"d{i % 3}", T0 + dt.timedelta(minutes=start + i)) for i in range(rows)]
    return pl.DataFrame({DEVICE_ID: [d for d, _ in keys], TS: [t for _, t in keys]}).with_columns(
        pl.col(TS).cast(pl.Datetime("us"))
    )


class Staging:
    """A bulk path that stages each batch as a file and records what it writes."""

    def __init__(self) -> None:
        self.staged: list[Path] = []
        self.written: list[tuple[pl.DataFrame, Path | None, bool]] = []
        self.stage_threads: set[int] = set()
        self.write_threads: set[int] = set()
        self.on_disk: list[list[Path]] = []  # at each write, the staged files still there

    def stage(self, rows: pl.DataFrame, directory: Path) -> Path | None:
        self.stage_threads.add(threading.get_ident())
        path = directory / f"{len(self.staged)}.csv"
        rows.write_csv(path)
        self.staged.append(path)
        return path

    def upsert(
        self,
        cursor: Any,
        table: str,
        rows: pl.DataFrame,
        *,
        whole_rows: bool,
        staged: Path | None = None,
    ) -> None:
        self.write_threads.add(threading.get_ident())
        self.on_disk.append([path for path in self.staged if path.exists()])
        # What the statement would send: the staged file, still there, holding these rows.
        assert staged is not None and staged.exists()
        assert pl.read_csv(staged, try_parse_dates=True).equals(rows)
        self.written.append((rows, staged, whole_rows))


def load_of(bulk: Any, tmp_path: Path, marked: list[Any] | None = None) -> FileLoad:
    record = marked.append if marked is not None else (lambda report: None)
    return FileLoad(
        None, load_contract("acme_usage"), bulk, record, whole_rows=True,
        spill_dir=str(tmp_path),
    )  # fmt: skip


def test_batches_are_written_in_order_sorted_from_their_staged_files(tmp_path: Path) -> None:
    bulk, marked = Staging(), list[Any]()
    load = load_of(bulk, tmp_path, marked)
    parts = [batch(0), batch(50), batch(100)]
    assert load.upsert(parts[0]) == 50
    assert bulk.written == []  # taken, not yet written: it is written by the next call
    load.upsert(parts[1])
    assert len(bulk.written) == 1
    load.upsert(parts[2])
    load.finish({"status": "loaded"})
    assert marked == [{"status": "loaded"}]  # after every batch was written
    written = [rows for rows, _, _ in bulk.written]
    assert all(w.equals(p.sort(DEVICE_ID, TS)) for w, p in zip(written, parts, strict=True))
    assert [staged for _, staged, _ in bulk.written] == bulk.staged
    assert threading.get_ident() not in bulk.stage_threads  # staged in the worker
    assert bulk.write_threads == {threading.get_ident()}  # written in the caller's thread
    assert list(tmp_path.iterdir()) == []  # no staged file or directory is left


def test_batches_are_prepared_one_at_a_time_in_the_order_they_were_taken(tmp_path: Path) -> None:
    # The worker alone keeps each device's latest time and makes the staging directory:
    # two batches prepared at once would judge against a frontier missing one of them.
    class Slow(Staging):
        def __init__(self) -> None:
            super().__init__()
            self.busy, self.most = 0, 0
            self.guard = threading.Lock()

        def stage(self, rows: pl.DataFrame, directory: Path) -> Path | None:
            with self.guard:
                self.busy += 1
                self.most = max(self.most, self.busy)
            time.sleep(0.05)  # a slow disk: a second worker would start meanwhile
            try:
                return super().stage(rows, directory)
            finally:
                with self.guard:
                    self.busy -= 1

    bulk = Slow()
    load = load_of(bulk, tmp_path)
    parts = [batch(50 * n) for n in range(4)]
    assert load.upsert(parts[0].clear()) == 0  # an empty batch: nothing taken
    for part in parts:
        assert load.upsert(part) == part.height
    load.finish({})
    assert bulk.most == 1
    written = [rows for rows, _, _ in bulk.written]
    assert all(w.equals(p.sort(DEVICE_ID, TS)) for w, p in zip(written, parts, strict=True))


def test_close_returns_once_the_worker_has_stopped(tmp_path: Path) -> None:
    # A load that ends (an error elsewhere) must not leave its worker writing into the
    # temporary directory after it returned.
    release, staged = threading.Event(), threading.Event()

    class Held(Staging):
        def stage(self, rows: pl.DataFrame, directory: Path) -> Path | None:
            assert release.wait(WAIT)
            try:
                return super().stage(rows, directory)
            finally:
                staged.set()

    load = load_of(Held(), tmp_path)
    load.upsert(batch(0))  # prepared in the worker, held in its stage
    threading.Timer(0.2, release.set).start()
    load.close()
    assert staged.is_set()  # the worker finished before close returned
    assert list(tmp_path.iterdir()) == []


def test_a_written_batch_s_file_is_removed_at_once_in_the_load_s_own_directory(
    tmp_path: Path,
) -> None:
    # A Lambda's /tmp is small: a file of many batches must not keep every batch staged
    # until the end, only the one being written and the one being prepared.
    bulk = Staging()
    load = load_of(bulk, tmp_path)
    for n in range(5):
        load.upsert(batch(50 * n))
    load.finish({})
    assert len(bulk.written) == 5
    for k, there in enumerate(bulk.on_disk):
        assert set(there) <= set(bulk.staged[k : k + 2]), f"write {k}: {there}"
    # Staged where the load was told to (the assertions above and below look there).
    assert {path.parent.parent for path in bulk.staged} == {tmp_path}
    assert list(tmp_path.iterdir()) == []


def test_the_next_batch_is_staged_while_the_previous_one_is_written(tmp_path: Path) -> None:
    staging_second = threading.Event()

    class Overlapping(Staging):
        def stage(self, rows: pl.DataFrame, directory: Path) -> Path | None:
            if self.staged:
                staging_second.set()
            return super().stage(rows, directory)

        def upsert(self, cursor: Any, table: str, rows: pl.DataFrame, **kw: Any) -> None:
            if not self.written:  # the first statement "runs" until the second batch stages
                assert staging_second.wait(WAIT), "batch 2 was not staged during batch 1's write"
            super().upsert(cursor, table, rows, **kw)

    bulk = Overlapping()
    load = load_of(bulk, tmp_path)
    load.upsert(batch(0))
    load.upsert(batch(50))
    load.finish({})
    assert len(bulk.written) == 2


def test_a_batch_that_cannot_be_staged_fails_the_load_and_leaves_no_file(tmp_path: Path) -> None:
    class DiskFull(Staging):
        def stage(self, rows: pl.DataFrame, directory: Path) -> Path | None:
            path = super().stage(rows, directory)
            if len(self.staged) == 2:
                raise OSError(28, "No space left on device")
            return path

    bulk, marked = DiskFull(), list[Any]()
    load = load_of(bulk, tmp_path, marked)
    load.upsert(batch(0))
    load.upsert(batch(50))  # writes batch 1; batch 2 fails in the worker
    with pytest.raises(OSError, match="No space left"):
        load.finish({"status": "loaded"})
    load.close()  # what the store's block does on the way out
    assert marked == [] and not load.finished  # never marked loaded
    assert len(bulk.written) == 1
    assert list(tmp_path.iterdir()) == []


def test_a_failed_write_leaves_no_staged_file_behind(tmp_path: Path) -> None:
    class Refused(Staging):
        def upsert(self, cursor: Any, table: str, rows: pl.DataFrame, **kw: Any) -> None:
            raise RuntimeError("connection lost")

    load = load_of(Refused(), tmp_path)
    load.upsert(batch(0))
    with pytest.raises(RuntimeError, match="connection lost"):
        load.upsert(batch(50))  # batch 1's write fails while batch 2 is staged
    load.close()
    assert list(tmp_path.iterdir()) == []
