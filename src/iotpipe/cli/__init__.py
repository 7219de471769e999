"""The ``iotpipe`` console script: a driver over the same services the Lambdas use.

Commands live by group: `data` (validate, ingest, query, files, db init), `fleet` (backfill,
split), `browse` (datasets, devices, categories, export), `local` (demo, local up, serve,
upload) and `contracts` (sample, contract infer/check).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from iotpipe.cli import browse, contracts, data, fleet, local
from iotpipe.cli.common import EXIT_OK, EXIT_USAGE
from iotpipe.errors import IotpipeError


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
    data.register(sub)
    fleet.register(sub)
    browse.register(sub)
    local.register(sub)
    contracts.register(sub)
    return parser
