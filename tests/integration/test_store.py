"""Store contract tests: the same behaviour from SQLite and from the real MariaDB (over TCP)."""

from __future__ import annotations

import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import pytest

from iotpipe.bootstrap import build_store
from iotpipe.cli import main
from iotpipe.contract import contract_from_dict, contract_to_dict, load_contract
from iotpipe.errors import ObjectBusyError, SourceReadError, StorageError
from iotpipe.ingest import IngestOptions, ingest_object
from iotpipe.model import ObjectRef
from iotpipe.sample import SampleTruth, write_sample
from iotpipe.sources import local_object
from iotpipe.storage.store import new_owner
from tests.integration.conftest import fetch_all, scalar, table_rows

ACME = load_contract("acme_usage")
NOW = dt.datetime(2025, 6, 1)
TRUTH_KEYS = ("rows_read", "rows_valid", "rows_rejected", "rows_duplicate", "rows_conflict")


def sample(
    tmp_path: Path, name: str, rows: int, seed: int, devices: int = 20
) -> tuple[Path, SampleTruth]:
    path = tmp_path / name
    truth = write_sample(path, rows, devices=devices, seed=seed, keep_rows=True)
    return path, truth


def ingest(url: str, path: Path, **options: Any) -> Any:
    store = build_store(url)
    try:
        return ingest_object(
            lambda: path.open("rb"),
            local_object(path),
            ACME,
            store,
            options=IngestOptions(now=NOW, **options),
        )
    finally:
        store.close()


def opener(path: Path) -> Callable[[], IO[bytes]]:
    return lambda: path.open("rb")


def expected_rows(truth: SampleTruth) -> list[tuple[Any, ...]]:
    assert truth.rows is not None
    return sorted(truth.rows.values(), key=lambda r: (r[0], r[1]))


def test_messy_file_loads_exactly_its_truth(store_url: str, tmp_path: Path) -> None:
    path, truth = sample(tmp_path, "acme messy.csv.gz", 12_000, seed=21)
    report = ingest(store_url, path, batch_rows=2500)
    body = report.to_dict()
    assert body["status"] == "loaded"
    for key in TRUTH_KEYS:
        assert body[key] == getattr(truth, key), key
    assert body["reject_reasons"] == dict(truth.reject_reasons)
    assert body["rows_loaded"] == truth.rows_valid
    assert table_rows(store_url, ACME) == expected_rows(truth)

    # Encodings agree with the category dictionary, and one-hot with the values.
    coded = table_rows(
        store_url,
        ACME,
        ["status", "status_code", "status_idle", "firmware_version", "firmware_version_code"],
    )
    codes = {(column, value): code for column, value, code in _categories(store_url)}
    for status, status_code, idle, firmware, firmware_code in coded:
        assert status_code == (codes[("status", status)] if status is not None else None)
        assert idle == (1 if status == "idle" else 0)
        assert firmware_code == codes[("firmware_version", firmware)]
    # Closed vocabularies are numbered in contract order.
    assert [codes[("status", s)] for s in ("active", "idle", "sleep", "error", "offline")] == [
        1,
        2,
        3,
        4,
        5,
    ]


def _categories(url: str) -> list[tuple[Any, ...]]:
    return fetch_all(
        url, "SELECT column_name, value, code FROM iotpipe_categories WHERE dataset = 'acme_usage'"
    )


def test_replay_is_skipped_and_a_changed_object_upserts(store_url: str, tmp_path: Path) -> None:
    path, first_truth = sample(tmp_path, "a.csv", 6000, seed=5)
    assert ingest(store_url, path).status == "loaded"
    again = ingest(store_url, path)
    assert again.status == "skipped"
    assert again.counters.rows_read == 0
    assert table_rows(store_url, ACME) == expected_rows(first_truth)
    # The same generator and seed with more rows: the old rows plus new ones and conflicts
    # that rewrite some earlier keys. A new version loads; nothing is duplicated.
    _, longer_truth = sample(tmp_path, "a.csv", 9000, seed=5)
    report = ingest(store_url, path)
    assert report.status == "loaded"
    assert table_rows(store_url, ACME) == expected_rows(longer_truth)
    assert scalar(store_url, "SELECT COUNT(*) FROM device_usage") == longer_truth.rows_valid
    assert scalar(store_url, "SELECT COUNT(*) FROM iotpipe_ledger WHERE status = 'loaded'") == 2


