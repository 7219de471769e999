"""An atheris (libFuzzer) target over the readers and the cleaning policy.

Whatever the bytes (CSV, NDJSON, Parquet, gzip, or noise), reading and cleaning either
succeed with every row accounted for, or fail the whole file with `SourceFormatError`;
anything else is a crash. Usage (atheris is not a project dependency)::

    .venv/bin/pip install atheris
    .venv/bin/python fuzz/readers.py -max_total_time=300 -max_len=4096
"""

from __future__ import annotations

import datetime as dt
import gzip
import io
import sys

import atheris
import polars  # noqa: F401  (imported first: instrumenting Polars breaks its method dispatch)

with atheris.instrument_imports(include=["iotpipe"]):
    from iotpipe.clean import Cleaner
    from iotpipe.contract import contract_from_dict
    from iotpipe.errors import SourceFormatError
    from iotpipe.readers import open_records

CONTRACT = contract_from_dict(
    {
        "name": "fuzz",
        "device_id": "id",
        "timestamp": "time",
        "dialect": {"delimiter": "auto"},
        "fields": [
            {"name": "v", "type": "number", "constraints": {"minimum": 0, "maximum": 100}},
            {"name": "kind", "type": "category", "constraints": {"enum": ["a", "b"]}},
            {"name": "on", "type": "boolean"},
        ],
    }
)
HEADERS = [b"", b"id,time,v,kind,on\n", b"id;time;v\n", b'{"id": "d1", "time": 1}\n']
NOW = dt.datetime(2025, 6, 1)


def one_input(data: bytes) -> None:
    """Read and clean one input; check the accounting."""
    provider = atheris.FuzzedDataProvider(data)
    header = HEADERS[provider.ConsumeIntInRange(0, len(HEADERS) - 1)]
    squeeze = provider.ConsumeBool()
    batch_rows = provider.ConsumeIntInRange(1, 64)
    body = header + provider.ConsumeBytes(provider.remaining_bytes())
    if squeeze:
        body = gzip.compress(body)
    cleaner = Cleaner(CONTRACT, now=NOW)
    stored = 0
    try:
        for batch in open_records(io.BytesIO(body), CONTRACT, batch_rows=batch_rows):
            stored += cleaner.clean(batch).rows.height
    except SourceFormatError:
        return
    c = cleaner.counters
    assert c.rows_read == c.rows_valid + c.rows_rejected + c.rows_duplicate + c.rows_conflict
    assert c.rows_rejected == sum(c.reject_reasons.values())
    # A batch stores each key's winner; a later batch may store the same key again (the
    # database keeps the last), which the file's counters call a conflict.
    assert c.rows_valid <= stored <= c.rows_valid + c.rows_conflict


def main() -> None:
    """Run libFuzzer over `one_input`."""
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
