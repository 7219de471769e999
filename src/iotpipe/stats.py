"""Exact summary statistics (count, mean, median, min, max) of numeric values, nulls ignored."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class NumericStats:
    """Summary of one numeric column; every figure is ``None`` when ``count`` is 0."""

    count: int
    mean: float | None
    median: float | int | None  # integer fields: an int when the median is a whole number
    min: float | int | None  # integer fields: an int
    max: float | int | None

    def to_dict(self) -> dict[str, int | float | None]:
        """Return the JSON-ready mapping used in the retrieval body."""
        return asdict(self)


def summarize(values: Iterable[float | int | None]) -> NumericStats:
    """Compute count, mean, median, min and max, ignoring nulls and NaN.

    Parameters
    ----------
    values
        Numbers, with ``None`` for missing.

    Returns
    -------
    NumericStats
        The mean uses a correctly rounded sum (``math.fsum``); the median of an even count is
        the mean of the two middle values.
    """
    data = sorted(float(v) for v in values if v is not None and not _is_nan(v))
    n = len(data)
    if n == 0:
        return NumericStats(0, None, None, None, None)
    mid = n // 2
    median = data[mid] if n % 2 else (data[mid - 1] + data[mid]) / 2
    return NumericStats(n, math.fsum(data) / n, median, data[0], data[-1])


def _is_nan(value: float | int) -> bool:
    return isinstance(value, float) and math.isnan(value)
