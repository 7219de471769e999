"""The example contracts on slices of the real datasets (tests/data), against counts computed
here independently with the csv and json modules."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from iotpipe.contract import DataContract, load_contract
from iotpipe.ingest import validate_source
from iotpipe.report import IngestReport
from tests.conftest import EXAMPLES

# Data rows of each Beijing slice (tests/data/README.md).
BEIJING_ROWS = {
    "PRSA_Data_Aotizhongxin_20130301-20170228.csv": 1000,
    "PRSA_Data_Dongsi_20130301-20170228.csv": 1050,
}


def read_ndjson(path: Path) -> list[dict[str, Any]]:
    """Every JSON object of a gzipped NDJSON file, read with the standard library."""
    text = gzip.decompress(path.read_bytes()).decode("utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def validate(path: Path, contract: DataContract) -> IngestReport:
    with path.open("rb") as stream:
        return validate_source(stream, contract, source=str(path), batch_rows=5000)


def out_of_bounds(contract: DataContract, name: str, text: str) -> bool:
    field = next(f for f in contract.fields if f.name == name)
    value = float(text)
    return (field.minimum is not None and value < field.minimum) or (
        field.maximum is not None and value > field.maximum
    )


def test_beijing(real_data: Path) -> None:
    contract = load_contract(EXAMPLES / "beijing_airquality.yaml")
    measures = {
        "PM2.5": "pm2_5",
        "PM10": "pm10",
        "SO2": "so2",
        "NO2": "no2",
        "CO": "co",
        "O3": "o3",
        "TEMP": "temp",
        "PRES": "pres",
        "DEWP": "dewp",
        "RAIN": "rain",
        "WSPM": "wspm",
    }
    compass = {
        "N",
        "NNE",
        "NE",
        "ENE",
        "E",
        "ESE",
        "SE",
        "SSE",
        "S",
        "SSW",
        "SW",
        "WSW",
        "W",
        "WNW",
        "NW",
        "NNW",
    }
    files = sorted((real_data / "beijing_airquality").glob("*.csv"))
    assert len(files) == 2
    for path in files:
        with path.open(newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        no_measure = [r for r in rows if all(r[m] == "NA" for m in measures)]
        nulled: dict[str, int] = {}
        for r in rows:
            if r in no_measure:
                continue
            for source, name in measures.items():
                if r[source] != "NA" and out_of_bounds(contract, name, r[source]):
                    nulled[name] = nulled.get(name, 0) + 1
            if r["wd"] != "NA" and r["wd"] not in compass:
                nulled["wd"] = nulled.get("wd", 0) + 1
        keys = {
            (r["station"], r["year"], r["month"], r["day"], r["hour"])
            for r in rows
            if r not in no_measure
        }
        body = validate(path, contract).to_dict()
        assert body["status"] == "validated"
        assert body["rows_read"] == len(rows) == BEIJING_ROWS[path.name]
        assert body["rows_rejected"] == len(no_measure)
        assert body["rows_valid"] == len(keys)
        assert body["nulled"] == nulled
        assert body["unknown_columns"] == []


def test_beijing_local_time_becomes_utc(real_data: Path) -> None:
    from iotpipe.clean import Cleaner
    from iotpipe.readers import open_records

    contract = load_contract(EXAMPLES / "beijing_airquality.yaml")
    path = next((real_data / "beijing_airquality").glob("PRSA_Data_Dongsi*.csv"))
    with path.open("rb") as stream:
        batch = next(iter(open_records(stream, contract, batch_rows=3)))
    rows = Cleaner(contract).clean(batch).rows
    assert rows.get_column("ts").to_list()[:2] == [
        dt.datetime(2013, 2, 28, 16),
        dt.datetime(2013, 2, 28, 17),
    ]
    assert rows.get_column("so2").to_list()[2] is None  # "NA" in the file
    assert rows.get_column("wd").to_list()[:2] == ["nnw", "nw"]


def test_london(real_data: Path) -> None:
    contract = load_contract(EXAMPLES / "london_smart_meters.yaml")
    files = sorted((real_data / "london_smart_meters").glob("*.csv"))
    assert len(files) == 4
    for path in files:
        with path.open(newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        values = [float(r["energy(kWh/hh)"].strip()) for r in rows]
        body = validate(path, contract).to_dict()
        assert body["rows_read"] == len(rows)
        assert body["rows_valid"] == len({(r["LCLid"], r["tstp"]) for r in rows})
        assert body["rows_rejected"] == 0
        assert body["nulled"] == (
            {"energy_kwh_hh": n} if (n := sum(not 0 <= v <= 100 for v in values)) else {}
        )


def _get(record: dict[str, Any], path: str) -> Any:
    node: Any = record
    for key in path.split("."):
        node = node.get(key) if isinstance(node, dict) else None
    return node


def test_campusiot(real_data: Path) -> None:
    contract = load_contract(EXAMPLES / "campusiot_lorawan.yaml")
    measure_paths = [s for f in contract.measurements for s in f.sources]
    files = sorted((real_data / "campusiot_lorawan").glob("*.ndjson.gz"))
    assert len(files) == 5
    for path in files:
        records = read_ndjson(path)
        empty = [r for r in records if all(_get(r, p) is None for p in measure_paths)]
        kept = [r for r in records if not any(r is e for e in empty)]
        keys = {(r.get("dev_eui") or r.get("devEUI"), r["_date"]) for r in kept}
        body = validate(path, contract).to_dict()
        assert body["rows_read"] == len(records)
        assert body["rows_rejected"] == len(empty)
        assert body["reject_reasons"] == ({"no_measurements": len(empty)} if empty else {})
        assert body["rows_valid"] == len(keys)
        assert body["rows_duplicate"] + body["rows_conflict"] == len(kept) - len(keys)


@pytest.mark.parametrize(
    ("folder", "device", "timestamp"),
    [
        (
            "beijing_airquality",
            "station",
            {"year": "year", "month": "month", "day": "day", "hour": "hour"},
        ),
        ("london_smart_meters", "LCLid", {"value": "tstp"}),
        ("campusiot_lorawan", None, {"value": "_date"}),
    ],
)
def test_inferred_contracts_fit_the_data(
    real_data: Path, folder: str, device: str | None, timestamp: dict[str, str]
) -> None:
    from iotpipe.infer import infer_contract

    for path in sorted((real_data / folder).glob("*.csv")) + sorted(
        (real_data / folder).glob("*.ndjson.gz")
    ):
        with path.open("rb") as stream:
            contract = infer_contract(stream, name=path.name)
        assert contract.device_id.sources[0] in ({device} if device else {"dev_eui", "devEUI"})
        assert {k: v[0] for k, v in contract.timestamp.parts.items()} == timestamp
        body = validate(path, contract).to_dict()
        assert body["status"] == "validated"
        # The draft must not throw data away wholesale: most rows load.
        assert body["rows_valid"] >= 0.6 * body["rows_read"], (path.name, body)
