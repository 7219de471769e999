from __future__ import annotations

import gzip
import io
import json

import yaml

from iotpipe.contract import parse_contract
from iotpipe.infer import infer_contract, infer_contract_yaml


def test_semicolon_decimal_comma_csv() -> None:
    lines = ["Sensor;Zeit;Temperatur;Zustand;Zaehler"]
    lines += [
        f"s{i % 3};2024-01-01 00:{i % 60:02d}:00;{i % 30},{i % 10};{'an' if i % 2 else 'aus'};{i}"
        for i in range(300)
    ]
    c = infer_contract(io.BytesIO("\n".join(lines).encode()), name="werk.csv")
    assert c.name == "werk"
    assert c.dialect.delimiter == ";" and c.dialect.decimal == ","
    assert c.device_id.sources == ("Sensor",)
    assert c.timestamp.parts == {"value": ("Zeit",)}
    by_name = {f.name: f for f in c.fields}
    assert by_name["temperatur"].type == "number"
    assert by_name["zustand"].type == "category" and by_name["zustand"].enum == ("an", "aus")
    assert by_name["zaehler"].type == "integer" and not by_name["zaehler"].measurement


def test_headerless_csv_gets_a_column_list() -> None:
    rows = "\n".join(f"dev{i % 4},{1704067200 + i * 60},{i * 0.5}" for i in range(50))
    c = infer_contract(io.BytesIO(gzip.compress(rows.encode())), name="x.csv.gz")
    assert not c.dialect.header and c.dialect.columns == ("column_1", "column_2", "column_3")


def test_nested_ndjson_and_yaml_round_trip() -> None:
    records = [
        {
            "devEUI": f"a{i % 2}",
            "time": f"2024-01-01T00:00:{i:02d}Z",
            "object": {"temp": i + 0.5, "ok": True},
            "rx": [1],
        }
        for i in range(40)
    ]
    lines = [json.dumps(r) for r in records]
    text = infer_contract_yaml(io.BytesIO("\n".join(lines).encode()), name="f.ndjson")
    assert text.startswith("# Draft contract")
    c = parse_contract(text)
    assert c.device_id.sources == ("devEUI",)
    assert c.timestamp.parts == {"value": ("time",)}
    sources = {f.sources[0]: f.type for f in c.fields}
    assert sources == {"object.temp": "number", "object.ok": "boolean"}
    assert yaml.safe_load(text)["timestamp"]["timezone"] == "UTC"


def test_hex_addresses_that_look_like_epoch_numbers_are_not_times() -> None:
    # A LoRaWAN devaddr column ("0A000048", "53010048", ...): some values are all digits and
    # parse as epoch seconds. Analysing such a column once crashed Polars (a panic).
    addresses = ["0A000048", "53010048", "C3000048"]
    lines = ["dev,devaddr,time,temp"]
    lines += [
        f"d{i % 2},{addresses[i % 3]},2024-01-01T00:{i % 60:02d}:00Z,{i % 7}" for i in range(60)
    ]
    c = infer_contract(io.BytesIO("\n".join(lines).encode()), name="lora.csv")
    assert c.timestamp.parts == {"value": ("time",)}
    assert {f.sources[0]: f.type for f in c.fields}["devaddr"] == "category"
