"""MariaDB-only behaviour: a connection killed mid-load, LOCAL INFILE refused, real datasets."""

from __future__ import annotations

import datetime as dt
import json
import threading
from pathlib import Path
from typing import Any

import pytest

from iotpipe.cli import main
from iotpipe.contract import load_contract
from iotpipe.errors import TransientStorageError
from iotpipe.ingest import IngestOptions, ingest_object
from iotpipe.sample import write_sample
from iotpipe.sources import local_object
from iotpipe.storage.ledger import Ledger
from iotpipe.storage.mysql import MySQLParams, MySQLStore
from iotpipe.storage.readings import BulkPath
from tests.conftest import EXAMPLES
from tests.integration.conftest import mariadb, scalar, table_rows

ACME = load_contract("acme_usage")
NOW = dt.datetime(2025, 6, 1)


class _BatchHook:
    """A bulk path that calls ``after(cursor)`` once each batch is written."""

    def __init__(self, bulk: BulkPath, after: Any) -> None:
        self._bulk, self._after = bulk, after

    def stage(self, rows: Any, directory: Path) -> Path | None:
        return self._bulk.stage(rows, directory)

    def upsert(
        self, cursor: Any, table: str, rows: Any, *, whole_rows: bool, staged: Path | None = None
    ) -> None:
        self._bulk.upsert(cursor, table, rows, whole_rows=whole_rows, staged=staged)
        self._after(cursor)


def committed(database: str) -> tuple[int, str | None]:
    """What another connection sees now: (rows in device_usage, the ledger's status)."""
    other = mariadb(database)
    try:
        with other.cursor() as cur:
            # One statement: one consistent snapshot of both tables.
            cur.execute(
                "SELECT (SELECT COUNT(*) FROM device_usage), "
                "(SELECT MIN(status) FROM iotpipe_ledger)"
            )
            rows, status = cur.fetchone()
            return int(rows), status
    finally:
        other.close()


class KillingStore(MySQLStore):
    """Kills its own main connection from another connection after the n-th batch.

    Just before the kill, what another connection sees is recorded in ``observed``: a load
    in progress must show no committed row and a ledger that is not "loaded".
    """

    def __init__(self, params: MySQLParams, kill_after: int) -> None:
        super().__init__(params)
        self.kill_after = kill_after
        self.batches = 0
        self.killed = 0
        self.observed: list[tuple[int, str | None]] = []
        self.bulk = _BatchHook(self.bulk, self.after_batch)

    def after_batch(self, cursor: Any) -> None:
        self.batches += 1
        if self.batches == self.kill_after:
            self.kill(cursor)

    def kill(self, cursor: Any) -> None:
        self.observed.append(committed(self.params.database))
        admin = mariadb()
        try:
            with admin.cursor() as cur:
                cur.execute(f"KILL {int(cursor.connection.thread_id())}")
        finally:
            admin.close()
        self.killed += 1


def run(store: MySQLStore, path: Path, **options: Any) -> Any:
    return ingest_object(
        lambda: path.open("rb"),
        local_object(path),
        ACME,
        store,
        options=IngestOptions(now=NOW, batch_rows=1000, backoff_seconds=0.05, **options),
    )


