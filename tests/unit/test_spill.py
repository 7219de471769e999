"""Sorted runs on disk merged in key order (`iotpipe.storage.spill`): every key once, the
latest run's row, in order, in bounded pieces - and `FileLoad` choosing them only for files
out of time order."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import event, example, given, settings
from hypothesis import strategies as st

from iotpipe.contract import DEVICE_ID, TS, load_contract
from iotpipe.storage import spill
from iotpipe.storage.readings import FileLoad

T0 = dt.datetime(2025, 1, 1)

keys = st.tuples(st.sampled_from(["a", "b", "c", "é", "z"]), st.integers(0, 40))
runs_strategy = st.lists(st.dictionaries(keys, st.integers(0, 9), max_size=25), max_size=8)


def frame(run: dict[tuple[str, int], int]) -> pl.DataFrame:
    items = sorted(run.items())
    return pl.DataFrame(
        {
            DEVICE_ID: [k[0] for k, _ in items],
            TS: [T0 + dt.timedelta(seconds=k[1]) for k, _ in items],
            "v": [v for _, v in items],
        },
        schema={DEVICE_ID: pl.String, TS: pl.Datetime("us"), "v": pl.Int64},
    )


@settings(max_examples=150, deadline=None)
@given(runs=runs_strategy, chunk=st.integers(1, 30))
@example(  # a first merge step one row short of the first piece: no piece is cut yet
    runs=[{("a", i): 0 for i in range(9)}, {("b", i): 1 for i in range(9)}], chunk=56
)
@example(  # three runs of disjoint keys: every merge step is smaller than a chunk
    runs=[{(device, i): n for i in range(25)} for n, device in enumerate("abc")], chunk=30
)
def test_the_merge_keeps_each_keys_latest_row_in_key_order(
    runs: list[dict[tuple[str, int], int]], chunk: int, tmp_path_factory: pytest.TempPathFactory
) -> None:
    expected: dict[tuple[str, int], int] = {}
    for run in runs:
        expected.update(run)
    spilled = spill.SpilledRuns(str(tmp_path_factory.mktemp("runs")))
    old = spill.BLOCK_ROWS, spill.MERGE_ROWS
    spill.BLOCK_ROWS, spill.MERGE_ROWS = 3, 10  # many blocks, small holds
    try:
        for run in runs:
            spilled.add(frame(run))
        pieces = list(spilled.merged(chunk))
    finally:
        spill.BLOCK_ROWS, spill.MERGE_ROWS = old
        spilled.close()
    got = [
        ((d, int((t - T0).total_seconds())), v)
        for piece in pieces
        for d, t, v in piece.select(DEVICE_ID, TS, "v").iter_rows()
    ]
    assert got == sorted(expected.items())  # once per key, in order, the last run's value
    # chunk rows at a time, the first an eighth of that (the load waiting for it starts
    # sooner) and each next twice the one before up to a chunk, the last what is left
    sizes = [max(1, chunk // 8)]
    while len(sizes) < len(pieces):
        sizes.append(min(2 * sizes[-1], chunk))
    assert [piece.height for piece in pieces[:-1]] == sizes[: len(pieces) - 1]
    assert all(0 < piece.height <= size for piece, size in zip(pieces, sizes, strict=False))
    assert all("__iotpipe_run" not in piece.columns for piece in pieces)
    event(f"runs: {min(len(runs), 5)}+" if len(runs) >= 5 else f"runs: {len(runs)}")


class Recording:
    """A bulk path that records what reaches the table, in order."""

    def __init__(self) -> None:
        self.written: list[pl.DataFrame] = []

    def stage(self, rows: pl.DataFrame, directory: Path) -> Path | None:
        return None

    def upsert(
        self,
        cursor: Any,
        table: str,
        rows: pl.DataFrame,
        *,
        whole_rows: bool,
        staged: Path | None = None,
    ) -> None:
        self.written.append(rows)


def batches(order: str) -> list[pl.DataFrame]:
    """Four batches of 200 rows over 20 devices, in time order or scattered in time."""
    rows = [(f"d{i % 20:02d}", T0 + dt.timedelta(minutes=i)) for i in range(800)]
    if order == "random":
        rows = rows[::7] + [r for i, r in enumerate(rows) if i % 7]
        rows = [rows[(i * 337) % 800] for i in range(800)]
    frames = [rows[i : i + 200] for i in range(0, 800, 200)]
    return [
        pl.DataFrame({DEVICE_ID: [d for d, _ in f], TS: [t for _, t in f]}).with_columns(
            pl.col(TS).cast(pl.Datetime("us"))
        )
        for f in frames
    ]


@pytest.mark.parametrize("order", ["time", "random"])
def test_only_a_file_out_of_time_order_is_spilled_and_either_way_rows_arrive_sorted(
    order: str, tmp_path: Any
) -> None:
    bulk = Recording()
    marked: list[Any] = []
    load = FileLoad(
        None, load_contract("acme_usage"), bulk, marked.append, whole_rows=True,
        spill_dir=str(tmp_path),
    )  # fmt: skip
    for batch in batches(order):
        load.upsert(batch)
    # The runs are kept where the load was told to spill (and removed from there below).
    runs = [path for path in tmp_path.iterdir() if path.name.startswith("iotpipe-runs-")]
    assert len(runs) == (order == "random")
    load.finish({"status": "loaded"})
    assert load.spilled == (order == "random")
    assert not load.takes_clean_rows  # no dictionary to encode the merge with: never
    assert marked == [{"status": "loaded"}]
    written = pl.concat(bulk.written)
    assert written.height == 800
    if order == "random":  # one run in key order after the first batch
        rest = pl.concat(bulk.written[1:])
        assert rest.equals(rest.sort(DEVICE_ID, TS))
    assert all(w.equals(w.sort(DEVICE_ID, TS)) for w in bulk.written)
    assert list(tmp_path.iterdir()) == []  # the runs are gone


def test_the_merge_yields_each_piece_once_it_has_the_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Memory stays bounded: a piece leaves as soon as the merge steps so far hold its rows,
    # not once every run is read. Eight interleaved runs make steps smaller than a piece.
    monkeypatch.setattr(spill, "BLOCK_ROWS", 3)
    monkeypatch.setattr(spill, "MERGE_ROWS", 10)
    spilled = spill.SpilledRuns(str(tmp_path))
    for run in range(8):
        spilled.add(frame({("a", 8 * i + run): run for i in range(30)}))
    blocks = sum(len(run) for run in spilled._runs)
    read = spill._Block.read
    reads: list[int] = []

    def counted(block: Any) -> pl.DataFrame:
        reads.append(1)
        return read(block)

    monkeypatch.setattr(spill._Block, "read", counted)
    pieces = spilled._merge(200)
    assert next(pieces).height == 25  # the first piece, an eighth of the chunk
    assert len(reads) < blocks / 2
    assert sum(piece.height for piece in pieces) == 8 * 30 - 25
    spilled.close()


def test_a_runs_blocks_tile_its_one_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Each block is read by its own bytes alone: offsets from 0, each where the last ended.
    monkeypatch.setattr(spill, "BLOCK_ROWS", 4)
    spilled = spill.SpilledRuns(str(tmp_path))
    spilled.add(frame({("a", i): i for i in range(10)}))
    (blocks,) = spilled._runs
    assert [b.offset for b in blocks] == [0, *(b.offset + b.size for b in blocks[:-1])]
    assert {b.path for b in blocks} == {blocks[0].path}
    assert blocks[-1].offset + blocks[-1].size == blocks[0].path.stat().st_size
    sizes: list[int] = []
    opened = Path.open

    class Counted:  # a file that notes how many bytes each read returns
        def __init__(self, handle: Any) -> None:
            self.handle = handle

        def __enter__(self) -> Counted:
            return self

        def __exit__(self, *exc: object) -> None:
            self.handle.close()

        def seek(self, offset: int) -> int:
            return int(self.handle.seek(offset))

        def read(self, size: int = -1) -> bytes:
            data = bytes(self.handle.read(size))
            sizes.append(len(data))
            return data

    monkeypatch.setattr(Path, "open", lambda path, *a, **k: Counted(opened(path, *a, **k)))
    assert [b.read().height for b in blocks] == [4, 4, 2]
    assert sizes == [b.size for b in blocks]  # not the rest of the file each time
    spilled.close()


@settings(max_examples=60, deadline=None)
@given(blocks=st.lists(st.integers(1, 6), min_size=1, max_size=12), hold=st.integers(1, 20))
def test_a_runs_cursor_holds_its_share_and_one_block_at_most(
    blocks: list[int], hold: int, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # The rest of a run stays on disk: memory is bounded by the merge's share per run.
    directory = tmp_path_factory.mktemp("blocks")
    path, parts, n = directory / "run.arrows", [], 0
    with path.open("wb") as handle:  # one file of blocks, as a run is kept
        for i, size in enumerate(blocks):
            start = handle.tell()
            frame(dict.fromkeys((("d", n + j) for j in range(size)), i)).write_ipc_stream(handle)
            parts.append(spill._Block(path, start, handle.tell() - start))
            n += size
    cursor = spill._Cursor(parts, hold)
    seen = 0
    while True:
        held = cursor._head.height
        assert held < hold + max(blocks)  # reading stops once the share is reached
        assert held >= min(hold, n - seen)  # and not before, while the run has more
        if cursor.exhausted:
            break
        taken = cursor.take_through(cursor.last_key())  # everything held, as the merge would
        assert taken.height == held
        seen += held
    assert seen == n
    event(f"blocks: {len(blocks)}")


@pytest.mark.parametrize("cache_bytes", [None, 10**9])
def test_with_a_dictionary_runs_keep_clean_rows_and_what_is_merged_is_encoded(
    cache_bytes: int | None, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # With room in the page cache, the lowest keys of the clean batches are written as they
    # come: encoded first, like the merged pieces.
    from iotpipe.encode import Encoder, InMemoryCategoryDictionary

    contract = load_contract("acme_usage")
    clean_columns = [DEVICE_ID, TS, *(f.name for f in contract.fields)]
    dictionary = InMemoryCategoryDictionary()
    encoder = Encoder(contract, dictionary)
    kept: list[list[str]] = []
    add = spill.SpilledRuns.add

    def recorded(self: spill.SpilledRuns, rows: pl.DataFrame) -> None:
        kept.append(rows.columns)
        add(self, rows)

    monkeypatch.setattr(spill.SpilledRuns, "add", recorded)
    bulk = Recording()
    load = FileLoad(
        None, contract, bulk, lambda report: None, whole_rows=True, spill_dir=str(tmp_path),
        dictionary=dictionary, cache_bytes=cache_bytes,
    )  # fmt: skip
    regions = ["north", "south", "east", "west"]
    for n, keyed in enumerate(batches("random")):
        clean = keyed.with_columns(
            pl.lit(None, dtype=pl.String if f.type == "category" else pl.Float64).alias(f.name)
            for f in contract.fields
        ).with_columns(pl.lit(regions[n]).alias("region"), pl.lit("idle").alias("status"))
        clean = clean.select(clean_columns)
        assert load.takes_clean_rows == load.spilled
        if load.takes_clean_rows:  # as the pipeline gives them then: codes learned, no encodings
            encoder.learn(clean)
            load.upsert(clean)
        else:
            load.upsert(encoder.encode(clean))
    load._wait_for_writer()  # the last batch's write has begun: let it end
    written_while_reading = len(bulk.written)
    load.finish({"status": "loaded"})
    assert load.spilled
    assert written_while_reading == (1 if cache_bytes is None else 4)
    assert kept and all(columns == clean_columns for columns in kept)
    merged = pl.concat(bulk.written[1:])
    assert merged.height == 600
    assert merged.columns == contract.output_columns
    assert merged.equals(encoder.encode(merged.select(clean_columns)))
    assert merged.get_column("region").unique().sort().to_list() == sorted(regions[1:])
    # Learned as the batches came: the merge meets the regions in another order.
    assert dictionary.codes(contract.name, "region", regions) == {
        region: code for code, region in enumerate(regions, start=1)
    }


class Table(Recording):
    """`Recording`, upserting into a dict too (the last write of a key wins), noting when."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[tuple[str, dt.datetime], int] = {}
        self.reading = True  # set False once the file is read (the merge writes after)
        self.while_reading: list[pl.DataFrame] = []

    def upsert(
        self,
        cursor: Any,
        table: str,
        rows: pl.DataFrame,
        *,
        whole_rows: bool,
        staged: Path | None = None,
    ) -> None:
        assert rows.equals(rows.sort(DEVICE_ID, TS))  # every write in key order
        super().upsert(cursor, table, rows, whole_rows=whole_rows, staged=staged)
        if self.reading:
            self.while_reading.append(rows)
        self.rows.update({(d, t): v for d, t, v in rows.select(DEVICE_ID, TS, "v").iter_rows()})


