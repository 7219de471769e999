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
        for item in prefetched(items(), ahead=2, name="test-prefetch"):
            got.append(item)
    assert got == [0, 1, 2, 3, 4]  # what came before the error, and nothing lost
    assert list(prefetched(iter(range(100)), 3, "test-prefetch")) == list(range(100))


def test_the_worker_stays_at_most_ahead_items_in_front_and_stops_with_its_consumer() -> None:
    produced: list[int] = []
    workers: set[tuple[str, bool]] = set()

    def items() -> Iterator[int]:
        for n in range(1000):
            produced.append(n)
            workers.add((threading.current_thread().name, threading.current_thread().daemon))
            yield n

    stream = prefetched(items(), ahead=2, name="test-prefetch")
    assert isinstance(stream, Generator)
    assert next(stream) == 0
    time.sleep(0.3)  # time for the worker to run ahead as far as it may
    # Item 0 was taken; the queue holds 2 more, and the worker holds one it cannot put yet.
    assert len(produced) <= 4
    stream.close()  # the consumer stops early: the worker ends too, reading nothing more
    assert len(produced) <= 5
    assert not any(t.name == "test-prefetch" for t in threading.enumerate())
    # One worker, named as asked (a stack dump shows it), and a daemon: a worker stuck in a
    # read never keeps the interpreter from exiting.
    assert workers == {("test-prefetch", True)}


def test_a_slow_consumer_gets_every_item_and_an_iterator_without_close_is_fine(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The queue stays full for longer than the worker's 0.1 s wait to put an item: it
    # waits again, and the consumer gets every item. A plain iterator has no `close`.
    errors: list[BaseException | None] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: errors.append(args.exc_value))
    got: list[int] = []

    def consume() -> None:
        for item in prefetched(iter(range(4)), 1, "test-slow"):
            time.sleep(0.3)
            got.append(item)

    consumer = threading.Thread(target=consume, daemon=True)
    consumer.start()
    consumer.join(WAIT)
    assert got == [0, 1, 2, 3]
    assert errors == []  # nothing went wrong in the worker either


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


def test_permits_given_back_add_up() -> None:
    permits = Permits(2)
    assert permits.take() and permits.take()
    permits.give()
    permits.give()
    taken: list[bool] = []
    taker = threading.Thread(
        target=lambda: taken.extend([permits.take(), permits.take()]), daemon=True
    )
    taker.start()
    taker.join(0.5)
    permits.close()  # frees a taker still waiting (it then takes False)
    taker.join(WAIT)
    assert taken == [True, True]  # both given back, both taken again without waiting


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
