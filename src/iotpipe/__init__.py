"""iotpipe: a serverless pipeline for IoT device usage data."""

from __future__ import annotations

import os

__version__ = "0.1.0"

# Polars allocates with jemalloc, which it sets up to hand freed pages back to the kernel
# half a second after they were freed (dirty_decay_ms:500). An ingest frees and takes again
# about a batch's worth of memory every few hundred milliseconds, so each batch faulted its
# pages in anew: a million-row file cost 260,000 page faults and 0.6-0.8 s of kernel time,
# a tenth of the client's CPU (docs/benchmarks.md, nineteenth round). Ten seconds, jemalloc's
# own default, keeps them for the next batch and gives them back once the process idles; two
# arenas instead of Polars' eight let the load's threads reuse each other's pages, so the
# peak stays where it was. jemalloc reads this when Polars is loaded, so it is set before any
# module imports Polars; a value already in the environment is kept.
ALLOCATOR_SETTINGS = "dirty_decay_ms:10000,muzzy_decay_ms:10000,narenas:2"
os.environ.setdefault("_RJEM_MALLOC_CONF", ALLOCATOR_SETTINGS)
