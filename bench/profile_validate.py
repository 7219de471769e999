"""One `validate` of a generated file, for a profiler: ``pyinstrument -m bench.profile_validate``.

Usage::

    .venv/bin/pip install pyinstrument
    .venv/bin/python -m bench.validate_rss --rows 1000000 --factor 1   # makes the file
    .venv/bin/pyinstrument -r text -m bench.profile_validate /tmp/iotpipe-bench/acme_1000000.csv
"""

from __future__ import annotations

import sys
from pathlib import Path

from iotpipe.contract import load_contract
from iotpipe.ingest import validate_source


def main() -> None:
    path = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/iotpipe-bench/acme_1000000.csv")
    with path.open("rb") as stream:
        report = validate_source(stream, load_contract("acme_usage"), source=str(path))
    print(report.counters.rows_read, "rows read")


if __name__ == "__main__":
    main()
