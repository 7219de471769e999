"""Run an iterator in a worker thread, a bounded number of items ahead of its consumer.

The ingest pipeline reads and cleans the next batches while the current one is written, and
the merge of sorted runs (`iotpipe.storage.spill`) prepares the next chunk while one is
loaded. Polars releases the GIL while it works, so the two threads use two cores.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Generator, Iterator
from typing import Any, TypeVar

T = TypeVar("T")
_DONE = object()


def prefetched(items: Iterator[T], ahead: int, name: str) -> Generator[T, None, None]:
    """Yield ``items``, produced in a worker thread at most ``ahead`` items in advance.

    The worker is a daemon thread called ``name`` (what a stack dump or a profile shows). An
    exception in the worker is raised in the consumer; a consumer that stops early (or
    raises) stops the worker, which closes ``items`` (a generator's ``finally`` blocks run
    in the worker, before the consumer goes on).
    """
    slots: queue.Queue[Any] = queue.Queue(maxsize=ahead)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                if not _offer(slots, item, stop):
                    return
            slots.put(_DONE)
        except BaseException as exc:  # handed to the consumer, which re-raises it
            slots.put(exc)
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    worker = threading.Thread(target=produce, name=name, daemon=True)
    worker.start()
    try:
        while True:
            item = slots.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while worker.is_alive():  # unblock a producer waiting on a full queue
            try:
                slots.get_nowait()
            except queue.Empty:
                worker.join(timeout=0.1)


def _offer(slots: queue.Queue[Any], item: object, stop: threading.Event) -> bool:
    """Put ``item`` once there is room; False when the consumer stopped first."""
    while not stop.is_set():
        try:
            slots.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


class Permits:
    """A bound on the batches in a pipeline: taken by its first stage, given back by its last.

    The ingest pipeline's reader takes one before it reads each batch; the loop that loads
    them gives one back once a batch is being written. So with one permit, a batch is read
    only when the one before it has reached the database: on one core, nothing the next
    batches need competes with the batch the database waits for.

    Parameters
    ----------
    count
        Permits at the start.
    """

    def __init__(self, count: int) -> None:
        self._count = count
        self._closed = False
        self._lifted = False
        self._changed = threading.Condition()

    def take(self) -> bool:
        """Wait for a permit and take it; False (at once) once `close` was called."""
        with self._changed:
            self._changed.wait_for(lambda: self._count > 0 or self._lifted or self._closed)
            if self._closed:
                return False
            if not self._lifted:
                self._count -= 1
            return True

    def give(self) -> None:
        """Give a permit back."""
        with self._changed:
            self._count += 1
            self._changed.notify()

    def lift(self) -> None:
        """Let every waiting and later `take` return True at once (no bound any more)."""
        with self._changed:
            self._lifted = True
            self._changed.notify_all()

    def close(self) -> None:
        """Let every waiting and later `take` return False (the pipeline is stopping)."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()
