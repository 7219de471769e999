"""Time rules shared by cleaning, storage and retrieval: UTC now, epoch numbers, ISO 8601 ``Z``.

Stdlib only (retrieval imports it). Every instant iotpipe stores or compares is a naive
``datetime`` in UTC.
"""

from __future__ import annotations

import datetime as dt

EPOCH = dt.datetime(1970, 1, 1)
# What both engines store (MySQL's DATETIME range); a contract's earliest is never before.
STORABLE_FIRST = dt.datetime(1000, 1, 1)
STORABLE_LAST = dt.datetime(9999, 12, 31, 23, 59, 59, 999_999)
# An epoch number at or above this is milliseconds, below it seconds (1e11 s is year 5138).
EPOCH_MS_THRESHOLD = 1e11


def utcnow() -> dt.datetime:
    """Naive UTC now (never the host's local time)."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def from_epoch(number: float) -> dt.datetime:
    """Return the naive UTC instant of epoch seconds, or milliseconds above the threshold.

    Raises
    ------
    OverflowError
        When the instant is outside ``datetime``'s range.
    """
    seconds = number / 1000 if abs(number) >= EPOCH_MS_THRESHOLD else number
    return EPOCH + dt.timedelta(seconds=seconds)


def iso_z(value: dt.datetime) -> str:
    """Format a naive UTC time as ISO 8601 with ``Z`` (fractions only when present)."""
    if not value.microsecond:
        spec = "seconds"
    elif value.microsecond % 1000 == 0:
        spec = "milliseconds"
    else:
        spec = "microseconds"
    return value.isoformat(timespec=spec) + "Z"
