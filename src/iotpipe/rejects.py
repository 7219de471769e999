"""Rejected rows as CSV: line number, reason, detail and the original record."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from iotpipe.readers import RejectedRow

REJECTS_HEADER = ("line", "reason", "detail", "record")


class RejectsCsvWriter:
    """Append rejected rows to a CSV text stream, header first.

    Parameters
    ----------
    out
        A text stream opened with ``newline=""``.
    """

    def __init__(self, out: IO[str]) -> None:
        self._writer = csv.writer(out, lineterminator="\n")
        self._writer.writerow(REJECTS_HEADER)
        self.rows = 0

    def write(self, rows: list[RejectedRow]) -> None:
        """Write a batch of rejected rows."""
        self._writer.writerows((r.line, r.reason, r.detail, r.record) for r in rows)
        self.rows += len(rows)

    @classmethod
    @contextmanager
    def open(cls, path: Path) -> Iterator[RejectsCsvWriter]:
        """Open a rejects file for writing (UTF-8)."""
        with path.open("w", encoding="utf-8", newline="") as out:
            yield cls(out)
