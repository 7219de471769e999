"""The local commands: demo, local up, serve, upload."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from iotpipe.cli.common import EXIT_OK
from iotpipe.errors import IotpipeError


def register(sub: Any) -> None:
    """Add the local commands to the CLI's subparsers."""
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
