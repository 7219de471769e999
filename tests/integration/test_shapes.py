"""Issue "Real-world files": each shape loaded with the user's contract on SQLite and MariaDB,
then read back with `iotpipe query`: the rows and statistics equal the standard library's
truth (tests/shapes.py)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from iotpipe.bootstrap import build_store
from iotpipe.cli import main
from iotpipe.contract import parse_contract
from iotpipe.ingest import IngestOptions, ingest_object
from iotpipe.sources import local_object
from iotpipe.times import iso_z
from tests.shapes import SHAPES, Shape, Truth, truth

NOW = dt.datetime(2026, 11, 27)


def query(store_url: str, dataset: str, device: str, capsys: pytest.CaptureFixture[str]) -> Any:
    args = ["query", "--device-id", device, "--start", "2000-01-01T00:00:00Z"]
    args += ["--end", "2030-01-01T00:00:00Z", "--dataset", dataset, "--limit", "10000"]
    assert main([*args, "--database-url", store_url]) == 0
    body: Any = json.loads(capsys.readouterr().out)
    return body


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: s.name)
def test_each_shape_loads_its_truth_and_reads_back(
    shape: Shape, store_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    contract = parse_contract(shape.contract)
    store = build_store(store_url)
    expected = Truth()
    try:
        for path in shape.paths():
            report = ingest_object(
                lambda path=path: path.open("rb"),  # type: ignore[misc]
                local_object(path),
                contract,
                store,
                options=IngestOptions(now=NOW),
            )
            assert report.status == "loaded", report.error
            file_truth = truth(shape, path)
            assert report.rows_loaded == file_truth.rows_valid
            expected.stored.update(file_truth.stored)  # keys do not repeat across the files
    finally:
        store.close()
    devices = sorted({device for device, _ in expected.stored})
    for device in devices:
        body = query(store_url, contract.name, device, capsys)
        mine = sorted((ts, v) for (d, ts), v in expected.stored.items() if d == device)
        assert body["count"] == len(mine)
        assert [r["timestamp"] for r in body["rows"]] == [iso_z(ts) for ts, _ in mine]
        for row, (_, values) in zip(body["rows"], mine, strict=True):
            assert {name: row[name] for name in values} == values
        for name in shape.fields:
            got, want = body["stats"][name], expected.stats(device, name)
            if want is None:
                assert got["count"] == 0
                continue
            assert got["median"] == want["median"]
            assert (got["min"], got["max"]) == (want["min"], want["max"])
            assert got["mean"] == pytest.approx(want["mean"], rel=1e-12)
