#!/usr/bin/env python3
"""Check the function packages `sam build` made: size budget, no engine in retrieval, imports.

Usage: python scripts/check_packages.py [.aws-sam/build]   (exit 1 on any failure)
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

LIMIT = 250 * 1024 * 1024  # Lambda's unzipped limit for a function and its layers
HANDLERS = {
    "IngestFunction": "iotpipe.handlers.ingest",
    "RetrieveFunction": "iotpipe.handlers.retrieve",
}
ENGINE = ("polars", "_polars_runtime_32")


def size_of(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and not p.is_symlink())


def main() -> int:
    build = Path(sys.argv[1] if len(sys.argv) > 1 else ".aws-sam/build")
    failures = []
    print("| function | unzipped MiB | budget MiB | engine (Polars) | cold import s |")
    print("|---|---:|---:|---|---:|")
    for function, module in HANDLERS.items():
        root = build / function
        if not root.is_dir():
            failures.append(f"{function}: not built under {build}")
            continue
        size = size_of(root)
        has_engine = any((root / name).exists() for name in ENGINE)
        # Import the handler with nothing but the package on the path, as Lambda would
        # (boto3 comes with the runtime and is imported lazily, so it is not needed here).
        probe = (
            f"import sys, time; sys.path.insert(0, {str(root)!r}); t = time.perf_counter(); "
            f"import {module}; print(time.perf_counter() - t, 'polars' in sys.modules)"
        )
        result = subprocess.run(
            [sys.executable, "-I", "-c", probe],
            capture_output=True,
            text=True,
            env={"PATH": os.environ.get("PATH", "")},
            check=False,
        )
        seconds, loaded_engine = "?", False
        if result.returncode != 0:
            tail = result.stderr.strip()[-300:]
            failures.append(f"{function}: importing {module} failed: {tail}")
        else:
            took, engine_flag = result.stdout.split()
            seconds, loaded_engine = f"{float(took):.2f}", engine_flag == "True"
        mib = size / 2**20
        engine = "yes" if has_engine else "no"
        print(f"| {function} | {mib:.1f} | {LIMIT / 2**20:.0f} | {engine} | {seconds} |")
        if size > LIMIT:
            failures.append(f"{function}: {mib:.1f} MiB is over the 250 MiB limit")
        if function == "RetrieveFunction" and (has_engine or loaded_engine):
            failures.append("RetrieveFunction carries or imports the ingest engine (Polars)")
    for failure in failures:
        print(f"check_packages: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
