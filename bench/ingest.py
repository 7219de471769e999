"""Ingest throughput into MariaDB: `iotpipe ingest` against LOAD DATA and executemany baselines.

All three load the same generated messy file's rows into an empty table, each in a fresh
database and a fresh child process (so peak RSS is its own), in the same run:

1. ``iotpipe``: end to end (read, clean, encode, LOAD DATA + upsert, ledger) from the messy file;
2. ``load_data``: ``LOAD DATA LOCAL INFILE`` of the already-clean, encoded rows (the limit);
   ``iotpipe_partial`` is ``iotpipe`` into a table with one column the contract does not carry
   (another contract's), which takes the staging path instead of ``REPLACE``;
3. ``executemany``: PyMySQL ``executemany`` of the same clean rows (multi-row INSERT ... ON
   DUPLICATE KEY UPDATE).

Rates are stored rows per second. Each run also reports the client's CPU seconds (every
thread of its process) and the local ``mariadbd``'s over the timed region.
``--generator sample`` (the default) writes the file with `iotpipe.sample`; ``--generator
messy`` with `bench.messy`, an independent generator (BOM, CRLF, a shuffled case-varied
header with an extra column, quoted commas, the seven timestamp shapes mixed evenly).
``--order random`` shuffles the data records (seeded; merged files from many gateways arrive
so), ``--order time`` (the default) keeps the generator's time order; the clean rows the
baselines load are that file's winners, sorted by key ``(device_id, ts)`` - the best order
for LOAD DATA. Usage (MariaDB on 127.0.0.1:3306, root, no password)::

    .venv/bin/python -m bench.ingest --rows 1000000 [--order time|random] [--generator messy]
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pymysql

from bench import peak_rss_mb

ROOT_URL = "mysql://root@127.0.0.1:3306/{db}"


def _admin() -> Any:
    return pymysql.connect(host="127.0.0.1", port=3306, user="root", password="", autocommit=True)


def fresh_database(name: str) -> str:
    conn = _admin()
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
    conn.close()
    return ROOT_URL.format(db=name)


def drop_database(name: str) -> None:
    conn = _admin()
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
    conn.close()


def prepare_clean_csv(source: Path, target: Path) -> int:
    """Clean and encode the messy file once; write the rows in LOAD DATA's CSV form."""
    import polars as pl

    from iotpipe.clean import Cleaner
    from iotpipe.contract import load_contract
    from iotpipe.encode import Encoder, InMemoryCategoryDictionary
    from iotpipe.readers import open_records
    from iotpipe.storage.mysql import write_load_csv

    contract = load_contract("acme_usage")
    cleaner = Cleaner(contract)
    encoder = Encoder(contract, InMemoryCategoryDictionary())
    frames = []
    with source.open("rb") as stream:
        for batch in open_records(stream, contract):
            frames.append(encoder.encode(cleaner.clean(batch).rows))
    rows = pl.concat(frames).unique(["device_id", "ts"], keep="last", maintain_order=True)
    write_load_csv(rows.sort("device_id", "ts"), str(target))
    return rows.height


def shuffled(source: Path, target: Path, seed: int = 7) -> None:
    """Write ``source`` with its records in a random order (header first, each record's bytes
    as they were: a quoted value may span lines, so records are found with the csv module)."""
    import csv
    import io
    import random

    with source.open(encoding="utf-8", newline="") as handle:
        text = handle.read()
    lines = list(io.StringIO(text, newline=""))  # split as the csv reader sees them
    reader = csv.reader(io.StringIO(text, newline=""))
    records, start = [], 0
    for _ in reader:
        records.append("".join(lines[start : reader.line_num]))
        start = reader.line_num
    header, body = records[0], records[1:]
    if body and not body[-1].endswith(("\n", "\r")):
        body[-1] += "\n"
    random.Random(seed).shuffle(body)
    with target.open("w", encoding="utf-8", newline="") as handle:
        handle.write(header + "".join(body))


