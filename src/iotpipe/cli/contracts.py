"""The contract commands: sample, contract infer, contract check."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from iotpipe.cli.common import EXIT_OK
from iotpipe.errors import IotpipeError


def register(sub: Any) -> None:
    """Add the sample and contract commands to the CLI's subparsers."""
    p = sub.add_parser("sample", help="generate messy Acme usage data with a known truth")
    p.add_argument("--rows", type=int, default=10_000)
    p.add_argument("--devices", type=int, default=50)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, required=True, help="output file (.gz to compress)")
    p.add_argument("--gzip", action="store_true", help="gzip whatever the file name")
    p.add_argument("--truth", type=Path, default=None, help="write the expected counts (JSON)")
    p.set_defaults(run=_sample)

    p = sub.add_parser("contract", help="work with data contracts")
    contract_sub = p.add_subparsers(required=True, metavar="ACTION")
    q = contract_sub.add_parser("infer", help="draft a contract from a sample file")
    q.add_argument("file", type=Path)
    q.add_argument("--name", default=None, help="contract name (default: from the file name)")
    q.set_defaults(run=_infer)
    q = contract_sub.add_parser("check", help="validate a contract file")
    q.add_argument("contract")
    q.set_defaults(run=_check)


def _sample(args: argparse.Namespace) -> int:
    from iotpipe.sample import write_sample

    if args.rows < 0 or args.devices < 1:
        raise IotpipeError("--rows must be >= 0 and --devices >= 1")
    truth = write_sample(
        args.out, args.rows, args.devices, args.seed, compress=True if args.gzip else None
    )
    if args.truth is not None:
        args.truth.write_text(json.dumps(truth.to_dict(), indent=2) + "\n", encoding="utf-8")
    print(
        f"wrote {args.out}: {truth.rows_read:,} data rows, {truth.rows_valid:,} valid keys, "
        f"{truth.rows_rejected:,} to reject, {truth.rows_duplicate:,} duplicates, "
        f"{truth.rows_conflict:,} conflicts"
    )
    return EXIT_OK


def _infer(args: argparse.Namespace) -> int:
    from iotpipe.infer import infer_draft

    if not args.file.is_file():
        raise IotpipeError(f"no such file: {args.file}")
    with args.file.open("rb") as stream:
        draft = infer_draft(stream, name=args.name or args.file.name, path=str(args.file))
    print(draft.yaml(), end="")
    print("\n".join(f"infer: {note}" for note in draft.notes), file=sys.stderr)
    return EXIT_OK


def _check(args: argparse.Namespace) -> int:
    from iotpipe.contract import load_contract

    contract = load_contract(args.contract)
    print(f"ok: {contract.name} -> table {contract.table}, {len(contract.fields)} fields")
    return EXIT_OK
