"""What the CLI's commands share: exit codes, the contract named, output of reports."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from pathlib import Path
from typing import Any

from iotpipe.errors import IotpipeError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
PROGRESS_INTERVAL = 0.2  # seconds between progress-line updates


def contract_of(args: argparse.Namespace) -> Any:
    """Return the contract ``--contract`` names (else the configured one)."""
    from iotpipe import bootstrap

    return bootstrap.ContractCatalog(bootstrap.current_settings()).get(args.contract)


def rejects_writer(path: Path | None) -> Any:
    """Open the rejects CSV to write (a context manager yielding None without a path)."""
    from iotpipe.rejects import RejectsCsvWriter

    return RejectsCsvWriter.open(path) if path is not None else contextlib.nullcontext()


def existing_file(source: str) -> Path:
    """Return the path of a local file, or fail naming it."""
    path = Path(source)
    if not path.is_file():
        raise IotpipeError(f"no such file: {path}")
    return path


def print_report(body: dict[str, Any], as_json: bool) -> int:
    """Print a quality report (JSON, or for a terminal) and return the exit code it means."""
    print(json.dumps(body) if as_json or "rows_read" not in body else format_report(body))
    if as_json:  # the JSON goes to a program; the person at the terminal still sees these
        for warning in body.get("warnings", []):
            print(f"warning: {warning}", file=sys.stderr)
    return EXIT_OK if body["status"] != "failed" else EXIT_FAILED


class ProgressLine:
    """A one-line progress display on stderr (only on a terminal)."""

    def __init__(self) -> None:
        self._started = time.monotonic()
        self._shown = 0.0

    def __call__(self, report: Any) -> None:
        """Show the report's counts (at most every `PROGRESS_INTERVAL` seconds)."""
        now = time.monotonic()
        if now - self._shown < PROGRESS_INTERVAL:
            return
        self._shown = now
        c = report.counters
        rate = c.rows_read / max(now - self._started, 1e-9)
        sys.stderr.write(
            f"\r  read {c.rows_read:,}  valid {c.rows_valid:,}  rejected {c.rows_rejected:,}"
            f"  ({rate:,.0f} rows/s)   "
        )
        sys.stderr.flush()

    def done(self) -> None:
        """End the line."""
        sys.stderr.write("\n")


def format_report(body: dict[str, Any]) -> str:
    """Render a quality report for a terminal.

    Parameters
    ----------
    body
        `IngestReport.to_dict` output.

    Returns
    -------
    str
        A short multi-line summary.
    """
    kind = body["format"] or "?"
    if body["compressed"]:
        kind += ", gzip"
    lines = [
        f"{body['status']}: {body['source']} ({kind}) against contract {body['contract']}",
    ]
    if body["error"]:
        lines.append(f"  error: {body['error']}")
    lines += [f"  WARNING: {warning}" for warning in body.get("warnings", [])]
    lines += [
        f"  rows read       {body['rows_read']:>12,}",
        f"  rows valid      {body['rows_valid']:>12,}   (distinct device/timestamp keys)",
        f"  rows loaded     {body['rows_loaded']:>12,}",
        f"  rows rejected   {body['rows_rejected']:>12,}",
    ]
    lines += [f"    {reason:<26}{n:>10,}" for reason, n in body["reject_reasons"].items()]
    lines += [
        f"  exact duplicates{body['rows_duplicate']:>12,}   (dropped)",
        f"  key conflicts   {body['rows_conflict']:>12,}   (superseded by a later row)",
    ]
    if body["nulled"]:
        lines.append("  values nulled (invalid or out of range):")
        lines += [f"    {name:<26}{n:>10,}" for name, n in body["nulled"].items()]
    if body["unknown_columns"]:
        lines.append(f"  ignored columns: {', '.join(body['unknown_columns'])}")
    if body["absent_columns"]:
        lines.append(f"  absent optional columns: {', '.join(body['absent_columns'])}")
    for sample in body["rejected_sample"][:5]:
        lines.append(f"  e.g. line {sample['line']}: {sample['reason']}: {sample['detail']}")
    lines.append(f"  in {body['seconds']:.2f} s")
    return "\n".join(lines)