def child(mode: str, path: Path, url: str) -> dict[str, float]:
    """Run one method in this (fresh) process; report the rows the table holds afterwards.

    Every import a method needs happens before its clock starts, for every method alike,
    and the rows are counted with ``SELECT COUNT(*)``, not taken from the method's report.
    """
    import polars as pl

    from iotpipe.bootstrap import build_store
    from iotpipe.contract import load_contract
    from iotpipe.ingest import ingest_object
    from iotpipe.sources import local_object
    from iotpipe.storage.dialect import quote

    if mode == "awswrangler":
        import awswrangler  # noqa: F401 (imported here, before the clock, like every other)
        import pandas  # noqa: F401

        from bench.wrangler_baseline import clean, load

    database = url.rsplit("/", 1)[1]
    contract = load_contract("acme_usage")
    store = build_store(url)
    store.ensure_schema(contract)
    conn = pymysql.connect(
        host="127.0.0.1",
        user="root",
        password="",
        database=database,
        local_infile=True,
        autocommit=False,
    )
    columns = contract.output_columns
    names = ", ".join(quote(c) for c in columns)
    if mode == "iotpipe_partial":
        # A column this contract does not carry (another contract's): the staging path.
        with conn.cursor() as cur:
            cur.execute("ALTER TABLE device_usage ADD COLUMN other_contract DOUBLE NULL")
    params: list[tuple[object, ...]] = []
    if mode == "executemany":  # reading the clean CSV back is not timed; the inserts are
        params = pl.read_csv(
            path, has_header=False, new_columns=columns, null_values="NULL", infer_schema_length=0
        ).rows()
    # The object's version is known before the clock starts, as an S3 event names it; the
    # CLI's SHA-256 of a local file (0.08 s per 100 MB) is not part of loading it.
    ref = local_object(path)
    server_started = server_cpu_seconds()
    started, cpu_started = time.perf_counter(), time.process_time()
    if mode == "awswrangler":
        load(clean(path), database)
    elif mode in ("iotpipe", "iotpipe_partial"):
        report = ingest_object(lambda: path.open("rb"), ref, contract, store)
        assert report.status == "loaded", report.error
    else:
        with conn.cursor() as cur:
            if mode == "load_data":
                cur.execute(
                    f"LOAD DATA LOCAL INFILE %s INTO TABLE {quote(contract.table)} "
                    "CHARACTER SET utf8mb4 FIELDS TERMINATED BY ',' OPTIONALLY ENCLOSED BY '\"' "
                    f"ESCAPED BY '' LINES TERMINATED BY '\\n' ({names})",
                    (str(path),),
                )
            else:
                updates = ", ".join(f"{quote(c)} = VALUES({quote(c)})" for c in columns[2:])
                marks = ", ".join(["%s"] * len(columns))
                sql = (
                    f"INSERT INTO {quote(contract.table)} ({names}) VALUES ({marks}) "
                    f"ON DUPLICATE KEY UPDATE {updates}"
                )
                for i in range(0, len(params), 10_000):
                    cur.executemany(sql, params[i : i + 10_000])
        conn.commit()
    seconds = time.perf_counter() - started
    client_cpu = time.process_time() - cpu_started  # every thread of this process
    server_cpu = server_cpu_seconds() - server_started
    with conn.cursor() as cur:
        cur.execute(f"SELECT COUNT(*) FROM {quote(contract.table)}")
        (rows,) = cur.fetchone() or (0,)
    conn.close()
    store.close()
    return {
        "rows": float(int(rows)),
        "seconds": seconds,
        "client_cpu_s": client_cpu,
        "server_cpu_s": server_cpu,
        "peak_rss_mb": peak_rss_mb(),
    }


