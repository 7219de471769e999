"""iotpipe's counts on `bench.messy`'s files (an independent generator: BOM, CRLF, a shuffled
case-varied header with an extra column, quoted commas, seven timestamp shapes) equal the
generator's own truth, in time order and shuffled, plain and gzip, across batch boundaries."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import polars as pl
import pytest

from bench.messy import write_messy
from iotpipe.clean import Cleaner
from iotpipe.contract import load_contract
from iotpipe.ingest import validate_source
from iotpipe.readers import open_records


@pytest.mark.parametrize(("order", "suffix"), [("time", ".csv"), ("random", ".csv.gz")])
def test_counts_equal_the_generators_truth(tmp_path: Path, order: str, suffix: str) -> None:
    path = tmp_path / f"messy{suffix}"
    truth = write_messy(path, 30_000, devices=50, order=order, seed=3)
    assert truth.rows_duplicate > 200 and truth.rows_conflict > 100 and truth.rows_rejected > 200
    with path.open("rb") as stream:
        report = validate_source(
            stream, load_contract("acme_usage"), source=str(path), batch_rows=7_000
        )
    got = {k: report.to_dict()[k] for k in asdict(truth)}
    assert (report.status, got) == ("validated", asdict(truth))
    assert report.unknown_columns and report.unknown_columns[0].lower() == "gateway_note"


@pytest.mark.parametrize("order", ["time", "random"])
def test_a_load_checks_batches_in_parallel_and_counts_as_the_generator_does(
    tmp_path: Path, order: str
) -> None:
    # The load path checks two batches at once and finishes them in order; its counts and
    # the rows stored equal the generator's truth, batch boundaries falling anywhere.
    import sqlite3

    from iotpipe.ingest import IngestOptions, ingest_object
    from iotpipe.model import ObjectRef
    from iotpipe.storage.sqlite import SQLiteStore

    path = tmp_path / "messy.csv"
    truth = write_messy(path, 20_000, devices=40, order=order, seed=5)
    contract = load_contract("acme_usage")
    store = SQLiteStore(tmp_path / "s.db")
    store.ensure_schema(contract)
    ref = ObjectRef(path.as_uri(), "v1", path.stat().st_size)
    report = ingest_object(
        lambda: path.open("rb"), ref, contract, store, options=IngestOptions(batch_rows=1_500)
    )
    got = {k: report.to_dict()[k] for k in asdict(truth)}
    assert (report.status, got) == ("loaded", asdict(truth))
    store.close()
    values = "device_id, battery_pct, temperature_c, power_w, usage_minutes, signal_dbm"
    with sqlite3.connect(tmp_path / "s.db") as db:
        stored = sorted(db.execute(f"SELECT {values} FROM {contract.table}").fetchall())
    assert len(stored) == truth.rows_valid
    # Each key's winner is the last row of the file: the same file cleaned batch by batch in
    # order, in this thread, with the last row of each key kept.
    cleaner = Cleaner(contract)
    with path.open("rb") as stream:
        rows = pl.concat(cleaner.clean(b).rows for b in open_records(stream, contract))
    last = rows.unique(["device_id", "ts"], keep="last", maintain_order=True)
    assert stored == sorted(last.select(values.split(", ")).rows())
