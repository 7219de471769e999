from __future__ import annotations

import math
import statistics
from fractions import Fraction

from hypothesis import event, example, given
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


# The SQL side of the same figures (iotpipe.storage.readings): a median of two middle values
# and a mean averaged again over scaled values when its sum could overflow.
finite = st.floats(allow_nan=False, allow_infinity=False)


@given(finite, finite)
@example(5e-324, 5e-324)  # the smallest subnormal: each half alone rounds to 0
@example(2.2250738585072014e-308 + 5e-324, 2.2250738585072014e-308 + 5e-324)
@example(1.7976931348623157e308, 1.7976931348623157e308)  # their sum is beyond the doubles
@example(-1.7976931348623157e308, -1.7e308)
def test_the_midpoint_of_two_doubles_is_their_mean_correctly_rounded(a: float, b: float) -> None:
    from iotpipe.storage.readings import _midpoint

    exact = (Fraction(a) + Fraction(b)) / 2
    event("sum beyond the doubles" if not math.isfinite(a + b) else "sum finite")
    assert _midpoint(a, b) == float(exact)


@given(finite.filter(bool), finite)
@example(1.7976931348623157e308, 0.0)
@example(-1.0e308, 3.0)
@example(0.75, -1.0)  # the larger magnitude may be the low end
@example(5e-324, 0.0)
def test_the_mean_s_scale_is_the_largest_power_of_two_within_the_values(a: float, b: float) -> None:
    from iotpipe.storage.readings import _scale

    scale, largest = _scale(a, b), max(abs(a), abs(b))
    mantissa, _ = math.frexp(scale)
    assert mantissa == 0.5  # a power of two: dividing by it and multiplying back is exact
    assert scale <= largest < 2 * scale
