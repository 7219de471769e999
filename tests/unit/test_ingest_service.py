"""The ingest service's own rules, on the embedded SQLite store: when a retry may start, and
the clock a dry run judges future timestamps by (found by mutation testing: docs/testing.md)."""

from __future__ import annotations

import datetime as dt
import io
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from iotpipe.contract import DataContract
from iotpipe.errors import FileTooLongError, TransientStorageError
from iotpipe.ingest import IngestOptions, LoadDeadline, ingest_object, validate_source
from iotpipe.model import Claim, Loader, ObjectRef
from iotpipe.storage.sqlite import SQLiteStore
from tests.unit.helpers import contract

DATA = b"id,time,v\nd1,2024-06-01T00:00:00Z,1\nd2,2024-06-01T00:00:00Z,2\n"


class FlakyStore(SQLiteStore):
    """A store whose first ``failures`` loads lose their database connection."""

    def __init__(self, path: Path, failures: int) -> None:
        super().__init__(path)
        self.failures = failures

    @contextmanager
    def load(self, claim: Claim, contract: DataContract) -> Iterator[Loader]:
        if self.failures:
            self.failures -= 1
            raise TransientStorageError("connection lost")
        with super().load(claim, contract) as loader:
            yield loader


@pytest.mark.parametrize(
    ("remaining", "attempts"),
    [
        (12.0, 2),  # 12 - 2 = 10 left after the first 2 s wait: just enough for a retry
        (11.9, 1),  # 11.9 - 2 < 10: no retry starts
    ],
)
def test_a_retry_starts_only_with_min_retry_seconds_left_after_its_wait(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, remaining: float, attempts: int
) -> None:
    waits: list[float] = []
    monkeypatch.setattr("iotpipe.ingest.time.sleep", waits.append)
    store = FlakyStore(tmp_path / "s.db", failures=6)  # every attempt of the six
    options = IngestOptions(
        retries=5, backoff_seconds=2.0, remaining_seconds=lambda: remaining, min_retry_seconds=10
    )
    ref = ObjectRef("file:///x.csv", "v1", len(DATA))
    with pytest.raises(TransientStorageError):
        ingest_object(lambda: io.BytesIO(DATA), ref, contract(), store, options=options)
    # The second wait would be 4 s, leaving 8 s: never started.
    assert waits == [2.0] * (attempts - 1)
    (entry,) = store.files()
    assert entry.status == "failed"
    assert entry.error == f"gave up after {attempts} attempt(s): connection lost"


def test_a_retried_load_waits_twice_as_long_each_time_and_reports_all_its_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        real_sleep(seconds)

    real_sleep = time.sleep
    monkeypatch.setattr("iotpipe.ingest.time.sleep", sleep)
    store = FlakyStore(tmp_path / "s.db", failures=3)
    options = IngestOptions(retries=3, backoff_seconds=0.05)
    ref = ObjectRef("file:///x.csv", "v1", len(DATA))
    report = ingest_object(lambda: io.BytesIO(DATA), ref, contract(), store, options=options)
    assert (report.status, report.rows_loaded) == ("loaded", 2)
    assert waits == [0.05, 0.1, 0.2]
    # The report times the file from its first attempt, waits included, not only the last.
    assert report.seconds >= sum(waits)


def test_a_dry_run_judges_future_timestamps_by_the_clock_it_is_given() -> None:
    def valid(now: dt.datetime | None) -> int:
        report = validate_source(io.BytesIO(DATA), contract(), source="x.csv", now=now)
        return report.counters.rows_valid

    assert valid(None) == 2  # June 2024 is past
    assert valid(dt.datetime(2024, 1, 1)) == 0  # ...but not on 1 January 2024


def test_a_load_judges_future_timestamps_by_the_clock_its_options_give(tmp_path: Path) -> None:
    def loaded(now: dt.datetime | None) -> int:
        store = SQLiteStore(tmp_path / f"{now is None}.db")
        c = contract()
        store.ensure_schema(c)
        ref = ObjectRef("file:///x.csv", "v1", len(DATA))
        options = IngestOptions(now=now)
        return ingest_object(lambda: io.BytesIO(DATA), ref, c, store, options=options).rows_loaded

    assert loaded(None) == 2  # June 2024 is past
    assert loaded(dt.datetime(2024, 1, 1)) == 0  # ...but not on 1 January 2024


