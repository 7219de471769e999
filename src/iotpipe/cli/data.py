"""The data commands: validate, ingest, query, files, db init."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from iotpipe.cli.common import (
    EXIT_OK,
    ProgressLine,
    contract_of,
    existing_file,
    print_report,
    rejects_writer,
)
from iotpipe.errors import IotpipeError


def register(sub: Any) -> None:
    """Add the data commands to the CLI's subparsers."""
    p = sub.add_parser("validate", help="dry run: read and clean a file, print its quality report")
    p.add_argument("source", help="a local file (CSV, NDJSON or Parquet; gzip or not)")
    p.add_argument("--contract", default=None, help="contract YAML path or shipped name")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--rejects", type=Path, default=None, help="write rejected rows to this CSV")
    p.set_defaults(run=_validate)

    p = sub.add_parser("ingest", help="clean, encode and load a file into the database")
    p.add_argument("source", help="a local file or s3://bucket/key (CSV, NDJSON, Parquet; gzip)")
    p.add_argument("--contract", default=None, help="contract YAML path or shipped name")
    p.add_argument("--database-url", default=None, help="mysql://... or sqlite:///... URL")
    p.add_argument("--json", action="store_true", help="print one JSON object, no progress")
    p.add_argument("--rejects", type=Path, default=None, help="write rejected rows to this CSV")
    p.add_argument(
        "--force", action="store_true", help="load again a version the ledger says is loaded"
    )
    p.set_defaults(run=_ingest)

    p = sub.add_parser("files", help="list the ledger: what was loaded, skipped, failed, and why")
    p.add_argument("--status", default=None, choices=["loading", "loaded", "failed"])
    p.add_argument("--dataset", default=None, help="only this dataset (contract name)")
    p.add_argument("--limit", type=int, default=50, help="at most this many (newest first)")
    p.add_argument("--database-url", default=None)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=_files)

    p = sub.add_parser("query", help="print one device's rows and stats (the retrieval body)")
    p.add_argument("--device-id", required=True)
    p.add_argument("--start", required=True, help="ISO 8601 or epoch seconds/ms (inclusive)")
    p.add_argument("--end", required=True, help="ISO 8601 or epoch seconds/ms (inclusive)")
    p.add_argument("--dataset", default=None, help="dataset name (default: the only one stored)")
    p.add_argument("--limit", default=None, help="rows per page, 1..10000 (default 1000)")
    p.add_argument(
        "--bucket", default=None, help="aggregate in buckets: 1m, 5m, 15m, 1h, 6h, 1d, PT1H, P1D"
    )
    p.add_argument("--cursor", default=None, help="next_cursor of the previous page")
    p.add_argument("--database-url", default=None)
    p.set_defaults(run=_query)

    p = sub.add_parser("db", help="database administration")
    db_sub = p.add_subparsers(required=True, metavar="ACTION")
    q = db_sub.add_parser("init", help="create (or migrate) the tables of a contract")
    q.add_argument("--contract", default=None)
    q.add_argument("--database-url", default=None)
    q.set_defaults(run=_db_init)


def _validate(args: argparse.Namespace) -> int:
    from iotpipe.ingest import validate_source

    contract = contract_of(args)
    path = existing_file(args.source)
    with path.open("rb") as stream, rejects_writer(args.rejects) as rejects:
        on_rejected = rejects.write if rejects is not None else None
        report = validate_source(stream, contract, source=str(path), on_rejected=on_rejected)
    return print_report(report.to_dict(), args.json)


def _ingest(args: argparse.Namespace) -> int:
    from iotpipe import bootstrap
    from iotpipe.ingest import IngestOptions, ingest_object
    from iotpipe.sources import local_object

    contract = contract_of(args)
    settings = bootstrap.current_settings(database_url=args.database_url)
    if args.source.startswith("s3://"):
        return _ingest_s3(args, contract, settings)
    path = existing_file(args.source)
    store = bootstrap.store_for(settings)
    progress = None if args.json or not sys.stderr.isatty() else ProgressLine()
    try:
        with rejects_writer(args.rejects) as rejects:
            report = ingest_object(
                lambda: path.open("rb"),
                local_object(path),
                contract,
                store,
                rejects=rejects,
                options=IngestOptions(force=args.force),
                progress=progress,
            )
    finally:
        store.close()
        if progress is not None:
            progress.done()
    return print_report(report.to_dict(), args.json)


