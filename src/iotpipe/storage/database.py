"""One connection of a store, and the transactions that run on it.

Short operations (a claim, a code assignment, a query) each run in their own transaction and
are retried on transient errors. A file load holds one long transaction (`Database.transaction`);
a short operation on the same `Database` while that is open joins it: on SQLite, whose single
writer the load already holds, category codes are assigned inside the load's transaction. The
open transaction's cursor is used by one thread at a time (`Database.open_lock`): the load
writes its batches in a thread of its own while the caller's thread may ask for codes.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from iotpipe.errors import TransientStorageError
from iotpipe.storage.dialect import SqlDialect

T = TypeVar("T")
RETRIES = 5
BACKOFF_SECONDS = 0.2
CHECK_AFTER_SECONDS = 30.0  # an idle connection is checked before it is used again


class Database:
    """A lazily opened DB-API connection (not in autocommit mode) with retried transactions.

    Parameters
    ----------
    dialect
        The engine's dialect.
    connect
        Opens a new connection; raises `TransientStorageError` when the server is unreachable.
    check
        Raises when an idle connection is no longer usable (a MySQL ping); None: never needed.
    retries
        Attempts of a short operation before a transient error is final.
    """

    def __init__(
        self,
        dialect: SqlDialect,
        connect: Callable[[], Any],
        check: Callable[[Any], None] | None = None,
        retries: int = RETRIES,
    ) -> None:
        self.dialect = dialect
        self.retries = retries
        self._connect = connect
        self._check = check
        self._conn: Any = None
        self._last_used = 0.0
        self._open: Any = None  # the cursor of the open long transaction, if any
        # Held by whoever uses that cursor: an operation that joins the transaction, and
        # the load's writer thread while it writes a batch.
        self.open_lock = threading.RLock()

    def connection(self) -> Any:
        """Return a live connection, reconnecting when the last one was dropped."""
        now = time.monotonic()
        if self._conn is not None and self._check and now - self._last_used > CHECK_AFTER_SECONDS:
            try:
                self._check(self._conn)
            except Exception:  # any failure of the check means: open a new one
                self.reset()
        if self._conn is None:
            self._conn = self._connect()
        self._last_used = now
        return self._conn

    def reset(self) -> None:
        """Drop the current connection (after an error that may have broken it)."""
        if self._conn is not None:
            with contextlib.suppress(Exception):  # it may be broken already
                self._conn.close()
        self._conn = None

    close = reset

    def run(self, operation: Callable[[Any], T], *, write: bool = False) -> T:
        """Run ``operation(cursor)`` in its own transaction, retrying transient errors.

        Parameters
        ----------
        operation
            The work; it may run more than once, so it must not keep state between attempts.
        write
            Start with the dialect's ``begin_write`` (take the write lock up front).

        Returns
        -------
        T
            What ``operation`` returned.

        Raises
        ------
        TransientStorageError
            When every attempt met a transient error.
        """
        if self._open is not None:  # inside the open long transaction: join it
            with self.open_lock:
                return operation(self._open)
        delay = BACKOFF_SECONDS
        for attempt in range(1, self.retries + 1):
            conn = None
            try:
                conn = self.connection()
                cursor = conn.cursor()
                try:
                    if write:
                        cursor.execute(self.dialect.begin_write)
                    result = operation(cursor)
                finally:
                    cursor.close()
                conn.commit()
                return result
            except Exception as exc:
                self._rollback_quietly(conn)
                if not self.is_transient(exc):
                    raise
                self.reset()
                if attempt == self.retries:
                    raise TransientStorageError(f"database unavailable: {exc}") from exc
                time.sleep(delay)
                delay *= 2
        raise AssertionError("unreachable")

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Any]:
        """Hold one write transaction for a block: commit when it ends, roll back on error.

        Yields
        ------
        cursor
            The transaction's cursor.

        Raises
        ------
        TransientStorageError
            When the connection dropped (nothing of the block is committed).
        """
        conn = self.connection()
        cursor = conn.cursor()
        try:
            cursor.execute(self.dialect.begin_write)
            self._open = cursor
            yield cursor
            conn.commit()
        except Exception as exc:
            self._rollback_quietly(conn)
            if self.is_transient(exc):
                self.reset()
                raise TransientStorageError(f"load interrupted: {exc}") from exc
            raise
        finally:
            self._open = None
            try:
                cursor.close()
            except Exception:  # the connection may be gone
                self.reset()

    def is_transient(self, exc: BaseException) -> bool:
        """Tell whether an error is worth retrying."""
        return isinstance(exc, TransientStorageError) or self.dialect.is_transient(exc)

    def _rollback_quietly(self, conn: Any) -> None:
        if conn is None:
            return
        try:
            conn.rollback()
        except Exception:  # the connection may be gone; the caller resets it
            self.reset()
