"""Rejected rows as CSV: line number, reason, detail and the original record."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from iotpipe.model import RejectedRow

REJECTS_HEADER = ("line", "reason", "detail", "record")


class RejectsCsvWriter:
    """A `iotpipe.model.RejectSink` that appends rejected rows to a CSV stream, header first.

    Parameters
    ----------
    out
        A text stream opened with ``newline=""``.
    """

    def __init__(self, out: IO[str]) -> None:
        self._out = out
        self._writer = csv.writer(out, lineterminator="\n")
        self.rows = 0
        self.begin()

    def begin(self) -> None:
        """Start over (a retried load): empty the stream when it can be, then the header."""
        if self._out.seekable():
            self._out.seek(0)
            self._out.truncate()
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
