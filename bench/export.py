"""`iotpipe export` of a 1M-row table: time, peak RSS, and the file checked against the table.

The table is filled as in `bench.retrieve` (MariaDB on 127.0.0.1), then exported to Parquet
and to CSV by the real CLI in a child process (its peak RSS from the kernel's rusage). The
Parquet file is read back with Polars: its row count and a sample of rows (every 997th) must
equal the table read with plain SQL, and the categories file must decode every code.

Usage::

    .venv/bin/python -m bench.export --rows 1000000
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import polars as pl
import pymysql

from bench.ingest import drop_database, fresh_database
from bench.retrieve import fill
from iotpipe.contract import load_contract

ROOT = Path(__file__).resolve().parents[1]


# Linux carries a process's peak RSS across fork and exec: a child forked from this (large)
# process would report this process's size. A small helper Python starts the export and
# reports its child's own peak (os.wait4), as /usr/bin/time does.
PEAK_OF_CHILD = (
    "import os, subprocess, sys\n"
    "child = subprocess.Popen(sys.argv[1:])\n"
    "_, status, usage = os.wait4(child.pid, 0)\n"
    "print(usage.ru_maxrss, file=sys.stderr)\n"
    "sys.exit(os.waitstatus_to_exitcode(status))\n"
)


def export(url: str, out: Path) -> tuple[float, float, dict[str, object]]:
    """Run `iotpipe export` in a child; return (seconds, its peak RSS MB, its JSON result)."""
    command = [str(ROOT / ".venv" / "bin" / "iotpipe"), "export", "--out", str(out)]
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", PEAK_OF_CHILD, *command, "--database-url", url],
        capture_output=True,
        text=True,
        check=True,
    )
    seconds = time.perf_counter() - started
    peak_kb = int(done.stderr.strip().splitlines()[-1])
    return seconds, peak_kb / 1024, json.loads(done.stdout)


def check(url: str, parquet: Path, categories: Path) -> None:
    """The file equals the table: row count, a sample of rows, the codes decoded."""
    contract = load_contract("acme_usage")
    frame = pl.read_parquet(parquet)
    conn = pymysql.connect(host="127.0.0.1", user="root", database=url.rsplit("/", 1)[1])
    with conn.cursor() as cur:
        cur.execute(f"SELECT COUNT(*) FROM {contract.table}")
        (count,) = cur.fetchone()  # type: ignore[misc]
        assert frame.height == count, (frame.height, count)
        names = ", ".join(f"`{c}`" for c in contract.output_columns)
        cur.execute(f"SELECT {names} FROM {contract.table} ORDER BY device_id, ts")
        for i, row in enumerate(cur.fetchall()):
            if i % 997 == 0:
                assert frame.row(i) == tuple(row), (i, frame.row(i), row)
    conn.close()
    dictionary = json.loads(categories.read_text())
    for f in contract.categories:
        codes = set(dictionary["categories"][f.name].values())
        used = set(frame[f"{f.name}_code"].drop_nulls().unique().to_list())
        assert used <= codes, f.name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    name = "iotpipe_bench_export"
    url = fresh_database(name)
    try:
        fill(url, args.rows)
        with tempfile.TemporaryDirectory() as scratch:
            lines = []
            for suffix in ("parquet", "csv"):
                out = Path(scratch) / f"table.{suffix}"
                seconds, rss, result = export(url, out)
                size = out.stat().st_size / 2**20
                lines.append(
                    f"| {suffix} | {result['rows']:,} | {seconds:.1f} | {rss:.0f} | {size:.1f} |"
                )
                if suffix == "parquet":
                    check(url, out, Path(str(result["categories"])))
        print(f"# {dt.date.today()}, table of {args.rows:,} rows (+ the dashboard device)")
        print("| format | rows | seconds | peak RSS MB | file MB |")
        print("|---|---:|---:|---:|---:|")
        print("\n".join(lines))
    finally:
        drop_database(name)


if __name__ == "__main__":
    main()
