"""A MariaDB server of a benchmark's own on 127.0.0.1: its connections and restarts are its own.

`bench.fleet` counts ``Threads_connected`` and restarts the database mid-run; doing either on
the machine's shared server would measure (or break) other work. The server gets an empty
data directory, a free port, a 128 MB buffer pool (MariaDB's default, and about what a
small RDS instance gives) and a ``bench`` user (all privileges, no password, 127.0.0.1 only).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import pymysql

from iotpipe.local.stack import free_port

SEARCH = ("/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin")


def find(binary: str) -> str:
    """Return the path of a MariaDB binary (``/usr/sbin`` is often not on PATH)."""
    found = shutil.which(binary) or next(
        (f"{d}/{binary}" for d in SEARCH if os.access(f"{d}/{binary}", os.X_OK)), None
    )
    if found is None:
        raise RuntimeError(f"{binary} not found (install mariadb-server)")
    return found


class PrivateMariaDB:
    """Start, restart and remove a throwaway MariaDB server."""

    def __init__(self, buffer_pool: str = "128M", max_connections: int = 300) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="iotpipe-bench-db-"))
        self.port = free_port()
        self.buffer_pool = buffer_pool
        self.max_connections = max_connections
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def socket(self) -> str:
        return str(self.directory / "mysqld.sock")

    def url(self, database: str) -> str:
        """The ``mysql://`` URL of a database on this server (the bench user)."""
        return f"mysql://bench@127.0.0.1:{self.port}/{database}"

    def start(self) -> PrivateMariaDB:
        """Initialise the data directory (once) and start the server."""
        data = self.directory / "data"
        as_root = ["--user=root"] if os.geteuid() == 0 else []
        fresh = not data.exists()
        if fresh:
            subprocess.run(
                [find("mariadb-install-db"), "--no-defaults", f"--datadir={data}",
                 "--auth-root-authentication-method=normal", "--skip-test-db", *as_root],
                check=True,
                capture_output=True,
            )  # fmt: skip
        self._process = subprocess.Popen(
            [
                find("mariadbd"), "--no-defaults", f"--datadir={data}", f"--port={self.port}",
                "--bind-address=127.0.0.1", f"--socket={self.socket}",
                f"--pid-file={self.directory / 'mysqld.pid'}", "--skip-name-resolve",
                "--local-infile=1", f"--innodb-buffer-pool-size={self.buffer_pool}",
                f"--max-connections={self.max_connections}", "--skip-log-bin", *as_root,
            ],
            stdout=subprocess.DEVNULL,
            stderr=(self.directory / "error.log").open("ab"),
        )  # fmt: skip
        self._wait()
        if fresh:
            with contextlib.closing(self.root()) as conn, conn.cursor() as cur:
                cur.execute("CREATE USER 'bench'@'127.0.0.1'")
                cur.execute("GRANT ALL PRIVILEGES ON *.* TO 'bench'@'127.0.0.1'")
        return self

    def restart(self) -> float:
        """Stop the server (as a failover or a reboot would) and start it; return seconds."""
        started = time.monotonic()
        self._terminate()
        self.start()
        return time.monotonic() - started

    def fresh_database(self, name: str) -> str:
        """Create (again) an empty database; return its URL."""
        with contextlib.closing(self.root()) as conn, conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
            cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
        return self.url(name)

    def status(self, name: str) -> int:
        """One global status counter (``Threads_connected``, ``Innodb_deadlocks``...)."""
        with contextlib.closing(self.root()) as conn, conn.cursor() as cur:
            cur.execute("SHOW GLOBAL STATUS LIKE %s", (name,))
            row = cur.fetchone()
        return int(row[1]) if row else 0

    def root(self) -> Any:
        """A root connection through the server's Unix socket (autocommit)."""
        return pymysql.connect(unix_socket=self.socket, user="root", autocommit=True)

    def stop(self) -> None:
        """Stop the server and remove its files."""
        self._terminate()
        shutil.rmtree(self.directory, ignore_errors=True)

    def _terminate(self) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None

    def _wait(self) -> None:
        assert self._process is not None
        wait_until_up(self._process, self.root, self.directory / "error.log")


def wait_until_up(
    process: subprocess.Popen[bytes], connect: Any, log: Path, seconds: float = 60.0
) -> None:
    """Wait until a starting ``mariadbd`` takes a connection; raise with its log if it exits."""
    deadline = time.monotonic() + seconds
    while True:
        if process.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"mariadbd exited: {tail}")
        try:
            connect().close()
            return
        except pymysql.err.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
