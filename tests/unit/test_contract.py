from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import yaml

from iotpipe.contract import (
    contract_from_dict,
    contract_to_dict,
    load_contract,
    parse_contract,
)
from iotpipe.errors import ContractError
from tests.conftest import EXAMPLES


def minimal(**overrides: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "name": "m",
        "device_id": "id",
        "timestamp": "time",
        "fields": [{"name": "v", "type": "number"}],
    }
    doc.update(overrides)
    return doc


def test_default_contract_is_the_architecture_one() -> None:
    c = load_contract("acme_usage")
    assert c.name == "acme_usage"
    assert c.table == "device_usage"
    assert c.device_id.sources == ("device_id",)
    assert c.timestamp.parts == {"value": ("timestamp",)}
    assert c.timestamp.timezone == "UTC"
    assert c.timestamp.earliest == dt.datetime(2000, 1, 1)
    assert c.timestamp.max_future == dt.timedelta(days=1)
    by_name = {f.name: f for f in c.fields}
    assert by_name["device_type"].enum == ("thermostat", "smart_plug", "camera", "hub", "sensor")
    assert by_name["status"].enum == ("active", "idle", "sleep", "error", "offline")
    assert by_name["firmware_version"].enum is None and by_name["region"].enum is None
    bounds = {f.name: (f.minimum, f.maximum) for f in c.numeric_fields}
    assert bounds == {
        "battery_pct": (0, 100),
        "temperature_c": (-40, 85),
        "power_w": (0, 5000),
        "usage_minutes": (0, 1440),
        "signal_dbm": (-130, 0),
        "error_count": (0, None),
    }
    assert by_name["error_count"].type == "integer"
    assert {f.name for f in c.measurements} == set(bounds)
    assert c.missing_values == {"", "na", "n/a", "null", "none", "nan", "-", "?"}
    assert "device_type_smart_plug" in c.output_columns
    assert "status_offline" in c.output_columns
    assert "region_code" in c.output_columns and "region_eu" not in c.output_columns


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.stem)
def test_example_contracts_load(path: Path) -> None:
    contract = load_contract(path)
    assert contract.name == path.stem


@pytest.mark.parametrize(
    ("doc", "key"),
    [
        (minimal(colour="red"), "colour"),
        (minimal(name="Bad Name"), "name"),
        (minimal(name=None), "name"),
        (minimal(fields=[]), "fields"),
        (minimal(fields=[{"name": "v", "type": "float"}]), "fields[0].type"),
        (minimal(fields=[{"name": "v", "type": "number", "colour": 1}]), "fields[0].colour"),
        (minimal(fields=[{"name": "ts", "type": "number"}]), "fields[0].name"),
        (minimal(fields=[{"name": "v"}, {"name": "v"}]), "fields[1].name"),
        (
            minimal(
                fields=[
                    {"name": "v", "type": "number", "constraints": {"minimum": 5, "maximum": 1}}
                ]
            ),
            "fields[0].constraints.minimum",
        ),
        (
            minimal(fields=[{"name": "v", "type": "number", "constraints": {"enum": [1]}}]),
            "fields[0].constraints.enum",
        ),
        (
            minimal(fields=[{"name": "v", "type": "string", "constraints": {"minimum": 0}}]),
            "fields[0].constraints",
        ),
        (
            minimal(fields=[{"name": "v", "type": "category", "encoding": "onehot+code"}]),
            "fields[0].encoding",
        ),
        (minimal(fields=[{"name": "v", "on_invalid": "drop"}]), "fields[0].on_invalid"),
        (
            minimal(fields=[{"name": "v", "constraints": {"maxLength": 0}}]),
            "fields[0].constraints.maxLength",
        ),
        (minimal(timestamp={"source": "t", "timezone": "Mars/Olympus"}), "timestamp.timezone"),
        (minimal(timestamp={"year": "y", "hour": "h"}), "timestamp"),
        (minimal(timestamp={"source": "t", "date": "d"}), "timestamp"),
        (minimal(timestamp={"source": "t", "max_future": "soon"}), "timestamp.max_future"),
        (minimal(dialect={"delimiter": ";;"}), "dialect.delimiter"),
        (minimal(dialect={"delimiter": ",", "decimal": ","}), "dialect.decimal"),
        (minimal(dialect={"header": False}), "dialect.columns"),
        (minimal(dialect={"header": True, "columns": ["a"]}), "dialect.columns"),
        (minimal(dialect={"header": False, "columns": ["id", "v"]}), "dialect.columns"),
        (minimal(dialect={"encoding": "klingon"}), "dialect.encoding"),
        (minimal(missingValues="NA"), "missingValues"),
        (minimal(device_id={"source": []}), "device_id.source"),
    ],
)
def test_bad_contract_names_the_offending_key(doc: dict[str, Any], key: str) -> None:
    with pytest.raises(ContractError) as info:
        contract_from_dict(doc)
    assert info.value.key == key, str(info.value)
    assert str(info.value).startswith(f"{key}:")


def test_not_yaml_and_missing_file() -> None:
    with pytest.raises(ContractError, match="not valid YAML"):
        parse_contract("name: [unclosed")
    with pytest.raises(ContractError, match="contract"):
        parse_contract("- just\n- a list\n")
    with pytest.raises(ContractError, match="no contract file"):
        load_contract("no_such_contract")
    with pytest.raises(ContractError, match="cannot read"):
        load_contract("/nonexistent/x.yaml")


