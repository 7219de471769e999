"""`FileLoad` with overlapped writes: order, errors and the end of a load (no database)."""

from __future__ import annotations

import datetime as dt
import threading
import time
from typing import Any

import polars as pl
import pytest

from iotpipe.storage.readings import FileLoad
from tests.unit.helpers import contract


class RecordingBulk:
    """Records each write (its first device id and the thread), optionally slowly or failing."""

    def __init__(self, *, fail_at: int = 0, seconds: float = 0.0) -> None:
        self.writes: list[tuple[str, str]] = []
        self.fail_at = fail_at
        self.seconds = seconds
        self.running = threading.Event()

    def upsert(self, cursor: Any, table: str, rows: pl.DataFrame, *, whole_rows: bool) -> None:
        self.running.set()
        time.sleep(self.seconds)
        self.writes.append((rows.get_column("device_id")[0], threading.current_thread().name))
        self.running.clear()
        if len(self.writes) == self.fail_at:
            raise RuntimeError(f"write {self.fail_at} failed")


def batch(device: str, minute: int) -> pl.DataFrame:
    return pl.DataFrame(
        {"device_id": [device], "ts": [dt.datetime(2024, 1, 1, 0, minute)], "v": [1.0]}
    )


def file_load(bulk: RecordingBulk, marks: list[Any]) -> FileLoad:
    """A load whose ``loaded`` records the report and how many writes had ended by then."""

    def mark_loaded(report: Any) -> None:
        marks.append((report, len(bulk.writes)))

    return FileLoad(object(), contract(), bulk, mark_loaded, whole_rows=True, overlap=True)


def test_overlapped_writes_run_in_order_in_a_worker_and_end_before_loaded() -> None:
    bulk, marks = RecordingBulk(seconds=0.05), list[Any]()
    load = file_load(bulk, marks)
    for i, device in enumerate(["a", "b", "c"]):
        load.upsert(batch(device, i))
    load.finish({"status": "loaded"})
    load.close()
    assert [device for device, _ in bulk.writes] == ["a", "b", "c"]
    assert all(name.startswith("iotpipe-write") for _, name in bulk.writes)
    assert marks == [({"status": "loaded"}, 3)]  # after the last write had ended


@pytest.mark.parametrize("fail_at", [1, 3])
def test_a_failed_write_is_raised_and_the_file_is_never_marked(fail_at: int) -> None:
    bulk, marks = RecordingBulk(fail_at=fail_at), list[Any]()
    load = file_load(bulk, marks)
    with pytest.raises(RuntimeError, match=f"write {fail_at} failed"):
        for i, device in enumerate(["a", "b", "c"]):
            load.upsert(batch(device, i))
        load.finish({"status": "loaded"})
    load.close()
    assert marks == []
    assert not load.finished


def test_close_waits_for_the_write_in_progress() -> None:
    # A load abandoned mid-write (an error in the caller): the rollback that follows close()
    # must not meet a statement still running on the connection.
    bulk, marks = RecordingBulk(seconds=0.3), list[Any]()
    load = file_load(bulk, marks)
    load.upsert(batch("a", 0))
    assert bulk.running.wait(5)
    load.close()
    assert not bulk.running.is_set()
    assert bulk.writes == [("a", bulk.writes[0][1])]
    assert marks == []