def test_killed_connection_mid_load_rolls_back_then_retry_loads_exactly(
    mariadb_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "k.csv"
    truth = write_sample(path, 6000, devices=10, seed=31, keep_rows=True)
    assert truth.rows is not None
    expected = sorted(truth.rows.values(), key=lambda r: (r[0], r[1]))

    # No retries: the kill surfaces. Three batches had been written when it came, and none of
    # them was committed (seen from another connection at that moment); after it, nothing of
    # the file is in the table and the ledger says failed.
    store = KillingStore(MySQLParams.from_url(mariadb_url), kill_after=3)
    with pytest.raises(TransientStorageError):
        run(store, path, retries=0)
    store.close()
    assert store.killed == 1 and store.batches == 3
    assert store.observed == [(0, "loading")]
    assert committed(mariadb_url.rsplit("/", 1)[1]) == (0, "failed")

    # With retries the same kill is survived: the whole file is loaded again, exactly.
    store = KillingStore(MySQLParams.from_url(mariadb_url), kill_after=2)
    report = run(store, path, retries=3)
    store.close()
    assert store.killed == 1 and report.status == "loaded"
    assert store.observed == [(0, "loading")]
    assert table_rows(mariadb_url, ACME) == expected
    assert scalar(mariadb_url, "SELECT status FROM iotpipe_ledger") == "loaded"
    assert scalar(mariadb_url, "SELECT attempts FROM iotpipe_ledger") == 3  # 1 failed run, then 2


class _WatchingLedger(Ledger):
    def __init__(self, store: WatchedStore) -> None:
        super().__init__(store.db, store.locks)
        self._store = store

    def mark_loaded(self, cursor: Any, claim: Any, report: Any) -> None:
        self._store.watch(cursor)
        super().mark_loaded(cursor, claim, report)


class WatchedStore(MySQLStore):
    """Records what another connection sees after each batch and just before "loaded"."""

    def __init__(self, params: MySQLParams) -> None:
        super().__init__(params)
        self.observed: list[tuple[int, str | None]] = []
        self.bulk = _BatchHook(self.bulk, self.watch)
        self.ledger = _WatchingLedger(self)

    def watch(self, cursor: Any) -> None:
        self.observed.append(committed(self.params.database))


def test_rows_and_the_ledger_commit_together_or_not_at_all(
    mariadb_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "t.csv"
    truth = write_sample(path, 6000, devices=10, seed=34, keep_rows=True)
    database = mariadb_url.rsplit("/", 1)[1]
    store = WatchedStore(MySQLParams.from_url(mariadb_url))
    store.ensure_schema(ACME)
    samples: list[tuple[int, str | None]] = []
    done = threading.Event()

    def sample() -> None:  # another client watching the whole time
        while not done.is_set():
            samples.append(committed(database))

    watcher = threading.Thread(target=sample)
    watcher.start()
    try:
        report = run(store, path)
    finally:
        done.set()
        watcher.join()
        store.close()
    assert report.status == "loaded"
    # After every batch and just before "loaded": nothing visible yet.
    assert len(store.observed) >= 7  # batches of at most 1,000 of the 6,000 rows, then the ledger
    assert set(store.observed) == {(0, "loading")}
    # Whenever anyone looked: nothing, or everything with "loaded" - never rows without it.
    everything = (truth.rows_valid, "loaded")
    assert set(samples) <= {(0, None), (0, "loading"), everything}, set(samples)
    assert committed(database) == everything


def test_local_infile_refused_falls_back_to_multirow_insert(
    mariadb_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "f.csv"
    truth = write_sample(path, 3000, devices=10, seed=32, keep_rows=True)
    assert truth.rows is not None
    admin = mariadb()
    try:
        with admin.cursor() as cur:
            cur.execute("SELECT @@GLOBAL.local_infile")
            before = cur.fetchone()[0]
            cur.execute("SET GLOBAL local_infile = 0")
        try:
            store = MySQLStore.from_url(mariadb_url)
            report = run(store, path)
            store.close()
        finally:
            with admin.cursor() as cur:
                cur.execute(f"SET GLOBAL local_infile = {int(before)}")
    finally:
        admin.close()
    assert report.status == "loaded"
    assert store.uses_local_infile is False
    assert table_rows(mariadb_url, ACME) == sorted(truth.rows.values(), key=lambda r: (r[0], r[1]))
    # Said once, in the operator's words, with the server's reason.
    (warning,) = [r for r in caplog.records if "refused" in r.getMessage()]
    message = warning.getMessage()
    assert message.startswith("LOAD DATA LOCAL INFILE refused (")
    assert message.endswith("); using multi-row INSERT") and "local infile" in message


class _Staging(_BatchHook):
    """Records where each batch was staged, and the session's LOAD DATA count after it."""

    def __init__(self, bulk: BulkPath) -> None:
        super().__init__(bulk, self.count_loads)
        self.staged: list[tuple[Path, Path | None, bool]] = []  # (directory, file, exists)
        self.loads: list[int] = []

    def stage(self, rows: Any, directory: Path) -> Path | None:
        staged = super().stage(rows, directory)
        self.staged.append((directory, staged, staged is not None and staged.exists()))
        return staged

    def count_loads(self, cursor: Any) -> None:
        cursor.execute("SHOW SESSION STATUS LIKE 'Com_load'")
        self.loads.append(int(cursor.fetchone()[1]))


def test_fast_path_is_load_data(
    mariadb_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every batch, not only the first, is one LOAD DATA statement, from a file staged ahead
    # in a directory of the load's own (in the temporary directory, as a Lambda has it).
    import tempfile

    path = tmp_path / "g.csv"
    write_sample(path, 5000, seed=33)
    store = MySQLStore.from_url(mariadb_url)
    hook = _Staging(store.bulk)
    store.bulk = hook
    spill = tmp_path / "spill"
    spill.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spill))
    assert run(store, path).status == "loaded"
    store.close()
    assert store.uses_local_infile is True
    assert len(hook.loads) >= 4
    first = hook.loads[0]
    assert hook.loads == list(range(first, first + len(hook.loads)))  # one per batch
    assert len(hook.staged) == len(hook.loads)
    for directory, staged, existed in hook.staged:
        assert directory.parent == spill and staged is not None and existed
        assert staged.parent == directory
    assert list(spill.iterdir()) == []  # every staged file removed with its directory


@pytest.mark.parametrize(
    ("folder", "contract", "pattern"),
    [
        ("beijing_airquality", "beijing_airquality", "*.csv"),
        ("london_smart_meters", "london_smart_meters", "*.csv"),
        ("campusiot_lorawan", "campusiot_lorawan", "*.ndjson.gz"),
    ],
)
def test_cli_ingests_the_real_datasets(
    mariadb_url: str,
    real_data: Path,
    capsys: pytest.CaptureFixture[str],
    folder: str,
    contract: str,
    pattern: str,
) -> None:
    valid = 0
    for path in sorted((real_data / folder).glob(pattern)):
        args = [
            "ingest",
            str(path),
            "--contract",
            str(EXAMPLES / f"{contract}.yaml"),
            "--database-url",
            mariadb_url,
            "--json",
        ]
        assert main(args) == 0
        body = json.loads(capsys.readouterr().out)
        assert body["status"] == "loaded", body
        assert body["rows_loaded"] == body["rows_valid"] > 0
        valid += body["rows_valid"]
    table = load_contract(EXAMPLES / f"{contract}.yaml").table
    assert scalar(mariadb_url, f"SELECT COUNT(*) FROM `{table}`") == valid


def test_category_codes_are_committed_apart_from_the_load(mariadb_url: str, tmp_path: Path) -> None:
    # Every worker loading the dataset shares its codes: they are committed on a connection
    # of their own as they are assigned, so a long load holds no vocabulary's lock, and a
    # load rolled back leaves no worker holding a code the dictionary lacks.
    path = tmp_path / "codes.csv"
    write_sample(path, 3000, seed=41)
    store = MySQLStore.from_url(mariadb_url)
    database = mariadb_url.rsplit("/", 1)[1]
    codes_seen: list[int] = []
    rows_seen: list[int] = []

    def from_another_connection(cursor: Any) -> None:
        codes_seen.append(scalar(mariadb_url, "SELECT COUNT(*) FROM iotpipe_categories"))
        rows_seen.append(committed(database)[0])

    store.bulk = _BatchHook(store.bulk, from_another_connection)
    assert run(store, path).status == "loaded"
    store.close()
    assert len(codes_seen) >= 3
    assert codes_seen[0] > 0  # the first batch's codes, visible while its load is open
    assert rows_seen == [0] * len(rows_seen)  # the rows themselves only at the commit
    assert codes_seen[-1] == scalar(mariadb_url, "SELECT COUNT(*) FROM iotpipe_categories")


def test_the_load_file_keeps_every_double_and_time_exactly(mariadb_url: str) -> None:
    # A float column of whole numbers is written as integers, a time without a fraction of a
    # second without one: MariaDB must read back the very doubles and instants. A column
    # with 2**54 or one fraction among whole numbers keeps its float form. (MariaDB stores
    # -0.0 as 0.0 whichever way it is written.)
    import polars as pl

    from iotpipe.storage.mysql import LoadDataBulkPath

    base = dt.datetime(2024, 3, 1)
    rows = pl.DataFrame(
        {
            "k": [1, 2, 3, 4, 5],
            "whole": [1.0, -2.0, None, 2.0**53, -(2.0**53)],
            "mixed": [1.0, 2.5, 3.0, 1e-300, -7.0],
            "zeros": [-0.0, 0.0, 1.0, 2.0, 3.0],
            "large": [2.0**54, 1.0, 2.0, 3.0, 1e300],
            "beyond": [1e19, 2.0, 3.0, 4.0, -5.0],  # whole, but past what an Int64 holds
            "at": [base, base, base + dt.timedelta(seconds=1), None, base],
            "fine": [
                base + dt.timedelta(microseconds=1),
                base + dt.timedelta(milliseconds=500),
                base,
                base + dt.timedelta(seconds=59, microseconds=999_999),
                None,
            ],
        },
        schema_overrides={"at": pl.Datetime("us"), "fine": pl.Datetime("us")},
    )
    others = pl.DataFrame({"k": [1, 2, 3], "on_": [True, False, None], "at": [base, None, base]})
    halves = pl.DataFrame({"k": [1, 2], "on_": [False, True], "x": [0.5, -1.25]})
    conn = MySQLParams.from_url(mariadb_url).connect()  # LOCAL INFILE on, not autocommit
    try:
        with conn.cursor() as cur:
            cur.execute(
                "CREATE TABLE t (k INT PRIMARY KEY, whole DOUBLE, mixed DOUBLE, zeros DOUBLE, "
                "large DOUBLE, beyond DOUBLE, at DATETIME(6), fine DATETIME(6))"
            )
            path = LoadDataBulkPath()
            path.upsert(cur, "t", rows, whole_rows=True)
            assert path.uses_local_infile is True
            cur.execute("SELECT k, whole, mixed, zeros, large, beyond, at, fine FROM t ORDER BY k")
            back = cur.fetchall()
            # No float column at all, and booleans (0/1) beside floats that are not whole.
            cur.execute("CREATE TABLE u (k INT PRIMARY KEY, on_ BOOL, at DATETIME(6))")
            path.upsert(cur, "u", others, whole_rows=True)
            cur.execute("SELECT k, on_, at FROM u ORDER BY k")
            back_others = cur.fetchall()
            cur.execute("CREATE TABLE v (k INT PRIMARY KEY, on_ BOOL, x DOUBLE)")
            path.upsert(cur, "v", halves, whole_rows=True)
            cur.execute("SELECT k, on_, x FROM v ORDER BY k")
            back_halves = cur.fetchall()
    finally:
        conn.rollback()
        conn.close()
    assert [tuple(r) for r in back] == list(rows.iter_rows())
    assert [tuple(r) for r in back_others] == [(1, 1, base), (2, 0, None), (3, None, base)]
    assert [tuple(r) for r in back_halves] == [(1, 0, 0.5), (2, 1, -1.25)]


def test_a_load_whose_values_all_have_codes_never_waits_for_the_vocabulary_lock(
    mariadb_url: str, tmp_path: Path
) -> None:
    # A code never changes once given, so a fleet's loads read the codes their values have
    # without the lock that numbers new ones: while another transaction holds every
    # vocabulary's sequence row, a file of known values loads, and one with a new value waits.
    header = "device_id,timestamp,device_type,firmware_version,region,status,battery_pct\n"
    known, new = tmp_path / "known.csv", tmp_path / "new.csv"
    known.write_text(header + "d1,2024-01-01T00:00:00Z,hub,v1.0.0,eu,idle,50\n")
    new.write_text(header + "d1,2024-01-01T00:01:00Z,hub,v9.9.9,eu,idle,51\n")
    store = MySQLStore.from_url(mariadb_url)
    assert run(store, known).status == "loaded"  # its values get their codes
    second = tmp_path / "known-again.csv"
    second.write_text(known.read_text().replace("00:00:00Z", "00:02:00Z"))
    holder = mariadb(mariadb_url.rsplit("/", 1)[1], autocommit=False)
    results: dict[str, Any] = {}

    def load(name: str, path: Path) -> threading.Thread:
        thread = threading.Thread(target=lambda: results.__setitem__(name, run(store, path)))
        thread.start()
        return thread

    try:
        with holder.cursor() as cur:
            cur.execute("SELECT * FROM iotpipe_category_seq FOR UPDATE")
            assert cur.fetchall()  # one row per vocabulary, each locked
            load("known", second).join(timeout=30)
            assert results["known"].status == "loaded"
            waiting = load("new", new)
            waiting.join(timeout=1.0)
            assert waiting.is_alive()  # v9.9.9 needs the next firmware code: it waits
            assert "new" not in results
    finally:
        holder.rollback()
        holder.close()
    waiting.join(timeout=30)
    store.close()
    assert results["new"].status == "loaded"
    assert scalar(mariadb_url, "SELECT COUNT(*) FROM device_usage") == 3
