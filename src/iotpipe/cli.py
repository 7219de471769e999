"""The ``iotpipe`` console script: a driver over the same services the Lambdas use."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from iotpipe.errors import IotpipeError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
PROGRESS_INTERVAL = 0.2  # seconds between progress-line updates


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI.

    Parameters
    ----------
    argv
        Arguments (without the program name); ``sys.argv[1:]`` by default.

    Returns
    -------
    int
        The process exit code: 0 on success, 1 when a file fails, 2 on bad usage or contract.
    """
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        result: int = args.run(args)
    except IotpipeError as exc:
        print(f"iotpipe: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:  # output piped into `head`: not an error of ours
        sys.stderr.close()
        return EXIT_OK
    return result


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="iotpipe",
        description="Clean, encode and load IoT device usage files; query them back.",
    )
    sub = parser.add_subparsers(required=True, metavar="COMMAND")
    _data_commands(sub)
    _local_commands(sub)
    _contract_commands(sub)
    return parser


def _data_commands(sub: Any) -> None:
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
    p.set_defaults(run=_ingest)

    p = sub.add_parser("query", help="print one device's rows and stats (the retrieval body)")
    p.add_argument("--device-id", required=True)
    p.add_argument("--start", required=True, help="ISO 8601 or epoch seconds/ms (inclusive)")
    p.add_argument("--end", required=True, help="ISO 8601 or epoch seconds/ms (inclusive)")
    p.add_argument("--dataset", default=None, help="dataset (contract) name")
    p.add_argument("--limit", default=None, help="rows per page, 1..10000 (default 1000)")
    p.add_argument("--cursor", default=None, help="next_cursor of the previous page")
    p.add_argument("--database-url", default=None)
    p.set_defaults(run=_query)

    p = sub.add_parser("db", help="database administration")
    db_sub = p.add_subparsers(required=True, metavar="ACTION")
    q = db_sub.add_parser("init", help="create (or migrate) the tables of a contract")
    q.add_argument("--contract", default=None)
    q.add_argument("--database-url", default=None)
    q.set_defaults(run=_db_init)


def _local_commands(sub: Any) -> None:
    p = sub.add_parser("demo", help="the whole path locally: S3 stand-in, SQS, handler, SQLite")
    p.add_argument("--rows", type=int, default=20_000)
    p.set_defaults(run=_demo)

    p = sub.add_parser("local", help="local stack: an S3/SQS stand-in that triggers the handler")
    local_sub = p.add_subparsers(required=True, metavar="ACTION")
    q = local_sub.add_parser("up", help="start moto S3+SQS on 127.0.0.1 and poll into the handler")
    q.add_argument("--port", type=int, default=4566)
    q.add_argument("--bucket", default="iotpipe-raw")
    q.add_argument("--database-url", default=None)
    q.set_defaults(run=_local_up)

    p = sub.add_parser(
        "serve", help="the retrieval API, its OpenAPI spec and a chart page, locally"
    )
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--database-url", default=None)
    p.set_defaults(run=_serve)

    p = sub.add_parser("upload", help="upload a file to the local stack's bucket (incoming/)")
    p.add_argument("file", type=Path)
    p.add_argument("--key", default=None, help="object key (default: incoming/<file name>)")
    p.add_argument("--bucket", default="iotpipe-raw")
    p.add_argument("--endpoint-url", default="http://127.0.0.1:4566")
    p.set_defaults(run=_upload)


def _contract_commands(sub: Any) -> None:
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


def _contract(args: argparse.Namespace) -> Any:
    from iotpipe import bootstrap

    return bootstrap.ContractCatalog(bootstrap.current_settings()).get(args.contract)


def _rejects_writer(path: Path | None) -> Any:
    """Open the rejects CSV to write (a context manager yielding None without a path)."""
    from iotpipe.rejects import RejectsCsvWriter

    return RejectsCsvWriter.open(path) if path is not None else contextlib.nullcontext()


def _existing_file(source: str) -> Path:
    path = Path(source)
    if not path.is_file():
        raise IotpipeError(f"no such file: {path}")
    return path


def _print_report(body: dict[str, Any], as_json: bool) -> int:
    print(json.dumps(body) if as_json or "rows_read" not in body else format_report(body))
    return EXIT_OK if body["status"] != "failed" else EXIT_FAILED


def _validate(args: argparse.Namespace) -> int:
    from iotpipe.ingest import validate_source

    contract = _contract(args)
    path = _existing_file(args.source)
    with path.open("rb") as stream, _rejects_writer(args.rejects) as rejects:
        on_rejected = rejects.write if rejects is not None else None
        report = validate_source(stream, contract, source=str(path), on_rejected=on_rejected)
    return _print_report(report.to_dict(), args.json)


def _ingest(args: argparse.Namespace) -> int:
    from iotpipe import bootstrap
    from iotpipe.ingest import ingest_object
    from iotpipe.sources import local_object

    contract = _contract(args)
    settings = bootstrap.current_settings(database_url=args.database_url)
    if args.source.startswith("s3://"):
        return _ingest_s3(args, contract, settings)
    path = _existing_file(args.source)
    store = bootstrap.store_for(settings)
    progress = None if args.json or not sys.stderr.isatty() else _ProgressLine()
    try:
        with _rejects_writer(args.rejects) as rejects:
            report = ingest_object(
                lambda: path.open("rb"),
                local_object(path),
                contract,
                store,
                rejects=rejects,
                progress=progress,
            )
    finally:
        store.close()
        if progress is not None:
            progress.done()
    return _print_report(report.to_dict(), args.json)


