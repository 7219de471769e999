"""iotpipe's counts on `bench.messy`'s files (an independent generator: BOM, CRLF, a shuffled
case-varied header with an extra column, quoted commas, seven timestamp shapes) equal the
generator's own truth, in time order and shuffled, plain and gzip, across batch boundaries."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import pytest

from bench.messy import write_messy
from iotpipe.contract import load_contract
from iotpipe.ingest import validate_source


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
