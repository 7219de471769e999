"""The commands for analysts and ML engineers: datasets, devices, categories, export."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from iotpipe.cli.common import EXIT_OK


def register(sub: Any) -> None:
    """Add the browsing and export commands to the CLI's subparsers."""
    p = sub.add_parser("datasets", help="list the stored datasets: fields and time span")
    p.add_argument("--database-url", default=None)
    p.set_defaults(run=_datasets)

    p = sub.add_parser("devices", help="list a dataset's devices and their time spans")
    p.add_argument("--dataset", default=None, help="dataset name (default: the only one)")
    p.add_argument("--prefix", default=None, help="only device ids that start with this")
    p.add_argument("--limit", default=None, help="devices per page, 1..1000 (default 100)")
    p.add_argument("--cursor", default=None, help="next_cursor of the previous page")
    p.add_argument("--database-url", default=None)
    p.set_defaults(run=_devices)

    p = sub.add_parser("categories", help="print a dataset's category codes (to decode them)")
    p.add_argument("--dataset", default=None, help="dataset name (default: the only one)")
    p.add_argument("--database-url", default=None)
    p.set_defaults(run=_categories)

    p = sub.add_parser(
        "export", help="write the stored, encoded table to Parquet or CSV, with its categories"
    )
    p.add_argument("--dataset", default=None, help="dataset name (default: the only one)")
    p.add_argument("--device-id", default=None, help="only this device")
    p.add_argument("--start", default=None, help="only rows at or after (ISO 8601 or epoch)")
    p.add_argument("--end", default=None, help="only rows at or before (ISO 8601 or epoch)")
    p.add_argument(
        "--out",
        type=Path,
        required=True,
        help="FILE.parquet or FILE.csv (and FILE.*.categories.json)",
    )
    p.add_argument("--database-url", default=None)
    p.set_defaults(run=_export)


def only_dataset(store: Any, named: str | None) -> str:
    """Return the dataset named, else the only one stored; fail listing them otherwise."""
    from iotpipe.errors import IotpipeError

    if named:
        return named
    names: list[str] = [d.name for d in store.list_datasets()]
    if len(names) == 1:
        return names[0]
    if not names:
        raise IotpipeError("no dataset is stored yet: ingest a file first")
    raise IotpipeError(f"several datasets are stored; name one with --dataset: {', '.join(names)}")


def _store(args: argparse.Namespace) -> Any:
    from iotpipe import bootstrap

    return bootstrap.build_retrieve_runtime(
        bootstrap.current_settings(database_url=args.database_url)
    )


def _print_body(args: argparse.Namespace, body: Callable[[Any, str], dict[str, Any]]) -> int:
    """Print ``body(runtime, dataset)`` for the dataset named, else the only one stored."""
    runtime = _store(args)
    try:
        dataset = only_dataset(runtime.store, getattr(args, "dataset", None) or None)
        print(json.dumps(body(runtime, dataset)))
    finally:
        runtime.store.close()
    return EXIT_OK


def _datasets(args: argparse.Namespace) -> int:
    from iotpipe.retrieve import list_datasets

    runtime = _store(args)
    try:
        print(json.dumps(list_datasets(runtime.store)))
    finally:
        runtime.store.close()
    return EXIT_OK


def _devices(args: argparse.Namespace) -> int:
    from iotpipe.retrieve import list_devices

    params = {"prefix": args.prefix, "limit": args.limit, "cursor": args.cursor}
    return _print_body(
        args,
        lambda runtime, dataset: list_devices(
            {**params, "dataset": dataset},
            default_dataset=dataset,
            store=runtime.store,
            cursors=runtime.cursors,
        ),
    )


def _categories(args: argparse.Namespace) -> int:
    from iotpipe.retrieve import category_dictionary

    return _print_body(
        args,
        lambda runtime, dataset: category_dictionary(
            dataset, default_dataset=dataset, store=runtime.store
        ),
    )


def _export(args: argparse.Namespace) -> int:
    import sys

    from iotpipe.export import export_dataset
    from iotpipe.retrieve import known_dataset, parse_instant

    start = parse_instant(args.start, "start") if args.start else None
    end = parse_instant(args.end, "end") if args.end else None
    runtime = _store(args)
    try:
        dataset = only_dataset(runtime.store, args.dataset)
        contract = known_dataset(dataset, dataset, runtime.store)
        result = export_dataset(
            runtime.store, contract, args.out, device_id=args.device_id, start=start, end=end
        )
    finally:
        runtime.store.close()
    print(json.dumps(result.to_dict()))
    print(
        f"exported {result.rows:,} rows of {result.devices:,} devices to {result.path} "
        f"(codes: {result.categories_path})",
        file=sys.stderr,
    )
    return EXIT_OK
