"""`prefetched`: the same items in the same order, an error where it happened, a bounded lead;
`Permits`: a bound given back by the consumer, and a close that frees a waiting reader."""

from __future__ import annotations

import threading
import time
from collections.abc import Generator, Iterator

import pytest

from iotpipe.prefetch import Permits, prefetched

WAIT = 10.0  # seconds; only reached when a waiter is never freed


def test_the_items_come_in_order_and_an_error_comes_where_it_happened() -> None:
    def items() -> Iterator[int]:
        yield from range(5)
        raise ValueError("batch 6 is broken")

    got: list[int] = []
    with pytest.raises(ValueError, match="batch 6 is broken"):
        for item in prefetched(items(), ahead=2):
            got.append(item)
    assert got == [0, 1, 2, 3, 4]  # what came before the error, and nothing lost
    assert list(prefetched(iter(range(100)), ahead=3)) == list(range(100))


def test_the_worker_stays_at_most_ahead_items_in_front_and_stops_with_its_consumer() -> None:
    produced: list[int] = []

    def items() -> Iterator[int]:
        for n in range(1000):
            produced.append(n)
            yield n

    stream = prefetched(items(), ahead=2, name="test-prefetch")
    assert isinstance(stream, Generator)
    assert next(stream) == 0
    time.sleep(0.3)  # time for the worker to run ahead as far as it may
    # Item 0 was taken; the queue holds 2 more, and the worker holds one it cannot put yet.
    assert len(produced) <= 4
    stream.close()  # the consumer stops early: the worker ends too
    assert not any(t.name == "test-prefetch" for t in threading.enumerate())


def test_a_consumer_that_stops_closes_the_items_and_the_stages_behind_them() -> None:
    # Two stages, as the ingest pipeline runs them (reading, then cleaning): a consumer that
    # stops early ends both threads, and each generator's `finally` has run by then.
    closed: list[str] = []

    def read() -> Iterator[int]:
        try:
            yield from range(1000)
        finally:
            closed.append("read")

    def clean() -> Iterator[int]:
        batches = prefetched(read(), ahead=2, name="test-read")
        try:
            for n in batches:
                yield n * 10
        finally:
            batches.close()
            closed.append("clean")

    cleaning = clean()  # held here, as the pipeline's frame holds it: no garbage collection
    stream = prefetched(cleaning, ahead=2, name="test-clean")
    assert [next(stream) for _ in range(3)] == [0, 10, 20]
    stream.close()
    assert closed == ["read", "clean"]
    assert not {"test-read", "test-clean"} & {t.name for t in threading.enumerate()}


def test_permits_bound_what_is_taken_until_given_back_and_close_frees_a_waiter() -> None:
    permits = Permits(1)
    assert permits.take()
    took: list[bool] = []
    waiter = threading.Thread(target=lambda: took.append(permits.take()))
    waiter.start()
    waiter.join(0.2)
    assert waiter.is_alive() and took == []  # none left: it waits
    permits.give()
    waiter.join(WAIT)
    assert took == [True]  # the permit given back was taken
    stopped = threading.Thread(target=lambda: took.append(permits.take()))
    stopped.start()
    permits.close()  # the consumer is gone: the waiter stops, and so does every later take
    stopped.join(WAIT)
    assert not stopped.is_alive()
    assert took == [True, False]
    permits.give()
    assert permits.take() is False


def test_lifted_permits_are_taken_without_bound_until_closed() -> None:
    # A file out of time order goes to sorted runs: the database waits for none of its
    # batches, so the reader may run ahead as far as the prefetch queues allow.
    permits = Permits(1)
    assert permits.take()
    waiter_took: list[bool] = []
    waiter = threading.Thread(target=lambda: waiter_took.append(permits.take()))
    waiter.start()
    waiter.join(0.2)
    assert waiter.is_alive()  # bounded: none left
    permits.lift()
    waiter.join(WAIT)
    assert waiter_took == [True]  # freed by the lift, not by a permit given back
    assert all(permits.take() for _ in range(100))
    permits.close()
    assert permits.take() is False
