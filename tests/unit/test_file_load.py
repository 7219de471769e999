"""`FileLoad` writes each batch in a writer thread as soon as it is prepared.

Sorting a batch and writing its LOAD DATA file used to run between two statements, with the
server idle; then they overlapped the previous statement, but a batch waited for the next
one to be taken before it was written. Now the caller prepares each batch while the one
before it is written, and the writer sends it at once. These tests pin the order of writes,
the overlap itself, that nothing waits for the next batch, where errors surface, and that
no staged file outlives the load.
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
        self.writer_names: set[str] = set()
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
        self.writer_names.add(threading.current_thread().name)
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
    written_when_marked: list[int] = []

    def mark(report: Any) -> None:
        written_when_marked.append(len(bulk.written))
        marked.append(report)

    load = FileLoad(
        None, load_contract("acme_usage"), bulk, mark, whole_rows=True, spill_dir=str(tmp_path)
    )
    parts = [batch(0), batch(50), batch(100)]
    assert load.upsert(parts[0]) == 50
    load.upsert(parts[1])
    assert len(bulk.written) >= 1  # the first was written before the second could begin
    load.upsert(parts[2])
    load.finish({"status": "loaded"})
    assert marked == [{"status": "loaded"}]
    assert written_when_marked == [3]  # marked after every batch was written
    written = [rows for rows, _, _ in bulk.written]
    assert all(w.equals(p.sort(DEVICE_ID, TS)) for w, p in zip(written, parts, strict=True))
    assert [staged for _, staged, _ in bulk.written] == bulk.staged
    assert bulk.stage_threads == {threading.get_ident()}  # staged in the caller's thread
    assert len(bulk.write_threads) == 1  # written in one thread, not the caller's
    assert threading.get_ident() not in bulk.write_threads
    # The writer says what it is in a stack dump or a profile (py-spy, faulthandler).
    assert bulk.writer_names == {"iotpipe-write_0"}
    assert list(tmp_path.iterdir()) == []  # no staged file or directory is left


def test_a_batch_is_written_without_waiting_for_the_next_one(tmp_path: Path) -> None:
    # The server must not idle until the next batch is read and cleaned: the batch taken
    # is sent as soon as it is staged.
    sent = threading.Event()

    class Signalling(Staging):
        def upsert(self, cursor: Any, table: str, rows: pl.DataFrame, **kw: Any) -> None:
            super().upsert(cursor, table, rows, **kw)
            sent.set()

    bulk = Signalling()
    load = load_of(bulk, tmp_path)
    load.upsert(batch(0))
    assert sent.wait(WAIT), "the batch waited for the next upsert or finish"
    assert len(bulk.written) == 1
    load.finish({})


def test_batches_are_prepared_one_at_a_time_in_the_order_they_were_taken(tmp_path: Path) -> None:
    # One thread at a time keeps each device's latest time and makes the staging directory:
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
            time.sleep(0.05)  # a slow disk: a second stage would start meanwhile
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


def test_close_returns_once_the_write_under_way_has_ended(tmp_path: Path) -> None:
    # A load that ends (an error elsewhere) rolls back on the same connection next: the
    # writer must be done with it, and with the temporary directory, before close returns.
    release, done = threading.Event(), threading.Event()

    class Held(Staging):
        def upsert(self, cursor: Any, table: str, rows: pl.DataFrame, **kw: Any) -> None:
            assert release.wait(WAIT)
            try:
                super().upsert(cursor, table, rows, **kw)
            finally:
                done.set()

    load = load_of(Held(), tmp_path)
    load.upsert(batch(0))  # staged here, held in its write
    assert not done.is_set()
    threading.Timer(0.2, release.set).start()
    load.close()
    assert done.is_set()  # the write finished before close returned
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
    with pytest.raises(OSError, match="No space left"):
        load.upsert(batch(50))  # batch 1 is written meanwhile; batch 2 cannot be staged
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
        load.upsert(batch(50))  # batch 1's write failed in the writer; raised here
    load.close()
    assert list(tmp_path.iterdir()) == []


def test_a_batch_queued_behind_a_failed_write_is_not_written(tmp_path: Path) -> None:
    # Batch 1 is queued behind batch 0's write before the caller waits for it: when that
    # write fails, batch 1 must not go to the server on the failed transaction.
    attempts: list[int] = []

    class FirstRefused(Staging):
        def upsert(self, cursor: Any, table: str, rows: pl.DataFrame, **kw: Any) -> None:
            attempts.append(rows.height)
            if len(attempts) == 1:
                deadline = time.monotonic() + WAIT  # fails once batch 1 is staged (and queued)
                while len(self.staged) < 2 and time.monotonic() < deadline:
                    time.sleep(0.01)
                time.sleep(0.05)
                raise RuntimeError("connection lost")
            super().upsert(cursor, table, rows, **kw)

    bulk, marked = FirstRefused(), list[Any]()
    load = load_of(bulk, tmp_path, marked)
    load.upsert(batch(0))
    with pytest.raises(RuntimeError, match="connection lost"):  # batch 0's error, not 1's
        load.upsert(batch(50, rows=40))
    time.sleep(0.2)  # time for the writer to take what is queued, if it would
    load.close()
    assert attempts == [50]  # batch 1 never reached the bulk path
    assert bulk.written == [] and marked == []
    assert list(tmp_path.iterdir()) == []


def test_the_last_batch_s_failed_write_is_raised_by_finish_and_nothing_is_marked(
    tmp_path: Path,
) -> None:
    class Refused(Staging):
        def upsert(self, cursor: Any, table: str, rows: pl.DataFrame, **kw: Any) -> None:
            if self.written:
                raise RuntimeError("connection lost")
            super().upsert(cursor, table, rows, **kw)

    marked = list[Any]()
    load = load_of(Refused(), tmp_path, marked)
    load.upsert(batch(0))
    load.upsert(batch(50))
    with pytest.raises(RuntimeError, match="connection lost"):
        load.finish({"status": "loaded"})
    load.close()
    assert marked == [] and not load.finished
    assert list(tmp_path.iterdir()) == []


def test_the_writer_holds_the_transaction_s_lock_while_it_writes(tmp_path: Path) -> None:
    # On SQLite the caller's thread asks for category codes through the load's own cursor
    # (`Database.run` joins the open transaction under the same lock): never during a write.
    lock = threading.RLock()
    free_during_write: list[bool] = []

    class Probing(Staging):
        def upsert(self, cursor: Any, table: str, rows: pl.DataFrame, **kw: Any) -> None:
            probe = threading.Thread(
                target=lambda: free_during_write.append(lock.acquire(timeout=0.05))
            )
            probe.start()
            probe.join()
            super().upsert(cursor, table, rows, **kw)

    load = FileLoad(
        None, load_contract("acme_usage"), Probing(), lambda report: None, whole_rows=True,
        spill_dir=str(tmp_path), lock=lock,
    )  # fmt: skip
    load.upsert(batch(0))
    load.upsert(batch(50))
    load.finish({})
    assert free_during_write == [False, False]
    assert lock.acquire(timeout=WAIT)  # and released after each
