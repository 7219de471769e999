"""De-duplication across the batches of one file: exact duplicates and last-row-wins conflicts.

Exact duplicates are dropped; the last row of a (device_id, ts) key wins over earlier different
rows, each superseded row being a conflict.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from iotpipe.contract import DEVICE_ID, TS

MAX_LEVEL_KEYS = 1 << 20  # 16 MB per key-index level
# Keys kept as their batches gave them, unsorted, before they are sorted into the levels. A
# lookup scans them (a set probe per key kept), which costs less than keeping them sorted:
# de-duplicating 1M messy rows, one thread, 0.41 -> 0.32 s in time order and 0.64 -> 0.45 s in
# random order. Half a million, not more: the sort that makes them a level needs memory of
# their size (peak RSS at 4M rows, time and random order: 416 and 489 MB before, 401 and 467
# MB with half a million, 427 and 508 MB with a million; docs/benchmarks.md, eighteenth round).
MAX_PENDING_KEYS = 1 << 19
MAX_PENDING_CHUNKS = 64


@dataclass(frozen=True)
class KeyCounts:
    """What de-duplicating one batch found."""

    new: int  # keys not seen before in the file (rows that end up stored)
    duplicate: int  # rows equal to the row that holds their key
    conflict: int  # rows that supersede a different row with their key


class Deduplicator:
    """Remember which row holds each key of a file, and filter each batch against that.

    Parameters
    ----------
    columns
        The value columns (device_id, ts and each field) that decide "the same row".
    pending_keys
        Keys the index keeps unsorted (`KeyIndex`).
    """

    def __init__(self, columns: list[str], *, pending_keys: int = MAX_PENDING_KEYS) -> None:
        self.columns = columns
        self._index = KeyIndex(pending_keys)
        # Each device's latest time among the keys in the index: a later key is new, and
        # needs no lookup (in a file written in time order, that is nearly every row).
        self._frontier = pl.DataFrame(schema={DEVICE_ID: pl.String, TS: pl.Datetime("us")})

    def apply(self, kept: pl.DataFrame) -> tuple[pl.DataFrame, KeyCounts]:
        """Return the batch's winning rows (one per key, in file order) and the counts."""
        keyed = kept.with_columns(
            pl.struct(DEVICE_ID, TS).hash().alias("__k"),
            pl.struct(self.columns).hash().alias("__h"),
        )
        # The row hash that held each row's key just before it: the previous row with the key
        # in this batch, else the index's (null: the key is new). Only the keys that repeat
        # within the batch need the per-key window, and they are few (on every row the window
        # took 0.5 s per million rows).
        previous = self._earlier(keyed)
        repeated = keyed.select(pl.col("__k").is_duplicated().arg_true()).to_series()
        if repeated.len():
            window = keyed[repeated].select(pl.col("__h").shift(1).over("__k")).to_series()
            previous = previous.scatter(repeated, window.fill_null(previous.gather(repeated)))
        same = previous == keyed.get_column("__h")  # null where the key is new
        new, duplicate = previous.null_count(), int(same.sum())
        counts = KeyCounts(new, duplicate, keyed.height - new - duplicate)
        # Each key's last non-duplicate row is what the file says now; earlier ones lose.
        # Only a key that repeats within the batch can have a losing row.
        keep = ~same.fill_null(False)
        if repeated.len():
            taking = pl.DataFrame({"k": keyed.get_column("__k").gather(repeated), "r": repeated})
            taking = taking.filter(keep.gather(repeated))
            losers = taking.filter(~pl.col("k").is_last_distinct()).get_column("r")
            if losers.len():
                keep = keep.scatter(losers, False)
        winners = keyed.filter(keep)
        self._index.update(winners.get_column("__k"), winners.get_column("__h"))
        self._frontier = (
            pl.concat([self._frontier, winners.select(DEVICE_ID, TS)])
            .group_by(DEVICE_ID)
            .agg(pl.col(TS).max())
        )
        return winners.select(self.columns), counts

    def _earlier(self, keyed: pl.DataFrame) -> pl.Series:
        """Row hash of the row that holds each key from earlier batches (null: none does)."""
        earlier = pl.repeat(None, keyed.height, dtype=pl.UInt64, eager=True)
        if self._frontier.height == 0:
            return earlier
        # A row later than every device's latest time is new; in a file written in time
        # order that is nearly every row, and one comparison finds the others.
        horizon = self._frontier.get_column(TS).max()
        maybe = keyed.select((pl.col(TS) <= horizon).arg_true()).to_series()
        if maybe.len() == 0:
            return earlier
        candidates = keyed[maybe]
        latest = pl.col(DEVICE_ID).replace_strict(
            self._frontier.get_column(DEVICE_ID),
            self._frontier.get_column(TS),
            default=None,
            return_dtype=pl.Datetime("us"),
        )
        known = candidates.select((pl.col(TS) <= latest).fill_null(False).arg_true()).to_series()
        if known.len():
            keys = candidates.get_column("__k").gather(known)
            earlier = earlier.scatter(maybe.gather(known), self._index.lookup(keys))
        return earlier


