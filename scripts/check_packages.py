#!/usr/bin/env python3
"""Check the function packages `sam build` made: size budget, no engine in retrieval, imports.

The packages hold wheels for Lambda's Python (src/Makefile: python3.12). When the Python here
is another version, the import probe runs on a copy of each package whose locked dependencies
are reinstalled, same versions, for this Python: it proves the handler's imports resolve
inside the package (nothing the Makefile removed is needed), not the binaries themselves.

Usage: python scripts/check_packages.py [.aws-sam/build]   (exit 1 on any failure)
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

LIMIT = 250 * 1024 * 1024  # Lambda's unzipped limit for a function and its layers
ROOT = Path(__file__).resolve().parents[1]
HANDLERS = {
    "IngestFunction": "iotpipe.handlers.ingest",
    "RetrieveFunction": "iotpipe.handlers.retrieve",
    "AdminFunction": "iotpipe.handlers.admin",
}
LOCKS = {"IngestFunction": "ingest", "RetrieveFunction": "retrieve", "AdminFunction": "retrieve"}
LEAN = ("RetrieveFunction", "AdminFunction")  # no ingest engine in these
ENGINE = ("polars", "_polars_runtime_32")


def lambda_python() -> tuple[int, int]:
    """Return the Python version src/Makefile builds the packages for."""
    found = re.search(r"--python-version (\d+)\.(\d+)", (ROOT / "src" / "Makefile").read_text())
    if not found:
        raise SystemExit("check_packages: no --python-version in src/Makefile")
    return int(found[1]), int(found[2])


def probe_copy(root: Path, function: str, scratch: Path) -> Path:
    """Copy a package and reinstall its locked dependencies for this Python (same versions)."""
    copy = scratch / function
    shutil.copytree(root, copy)
    lock = ROOT / "src" / "requirements" / f"{LOCKS[function]}.txt"
    pins = [line.split()[0] for line in lock.read_text().splitlines() if line and line[0] != "#"]
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--upgrade",
         "--only-binary=:all:", "--target", str(copy), *pins],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return copy


def size_of(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and not p.is_symlink())


def main() -> int:
    build = Path(sys.argv[1] if len(sys.argv) > 1 else ".aws-sam/build")
    failures = []
    same_python = sys.version_info[:2] == lambda_python()
    scratch = Path(tempfile.mkdtemp(prefix="iotpipe-probe-"))
    if not same_python:
        print(
            f"check_packages: built for Python {'.'.join(map(str, lambda_python()))}; import "
            f"probes run on copies with the same locked versions for this Python "
            f"{sys.version_info[0]}.{sys.version_info[1]}"
        )
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
        where = root if same_python else probe_copy(root, function, scratch)
        probe = (
            f"import sys, time; sys.path.insert(0, {str(where)!r}); t = time.perf_counter(); "
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
        if function in LEAN and (has_engine or loaded_engine):
            failures.append(f"{function} carries or imports the ingest engine (Polars)")
    shutil.rmtree(scratch, ignore_errors=True)
    for failure in failures:
        print(f"check_packages: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