def server_cpu_seconds() -> float:
    """CPU seconds the local ``mariadbd`` has used (every thread; NaN when it is not local)."""
    found = subprocess.run(["pgrep", "-x", "mariadbd"], check=False, capture_output=True, text=True)
    pids = found.stdout.split()
    if not pids:
        return float("nan")
    fields = Path(f"/proc/{pids[0]}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def settle(timeout: float = 60.0) -> None:
    """Wait until InnoDB has flushed the pages the previous run dirtied.

    So every mode starts on a quiet server: measured here, a 1M-row load leaves ~5,000 dirty
    pages that take 1-2 s to flush, and the next run paid for them.
    """
    conn = _admin()
    deadline = time.monotonic() + timeout
    try:
        with conn.cursor() as cur:
            while time.monotonic() < deadline:
                cur.execute("SHOW GLOBAL STATUS LIKE 'Innodb_buffer_pool_pages_dirty'")
                row = cur.fetchone()
                if row is None or int(row[1]) == 0:
                    return
                time.sleep(0.25)
    finally:
        conn.close()


def measure(mode: str, path: Path, name: str, *, pin: bool = False) -> dict[str, float]:
    """Run one mode in a fresh child process (on core 0 only with ``pin``)."""
    url = fresh_database(name)
    settle()
    command = [sys.executable, "-m", "bench.ingest", "--child", mode, "--path", str(path)]
    if pin:
        command = ["taskset", "-c", str(CLIENT_CORE), *command]
    try:
        out = subprocess.run(
            [*command, "--url", url], check=True, capture_output=True, text=True
        ).stdout
    finally:
        drop_database(name)
    result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return result


CLIENT_CORE, DATABASE_CORE = 0, 1


@contextlib.contextmanager
def database_pinned() -> Iterator[None]:
    """Pin every thread of the local ``mariadbd`` to `DATABASE_CORE`; restore afterwards.

    With the client on `CLIENT_CORE` this is the production topology on this 2-core machine:
    a 1-vCPU Lambda (1,769 MB) and a database server of its own.
    """
    found = subprocess.run(
        ["pgrep", "-x", "mariadbd"], check=False, capture_output=True, text=True
    ).stdout
    if not found.strip():
        raise SystemExit("--pin needs the local mariadbd (pgrep -x mariadbd found none)")
    pid = found.split()[0]
    before = sorted(os.sched_getaffinity(int(pid)))
    subprocess.run(["taskset", "-a", "-p", "-c", str(DATABASE_CORE), pid], check=True,
                   capture_output=True)  # fmt: skip
    try:
        yield
    finally:
        cores = ",".join(str(c) for c in before)
        subprocess.run(["taskset", "-a", "-p", "-c", cores, pid], check=True, capture_output=True)


def _median_round(runs: list[dict[str, float]]) -> dict[str, float]:
    """The round with the median time (the lower middle one of an even count)."""
    return sorted(runs, key=lambda r: r["seconds"])[(len(runs) - 1) // 2]


def messy_file(directory: Path, rows: int, generator: str, order: str, *, gzip: bool) -> Path:
    """Write (once) the messy file a run ingests; return its path."""
    from iotpipe.sample import write_sample

    directory.mkdir(parents=True, exist_ok=True)
    suffix = ".csv.gz" if gzip else ".csv"
    if generator == "messy":
        from bench.messy import write_messy

        path = directory / f"messy_{rows}_{order}{suffix}"
        if not path.exists():
            truth = write_messy(path, rows, devices=200, order=order)
            print(f"# generated: {truth}", file=sys.stderr)
        return path
    path = directory / f"acme_{rows}{suffix}"
    if not path.exists():
        write_sample(path, rows, devices=200, seed=1)
    if order == "random":
        if gzip:
            raise SystemExit("--order random with --generator sample is for the plain CSV")
        ordered = directory / f"acme_{rows}.random.csv"
        if not ordered.exists():
            shuffled(path, ordered)
        return ordered
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/iotpipe-bench"))
    parser.add_argument("--modes", default="iotpipe,awswrangler,load_data,executemany")
    parser.add_argument("--gzip", action="store_true", help="the messy file gzipped")
    parser.add_argument(
        "--order", choices=["time", "random"], default="time", help="the messy file's row order"
    )
    parser.add_argument(
        "--generator", choices=["sample", "messy"], default="sample", help="who writes the file"
    )
    parser.add_argument(
        "--pin", action="store_true", help="client on core 0, mariadbd on core 1 (as deployed)"
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="rounds of every mode, interleaved; the table reports each mode's median round",
    )
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--path", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--url", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.path, args.url)))
        return

    messy = messy_file(args.dir, args.rows, args.generator, args.order, gzip=args.gzip)
    # The baselines' rows in the form the code under test writes for LOAD DATA: one clean
    # file per version of the module that writes it (a before/after comparison through
    # PYTHONPATH compares each version with its own form), made again for a newer messy file.
    from iotpipe.storage import mysql

    writer = hashlib.sha256(Path(mysql.__file__).read_bytes()).hexdigest()[:12]
    clean = args.dir / f"{messy.name}.clean-{writer}.csv"
    if not clean.exists() or clean.stat().st_mtime < messy.stat().st_mtime:
        prepare_clean_csv(messy, clean)
    rounds: dict[str, list[dict[str, float]]] = {}
    for n in range(args.repeat):
        for mode in args.modes.split(","):
            source = messy if mode in ("iotpipe", "iotpipe_partial", "awswrangler") else clean
            with database_pinned() if args.pin else contextlib.nullcontext():
                r = measure(mode, source, f"iotpipe_bench_{mode}", pin=args.pin)
            rounds.setdefault(mode, []).append(r)
            print(
                f"round {n + 1}: {mode}: {r['rows']:,.0f} rows in {r['seconds']:.2f} s",
                file=sys.stderr,
            )
    results = {mode: _median_round(runs) for mode, runs in rounds.items()}
    topology = "pinned: client core 0, mariadbd core 1" if args.pin else "shared cores"
    print(
        f"# {platform.node()}, Python {platform.python_version()}, {time.strftime('%Y-%m-%d')}, "
        f"{args.rows:,} generated rows ({messy.name}, {messy.stat().st_size / 1e6:,.0f} MB, "
        f"{args.order} order, {topology}), "
        f"median of {args.repeat} interleaved round(s)"
    )
    print(
        "| method | rows stored | seconds | rows/s | vs LOAD DATA | vs awswrangler | client CPU s "
        "| server CPU s | peak RSS MB |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")

    def rate_of(mode: str) -> float:
        r = results.get(mode)
        return r["rows"] / r["seconds"] if r else float("nan")

    for mode, r in results.items():
        rate = rate_of(mode)
        print(
            f"| {mode} | {r['rows']:,.0f} | {r['seconds']:.2f} | {rate:,.0f} "
            f"| {rate / rate_of('load_data'):.2f} | {rate / rate_of('awswrangler'):.2f} "
            f"| {r['client_cpu_s']:.2f} | {r['server_cpu_s']:.2f} | {r['peak_rss_mb']:.0f} |"
        )


if __name__ == "__main__":
    main()
