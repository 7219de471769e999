"""Issue "Trust", finding 13: every query gives the same answer on SQLite and on MariaDB.

Found: SQLite returned nothing for a start in the years 100-999 (times stored as text, the
year not zero-padded), and MariaDB matched 'dev-00001 ' to dev-00001 (PAD SPACE collation).
The same rows are loaded into both engines; random queries (device ids with spaces, case,
LIKE wildcards; instants from year 1 to 9999, with offsets; page sizes) must then give equal
bodies, page after page, and counts equal to a count made here from the rows themselves.
"""

from __future__ import annotations

import datetime as dt
import os
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from iotpipe.bootstrap import build_store
from iotpipe.contract import load_contract
from iotpipe.errors import InvalidQueryError
from iotpipe.ingest import IngestOptions, ingest_object
from iotpipe.retrieve import CursorCodec, answer, parse_instant
from iotpipe.sources import local_object
from iotpipe.storage.store import SqlStore
from tests.budget import examples
from tests.integration.conftest import mariadb

ACME = load_contract("acme_usage")
DEVICES = ["dev-1", "Dev-1", "dev_1", "dev%1", "dev-2"]
START = dt.datetime(2024, 3, 1)
TIMES = [START + dt.timedelta(minutes=7 * i, microseconds=250 * (i % 3)) for i in range(60)]
ODD_DEVICES = ["dev-1 ", " dev-1", "DEV-1", "dev-1\t", "dev-_", "dev-%", "dev_", "x"]
EXTREMES = [
    "0001-01-01T00:00:00Z",
    "0100-06-01",
    "0500-01-01T00:00:00+01:00",
    "0999-12-31T23:59:59Z",
    "1000-01-01",
    "2024-03-01T02:00:00+09:00",
    "9999-12-31T22:00:00-01:00",
    "9999-12-31T23:59:59.999999Z",
]
IN_DATA = [
    *(t.isoformat() for t in TIMES[::5]),
    *((t + dt.timedelta(microseconds=1)).isoformat() + "Z" for t in TIMES[::7]),
    *(str(int(t.replace(tzinfo=dt.UTC).timestamp() * 1000)) for t in TIMES[::9]),
]
# Mostly real devices and times in the data (rows to compare), often the odd ones.
QUERY_DEVICES = st.one_of(st.sampled_from(DEVICES), st.sampled_from(ODD_DEVICES))
INSTANTS = st.one_of(st.sampled_from(IN_DATA), st.sampled_from(IN_DATA), st.sampled_from(EXTREMES))
CODEC = CursorCodec("agree")


def _csv(path: Path) -> list[tuple[str, dt.datetime, int]]:
    rng = random.Random(13)
    rows = []
    lines = ["device_id,timestamp,battery_pct,error_count,status"]
    for device in DEVICES:
        for t in rng.sample(TIMES, 40):
            errors = rng.choice([0, 1, 2, 7, 480])
            battery = rng.choice(["", "12.5", "99", "0.1", "55.55"])
            lines.append(f"{device},{t.isoformat()}Z,{battery},{errors},idle")
            rows.append((device, t, errors))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return rows


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SqlStore, SqlStore, Any]]:
    tmp = tmp_path_factory.mktemp("agree")
    path = tmp / "rows.csv"
    rows = _csv(path)
    try:
        admin = mariadb()
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"MariaDB is not reachable on 127.0.0.1:3306: {exc}")
    name = f"iotpipe_agree_{os.getpid()}"
    with admin.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
    urls = (f"sqlite:///{tmp}/agree.db", f"mysql://root@127.0.0.1:3306/{name}")
    built = [build_store(url) for url in urls]
    try:
        for store in built:
            report = ingest_object(
                lambda: path.open("rb"),
                local_object(path),
                ACME,
                store,
                options=IngestOptions(now=dt.datetime(2025, 1, 1)),
            )
            assert report.status == "loaded" and report.rows_loaded == len(rows)
        yield built[0], built[1], rows
    finally:
        for store in built:
            store.close()
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        admin.close()


def _ask(store: SqlStore, params: dict[str, Any]) -> Any:
    try:
        return answer(params, default_dataset="acme_usage", store=store, cursors=CODEC)
    except InvalidQueryError as exc:
        return ("400", exc.parameter)


def _same(a: Any, b: Any) -> None:
    if isinstance(a, tuple):
        assert a == b
        return
    assert {k: v for k, v in a.items() if k != "stats"} == {
        k: v for k, v in b.items() if k != "stats"
    }
    for column, stats in a["stats"].items():
        other = b["stats"][column]
        # Each engine sums in its own order: the mean may differ in the last bits.
        if stats["mean"] is None:
            assert other["mean"] is None
        else:
            assert stats["mean"] == pytest.approx(other["mean"], rel=1e-12)
        assert {k: v for k, v in stats.items() if k != "mean"} == {
            k: v for k, v in other.items() if k != "mean"
        }


@settings(max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    device=QUERY_DEVICES,
    start=INSTANTS,
    end=INSTANTS,
    limit=st.integers(1, 30),
)
def test_random_queries_agree_on_both_engines(
    stores: tuple[SqlStore, SqlStore, Any], device: str, start: str, end: str, limit: int
) -> None:
    sqlite, maria, rows = stores
    if parse_instant(start, "start") > parse_instant(end, "end"):
        start, end = end, start
    params: dict[str, Any] = {"device_id": device, "start": start, "end": end, "limit": limit}
    first, second = _ask(sqlite, params), _ask(maria, params)
    _same(first, second)
    if isinstance(first, tuple):
        event("rejected query")
        return
    low, high = parse_instant(start, "start"), parse_instant(end, "end")
    expected = sum(1 for d, t, _ in rows if d == device and low <= t <= high)
    assert first["count"] == expected
    event("rows found" if expected else "no rows")
    pages = 1
    while first["next_cursor"]:  # every page agrees too
        params = {**params, "cursor": first["next_cursor"]}
        first, second = _ask(sqlite, params), _ask(maria, params)
        _same(first, second)
        pages += 1
    event(f"pages: {min(pages, 3)}{'+' if pages > 3 else ''}")
