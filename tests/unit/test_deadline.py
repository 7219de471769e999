"""`LoadDeadline`: the projection uses where the load is, not where the reader (ahead) is."""

from __future__ import annotations

import time

import pytest

from iotpipe.errors import FileTooLongError
from iotpipe.ingest import LoadDeadline
from iotpipe.model import ObjectRef


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_projection_uses_the_batch_being_written(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock()
    monkeypatch.setattr(time, "monotonic", clock)
    deadline = LoadDeadline(size=1_000, available=10.0)
    deadline.read = 100
    deadline.mark(1_000)  # batch 1 cleaned at byte 100
    deadline.read = 900  # the reader has gone on ahead
    clock.now += 2.0
    with pytest.raises(FileTooLongError) as caught:
        deadline.check()  # 100 bytes in 2 s: 20 s for 1,000 bytes, 10 s available
    message = str(caught.value)
    assert "at the 0.00 MB/s measured over the first 10%" in message
    assert "would take about 20 s, and 10 s are available" in message
    assert "--rows 3500 " in message  # 1,000 rows in 2 s x 10 s x 0.7

    fast = LoadDeadline(size=1_000, available=10.0)
    fast.read = 500
    fast.mark(5_000)
    clock.now += 2.0
    fast.check()  # 500 bytes in 2 s: 4 s, in time
    fast.read = 1_000
    fast.mark(10_000)
    clock.now += 60.0
    fast.check()  # read to the end: nothing left to project


def test_no_deadline_without_a_clock_or_a_size() -> None:
    sized = ObjectRef("s3://b/k", "e", 1_000)
    assert LoadDeadline.of(sized, None) is None
    assert LoadDeadline.of(ObjectRef("s3://b/k", "e", None), lambda: 100.0) is None
    deadline = LoadDeadline.of(sized, lambda: 100.0)
    assert deadline is not None and deadline.available == pytest.approx(90.0)
    long = LoadDeadline.of(sized, lambda: 900.0)
    assert long is not None and long.available == pytest.approx(870.0)  # at most 30 s reserve