def _ingest_s3(args: argparse.Namespace, contract: Any, settings: Any) -> int:
    """Ingest ``s3://bucket/key`` as the Lambda would: rejects and report go back to S3."""
    from iotpipe import bootstrap
    from iotpipe.errors import FileFailedError
    from iotpipe.ingest import IngestOptions, ingest_announced
    from iotpipe.model import AnnouncedObject

    bucket, _, key = args.source.removeprefix("s3://").partition("/")
    if not bucket or not key:
        raise IotpipeError(f"not an s3://bucket/key URL: {args.source}")
    objects = bootstrap.object_source(settings)
    store = bootstrap.store_for(settings)
    options = IngestOptions(force=args.force)
    try:
        body = ingest_announced(
            AnnouncedObject(bucket, key), contract, store, objects, options=options
        ).to_dict()
    except FileFailedError as exc:  # quarantined; its report is in S3 too
        body = exc.report or {"status": "failed", "error": str(exc)}
    finally:
        store.close()
    return print_report(body, args.json)


def _query(args: argparse.Namespace) -> int:
    from iotpipe import bootstrap
    from iotpipe.cli.browse import only_dataset
    from iotpipe.retrieve import answer

    runtime = bootstrap.build_retrieve_runtime(
        bootstrap.current_settings(database_url=args.database_url)
    )
    try:
        params = {
            "device_id": args.device_id,
            "start": args.start,
            "end": args.end,
            "limit": args.limit,
            "cursor": args.cursor,
            "dataset": only_dataset(runtime.store, args.dataset),
            "bucket": args.bucket,
        }
        body = answer(
            params, default_dataset=runtime.dataset, store=runtime.store, cursors=runtime.cursors
        )
    finally:
        runtime.store.close()
    print(json.dumps(body))
    return EXIT_OK


def _db_init(args: argparse.Namespace) -> int:
    from iotpipe import bootstrap

    contract = contract_of(args)
    settings = bootstrap.current_settings(database_url=args.database_url)
    store = bootstrap.store_for(settings)
    where = bootstrap.describe_database(settings, store)
    try:
        store.ensure_schema(contract)
    finally:
        store.close()
    print(f"ok: table {contract.table} for {contract.name} in {where}")
    return EXIT_OK


FILE_COLUMNS = (
    "source",
    "version",
    "dataset",
    "status",
    "attempts",
    "rows_read",
    "rows_loaded",
    "rows_rejected",
    "claimed_at",
    "finished_at",
    "error",
)


def _files(args: argparse.Namespace) -> int:
    from iotpipe import bootstrap
    from iotpipe.times import iso_z

    store = bootstrap.store_for(bootstrap.current_settings(database_url=args.database_url))
    try:
        entries = store.files(status=args.status, dataset=args.dataset, limit=args.limit)
    finally:
        store.close()
    files = []
    for entry in entries:
        row = {name: getattr(entry, name) for name in FILE_COLUMNS}
        for name in ("claimed_at", "finished_at"):
            row[name] = iso_z(row[name]) if row[name] is not None else None
        files.append(row)
    if args.json:
        print(json.dumps({"files": files}))
        return EXIT_OK
    for row in files:
        counts = f"{row['rows_loaded'] or 0:,} loaded, {row['rows_rejected'] or 0:,} rejected"
        when = row["finished_at"] or row["claimed_at"]
        print(f"{row['status']:<8} {row['dataset']:<20} {when}  {row['source']}  ({counts})")
        if row["error"]:
            print(f"         {row['error'][:200]}")
    if not files:
        print(
            "no files in the ledger" + (" with that filter" if args.status or args.dataset else "")
        )
    return EXIT_OK