def test_composite_timestamp_and_slots() -> None:
    c = contract_from_dict(
        minimal(
            timestamp={
                "year": "Y",
                "month": "M",
                "day": "D",
                "hour": "H",
                "timezone": "Asia/Shanghai",
            }
        )
    )
    assert [s.name for s in c.slots] == [
        "device_id",
        "ts.year",
        "ts.month",
        "ts.day",
        "ts.hour",
        "v",
    ]
    assert not c.timestamp.is_single
    d = contract_from_dict(minimal(timestamp={"date": "d", "time": "t"}))
    assert [s.name for s in d.slots][:3] == ["device_id", "ts.date", "ts.time"]


def test_categories_are_casefolded_and_onehot_named() -> None:
    c = contract_from_dict(
        minimal(
            fields=[
                {
                    "name": "wd",
                    "type": "category",
                    "constraints": {"enum": ["N", "NNE", "Smart Plug"]},
                }
            ]
        )
    )
    f = c.fields[0]
    assert f.enum == ("n", "nne", "smart plug")
    assert f.encoding == "onehot+code"
    assert f.onehot_columns == {"n": "wd_n", "nne": "wd_nne", "smart plug": "wd_smart_plug"}
    with pytest.raises(ContractError, match="collide"):
        contract_from_dict(
            minimal(
                fields=[{"name": "wd", "type": "category", "constraints": {"enum": ["a b", "a-b"]}}]
            )
        )


@pytest.mark.parametrize(
    "ref",
    ["acme_usage", *sorted(str(p) for p in EXAMPLES.glob("*.yaml"))],
    ids=lambda r: Path(r).stem,
)
def test_round_trip_through_yaml(ref: str) -> None:
    original = load_contract(ref)
    again = parse_contract(yaml.safe_dump(contract_to_dict(original)))
    assert again == original


# -- issue "Trust", finding 7: iotpipe's own tables, identifiers, engine limits ---------------


@pytest.mark.parametrize(
    ("doc", "key"),
    [
        (minimal(table="iotpipe_ledger"), "table"),
        (minimal(table="iotpipe_categories"), "table"),
        (minimal(name="iotpipe_datasets"), "name"),
        (minimal(name="abc\n"), "name"),
        (minimal(table="abc\n"), "table"),
        (minimal(fields=[{"name": "v\n", "type": "number"}]), "fields[0].name"),
        (minimal(device_id={"source": "id", "maxLength": 513}), "device_id.maxLength"),
        (minimal(timestamp={"source": "t", "earliest": "0999-12-31"}), "timestamp.earliest"),
        (minimal(timestamp={"source": "t", "ambiguous": "first"}), "timestamp.ambiguous"),
        (minimal(dialect={"max_record_bytes": 0}), "dialect.max_record_bytes"),
        (minimal(dialect={"max_record_bytes": 65 << 20}), "dialect.max_record_bytes"),
        (minimal(quality={"max_rejected_ratio": 1.5}), "quality.max_rejected_ratio"),
        (minimal(quality={"max_rejected": 0.5}), "quality.max_rejected"),
    ],
)
def test_reserved_names_and_new_keys_are_checked(doc: dict[str, Any], key: str) -> None:
    with pytest.raises(ContractError) as info:
        contract_from_dict(doc)
    assert info.value.key == key, str(info.value)


def test_too_many_columns_names_the_field_that_crosses_the_limit() -> None:
    fields = [{"name": f"v{i}", "type": "number"} for i in range(1100)]
    with pytest.raises(ContractError) as info:
        contract_from_dict(minimal(fields=fields))
    # device_id + ts + 1015 fields = 1017 columns, InnoDB's limit: the 1016th field is over.
    assert info.value.key == "fields[1015] (v1015)"
    assert "1018 columns" in str(info.value) and "1017" in str(info.value)


def test_too_wide_a_row_names_the_field_that_crosses_the_limit() -> None:
    fields = [
        {"name": f"s{i}", "type": "string", "constraints": {"maxLength": 1000}} for i in range(20)
    ]
    with pytest.raises(ContractError) as info:
        contract_from_dict(minimal(fields=fields))
    # Each VARCHAR(1000) takes 4,002 bytes; the 17th pushes the row past 65,535.
    assert info.value.key == "fields[16] (s16)"
    assert "65,535" in str(info.value)
    # TEXT counts 12 bytes: the same fields without a maxLength fit.
    contract_from_dict(minimal(fields=[{"name": f"s{i}", "type": "string"} for i in range(20)]))


def test_new_keys_round_trip() -> None:
    doc = minimal(
        timestamp={"source": "t", "ambiguous": "reject", "timezone": "Europe/Rome"},
        dialect={"max_record_bytes": 4096},
        quality={"max_rejected_ratio": 0.25},
    )
    contract = contract_from_dict(doc)
    assert contract.timestamp.ambiguous == "reject"
    assert contract.dialect.max_record_bytes == 4096
    assert contract.quality.max_rejected_ratio == 0.25
    assert parse_contract(yaml.safe_dump(contract_to_dict(contract))) == contract
