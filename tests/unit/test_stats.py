from __future__ import annotations

import math
import statistics

from hypothesis import given
from hypothesis import strategies as st

from iotpipe.stats import summarize


def test_odd_even_nulls_and_empty() -> None:
    assert summarize([3, None, 1, 2]).to_dict() == {
        "count": 3,
        "mean": 2.0,
        "median": 2.0,
        "min": 1.0,
        "max": 3.0,
    }
    assert summarize([4.0, 1.0, 3.0, 2.0]).median == 2.5
    assert summarize([None, float("nan")]).to_dict() == {
        "count": 0,
        "mean": None,
        "median": None,
        "min": None,
        "max": None,
    }


@given(
    st.lists(
        st.one_of(st.none(), st.floats(min_value=-1e12, max_value=1e12, allow_nan=False)),
        max_size=200,
    )
)
def test_matches_the_statistics_module(values: list[float | None]) -> None:
    data = [v for v in values if v is not None]
    s = summarize(values)
    assert s.count == len(data)
    if data:
        assert s.mean == statistics.fmean(data)
        assert s.median == statistics.median(data)
        assert s.min == min(data) and s.max == max(data)
        assert s.mean is not None and math.isfinite(s.mean)
