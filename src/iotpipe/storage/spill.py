"""Load a file in primary-key order whatever its row order: sorted runs on disk, then a merge.

A table clustered on ``(device_id, ts)`` takes rows fastest in that order: then the engine
appends along its index instead of reading and splitting pages all over it. A device log
arrives nearly so (each batch sorted is enough), but a merge of many gateways' files arrives
in random order, and there a batch sorted on its own still lands everywhere: measured, 2.3x
slower than the same rows in key order (docs/benchmarks.md).

`FileLoad` watches each batch: once most of a batch's rows fall behind what was already
written for their devices, the rest of the file (but for the rows of its lowest keys, which
`FileLoad` writes as they come while they fit the engine's page cache) is kept here as
*runs* - each batch, sorted and with one row per key, a file of small lz4-compressed Arrow
IPC stream blocks in a temporary directory - and merged in key order at the end, still inside
the file's one transaction. Memory stays bounded: each run's cursor holds its share of
`MERGE_ROWS` (at least a block) plus at most one block more, so past 200 runs the merge holds
two blocks per run. A key in several runs keeps its row from the latest run: the last row in
the file wins, as it does when rows are written as they come.
"""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from iotpipe.contract import DEVICE_ID, TS
from iotpipe.prefetch import prefetched

if TYPE_CHECKING:
    import polars as pl

# Rows per block (a run is one file of blocks). Measured at 4M rows in random order (80 runs):
# peak RSS 586 MB with 2,500-row IPC files, 460 MB with 1,000-row blocks; IPC streams make the
# smaller blocks cheaper to write and read than the larger files were (docs/benchmarks.md).
BLOCK_ROWS = 1_000
MERGE_ROWS = 200_000  # rows the merge holds at once, over all runs
RUN = "__iotpipe_run"  # the run a row came from (later runs win)


class SpilledRuns:
    """Sorted runs in a temporary directory, merged in key order.

    Parameters
    ----------
    directory
        Where the temporary directory goes (the system's temporary directory by default;
        ``/tmp`` on Lambda, whose size the template sets).
    """

    def __init__(self, directory: str | None = None) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix="iotpipe-runs-", dir=directory))
        self._runs: list[list[_Block]] = []

    def add(self, rows: pl.DataFrame) -> None:
        """Keep a run: ``rows`` sorted by key, one row per key.

        The run is one file: its blocks are IPC streams written one after another, and the
        run remembers where each starts (a file per block cost twice the CPU to write).
        """
        import polars as pl

        number = len(self._runs)
        rows = rows.with_columns(pl.lit(number, dtype=pl.Int32).alias(RUN))
        path = self._dir / f"{number:06d}.arrows"
        blocks = []
        with path.open("wb") as handle:
            for start in range(0, rows.height, BLOCK_ROWS):
                offset = handle.tell()
                rows.slice(start, BLOCK_ROWS).write_ipc_stream(handle, compression="lz4")
                blocks.append(_Block(path, offset, handle.tell() - offset))
        if blocks:
            self._runs.append(blocks)

    def merged(self, chunk_rows: int) -> Generator[pl.DataFrame, None, None]:
        """Yield every kept row once per key, in key order, ``chunk_rows`` at a time.

        The first piece is an eighth of that, and each next one twice the one before: the
        ordered load, which waits for the first, starts sooner, and each piece is ready
        before the load of the one before it ends (a full piece after an eighth was not: the
        server waited 50-80 ms for it). The merge runs in a worker thread up to two pieces
        ahead, so it overlaps the writes of the pieces already yielded (Polars releases the
        GIL while it works).
        """
        return prefetched(self._merge(chunk_rows), 2, "iotpipe-merge")

    def _merge(self, chunk_rows: int) -> Iterator[pl.DataFrame]:
        import polars as pl

        per_run = max(BLOCK_ROWS, MERGE_ROWS // max(1, len(self._runs)))
        cursors = [_Cursor(blocks, per_run) for blocks in self._runs]
        size = max(1, chunk_rows // 8)
        pending: list[pl.DataFrame] = []
        held = 0
        while cursors:
            # Every row at or below the smallest last key held by a run that has more is final:
            # no run can still bring a smaller key.
            bounds = [c.last_key() for c in cursors if not c.on_last]
            bound = min(bounds) if bounds else None
            taken = [t for t in (c.take_through(bound) for c in cursors) if t.height]
            if taken:
                step = (
                    pl.concat(taken)
                    .sort(DEVICE_ID, TS, RUN)
                    .unique([DEVICE_ID, TS], keep="last", maintain_order=True)
                    .drop(RUN)
                )
                pending.append(step)
                held += step.height
            cursors = [c for c in cursors if not c.exhausted]
            while held >= size or (held and not cursors):
                rows = pl.concat(pending) if len(pending) > 1 else pending[0]
                yield rows.head(size)
                rest = rows.slice(size)
                pending, held = ([rest], rest.height) if rest.height else ([], 0)
                size = min(2 * size, chunk_rows)

    def close(self) -> None:
        """Remove the runs."""
        shutil.rmtree(self._dir, ignore_errors=True)


@dataclass(frozen=True)
class _Block:
    """Where one block of a run is: ``size`` bytes at ``offset`` of the run's file."""

    path: Path
    offset: int
    size: int

    def read(self) -> pl.DataFrame:
        import polars as pl

        with self.path.open("rb") as handle:  # read, not mapped
            handle.seek(self.offset)
            return pl.read_ipc_stream(handle.read(self.size))


class _Cursor:
    """The next rows of one run: up to ``hold`` rows in memory, the rest on disk."""

    def __init__(self, blocks: list[_Block], hold: int) -> None:
        import polars as pl

        self._blocks = list(reversed(blocks))
        self._hold = hold
        self._head = pl.DataFrame()
        self._fill()

    @property
    def on_last(self) -> bool:
        """Everything left of this run is in memory."""
        return not self._blocks

    @property
    def exhausted(self) -> bool:
        return self.on_last and self._head.height == 0

    def last_key(self) -> tuple[str, dt.datetime]:
        row = self._head.select(DEVICE_ID, TS).row(-1)
        return (row[0], row[1])

    def take_through(self, bound: tuple[str, dt.datetime] | None) -> pl.DataFrame:
        """Remove and return the held rows whose key is at most ``bound`` (all: None)."""
        import polars as pl

        if bound is None:
            taken, self._head = self._head, self._head.clear()
        else:
            device, ts = bound
            mask = (pl.col(DEVICE_ID) < device) | (
                (pl.col(DEVICE_ID) == device) & (pl.col(TS) <= ts)
            )
            count = self._head.select(mask.sum()).item()  # a prefix: the run is sorted
            taken, self._head = self._head.head(count), self._head.slice(count)
        self._fill()
        return taken

    def _fill(self) -> None:
        import polars as pl

        parts = [self._head] if self._head.height else []
        held = self._head.height
        while self._blocks and held < self._hold:
            block = self._blocks.pop().read()
            parts.append(block)
            held += block.height
        if parts:
            self._head = pl.concat(parts) if len(parts) > 1 else parts[0]
