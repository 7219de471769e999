"""The fleet commands: backfill (announce a bucket's objects) and split (a too-long file)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from iotpipe.cli.common import EXIT_FAILED, EXIT_OK, contract_of, existing_file
from iotpipe.errors import IotpipeError


def register(sub: Any) -> None:
    """Add the fleet commands to the CLI's subparsers."""
    p = sub.add_parser(
        "backfill", help="announce the objects already in a bucket to the ingest queue"
    )
    p.add_argument("source", help="s3://bucket/prefix to list")
    p.add_argument("--queue-url", required=True, help="the ingest function's SQS queue")
    p.add_argument("--since", default=None, help="only objects modified at/after (ISO 8601)")
    p.add_argument("--start-after", default=None, help="resume: only keys after this one")
    p.add_argument("--dry-run", action="store_true", help="list and count; send nothing")
    p.add_argument("--json", action="store_true", help="print one JSON object, no progress")
    p.set_defaults(run=_backfill)

    p = sub.add_parser(
        "split", help="cut a file too long for one invocation into parts, at record boundaries"
    )
    p.add_argument("source", help="a local CSV or NDJSON file (gzip or not)")
    size = p.add_mutually_exclusive_group(required=True)
    size.add_argument("--rows", type=int, help="records per part (what a too-long error names)")
    size.add_argument("--max-bytes", help="bytes of records per part (uncompressed): 500MB, 2GB")
    p.add_argument("--out", type=Path, required=True, help="directory for the parts")
    p.add_argument("--contract", default=None, help="its contract (quote character, header)")
    p.set_defaults(run=_split)


def _backfill(args: argparse.Namespace) -> int:
    from iotpipe import bootstrap
    from iotpipe.backfill import BackfillError, backfill, parse_since

    if not args.source.startswith("s3://"):
        raise IotpipeError(f"not an s3://bucket/prefix URL: {args.source}")
    bucket, _, prefix = args.source.removeprefix("s3://").partition("/")
    if not bucket:
        raise IotpipeError(f"no bucket in {args.source}")
    settings = bootstrap.current_settings()
    s3 = bootstrap.aws_client("s3", settings)
    shown = not args.json and sys.stderr.isatty()

    def progress(result: Any) -> None:
        if shown:
            print(
                f"\r{result.sent:,} sent of {result.listed:,} listed; last {result.resume_after}",
                end="",
                file=sys.stderr,
                flush=True,
            )

    try:
        result = backfill(
            s3,
            bootstrap.aws_client("sqs", settings),
            bucket,
            prefix,
            args.queue_url,
            since=parse_since(args.since) if args.since else None,
            start_after=args.start_after,
            dry_run=args.dry_run,
            owns=bootstrap.object_source(settings).prefixes.owns,
            progress=progress,
            region=s3.meta.region_name or "us-east-1",
        )
    except BackfillError as exc:
        if shown:
            print(file=sys.stderr)
        print(json.dumps({"status": "stopped", "error": str(exc), **exc.result.to_dict()}))
        return EXIT_FAILED
    if shown:
        print(file=sys.stderr)
    body = {"status": "dry-run" if args.dry_run else "sent", **result.to_dict()}
    if args.json:
        print(json.dumps(body))
    else:
        verb = "would send" if args.dry_run else "sent"
        print(
            f"{verb} {result.sent:,} of {result.listed:,} objects listed under {args.source} "
            f"({result.skipped_older:,} older than --since, {result.skipped_outputs:,} of "
            f"iotpipe's outputs) in {result.seconds:.1f} s; last key {result.resume_after}"
        )
    return EXIT_OK


def _split(args: argparse.Namespace) -> int:
    from iotpipe.split import parse_size, split_file

    contract = contract_of(args)
    dialect = contract.dialect
    result = split_file(
        existing_file(args.source),
        args.out,
        max_rows=args.rows,
        max_bytes=parse_size(args.max_bytes) if args.max_bytes else None,
        quote=dialect.quotechar.encode(),
        header=dialect.header,
    )
    for part, size, records in zip(result.parts, result.part_bytes, result.records, strict=True):
        print(f"{part}  {records:,} records, {size:,} bytes of text")
    return EXIT_OK
