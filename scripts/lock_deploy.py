"""Pin the Lambda packages' dependencies: exact versions and hashes, for Lambda's platform.

Resolves ``deploy/requirements-<function>.in`` as pip would on Lambda (python3.12,
manylinux2014 x86_64, wheels only) and writes ``src/requirements/<function>.txt``, which
``sam build`` installs with ``--require-hashes --no-deps``: every build gets the same bytes.
What the Lambda runtime provides (boto3 and its dependencies) is left out.

Usage: .venv/bin/python scripts/lock_deploy.py
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PLATFORM = ["--platform", "manylinux2014_x86_64", "--implementation", "cp"]
PYTHON_VERSION = "3.12"
FUNCTIONS = ("ingest", "retrieve")
# The Lambda Python runtime ships boto3 and its dependencies; a second copy in the package
# would shadow the runtime's (and could break its boto3), so they are left out of the lock.
RUNTIME_PROVIDED = frozenset(
    {"boto3", "botocore", "s3transfer", "jmespath", "python-dateutil", "six", "urllib3"}
)


def resolve(inputs: Path) -> list[tuple[str, str, str]]:
    """Return (name, version, sha256) of every wheel pip would install for ``inputs``."""
    with tempfile.TemporaryDirectory() as scratch:
        report = Path(scratch) / "report.json"
        subprocess.run(
            [
                sys.executable, "-m", "pip", "install", "--quiet", "--dry-run",
                "--ignore-installed", "--only-binary=:all:", *PLATFORM,
                "--python-version", PYTHON_VERSION, "--target", str(Path(scratch) / "t"),
                "--report", str(report), "-r", str(inputs),
            ],
            check=True,
        )  # fmt: skip
        installs = json.loads(report.read_text())["install"]
    pins = []
    for item in installs:
        meta = item["metadata"]
        hashes = item["download_info"]["archive_info"]["hashes"]
        if meta["name"].lower().replace("_", "-") in RUNTIME_PROVIDED:
            continue
        pins.append((meta["name"], meta["version"], hashes["sha256"]))
    return sorted(pins, key=lambda p: p[0].lower())


def main() -> None:
    for function in FUNCTIONS:
        inputs = ROOT / "deploy" / f"requirements-{function}.in"
        lines = [
            f"# Locked by scripts/lock_deploy.py from deploy/requirements-{function}.in for",
            f"# python{PYTHON_VERSION} on manylinux2014 x86_64, without what the Lambda runtime",
            "# provides (boto3 and its dependencies). Do not edit: run the script again.",
        ]
        pins = resolve(inputs)
        lines += [f"{name}=={version} --hash=sha256:{sha}" for name, version, sha in pins]
        target = ROOT / "src" / "requirements" / f"{function}.txt"
        target.write_text("\n".join(lines) + "\n", encoding="utf-8")
        print(f"lock_deploy: {len(lines) - 3} packages in {target.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