class KeyIndex:
    """Which row currently holds each (device_id, ts) key of the file: 16 bytes per key.

    The newest keys are kept as their batches gave them (up to ``pending_keys``), and a lookup
    finds them with a set probe per key kept. Beyond that they go to levels of sorted (key
    hash, row hash) frames, merged when neighbours reach similar sizes (a log-structured
    merge), so a lookup is a binary search per level and a long file's index costs
    O(n log n) to maintain. Levels stop growing at `MAX_LEVEL_KEYS`, which bounds the memory a
    merge needs on top of the index itself.

    Parameters
    ----------
    pending_keys
        Keys kept unsorted before they are sorted into the levels.
    """

    def __init__(self, pending_keys: int = MAX_PENDING_KEYS) -> None:
        self._levels: list[pl.DataFrame] = []
        # (k, h) rows in the order recorded (a key's last row is its newest), newer than every
        # level; one chunk per batch, not copied together.
        self._pending = pl.DataFrame(schema={"k": pl.UInt64, "h": pl.UInt64})
        self._pending_keys = pending_keys

    def lookup(self, keys: pl.Series) -> pl.Series:
        """Return the row hash recorded for each key (null where the key is new)."""
        found = pl.repeat(None, keys.len(), dtype=pl.UInt64, eager=True).alias("h")
        pending = self._pending.filter(pl.col("k").is_in(keys.implode()))
        if pending.height:
            pending = pending.unique("k", keep="last", maintain_order=True)  # the newest
            found = keys.replace_strict(
                pending.get_column("k"),
                pending.get_column("h"),
                default=None,
                return_dtype=pl.UInt64,
            ).alias("h")
        for level in reversed(self._levels):  # newest first
            level_keys = level.get_column("k")
            pos = level_keys.search_sorted(keys).clip(0, level.height - 1)
            hit = level_keys.gather(pos) == keys
            hashes = level.get_column("h").gather(pos)
            found = (
                pl.select(pl.when(found.is_null() & hit).then(hashes).otherwise(found))
                .to_series()
                .alias("h")
            )
        return found

    def update(self, keys: pl.Series, hashes: pl.Series) -> None:
        """Record the row hash of each key (``keys`` are distinct)."""
        if keys.len() == 0:
            return
        self._pending = pl.concat(
            [self._pending, pl.DataFrame({"k": keys, "h": hashes})], rechunk=False
        )
        if self._pending.n_chunks() > MAX_PENDING_CHUNKS:  # many small batches
            self._pending = self._pending.rechunk()
        if self._pending.height <= self._pending_keys:
            return
        # One level of them: sorted by key, each key's rows in the order recorded (a stable
        # sort), so the last of equal neighbours is the newest. (Not `unique`: its hash table
        # over a million keys peaked 75-80 MB higher at 4M rows.)
        level = self._pending.sort("k", maintain_order=True)
        self._pending = self._pending.clear()
        newest = (pl.col("k") != pl.col("k").shift(-1)).fill_null(value=True)
        self._add_level(level.filter(newest))

    def _add_level(self, level: pl.DataFrame) -> None:
        levels = self._levels
        levels.append(level)
        while (
            len(levels) > 1
            and levels[-2].height <= 2 * levels[-1].height
            and levels[-2].height + levels[-1].height <= MAX_LEVEL_KEYS
        ):
            newer = levels.pop()
            older = levels.pop()
            # The newer level wins: drop its keys from the older one, then merge two sorted runs.
            older = older.filter(~pl.col("k").is_in(newer.get_column("k").implode()))
            levels.append(older.merge_sorted(newer, key="k"))
