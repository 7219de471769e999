"""A second, throwaway MariaDB on 127.0.0.1 that requires TLS, with certificates made now.

`TlsMariaDB.start()` makes a CA and a server certificate with ``openssl`` (the server's names
only ``IP:127.0.0.1``), initialises an empty data directory, and runs ``mariadbd`` on a free
port with ``require_secure_transport=ON``: a client that does not speak TLS is refused. An
admin user (all privileges, ``REQUIRE SSL``) stands in for the RDS master user; the root
account is reachable only through the server's own Unix socket.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pymysql

from bench.private_db import wait_until_up
from iotpipe.local.stack import free_port

BINARIES = ("mariadbd", "mariadb-install-db", "openssl")
SEARCH = ("/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin")
ADMIN_USER = "tls_admin"
ADMIN_PASSWORD = "admin-pw-1"  # a throwaway server on 127.0.0.1, deleted after the tests
DATABASE = "iotpipe"


def find(binary: str) -> str | None:
    """Return the path of a server binary (``/usr/sbin`` is often not on a user's PATH)."""
    found = shutil.which(binary) or next(
        (f"{d}/{binary}" for d in SEARCH if os.access(f"{d}/{binary}", os.X_OK)), None
    )
    return found


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_ca(directory: Path, name: str) -> tuple[Path, Path]:
    """Make a self-signed CA; return (certificate, key)."""
    cert, key = directory / f"{name}.pem", directory / f"{name}-key.pem"
    _openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        "-subj", f"/CN=iotpipe test {name}", "-keyout", str(key), "-out", str(cert),
        cwd=directory,
    )  # fmt: skip
    return cert, key


def make_server_cert(directory: Path, ca: tuple[Path, Path]) -> tuple[Path, Path]:
    """Make the server's certificate, signed by ``ca``, valid for 127.0.0.1 only."""
    cert, key, csr = directory / "server.pem", directory / "server-key.pem", directory / "s.csr"
    ext = directory / "san.cnf"
    ext.write_text("subjectAltName = IP:127.0.0.1\n", encoding="ascii")
    _openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
        "-keyout", str(key), "-out", str(csr),
        cwd=directory,
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", str(csr), "-CA", str(ca[0]), "-CAkey", str(ca[1]),
        "-CAcreateserial", "-days", "2", "-extfile", str(ext), "-out", str(cert),
        cwd=directory,
    )  # fmt: skip
    return cert, key


@dataclass
class TlsMariaDB:
    """A MariaDB server of the tests' own, TLS required, on a free port of 127.0.0.1."""

    directory: Path
    port: int = field(default_factory=free_port)
    ca: Path | None = None
    other_ca: Path | None = None  # a CA that did not sign the server's certificate
    _process: subprocess.Popen[bytes] | None = None

    @property
    def socket(self) -> str:
        return str(self.directory / "mysqld.sock")

    def start(self) -> TlsMariaDB:
        """Make the certificates, initialise the data directory, start the server."""
        certs = self.directory / "certs"
        data = self.directory / "data"
        certs.mkdir(parents=True)
        ca = make_ca(certs, "ca")
        self.ca = ca[0]
        self.other_ca = make_ca(certs, "other-ca")[0]
        server_cert, server_key = make_server_cert(certs, ca)
        as_root = ["--user=root"] if os.geteuid() == 0 else []
        subprocess.run(
            [
                str(find("mariadb-install-db")), "--no-defaults", f"--datadir={data}",
                "--auth-root-authentication-method=normal", "--skip-test-db", *as_root,
            ],
            check=True,
            capture_output=True,
        )  # fmt: skip
        self._process = subprocess.Popen(
            [
                str(find("mariadbd")), "--no-defaults", f"--datadir={data}",
                f"--port={self.port}", "--bind-address=127.0.0.1", f"--socket={self.socket}",
                f"--pid-file={self.directory / 'mysqld.pid'}", "--skip-name-resolve",
                f"--ssl-ca={ca[0]}", f"--ssl-cert={server_cert}", f"--ssl-key={server_key}",
                "--require-secure-transport=ON", "--local-infile=1",
                "--innodb-buffer-pool-size=64M", "--skip-log-bin", *as_root,
            ],
            stdout=subprocess.DEVNULL,
            stderr=(self.directory / "error.log").open("wb"),
        )  # fmt: skip
        self._wait()
        with contextlib.closing(self.root()) as conn, conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE {DATABASE} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
            cur.execute(
                "CREATE USER %s@'127.0.0.1' IDENTIFIED BY %s REQUIRE SSL",
                (ADMIN_USER, ADMIN_PASSWORD),
            )
            cur.execute(
                "GRANT ALL PRIVILEGES ON *.* TO %s@'127.0.0.1' WITH GRANT OPTION", (ADMIN_USER,)
            )
        return self

    def _wait(self) -> None:
        assert self._process is not None
        wait_until_up(self._process, self.root, self.directory / "error.log")

    def root(self) -> Any:
        """A root connection through the server's Unix socket (autocommit)."""
        return pymysql.connect(unix_socket=self.socket, user="root", autocommit=True)

    def url(self, ca: Path | None = None) -> str:
        """The admin's ``mysql://`` URL, verified against ``ca`` (default: the server's CA)."""
        credentials = f"{ADMIN_USER}:{ADMIN_PASSWORD}"
        return f"mysql://{credentials}@127.0.0.1:{self.port}/{DATABASE}?ssl_ca={ca or self.ca}"

    def stop(self) -> None:
        """Stop the server and remove its files."""
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._process.kill()
            self._process = None
        shutil.rmtree(self.directory, ignore_errors=True)
