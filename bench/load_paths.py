"""MariaDB load paths for the same clean rows: plain LOAD DATA, LOAD DATA REPLACE, staging.

The staging variant is ARCHITECTURE.md's original design (LOAD DATA into a temporary table,
then INSERT ... SELECT ... ON DUPLICATE KEY UPDATE). Each path runs on an empty table and on
a table that already holds every row. Usage (the clean CSV comes from `bench.ingest`)::

    .venv/bin/python -m bench.load_paths /tmp/iotpipe-bench/acme_200000.csv.clean-*.csv
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import pymysql

from iotpipe.bootstrap import build_store
from iotpipe.contract import load_contract
from iotpipe.storage.dialect import quote

DB = "iotpipe_bench_paths"
CONTRACT = load_contract("acme_usage")
NAMES = ", ".join(quote(c) for c in CONTRACT.output_columns)
UPDATES = ", ".join(f"{quote(c)} = VALUES({quote(c)})" for c in CONTRACT.output_columns[2:])
LOAD = (
    "LOAD DATA LOCAL INFILE %s {mode} INTO TABLE {table} CHARACTER SET utf8mb4 "
    "FIELDS TERMINATED BY ',' OPTIONALLY ENCLOSED BY '\"' ESCAPED BY '' "
    f"LINES TERMINATED BY '\\n' ({NAMES})"
)


def fresh() -> Any:
    admin = pymysql.connect(host="127.0.0.1", user="root", password="", autocommit=True)
    with admin.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {DB}")
        cur.execute(f"CREATE DATABASE {DB} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
    admin.close()
    store = build_store(f"mysql://root@127.0.0.1:3306/{DB}")
    store.ensure_schema(CONTRACT)
    store.close()
    return pymysql.connect(
        host="127.0.0.1", user="root", password="", database=DB, local_infile=True
    )


def run(path: str, mode: str, preload: bool) -> float:
    conn = fresh()
    cur = conn.cursor()
    if preload:
        cur.execute(LOAD.format(mode="", table="device_usage"), (path,))
        conn.commit()
    started = time.perf_counter()
    if mode == "staging":
        cur.execute("CREATE TEMPORARY TABLE stage LIKE device_usage")
        cur.execute(LOAD.format(mode="", table="stage"), (path,))
        cur.execute(
            f"INSERT INTO device_usage ({NAMES}) SELECT {NAMES} FROM stage "
            f"ON DUPLICATE KEY UPDATE {UPDATES}"
        )
    else:
        cur.execute(
            LOAD.format(mode="REPLACE" if mode == "replace" else "", table="device_usage"), (path,)
        )
    conn.commit()
    seconds = time.perf_counter() - started
    conn.close()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("clean_csv")
    args = parser.parse_args()
    print("| path | empty table s | every row present s |")
    print("|---|---:|---:|")
    for mode in ("plain", "replace", "staging"):
        empty = run(args.clean_csv, mode, preload=False)
        present = run(args.clean_csv, mode, preload=True) if mode != "plain" else float("nan")
        print(f"| {mode} | {empty:.2f} | {present:.2f} |")


if __name__ == "__main__":
    main()
