"""Peak RSS and throughput of `iotpipe validate` at 1x and 10x rows: is memory flat in size?

Each measurement runs in a fresh child process so peak RSS (ru_maxrss) is its own. Usage:

    .venv/bin/python -m bench.validate_rss --rows 1000000 --factor 10 [--dir /tmp/iotpipe-bench]
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

from bench import peak_rss_mb, rss_mb


def child(path: Path) -> None:
    from iotpipe.contract import load_contract
    from iotpipe.ingest import validate_source

    contract = load_contract("acme_usage")
    baseline = rss_mb()
    started = time.perf_counter()
    with path.open("rb") as stream:
        report = validate_source(stream, contract, source=str(path))
    seconds = time.perf_counter() - started
    peak = peak_rss_mb()
    print(
        json.dumps(
            {
                "rows_read": report.counters.rows_read,
                "rows_valid": report.counters.rows_valid,
                "seconds": seconds,
                "rss_after_imports_mb": baseline,
                "peak_rss_mb": peak,
            }
        )
    )


def measure(path: Path) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-m", "bench.validate_rss", "--child", str(path)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--factor", type=int, default=10)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/iotpipe-bench"))
    parser.add_argument("--child", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        child(args.child)
        return

    from iotpipe.sample import write_sample

    args.dir.mkdir(parents=True, exist_ok=True)
    results = []
    for rows in (args.rows, args.rows * args.factor):
        path = args.dir / f"acme_{rows}.csv"
        if not path.exists():
            started = time.perf_counter()
            write_sample(path, rows, devices=200, seed=1)
            print(f"generated {path} in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        result = measure(path)
        result["file_mb"] = path.stat().st_size / 1e6
        results.append(result)
    print(f"# {platform.node()} python {platform.python_version()}, {time.strftime('%Y-%m-%d')}")
    print("| rows read | file MB | seconds | rows/s | RSS after imports MB | peak RSS MB |")
    print("|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(
            f"| {r['rows_read']:,.0f} | {r['file_mb']:,.0f} | {r['seconds']:.1f} "
            f"| {r['rows_read'] / r['seconds']:,.0f} | {r['rss_after_imports_mb']:.0f} "
            f"| {r['peak_rss_mb']:.0f} |"
        )
    small, large = results
    print(
        f"\nrows x{large['rows_read'] / small['rows_read']:.1f}: "
        f"time x{large['seconds'] / small['seconds']:.2f}, "
        f"peak RSS x{large['peak_rss_mb'] / small['peak_rss_mb']:.2f}"
    )


if __name__ == "__main__":
    main()