class Clock:
    """time.monotonic as the tests set it."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr("iotpipe.ingest.time.monotonic", fake)
    return fake


def measured(  # noqa: PLR0913 (a test helper; each number is one fact of the measurement)
    clock: Clock, available: float, read: int, rows: int, seconds: float
) -> LoadDeadline:
    """A deadline on a 1,000,000-byte object: ``read`` bytes and ``rows`` rows cleaned, then
    ``seconds`` later its check is due."""
    deadline = LoadDeadline(1_000_000, available)
    deadline.read = read
    deadline.mark(rows)
    clock.now += seconds
    return deadline


def test_a_load_that_cannot_finish_in_time_says_how_to_split_it(clock: Clock) -> None:
    # 20% and 2,000 rows read 2 s in: 10 s for the whole file, 9.5 s available.
    deadline = measured(clock, 9.5, read=200_000, rows=2_000, seconds=2.0)
    with pytest.raises(FileTooLongError) as raised:
        deadline.check()
    assert str(raised.value) == (
        "too long for one invocation: 1,000,000 bytes at the 0.10 MB/s measured over the "
        "first 20% would take about 10 s, and 9.5 s are available. Split it into parts of at "
        "most 6,650 rows (iotpipe split FILE --rows 6650 --out DIR) and upload those; "
        "docs/scale.md, 'Files larger than one invocation'"
    )
    # Once the whole object is read, there is nothing left to project: no failure, however
    # slow it was.
    deadline.read = 1_000_000
    deadline.mark(10_000)
    clock.now = 200.0
    deadline.check()


@pytest.mark.parametrize(
    ("read", "seconds", "projected"),
    [
        (50_000, 0.5, "10 s"),  # under a second measured: the rate is still bytes / seconds
        (1, 100.0, "100000000 s"),  # one byte is a position to project from
        (0, 100.0, None),  # nothing read yet: nothing to project
    ],
)
def test_the_projection_is_the_size_over_the_rate_measured(
    clock: Clock, read: int, seconds: float, projected: str | None
) -> None:
    deadline = measured(clock, 9.5, read=read, rows=10, seconds=seconds)
    if projected is None:
        deadline.check()
        return
    with pytest.raises(FileTooLongError, match=f"would take about {projected}, "):
        deadline.check()


def test_a_part_suggested_under_a_second_in_is_sized_by_that_rate(clock: Clock) -> None:
    # 1,000 rows in 0.5 s: 2,000 rows/s, 9.5 s available, 70% of it -> 13,300 rows (a floor
    # of one second under the rate would suggest half that).
    deadline = measured(clock, 9.5, read=50_000, rows=1_000, seconds=0.5)
    with pytest.raises(FileTooLongError, match=r"parts of at most 13,300 rows "):
        deadline.check()


def test_a_projection_just_within_the_time_passes_and_parts_hold_a_row_at_least(
    clock: Clock,
) -> None:
    # 10 s projected, 10 s available: it fits.
    measured(clock, 10.0, read=200_000, rows=2_000, seconds=2.0).check()
    # No row read yet (a header, say): a part of one row is the least.
    slow = measured(clock, 9.5, read=200_000, rows=0, seconds=2.0)
    with pytest.raises(FileTooLongError, match=r"parts of at most 1 rows \(iotpipe split FILE"):
        slow.check()


def test_the_deadline_counts_every_byte_read_and_shows_the_rate_in_mb_per_second(
    clock: Clock,
) -> None:
    deadline = LoadDeadline(1_000_000, 5.0)
    counted = deadline.counted(io.BytesIO(b"x" * 270_000))
    assert len(counted.read(1000)) == 1000 and len(counted.read()) == 269_000
    assert deadline.read == 270_000  # every read, not the last one
    deadline.mark(10)
    clock.now += 2.0  # 135,000 bytes/s: 0.135 MB/s, shown to two places
    with pytest.raises(
        FileTooLongError, match=r"bytes at the 0\.14 MB/s measured over the first 27% "
    ):
        deadline.check()


def test_category_codes_come_in_order_from_the_loading_thread_alone(tmp_path: Path) -> None:
    # Reading and cleaning run ahead in threads of their own, and so does encoding once a
    # batch holds no new category value; a new value's code is asked for by the thread that
    # loads (the SQLite store's one connection), in the order the values first appear.
    from iotpipe.contract import load_contract

    asked: list[tuple[str, list[str]]] = []

    class Watched(SQLiteStore):
        def codes(self, dataset: str, column: str, values: Any) -> Any:
            asked.append((threading.current_thread().name, list(values)))
            return super().codes(dataset, column, values)

    acme = load_contract("acme_usage")
    header = "device_id,timestamp,device_type,firmware_version,region,status,battery_pct\n"
    lines = [
        f"d{i % 3},2024-06-01T00:{i // 60:02d}:{i % 60:02d}Z,hub,v{i // 40},r{i // 25},idle,5\n"
        for i in range(200)
    ]  # a new firmware every 40 rows, a new region every 25: batches of 10 see both kinds
    data = (header + "".join(lines)).encode()
    store = Watched(tmp_path / "s.db")
    store.ensure_schema(acme)
    ref = ObjectRef("file:///acme.csv", "v1", len(data))
    options = IngestOptions(batch_rows=10)
    report = ingest_object(lambda: io.BytesIO(data), ref, acme, store, options=options)
    assert report.status == "loaded"
    assert {thread for thread, _ in asked} == {threading.current_thread().name}
    new_values = [v for _, values in asked for v in values if not v.startswith(("hub", "idle"))]
    firmware = [v for v in new_values if v.startswith("v")]
    assert firmware == [f"v{n}" for n in range(5)]  # each asked once, in order
    # Open vocabularies are numbered by first appearance: v0 -> 1, v1 -> 2, ...; r0 -> 1, ...
    with sqlite3.connect(tmp_path / "s.db") as db:
        stored = db.execute(
            f"SELECT firmware_version, firmware_version_code, region, region_code FROM {acme.table}"
        ).fetchall()
    assert len(stored) == 200
    assert all(code == int(v[1:]) + 1 for v, code, _, _ in stored)
    assert all(code == int(r[1:]) + 1 for _, _, r, code in stored)


def test_loading_checks_and_finishes_batches_in_worker_threads_a_dry_run_in_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A load checks batches in CHECK_WORKERS threads and finishes them (de-duplication across
    # the file) in a cleaning thread while the loading thread writes; a dry run (validate)
    # has nothing to overlap with and stays in the caller's thread.
    from iotpipe.clean import Cleaner

    ran_in: dict[str, list[str]] = {"check": [], "finish": []}
    check, finish = Cleaner.check, Cleaner.finish

    def checked(self: Cleaner, batch: Any) -> Any:
        ran_in["check"].append(threading.current_thread().name)
        return check(self, batch)

    def finished(self: Cleaner, batch: Any) -> Any:
        ran_in["finish"].append(threading.current_thread().name)
        return finish(self, batch)

    monkeypatch.setattr(Cleaner, "check", checked)
    monkeypatch.setattr(Cleaner, "finish", finished)
    c = contract()
    lines = [f"d{i % 3},2024-01-01T00:{i:02d}:00Z,{i},a" for i in range(30)]
    data = ("id,time,v,kind\n" + "\n".join(lines) + "\n").encode()

    dry = validate_source(io.BytesIO(data), c, source="f.csv", batch_rows=10)
    assert dry.counters.rows_valid == 30
    caller = threading.current_thread().name
    assert ran_in == {"check": [caller] * 3, "finish": [caller] * 3}

    ran_in["check"].clear()
    ran_in["finish"].clear()
    store = SQLiteStore(tmp_path / "s.db")
    store.ensure_schema(c)
    ref = ObjectRef("file:///f.csv", "v1", len(data))
    options = IngestOptions(batch_rows=10)
    report = ingest_object(lambda: io.BytesIO(data), ref, c, store, options=options)
    assert report.status == "loaded" and report.rows_loaded == 30
    assert len(ran_in["check"]) == 3
    assert all(name.startswith("iotpipe-check_") for name in ran_in["check"])
    assert ran_in["finish"] == ["iotpipe-clean"] * 3


@pytest.mark.parametrize("prefetch", [False, True])
def test_the_deadline_is_told_the_rows_read_so_far_at_each_batch(prefetch: bool) -> None:
    # What LoadDeadline.mark is given: the running count of rows read (rejected ones too),
    # one call per batch, in order - the rate a part's size is projected from.
    from iotpipe.encode import InMemoryCategoryDictionary
    from iotpipe.ingest import _pipeline
    from iotpipe.report import IngestReport

    c = contract()
    lines = [f"d{i % 3},2024-01-01T00:{i:02d}:00Z,{i},a" for i in range(35)]
    lines[7] = "d1,not a time,1,a"  # rejected rows are read rows too
    data = ("id,time,v,kind\n" + "\n".join(lines) + "\n").encode()
    marks: list[int] = []
    report = IngestReport("mem://f.csv", c.name)
    batches = list(
        _pipeline(
            io.BytesIO(data),
            c,
            InMemoryCategoryDictionary(),
            report,
            None,
            10,
            prefetch=prefetch,
            on_read=marks.append,
        )  # fmt: skip
    )
    assert marks == [10, 20, 30, 35]
    assert sum(rows.height for rows, _ in batches) == 34


def test_with_one_permit_a_batch_is_read_only_once_the_one_before_was_passed_on() -> None:
    # While loading, the reader takes a permit per batch and the loop gives it back once the
    # batch is being written: one batch in the pipeline beside the one the database has, so
    # on one core nothing the next batches need competes with it. A consumer that stops
    # while the reader waits for a permit ends the reading thread.
    from iotpipe.encode import InMemoryCategoryDictionary
    from iotpipe.ingest import _pipeline
    from iotpipe.prefetch import Permits
    from iotpipe.report import IngestReport

    c = contract()
    lines = [f"d{i % 3},2024-01-01T00:{i:02d}:00Z,{i},a" for i in range(50)]
    data = ("id,time,v,kind\n" + "\n".join(lines) + "\n").encode()
    marks: list[int] = []
    permits = Permits(1)
    batches = _pipeline(
        io.BytesIO(data), c, InMemoryCategoryDictionary(), IngestReport("mem://f.csv", c.name),
        None, 10, prefetch=True, on_read=marks.append, permits=permits,
    )  # fmt: skip
    rows, _ = next(batches)
    assert rows.height == 10
    assert any(t.name == "iotpipe-read" for t in threading.enumerate())  # reading in a thread
    time.sleep(0.3)  # time for the reader to run ahead, were it allowed to
    assert marks == [10]  # no permit given back: batch 2 is not read
    permits.give()
    assert next(batches)[0].height == 10
    time.sleep(0.3)
    assert marks == [10, 20]
    batches.close()  # the consumer stops; the reader waits for a permit
    assert not any(t.name == "iotpipe-read" for t in threading.enumerate())


@pytest.mark.parametrize(("minutes", "lifted"), [(range(60), False), (range(59, -1, -1), True)])
def test_the_read_ahead_bound_is_lifted_once_batches_go_to_sorted_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, minutes: range, lifted: bool
) -> None:
    # In time order every batch goes to the database as it comes, one read ahead of it; a
    # file in reverse order is kept in sorted runs, which nothing waits for: the reader may
    # then run ahead (on two cores, checking overlaps with keeping the runs).
    from iotpipe import ingest
    from iotpipe.prefetch import Permits

    lifts: list[bool] = []
    taken: list[bool] = []

    class Watched(Permits):
        def take(self) -> bool:
            taken.append(True)
            return super().take()

        def lift(self) -> None:
            lifts.append(True)
            super().lift()

    monkeypatch.setattr(ingest, "Permits", Watched)
    c = contract()
    lines = [f"d{i % 2},2024-01-01T00:{m:02d}:00Z,{i},a" for i, m in enumerate(minutes)]
    data = ("id,time,v,kind\n" + "\n".join(lines) + "\n").encode()
    store = SQLiteStore(tmp_path / "s.db")
    store.ensure_schema(c)
    ref = ObjectRef("file:///f.csv", "v1", len(data))
    report = ingest_object(
        lambda: io.BytesIO(data), ref, c, store, options=IngestOptions(batch_rows=10)
    )
    assert report.status == "loaded" and report.rows_loaded == 60
    assert bool(lifts) is lifted
    assert len(taken) >= 6  # the reader takes a permit for each of the 6 batches