def _ingest_s3(args: argparse.Namespace, contract: Any, settings: Any) -> int:
    """Ingest ``s3://bucket/key`` as the Lambda would: rejects and report go back to S3."""
    from iotpipe import bootstrap
    from iotpipe.errors import FileFailedError
    from iotpipe.ingest import ingest_announced
    from iotpipe.model import AnnouncedObject

    bucket, _, key = args.source.removeprefix("s3://").partition("/")
    if not bucket or not key:
        raise IotpipeError(f"not an s3://bucket/key URL: {args.source}")
    objects = bootstrap.object_source(settings)
    store = bootstrap.store_for(settings)
    try:
        body = ingest_announced(AnnouncedObject(bucket, key), contract, store, objects).to_dict()
    except FileFailedError as exc:  # quarantined; its report is in S3 too
        body = exc.report or {"status": "failed", "error": str(exc)}
    finally:
        store.close()
    return _print_report(body, args.json)


class _ProgressLine:
    """A one-line progress display on stderr (only on a terminal)."""

    def __init__(self) -> None:
        self._started = time.monotonic()
        self._shown = 0.0

    def __call__(self, report: Any) -> None:
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
        sys.stderr.write("\n")


def _query(args: argparse.Namespace) -> int:
    from iotpipe import bootstrap
    from iotpipe.retrieve import answer

    runtime = bootstrap.build_retrieve_runtime(
        bootstrap.current_settings(database_url=args.database_url)
    )
    params = {
        "device_id": args.device_id,
        "start": args.start,
        "end": args.end,
        "limit": args.limit,
        "cursor": args.cursor,
        "dataset": args.dataset,
    }
    try:
        body = answer(
            params, default_dataset=runtime.dataset, store=runtime.store, cursors=runtime.cursors
        )
    finally:
        runtime.store.close()
    print(json.dumps(body))
    return EXIT_OK


def _db_init(args: argparse.Namespace) -> int:
    from iotpipe import bootstrap

    contract = _contract(args)
    url = bootstrap.database_url(bootstrap.current_settings(database_url=args.database_url))
    store = bootstrap.build_store(url)
    try:
        store.ensure_schema(contract)
    finally:
        store.close()
    print(f"ok: table {contract.table} for {contract.name} in {bootstrap.redact(url)}")
    return EXIT_OK


def _demo(args: argparse.Namespace) -> int:
    from iotpipe.local.demo import run_demo

    return run_demo(rows=args.rows)


def _local_up(args: argparse.Namespace) -> int:
    from iotpipe import bootstrap
    from iotpipe.local.stack import INCOMING_PREFIX, LocalStack, Poller

    bootstrap.configure(database_url=args.database_url)
    stack = LocalStack(port=args.port, bucket=args.bucket).start()
    print(f"S3 + SQS stand-in on {stack.endpoint}; bucket {stack.bucket}, queue {stack.queue}")
    print(f"upload under {INCOMING_PREFIX} to ingest, for example:")
    print(f"  iotpipe upload data.csv.gz --endpoint-url {stack.endpoint}")
    print(
        f"  aws --endpoint-url {stack.endpoint} s3 cp data.csv s3://{stack.bucket}/{INCOMING_PREFIX}"
    )
    print("Ctrl-C stops.")
    poller = Poller(stack)
    try:
        while True:
            poller.poll_once(wait_seconds=5)
    except KeyboardInterrupt:
        print()
    finally:
        stack.stop()
    return EXIT_OK


def _serve(args: argparse.Namespace) -> int:
    from iotpipe import bootstrap
    from iotpipe.local.server import ReadingsServer

    bootstrap.configure(database_url=args.database_url)
    server = ReadingsServer(args.host, args.port)
    print(
        f"serving {server.url}/ (page), {server.url}/openapi.json, "
        f"{server.url}/devices/ID/readings?start=&end= ; Ctrl-C stops"
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print()
    finally:
        server.server_close()
    return EXIT_OK


def _upload(args: argparse.Namespace) -> int:
    from iotpipe.local.stack import INCOMING_PREFIX, local_client

    if not args.file.is_file():
        raise IotpipeError(f"no such file: {args.file}")
    key = args.key or f"{INCOMING_PREFIX}{args.file.name}"
    s3 = local_client("s3", args.endpoint_url)
    s3.upload_file(str(args.file), args.bucket, key)
    print(f"uploaded s3://{args.bucket}/{key}")
    return EXIT_OK


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
    from iotpipe.infer import infer_contract_yaml

    if not args.file.is_file():
        raise IotpipeError(f"no such file: {args.file}")
    with args.file.open("rb") as stream:
        print(infer_contract_yaml(stream, name=args.name or args.file.name), end="")
    return EXIT_OK


def _check(args: argparse.Namespace) -> int:
    from iotpipe.contract import load_contract

    contract = load_contract(args.contract)
    print(f"ok: {contract.name} -> table {contract.table}, {len(contract.fields)} fields")
    return EXIT_OK
