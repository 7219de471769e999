"""Polars' allocator keeps freed pages for the next batch once iotpipe is imported."""

from __future__ import annotations

import os
import subprocess
import sys

import iotpipe

# A batch's worth of columns (each below jemalloc's 8 MB "oversize" bound, which is always
# given back at once), freed, then after a pause longer than Polars' half second of decay
# the same again: the page faults of both batches are printed. (Polars' own setting gives the
# pages back within the pause too, but on its background thread's schedule; a setting that
# gives them back at once makes the comparison without a race.)
SCRIPT = """
import resource, time
import iotpipe
import polars as pl

def faults_of_a_batch():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    frame = pl.DataFrame({f"c{i}": pl.int_range(i, i + 500_000, eager=True) for i in range(16)})
    frame = frame.with_columns(pl.all() * 2)
    del frame
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

first = faults_of_a_batch()
time.sleep(1.5)
print(first, faults_of_a_batch())
"""


def _faults(settings: str | None) -> tuple[int, int]:
    env = {k: v for k, v in os.environ.items() if k != "_RJEM_MALLOC_CONF"}
    if settings is not None:
        env["_RJEM_MALLOC_CONF"] = settings
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, check=True
    )
    first, second = out.stdout.split()
    return int(first), int(second)


def test_freed_pages_wait_for_the_next_batch_and_a_setting_of_the_user_s_wins() -> None:
    assert iotpipe.ALLOCATOR_SETTINGS == "dirty_decay_ms:10000,muzzy_decay_ms:10000,narenas:2"
    # 16 columns of 500,000 integers, twice: 128 MB, 32,768 pages of 4 KB.
    kept_first, kept_second = _faults(None)
    given_first, given_second = _faults("dirty_decay_ms:0,muzzy_decay_ms:0")
    assert kept_first > 16_000 and given_first > 16_000
    assert given_second > 16_000  # given back at once: the next batch faults them in again
    assert kept_second < given_second / 4  # kept: the next batch reuses them
