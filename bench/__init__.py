"""Benchmarks (not tests): each prints figures measured in the same run."""

from __future__ import annotations

from pathlib import Path

# First: importing iotpipe sets Polars' allocator up (iotpipe.ALLOCATOR_SETTINGS), as the CLI
# and the handlers have it, before any benchmark imports Polars.
import iotpipe  # noqa: F401


def peak_rss_mb() -> float:
    """Peak resident memory of this process, in MB.

    VmHWM belongs to the process image, so unlike ``ru_maxrss`` it does not carry over the
    parent's peak into a forked-and-exec'd child.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def rss_mb() -> float:
    """Current resident memory of this process, in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")
