from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence

import polars as pl

from iotpipe.contract import load_contract
from iotpipe.encode import Encoder, InMemoryCategoryDictionary
from tests.unit.helpers import clean_bytes

HEADER = b"device_id,timestamp,device_type,firmware_version,region,status,battery_pct\n"


def encoded(data: bytes, encoder: Encoder) -> pl.DataFrame:
    rows, _, _ = clean_bytes(HEADER + data, encoder.contract)
    return encoder.encode(rows)


def test_codes_onehot_and_column_order() -> None:
    contract = load_contract("acme_usage")
    encoder = Encoder(contract, InMemoryCategoryDictionary())
    out = encoded(
        b"d1,2024-01-01,Camera,v2,eu,idle,50\n"
        b"d2,2024-01-01,hub,v1,us,bogus,50\n"
        b"d3,2024-01-01,,v2,eu,active,50\n",
        encoder,
    )
    assert out.columns == contract.output_columns
    # Codes are 32-bit (half the memory of Polars' default for a batch held or staged).
    assert {out.schema[f"{f.name}_code"] for f in contract.categories} == {pl.Int32}
    # Closed vocabularies are numbered in contract order; open ones by first appearance.
    assert out.get_column("device_type_code").to_list() == [3, 4, None]
    assert out.get_column("status_code").to_list() == [2, None, 1]
    assert out.get_column("firmware_version_code").to_list() == [1, 2, 1]
    assert out.get_column("region_code").to_list() == [1, 2, 1]
    assert out.get_column("device_type_camera").to_list() == [1, 0, 0]
    assert out.get_column("device_type_hub").to_list() == [0, 1, 0]
    assert out.get_column("status_active").to_list() == [0, 0, 1]
    assert out.select(
        pl.sum_horizontal(pl.col("^status_(active|idle|sleep|error|offline)$"))
    ).to_series().to_list() == [1, 0, 1]


def test_codes_are_stable_across_files_and_encoders() -> None:
    contract = load_contract("acme_usage")
    shared = InMemoryCategoryDictionary()
    first = encoded(b"d1,2024-01-01,hub,v9,eu,idle,1\n", Encoder(contract, shared))
    second = encoded(
        b"d1,2024-01-02,hub,v0,ap,idle,1\nd2,2024-01-02,hub,v9,eu,idle,1\n",
        Encoder(contract, shared),
    )
    assert first.get_column("firmware_version_code").to_list() == [1]
    assert second.get_column("firmware_version_code").to_list() == [2, 1]
    assert second.get_column("region_code").to_list() == [2, 1]


def test_dictionary_is_consistent_under_threads() -> None:
    dictionary = InMemoryCategoryDictionary()
    results: list[dict[str, int]] = []

    def work(values: list[str]) -> None:
        results.append(dict(dictionary.codes("ds", "col", values)))

    threads = [
        threading.Thread(target=work, args=([f"v{j}" for j in range(i, i + 50)],))
        for i in range(0, 200, 10)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    merged: dict[str, int] = {}
    for r in results:
        for value, code in r.items():
            assert merged.setdefault(value, code) == code
    assert sorted(merged.values()) == list(range(1, len(merged) + 1))


def test_encode_known_never_asks_the_dictionary() -> None:
    contract = load_contract("acme_usage")
    asked: list[list[str]] = []

    class Watched(InMemoryCategoryDictionary):
        def codes(self, dataset: str, column: str, values: Sequence[str]) -> Mapping[str, int]:
            asked.append(list(values))
            return super().codes(dataset, column, values)

    encoder = Encoder(contract, Watched())
    asked.clear()  # the closed vocabularies, registered up front
    first, _, _ = clean_bytes(HEADER + b"d1,2024-01-01,hub,v1,eu,idle,5\n", contract)
    assert encoder.encode_known(first) is None  # v1 and eu have no code yet
    assert asked == []
    by_encode = encoder.encode(first)  # asks for them
    assert asked == [["v1"], ["eu"]]
    again, _, _ = clean_bytes(HEADER + b"d2,2024-01-02,camera,v1,eu,error,7\n", contract)
    known = encoder.encode_known(again)
    assert known is not None
    assert asked == [["v1"], ["eu"]]  # nothing more asked
    assert known.columns == by_encode.columns == contract.output_columns
    assert known.select("firmware_version_code", "region_code").row(0) == (1, 1)
    assert known.get_column("device_type_camera").to_list() == [1]  # a closed vocabulary