def test_concurrent_ingests_share_one_set_of_codes(store_url: str, tmp_path: Path) -> None:
    # Different seeds, overlapping new firmware/region values; two workers at once.
    paths = [sample(tmp_path, f"w{i}.csv", 4000, seed=100 + i, devices=40)[0] for i in range(2)]
    build_store(store_url).ensure_schema(ACME)
    results: list[Any] = []
    errors: list[BaseException] = []

    def work(path: Path) -> None:
        try:
            results.append(ingest(store_url, path, batch_rows=500))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(p,)) for p in paths]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert [r.status for r in results] == ["loaded", "loaded"], [r.to_dict() for r in results]
    categories = _categories(store_url)
    by_value = {(c, v) for c, v, _ in categories}
    by_code = {(c, code) for c, _, code in categories}
    assert len(by_value) == len(by_code) == len(categories)
    for column in ("firmware_version", "region"):
        codes = sorted(code for c, _, code in categories if c == column)
        assert codes == list(range(1, len(codes) + 1))
    lookup = {(c, v): code for c, v, code in categories}
    for firmware, code in table_rows(
        store_url, ACME, ["firmware_version", "firmware_version_code"]
    ):
        assert code == lookup[("firmware_version", firmware)]


def test_host_time_zone_does_not_change_stored_values(store_url: str, tmp_path: Path) -> None:
    path, truth = sample(tmp_path, "tz.csv", 3000, seed=9)
    env = {**os.environ, "TZ": "Asia/Tokyo", "IOTPIPE_DATABASE_URL": store_url}
    out = subprocess.run(
        [sys.executable, "-m", "iotpipe", "ingest", str(path), "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(out.stdout)["status"] == "loaded"
    assert table_rows(store_url, ACME) == expected_rows(truth)
    # Querying under the same foreign zone returns the UTC instants, marked Z.
    device, ts = expected_rows(truth)[0][:2]
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "iotpipe",
            "query",
            "--device-id",
            device,
            "--start",
            ts.isoformat() + "Z",
            "--end",
            ts.isoformat() + "+00:00",
            "--limit",
            "1",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    body = json.loads(out.stdout)
    assert body["count"] == 1
    assert (
        body["rows"][0]["timestamp"]
        == ts.isoformat(timespec="milliseconds" if ts.microsecond else "seconds") + "Z"
    )


def test_query_stats_equal_statistics_and_pages_cover_every_row(
    store_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, truth = sample(tmp_path, "q.csv", 8000, seed=13, devices=5)
    assert ingest(store_url, path).status == "loaded"
    rows = expected_rows(truth)
    device = rows[0][0]
    mine = [r for r in rows if r[0] == device]
    start, end = mine[10][1], mine[-10][1]  # inclusive bounds on exact row times
    in_range = [r for r in mine if start <= r[1] <= end]
    args = [
        "query",
        "--device-id",
        device,
        "--start",
        start.isoformat(),
        "--end",
        end.isoformat(),
        "--database-url",
        store_url,
        "--limit",
        "50",
    ]
    assert main(args) == 0
    body = json.loads(capsys.readouterr().out)
    assert body["count"] == len(in_range)
    fields = [f.name for f in ACME.fields]
    for f in ACME.numeric_fields:
        values = [
            r[fields.index(f.name) + 2] for r in in_range if r[fields.index(f.name) + 2] is not None
        ]
        got = body["stats"][f.name]
        assert got["count"] == len(values)
        assert got["median"] == statistics.median(values)
        assert got["min"] == min(values) and got["max"] == max(values)
        # AVG is summed by the database in its own order: equal to fsum's mean within rounding.
        assert got["mean"] == pytest.approx(statistics.fmean(values), rel=1e-12)
    # Paging with limit 50 returns every row exactly once, in order.
    seen = [r["timestamp"] for r in body["rows"]]
    cursor = body["next_cursor"]
    while cursor:
        assert main([*args, "--cursor", cursor]) == 0
        page = json.loads(capsys.readouterr().out)
        assert page["count"] == body["count"] and page["stats"] == body["stats"]
        seen += [r["timestamp"] for r in page["rows"]]
        cursor = page["next_cursor"]
    assert len(seen) == len(set(seen)) == len(in_range)
    assert seen == sorted(seen)


def test_ledger_leases_busy_and_takeover(store_url: str) -> None:
    store = build_store(store_url)
    try:
        store.ensure_schema(ACME)
        ref = ObjectRef("s3://bucket/key", "etag-1", 10)
        a, b = new_owner(), new_owner()
        first = store.claim(ref, "acme_usage", 60, a)
        assert (first.status, first.owner, first.attempts) == ("claimed", a, 1)
        busy = store.claim(ref, "acme_usage", 60, b)
        assert (busy.status, busy.owner) == ("busy", a)  # says who holds it
        assert store.claim(ref, "acme_usage", 60, a).status == "claimed"  # our own: renew
        other = ObjectRef("s3://bucket/key", "etag-2", 10)
        assert store.claim(other, "acme_usage", -1, a).status == "claimed"  # already expired
        taken = store.claim(other, "acme_usage", 60, b)
        assert taken.status == "claimed" and taken.attempts == 2
        store.fail(taken, "boom", None)
        entry = store.ledger_entry(other, "acme_usage")
        assert entry is not None and entry.status == "failed" and entry.error == "boom"
        # No report: SQL NULL in the column analysts query, not the JSON text 'null'.
        raw = fetch_all(
            store_url, "SELECT report IS NULL FROM iotpipe_ledger WHERE version = 'etag-2'"
        )
        assert raw == [(1,)]
        assert store.ledger_entry(ObjectRef("s3://bucket/none", "x", 1), "acme_usage") is None
        assert store.claim(other, "acme_usage", 60, a).status == "claimed"  # failed: retry
    finally:
        store.close()


def test_a_live_lease_whose_worker_let_go_or_died_is_taken_over(store_url: str) -> None:
    # The lease alone would keep the object "busy" for its full length; the claim lock says
    # whether its worker still holds it. Two stores: two workers, each its own connection.
    first, second = build_store(store_url), build_store(store_url)
    try:
        first.ensure_schema(ACME)
        a, b, c = new_owner(), new_owner(), new_owner()
        ref = ObjectRef("s3://bucket/let-go", "e", 1)
        claim = first.claim(ref, "acme_usage", 60, a)
        assert claim.status == "claimed"
        assert second.claim(ref, "acme_usage", 60, b).status == "busy"  # held: a live worker
        # The worker let go without a verdict (its ledger write failed, say) and lives on.
        first.release(claim)
        taken = second.claim(ref, "acme_usage", 60, b)
        assert (taken.status, taken.attempts) == ("claimed", 2)
        assert first.claim(ref, "acme_usage", 60, c).status == "busy"  # now the second's
        second.release(taken)
        again = first.claim(ref, "acme_usage", 60, c)  # the same worker, a new delivery
        assert (again.status, again.attempts) == ("claimed", 3)

        # The worker died: its connection (MariaDB) or its lock files (SQLite) are gone.
        other = ObjectRef("s3://bucket/died", "e", 1)
        assert second.claim(other, "acme_usage", 60, b).status == "claimed"
        second.close()
        taken = first.claim(other, "acme_usage", 60, c)
        assert (taken.status, taken.attempts) == ("claimed", 2)
        entry = first.ledger_entry(other, "acme_usage")
        assert entry is not None and entry.status == "loading"
    finally:
        first.close()
        second.close()


def test_the_ledger_row_of_a_load_carries_its_counts_and_report(
    store_url: str, tmp_path: Path
) -> None:
    # The ledger is what operators query: its counts and report are the load's own, written
    # in the load's transaction, and a claim lost meanwhile rolls the whole load back.
    path, truth = sample(tmp_path, "counted.csv", 600, seed=21)
    assert truth.rows_rejected and truth.rows_duplicate  # every count differs from the others
    report = ingest(store_url, path)
    assert report.status == "loaded", report.error
    columns = "status, rows_read, rows_loaded, rows_rejected, report"
    (row,) = fetch_all(store_url, f"SELECT {columns} FROM iotpipe_ledger")
    status, rows_read, rows_loaded, rows_rejected, stored = row
    assert (status, rows_read, rows_loaded, rows_rejected) == (
        "loaded",
        truth.rows_read,
        truth.rows_valid,
        truth.rows_rejected,
    )
    assert scalar(store_url, f"SELECT COUNT(*) FROM {ACME.table}") == truth.rows_valid
    stored = json.loads(stored)
    assert (stored["status"], stored["rows_read"]) == ("loaded", truth.rows_read)
    assert stored == report.to_dict()

    # A worker whose claim another took over while it loaded: nothing of its load is kept.
    lost = tmp_path / "lost.csv"
    write_sample(lost, 300, devices=5, seed=22)
    store, other = build_store(store_url), build_store(store_url)

    def taken_over() -> IO[bytes]:
        time.sleep(0.3)  # past this worker's lease
        assert other.claim(local_object(lost), ACME.name, 60, new_owner()).status == "claimed"
        return lost.open("rb")

    try:
        skipped = store.claim(local_object(path), ACME.name, 60, new_owner())
        assert (skipped.status, skipped.attempts, skipped.dataset) == ("skipped", 1, ACME.name)
        with pytest.raises(StorageError) as raised:
            ingest_object(
                taken_over,
                local_object(lost),
                ACME,
                store,
                options=IngestOptions(now=NOW, lease_seconds=0.2, retries=0),
            )
        assert str(raised.value) == "the claim was taken over by another worker; rolled back"
        entry = store.ledger_entry(local_object(lost), ACME.name)
        assert entry is not None and entry.status == "loading"  # the other worker's claim
        assert scalar(store_url, f"SELECT COUNT(*) FROM {ACME.table}") == truth.rows_valid
    finally:
        store.close()
        other.close()


def test_reads_go_on_while_a_load_holds_sqlite_s_write_lock(tmp_path: Path) -> None:
    # `iotpipe serve` reads while `iotpipe ingest` loads: only writers take SQLite's write
    # lock up front; a reader sees the last commit (WAL) instead of waiting for the load.
    from iotpipe.errors import StorageError

    url = f"sqlite:///{tmp_path}/iotpipe.db"
    writer, reader = build_store(url), build_store(url)
    try:
        writer.ensure_schema(ACME)
        claim = writer.claim(ObjectRef("s3://b/k.csv", "e", 1), ACME.name, 60, new_owner())
        with pytest.raises(StorageError, match="without finish"), writer.load(claim, ACME):
            # Inside the load's open write transaction, from another connection:
            assert [e.status for e in reader.files()] == ["loading"]
            entry = reader.ledger_entry(claim.ref, ACME.name)
            assert entry is not None and entry.attempts == 1
    finally:
        writer.close()
        reader.close()


def test_the_file_list_keeps_its_limit_and_filters_by_status_and_dataset_together(
    store_url: str,
) -> None:
    store = build_store(store_url)
    try:
        store.ensure_schema(ACME)
        owner = new_owner()
        for n in range(101):  # one more than a listing shows by default
            claim = store.claim(ObjectRef(f"s3://b/f{n:03d}.csv", "e", 1), "acme_usage", 60, owner)
            if n % 2:
                store.fail(claim, "bad", None)
        other = store.claim(ObjectRef("s3://b/other.csv", "e", 1), "other_set", 60, owner)
        store.fail(other, "bad", None)
        assert len(store.files()) == 100 and len(store.files(limit=2)) == 2
        failed = store.files(status="failed", dataset="acme_usage", limit=1000)
        assert len(failed) == 50
        assert {(e.status, e.dataset) for e in failed} == {("failed", "acme_usage")}
        assert [e.source for e in store.files(dataset="other_set")] == ["s3://b/other.csv"]
    finally:
        store.close()


def test_a_busy_file_says_whether_it_is_being_loaded_or_was_taken_over(
    store_url: str, tmp_path: Path
) -> None:
    path, _ = sample(tmp_path, "busy.csv", 200, seed=5)
    ref = local_object(path)
    store, other = build_store(store_url), build_store(store_url)
    try:
        store.ensure_schema(ACME)
        # Another worker holds a live claim before this one starts.
        holder = other.claim(ref, "acme_usage", 60, new_owner())
        assert holder.status == "claimed"
        with pytest.raises(ObjectBusyError) as raised:
            ingest_object(lambda: path.open("rb"), ref, ACME, store)
        assert str(raised.value) == f"{ref.source} is being loaded by another worker"
        other.fail(holder, "given up", None)

        # This worker's first attempt fails on the source after its short lease ran out, and
        # another worker takes the file over before the retry.
        def opener() -> IO[bytes]:
            time.sleep(0.3)  # past this worker's lease
            assert other.claim(ref, "acme_usage", 60, new_owner()).status == "claimed"
            raise SourceReadError("the source went away")

        options = IngestOptions(lease_seconds=0.2, retries=1, backoff_seconds=0.0)
        with pytest.raises(ObjectBusyError) as raised:
            ingest_object(opener, ref, ACME, store, options=options)
        assert str(raised.value) == f"{ref.source} was taken over by another worker"
    finally:
        store.close()
        other.close()


def test_a_source_that_stays_unreadable_is_tried_retries_plus_one_times(
    store_url: str, tmp_path: Path
) -> None:
    path, _ = sample(tmp_path, "gone.csv", 100, seed=7)
    opened: list[int] = []

    def opener() -> IO[bytes]:
        opened.append(1)
        raise SourceReadError("S3 is unreachable")

    store = build_store(store_url)
    try:
        with pytest.raises(SourceReadError):
            options = IngestOptions(retries=2, backoff_seconds=0.0)
            ingest_object(opener, local_object(path), ACME, store, options=options)
        assert len(opened) == 3
        entry = store.ledger_entry(local_object(path), "acme_usage")
        assert entry is not None and entry.status == "failed"
        assert entry.error == "gave up after 3 attempt(s): S3 is unreachable"
    finally:
        store.close()


def test_progress_follows_each_batch_and_a_failed_file_keeps_its_report(
    store_url: str, tmp_path: Path
) -> None:
    path, truth = sample(tmp_path, "p.csv", 5000, seed=6)
    junk = tmp_path / "junk.csv"
    junk.write_text("a,b\n1,2\n")
    seen: list[int] = []
    store = build_store(store_url)
    try:
        loaded = ingest_object(
            lambda: path.open("rb"),
            local_object(path),
            ACME,
            store,
            options=IngestOptions(now=NOW, batch_rows=1000),
            progress=lambda report: seen.append(report.counters.rows_read),
        )
        assert loaded.status == "loaded"
        assert len(seen) >= 5 and seen == sorted(seen) and seen[-1] == truth.rows_read
        failed = ingest_object(lambda: junk.open("rb"), local_object(junk), ACME, store)
        assert failed.status == "failed" and failed.error
        entry = store.ledger_entry(local_object(junk), "acme_usage")
        assert entry is not None and entry.status == "failed" and entry.error == failed.error
        assert entry.report is not None
        assert (entry.report["status"], entry.report["error"]) == ("failed", failed.error)
    finally:
        store.close()


def test_additive_migration_keeps_rows(store_url: str, tmp_path: Path) -> None:
    path, truth = sample(tmp_path, "m.csv", 2000, seed=3)
    assert ingest(store_url, path).status == "loaded"
    doc = contract_to_dict(ACME)
    doc["fields"].append(
        {"name": "humidity_pct", "type": "number", "constraints": {"minimum": 0, "maximum": 100}}
    )
    doc["fields"].append(
        {"name": "mode", "type": "category", "constraints": {"enum": ["eco", "boost"]}}
    )
    wider = contract_from_dict(doc)
    store = build_store(store_url)
    try:
        store.ensure_schema(wider)
    finally:
        store.close()
    assert table_rows(store_url, ACME) == expected_rows(truth)
    assert (
        scalar(store_url, "SELECT COUNT(*) FROM device_usage WHERE humidity_pct IS NULL")
        == truth.rows_valid
    )
    assert scalar(store_url, "SELECT SUM(mode_eco) FROM device_usage") == 0
    fresh = build_store(store_url)
    try:
        registered = fresh.dataset("acme_usage")
        assert registered is not None and registered.fields == wider.fields
        assert fresh.dataset("nope") is None
    finally:
        fresh.close()


def test_a_contract_may_allow_longer_device_ids_than_128(store_url: str, tmp_path: Path) -> None:
    # maxLength once passed cleaning and then failed (or was cut) in a VARCHAR(128) key.
    doc = contract_to_dict(ACME)
    store = build_store(store_url)
    try:
        store.ensure_schema(ACME)  # a table made when the limit was 128
        doc["device_id"]["maxLength"] = 200
        wider = contract_from_dict(doc)
        path = tmp_path / "long ids.csv"
        long_id = "d" * 190
        path.write_text(
            "device_id,timestamp,battery_pct\n"
            f"{long_id},2024-05-01T00:00:00Z,50\n"
            f"{'e' * 201},2024-05-01T00:00:00Z,51\n",
            encoding="utf-8",
        )
        report = ingest_object(
            lambda: path.open("rb"),
            local_object(path),
            wider,
            store,
            options=IngestOptions(now=NOW),
        )
    finally:
        store.close()
    assert report.status == "loaded"
    assert report.counters.reject_reasons == {"invalid_device_id": 1}
    assert fetch_all(store_url, "SELECT device_id, battery_pct FROM device_usage") == [
        (long_id, 50.0)
    ]


def test_columns_a_contract_does_not_carry_keep_their_values(
    store_url: str, tmp_path: Path
) -> None:
    # Issue "Trust", finding 6: on MariaDB, LOAD DATA ... REPLACE set the columns the loading
    # contract lacks to NULL in every row it touched; SQLite kept them. Same answer on both.
    doc = contract_to_dict(ACME)
    doc["name"] = "acme_with_humidity"  # a second contract on the same table
    doc["fields"].append({"name": "humidity_pct", "type": "number"})
    wider = contract_from_dict(doc)
    first = tmp_path / "with humidity.csv"
    first.write_text(
        "device_id,timestamp,battery_pct,humidity_pct\n"
        "d1,2024-05-01T00:00:00Z,50,40\n"
        "d2,2024-05-01T00:00:00Z,60,41\n",
        encoding="utf-8",
    )
    second = tmp_path / "without.csv"
    second.write_text(
        "device_id,timestamp,battery_pct\nd1,2024-05-01T00:00:00Z,55\nd3,2024-05-01T00:00:00Z,70\n",
        encoding="utf-8",
    )
    store = build_store(store_url)
    try:
        for path, contract in ((first, wider), (second, ACME)):
            report = ingest_object(
                opener(path),
                local_object(path),
                contract,
                store,
                options=IngestOptions(now=NOW),
            )
            assert report.status == "loaded", report.to_dict()
    finally:
        store.close()
    rows = fetch_all(
        store_url, "SELECT device_id, battery_pct, humidity_pct FROM device_usage ORDER BY 1"
    )
    assert rows == [("d1", 55.0, 40.0), ("d2", 60.0, 41.0), ("d3", 70.0, None)]
