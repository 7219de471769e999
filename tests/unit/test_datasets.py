"""The example contracts on slices of the real datasets (tests/data), against counts computed
here independently with the csv and json modules."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

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


def yaml_bounds(example: str) -> dict[str, tuple[float | None, float | None]]:
    """Each field's bounds read from the example contract's YAML text (not iotpipe's parser)."""
    doc = yaml.safe_load((EXAMPLES / f"{example}.yaml").read_text(encoding="utf-8"))
    bounds = {}
    for field in doc["fields"]:
        constraints = field.get("constraints", {})
        bounds[field["name"]] = (constraints.get("minimum"), constraints.get("maximum"))
    return bounds


def out_of_bounds(
    bounds: dict[str, tuple[float | None, float | None]], name: str, text: str
) -> bool:
    low, high = bounds[name]
    value = float(text)
    return (low is not None and value < low) or (high is not None and value > high)


def test_beijing(real_data: Path) -> None:
    contract = load_contract(EXAMPLES / "beijing_airquality.yaml")
    bounds = yaml_bounds("beijing_airquality")
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
                if r[source] != "NA" and out_of_bounds(bounds, name, r[source]):
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
        low, high = 0.0, 100.0
        assert yaml_bounds("london_smart_meters")["energy_kwh_hh"] == (low, high)
        assert body["nulled"] == (
            {"energy_kwh_hh": n} if (n := sum(not low <= v <= high for v in values)) else {}
        )


def _get(record: dict[str, Any], path: str) -> Any:
    node: Any = record
    for key in path.split("."):
        node = node.get(key) if isinstance(node, dict) else None
    return node


def test_campusiot(real_data: Path) -> None:
    contract = load_contract(EXAMPLES / "campusiot_lorawan.yaml")
    # Measurements, from the YAML text: numeric fields not marked `measurement: false`.
    doc = yaml.safe_load((EXAMPLES / "campusiot_lorawan.yaml").read_text(encoding="utf-8"))
    measure_paths = [
        source
        for f in doc["fields"]
        if f.get("measurement", f["type"] in ("number", "integer"))
        for source in ([f["source"]] if isinstance(f["source"], str) else f["source"])
    ]
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


KEYS = [
    (
        "beijing_airquality",
        "station",
        {"year": "year", "month": "month", "day": "day", "hour": "hour"},
    ),
    ("london_smart_meters", "LCLid", {"value": "tstp"}),
    ("campusiot_lorawan", None, {"value": "_date"}),
]


def dataset_files(real_data: Path, folder: str) -> list[Path]:
    return sorted((real_data / folder).glob("*.csv")) + sorted(
        (real_data / folder).glob("*.ndjson.gz")
    )


def keys_of(path: Path, contract: DataContract) -> set[tuple[Any, ...]]:
    """The (device, time) keys a contract stores from a file."""
    from tests.unit.helpers import clean_bytes

    data = path.read_bytes()
    rows, _, _ = clean_bytes(gzip.decompress(data) if path.suffix == ".gz" else data, contract)
    return set(rows.select("device_id", "ts").iter_rows())


@pytest.mark.parametrize(("folder", "device", "timestamp"), KEYS)
def test_inferred_contracts_fit_the_data(
    real_data: Path, folder: str, device: str | None, timestamp: dict[str, str]
) -> None:
    from iotpipe.infer import infer_draft

    for path in dataset_files(real_data, folder):
        with path.open("rb") as stream:
            draft = infer_draft(stream, name=path.name, path=path.as_posix())
        contract = draft.contract
        assert contract.device_id.sources[0] in ({device} if device else {"dev_eui", "devEUI"})
        assert {k: v[0] for k, v in contract.timestamp.parts.items()} == timestamp
        body = validate(path, contract).to_dict()
        assert body["status"] == "validated"
        # Every count, as the csv/json modules count it with the draft's own choices (its
        # YAML text: device, time columns, measurements), with no edit to the draft.
        expected = _stdlib_counts(path, yaml.safe_load(draft.yaml()))
        got = {k: body[k] for k in expected}
        assert got == expected, (path.name, draft.notes)


def _stdlib_counts(path: Path, doc: dict[str, Any]) -> dict[str, int]:
    """rows read, rejected (no measurement), and distinct keys, with the standard library."""
    if path.suffix == ".gz":
        records: list[dict[str, Any]] = read_ndjson(path)
    else:
        with path.open(newline="", encoding="utf-8") as f:
            records = list(csv.DictReader(f))
    missing = {v.casefold() for v in doc["missingValues"]}

    def value(record: dict[str, Any], source: str) -> Any:
        found = _get(record, source) if path.suffix == ".gz" else record.get(source)
        if found is None or str(found).strip().casefold() in missing:
            return None
        return found

    measures = [
        f.get("source", f["name"])
        for f in doc["fields"]
        if f.get("measurement", f["type"] in ("number", "integer"))
    ]
    kept = [r for r in records if any(value(r, m) is not None for m in measures)]
    device = doc["device_id"]["source"]
    time = [
        c for k, c in doc["timestamp"].items() if k in ("source", "year", "month", "day", "hour")
    ]
    keys = {(value(r, device), *(str(value(r, c)).strip() for c in time)) for r in kept}
    return {
        "rows_read": len(records),
        "rows_rejected": len(records) - len(kept),
        "rows_valid": len(keys),
    }


def _renamed_csv(path: Path) -> tuple[bytes, dict[str, str], list[dict[str, str]]]:
    """The file with every header name made meaningless; the renaming; the records as read."""
    text = path.read_bytes().decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    head, newline, rest = text.partition("\n")
    names = next(csv.reader([head]))
    renamed = {old: f"c{i:02d}" for i, old in enumerate(names)}
    end = "\r" if head.endswith("\r") else ""
    data = ",".join(renamed[n] for n in names) + end + newline + rest
    return data.encode(), renamed, rows


def _renamed_json(
    node: dict[str, Any], renamed: dict[str, str], prefix: str = "", new_prefix: str = ""
) -> dict[str, Any]:
    """Rename every key, at every level; ``renamed`` maps old dotted paths to new ones."""
    out = {}
    for key, value in node.items():
        new = f"k{len(renamed):02d}"
        renamed.setdefault(f"{prefix}{key}", f"{new_prefix}{new}")
        new = renamed[f"{prefix}{key}"].rsplit(".", 1)[-1]
        if isinstance(value, dict):
            value = _renamed_json(value, renamed, f"{prefix}{key}.", f"{new_prefix}{new}.")
        out[new] = value
    return out


def _value(record: dict[str, Any], path: str) -> Any:
    node: Any = record
    for key in path.split("."):
        node = node.get(key) if isinstance(node, dict) else None
    return node


@pytest.mark.parametrize(("folder", "device", "timestamp"), KEYS)
def test_inference_does_not_need_the_column_names(
    real_data: Path, tmp_path: Path, folder: str, device: str | None, timestamp: dict[str, str]
) -> None:
    # Issue "Tests that bite": the hint lists once held these datasets' own column names.
    from iotpipe.infer import infer_contract

    for path in dataset_files(real_data, folder):
        renamed: dict[str, str] = {}
        if path.suffix == ".csv":
            data, renamed, records = _renamed_csv(path)
            new_records: list[dict[str, Any]] = [
                {renamed[k]: v for k, v in r.items()} for r in records
            ]
        else:
            records = read_ndjson(path)
            new_records = [_renamed_json(r, renamed) for r in records]
            data = "\n".join(json.dumps(r) for r in new_records).encode()
        copy = tmp_path / path.name.replace(".gz", "")
        copy.write_bytes(data)
        with copy.open("rb") as stream:
            contract = infer_contract(stream, name="renamed")
        # The time: the same columns, found by their values alone.
        assert {k: v[0] for k, v in contract.timestamp.parts.items()} == {
            k: renamed[v] for k, v in timestamp.items()
        }
        body = validate(copy, contract).to_dict()
        assert body["status"] == "validated"
        # The device: as many records keyed apart as with the draft of the named file (no
        # hourly data collapsed into one row, say)...
        with path.open("rb") as stream:
            named = infer_contract(stream, name=path.name)
        assert body["rows_valid"] == validate(path, named).to_dict()["rows_valid"]
        if device is None:
            # ...which is all values can show where two columns split the records equally
            # well: CampusIoT's dev_eui and app_eui (its devices' time ranges never overlap).
            continue
        # ...and where one column does it best, that column, one value per device.
        pairs = {
            (str(_value(new, contract.device_id.sources[0])), str(_value(old, device)))
            for old, new in zip(records, new_records, strict=True)
        }
        assert len(pairs) == len({c for c, _ in pairs}) == len({t for _, t in pairs}), pairs