def keyed(batch: dict[tuple[str, int], int]) -> pl.DataFrame:
    """One batch as the cleaner gives it: one row per key, in the file's (scrambled) order."""
    items = sorted(batch.items(), key=lambda item: (item[0][1] * 7919) % 41)
    return pl.DataFrame(
        {
            DEVICE_ID: [k[0] for k, _ in items],
            TS: [T0 + dt.timedelta(seconds=k[1]) for k, _ in items],
            "v": [v for _, v in items],
        },
        schema={DEVICE_ID: pl.String, TS: pl.Datetime("us"), "v": pl.Int64},
    )


def read_through(batches: list[pl.DataFrame], cache_bytes: int | None, tmp: Path) -> Table:
    table = Table()
    load = FileLoad(
        None, load_contract("acme_usage"), table, lambda report: None, whole_rows=True,
        spill_dir=str(tmp), cache_bytes=cache_bytes,
    )  # fmt: skip
    for frame_ in batches:
        load.upsert(frame_)
    load._wait_for_writer()
    table.reading = False
    load.finish({"status": "loaded"})
    return table


@settings(max_examples=120, deadline=None)
@given(
    batches=st.lists(st.dictionaries(keys, st.integers(0, 9), min_size=1, max_size=30), max_size=8),
    cache_bytes=st.sampled_from([None, 0, 1_500, 4_000, 10**9]),
)
def test_out_of_order_rows_written_as_they_come_or_through_runs_leave_each_key_s_last_row(
    batches: list[dict[tuple[str, int], int]],
    cache_bytes: int | None,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    # Whatever share of the keys is written as it comes (none, a batch's worth, all the
    # page cache allows), each key ends with the last row the file gave it.
    expected: dict[tuple[str, dt.datetime], int] = {}
    for batch in batches:
        expected.update({(d, T0 + dt.timedelta(seconds=s)): v for (d, s), v in batch.items()})
    table = read_through([keyed(b) for b in batches], cache_bytes, tmp_path_factory.mktemp("l"))
    assert table.rows == expected
    event(f"written while reading: {min(len(table.while_reading), 3)}")


def scattered(batches: int = 6, rows: int = 300) -> list[pl.DataFrame]:
    """Batches of 7 devices whose times are scattered over the whole file: out of order.

    (Half of a batch, by key, ends inside a device's rows, not where one begins.)
    """
    every = [(f"d{i % 7}", (i * 337) % (batches * rows)) for i in range(batches * rows)]
    return [keyed({key: n for key in every[n * rows : (n + 1) * rows]}) for n in range(batches)]


def test_out_of_order_the_lowest_keys_are_written_while_the_rest_is_read(tmp_path: Path) -> None:
    table = read_through(scattered(), 10**9, tmp_path)
    first, *direct = table.while_reading
    assert first.height == 300  # the first batch, judged in order, written whole
    # Then half of the first batch kept in runs, by key, and the same key range of each
    # batch after it: the lowest keys, every one of them below what the merge writes later.
    assert len(direct) == 5
    assert direct[0].height == 150
    cut = max(w.select(DEVICE_ID, TS).sort(DEVICE_ID, TS).row(-1) for w in direct)
    merged = pl.concat(table.written[len(table.while_reading) :])
    assert merged.select(DEVICE_ID, TS).row(0) > cut
    assert merged.height + sum(w.height for w in direct) == 5 * 300


@pytest.mark.parametrize(("spare", "written"), [(0, [300, 150]), (-1, [300])])
def test_past_its_share_of_the_page_cache_no_more_rows_are_written_as_they_come(
    spare: int, written: list[int], tmp_path: Path
) -> None:
    batches = scattered()
    # Room for exactly the first kept batch's lowest half, by its size in memory (or one
    # byte less): those rows are written (or not), then the cut drops below every key.
    half = int(batches[1].estimated_size()) * 150 // 300
    table = read_through(batches, (half + spare) * FileLoad.DIRECT_CACHE_PART, tmp_path)
    assert [w.height for w in table.while_reading] == written
    assert table.rows == read_through(batches, None, tmp_path).rows
