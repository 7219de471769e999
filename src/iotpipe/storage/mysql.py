"""MySQL 8.0/8.4 (RDS, RDS Proxy) / MariaDB 10.6+ adapter over PyMySQL, using only their common SQL.

The bulk path writes each clean batch to a temporary CSV and ``LOAD DATA LOCAL INFILE ...
REPLACE`` loads it straight into the table, inside the file's one transaction. Every load
writes every column, so REPLACE (delete + insert on a key clash) leaves exactly what
``INSERT ... ON DUPLICATE KEY UPDATE`` would; measured here it is 1.7x faster than going
through a staging table (docs/benchmarks.md). When the server refuses LOCAL INFILE the store
falls back, for the rest of its life, to multi-row ``INSERT ... ON DUPLICATE KEY UPDATE``.

Category codes are assigned on a second connection in short transactions serialised by a
row lock per vocabulary, so concurrent loads never wait on each other's file transactions.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import parse_qs, unquote, urlsplit

import pymysql

from iotpipe.contract import DEVICE_ID, TS
from iotpipe.errors import StorageError, TransientStorageError
from iotpipe.storage.database import Database
from iotpipe.storage.dialect import SqlDialect, quote
from iotpipe.storage.readings import InsertBulkPath
from iotpipe.storage.store import SqlStore

if TYPE_CHECKING:  # Polars is the ingest engine; retrieval never imports it
    import polars as pl

logger = logging.getLogger(__name__)

# Lost connection / gone away / can't connect / killed / shutdown / deadlock / lock timeout.
TRANSIENT_CODES = frozenset({1053, 1205, 1213, 1927, 2002, 2003, 2006, 2013, 2055, 4031})
# The server (or client) will not do LOAD DATA LOCAL INFILE.
LOCAL_INFILE_REFUSED = frozenset({1148, 2068, 3948, 4166})
DUPLICATE_COLUMN = 1060
NO_SUCH_TABLE = 1146
TABLE_OPTIONS = " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"
STAGE_PREFIX = "iotpipe_stage_"


def _code(exc: BaseException | None) -> int | None:
    if isinstance(exc, pymysql.err.MySQLError) and exc.args and isinstance(exc.args[0], int):
        return exc.args[0]
    return None


def _is_transient(exc: BaseException) -> bool:
    if isinstance(exc, pymysql.err.InterfaceError):
        return True  # the connection is closed
    if isinstance(exc, pymysql.err.OperationalError | pymysql.err.InternalError):
        return _code(exc) in TRANSIENT_CODES
    return False


MYSQL = SqlDialect(
    name="mysql",
    placeholder="%s",
    types={
        "char": "CHAR({n})",
        "varchar": "VARCHAR({n})",
        "int": "INT",
        "bigint": "BIGINT",
        "double": "DOUBLE",
        "bool": "TINYINT(1)",
        "flag": "TINYINT",
        "text": "TEXT",
        "long_text": "MEDIUMTEXT",
        "time": "DATETIME(6)",
    },
    table_options=TABLE_OPTIONS,
    clustered="",  # InnoDB always clusters on the primary key
    begin_write="START TRANSACTION",
    insert_ignore="INSERT IGNORE",
    for_update=" FOR UPDATE",
    upsert=("ON DUPLICATE KEY UPDATE {updates}", "VALUES({column})"),
    columns_sql=(
        "SELECT column_name, character_maximum_length FROM information_schema.columns "
        "WHERE table_schema = DATABASE() AND table_name = %s"
    ),
    cache_sql="SELECT @@innodb_buffer_pool_size",
    widen_sql="ALTER TABLE {table} MODIFY {column} {type}",
    inline_indexes=True,
    lock_sql=("SELECT GET_LOCK(%s, %s)", "SELECT RELEASE_LOCK(%s)"),
    epoch_micros="TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', {ts})",
    # Integer floor division: `/` would round a DECIMAL to 4 places (a bucket's last
    # microsecond into the next bucket), DIV truncates toward zero.
    bucket_index="(({us}) - MOD(MOD({us}, {w}) + {w}, {w})) DIV {w}",
    epoch_seconds="TIMESTAMPDIFF(SECOND, '1970-01-01 00:00:00', {ts})",
    int_div="DIV",
    finite_only=True,
    loose_index_scan=True,
    is_transient=_is_transient,
    is_missing_table=lambda exc: _code(exc) == NO_SUCH_TABLE,
    is_duplicate_column=lambda exc: _code(exc) == DUPLICATE_COLUMN,
)


ACCESS_DENIED = 1045  # a wrong password: after a rotation, the secret is read again
RDS_CA_BUNDLE = "rds"  # ``ssl_ca=rds``: the RDS (and RDS Proxy) CAs shipped in the package


def rds_ca_bundle() -> str:
    """Return the path of the shipped RDS CA bundle (`scripts/update_rds_ca` refreshes it)."""
    return str(Path(__file__).resolve().parent.parent / "certs" / "rds-ca-bundle.pem")


class Credentials(Protocol):
    """Where a connection's user name and password come from.

    A static URL gives them once; a Secrets Manager secret or an IAM token can change while
    the process lives, so `get` may be asked to ``refresh`` (read them again, uncached).
    """

    def get(self, *, refresh: bool = False) -> tuple[str, str]:
        """Return (user, password)."""
        ...


@dataclass(frozen=True)
class MySQLParams:
    """Connection parameters (parsed from a ``mysql://`` URL or built from a secret).

    ``ssl_ca`` turns on TLS with verification: the server's certificate must chain to that CA
    bundle (``rds``: the one shipped for RDS and RDS Proxy) and name the host connected to.
    ``credentials``, when given, replaces ``user``/``password`` and is read again once when the
    server refuses them (error 1045), so a rotated password is picked up without a restart.
    """

    host: str
    port: int = 3306
    user: str = "root"
    password: str = ""
    database: str = "iotpipe"
    local_infile: bool = True
    connect_timeout: float = 5.0
    read_timeout: float = 600.0
    write_timeout: float = 600.0
    ssl_ca: str | None = None
    credentials: Credentials | None = field(default=None, compare=False)

    @classmethod
    def from_url(cls, url: str) -> MySQLParams:
        """Parse ``mysql://user:password@host:port/database?local_infile=0&ssl_ca=PATH``.

        Parameters
        ----------
        url
            The database URL (``mysql+pymysql://`` is accepted too). ``ssl_ca`` is a CA bundle
            (or ``rds``) and makes the connection TLS with certificate and host verification.

        Returns
        -------
        MySQLParams
            The parameters.
        """
        parts = urlsplit(url)
        if parts.scheme not in ("mysql", "mysql+pymysql", "mariadb"):
            raise StorageError(f"not a MySQL URL: scheme {parts.scheme!r}")
        if not parts.hostname:
            raise StorageError("the MySQL URL has no host")
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        return cls(
            host=parts.hostname,
            port=parts.port or 3306,
            user=unquote(parts.username or "root"),
            password=unquote(parts.password or ""),
            database=parts.path.lstrip("/") or "iotpipe",
            local_infile=query.get("local_infile", "1") not in ("0", "false", "no"),
            connect_timeout=float(query.get("connect_timeout", 5)),
            read_timeout=float(query.get("read_timeout", 600)),
            ssl_ca=query.get("ssl_ca") or None,
        )

    def __repr__(self) -> str:  # never print the password
        tls = "verified" if self.ssl_ca else "off"
        return (
            f"MySQLParams(host={self.host!r}, port={self.port}, database={self.database!r}, "
            f"tls={tls})"
        )

    def connect(self) -> Any:
        """Open a connection in UTC, not in autocommit mode.

        Raises
        ------
        TransientStorageError
            When the server cannot be reached (the caller retries).
        StorageError
            When the server refuses the credentials, read again once if they can change.
        """
        if self.credentials is None:
            return self._connect(self.user, self.password)
        user, password = self.credentials.get()
        try:
            return self._connect(user, password)
        except StorageError as exc:
            if _code(exc.__cause__) != ACCESS_DENIED:
                raise
            logger.warning("the database refused the credentials; reading them again")
            user, password = self.credentials.get(refresh=True)
            return self._connect(user, password)

    def _connect(self, user: str, password: str) -> Any:
        try:
            return pymysql.connect(
                host=self.host,
                port=self.port,
                user=user,
                password=password,
                database=self.database,
                charset="utf8mb4",
                autocommit=False,
                local_infile=self.local_infile,
                connect_timeout=self.connect_timeout,
                read_timeout=self.read_timeout,
                write_timeout=self.write_timeout,
                init_command="SET time_zone = '+00:00'",
                **self._tls(),
            )
        except pymysql.err.OperationalError as exc:
            if _code(exc) == ACCESS_DENIED:
                raise StorageError(f"MySQL refused the credentials of {user!r}") from exc
            raise TransientStorageError(f"cannot connect to MySQL: {exc}") from exc

    def _tls(self) -> dict[str, Any]:
        if not self.ssl_ca:
            return {}
        ca = rds_ca_bundle() if self.ssl_ca == RDS_CA_BUNDLE else self.ssl_ca
        return {"ssl_ca": ca, "ssl_verify_cert": True, "ssl_verify_identity": True}


def _ping(conn: Any) -> None:
    conn.ping(reconnect=False)


class NamedLocks:
    """Claim locks as MySQL named locks, held by the connection that loads.

    The server releases a connection's named locks when the connection ends, so a worker
    that dies (a killed process, a Lambda whose connection closed) leaves its object free.

    Parameters
    ----------
    db
        The database of the loads (its connection holds the locks).
    """

    PREFIX = "iotpipe."

    def __init__(self, db: Database) -> None:
        self._db = db

    def acquire(self, cursor: Any, object_id: str) -> bool:
        """Take the lock unless any connection (this one included) holds it."""
        name = self._name(object_id)
        cursor.execute("SELECT IS_USED_LOCK(%s)", (name,))
        if cursor.fetchone()[0] is not None:
            return False
        cursor.execute("SELECT GET_LOCK(%s, 0)", (name,))
        return bool(cursor.fetchone()[0] == 1)

    def release(self, object_id: str) -> None:
        """Release the lock if this connection holds it."""
        name = self._name(object_id)

        def run(cursor: Any) -> None:
            cursor.execute("SELECT RELEASE_LOCK(%s)", (name,))
            cursor.fetchall()

        self._db.run(run)

    def _name(self, object_id: str) -> str:
        return self.PREFIX + object_id[:48]  # lock names are at most 64 characters


class LoadDataBulkPath:
    """``LOAD DATA LOCAL INFILE`` of each batch, or multi-row upserts once it is refused.

    When the batch carries every column of the table (the usual case) it is loaded with
    ``REPLACE`` straight into the table. Otherwise REPLACE would null the columns it does
    not carry, so the batch goes to a temporary staging table first, and ``INSERT ... SELECT
    ... ON DUPLICATE KEY UPDATE`` sets only its own columns.

    Parameters
    ----------
    enabled
        False skips LOCAL INFILE from the start (``?local_infile=0``).
    """

    def __init__(self, enabled: bool = True) -> None:
        self.uses_local_infile: bool | None = None if enabled else False
        self._fallback = InsertBulkPath(MYSQL)

    def stage(self, rows: pl.DataFrame, directory: Path) -> Path | None:
        """Write the batch's LOAD DATA file ahead (None once LOCAL INFILE was refused)."""
        if self.uses_local_infile is False:
            return None
        handle, name = tempfile.mkstemp(prefix="batch-", suffix=".csv", dir=directory)
        os.close(handle)
        write_load_csv(rows, name)
        return Path(name)

    def upsert(
        self,
        cursor: Any,
        table: str,
        rows: pl.DataFrame,
        *,
        whole_rows: bool,
        staged: Path | None = None,
    ) -> None:
        """Load a batch inside the open transaction (from ``staged`` when it was staged)."""
        if self.uses_local_infile is not False:
            try:
                with contextlib.ExitStack() as stack:
                    if staged is None:
                        chunk = stack.enter_context(
                            tempfile.NamedTemporaryFile(prefix="iotpipe-", suffix=".csv")
                        )
                        write_load_csv(rows, chunk.name)
                        staged = Path(chunk.name)
                    if whole_rows:
                        self._load_data(cursor, table, staged, rows.columns, "REPLACE")
                    else:
                        self._through_stage_table(cursor, table, staged, rows.columns)
                self.uses_local_infile = True
                return
            except (pymysql.err.OperationalError, pymysql.err.InternalError) as exc:
                if _code(exc) not in LOCAL_INFILE_REFUSED:
                    raise
                logger.warning("LOAD DATA LOCAL INFILE refused (%s); using multi-row INSERT", exc)
                self.uses_local_infile = False
        self._fallback.upsert(cursor, table, rows, whole_rows=whole_rows)

    def _load_data(
        self, cursor: Any, table: str, path: Path, columns: list[str], mode: str = ""
    ) -> None:
        names = ", ".join(quote(c) for c in columns)
        cursor.execute(
            f"LOAD DATA LOCAL INFILE %s {mode} INTO TABLE {quote(table)} "
            "CHARACTER SET utf8mb4 FIELDS TERMINATED BY ',' OPTIONALLY ENCLOSED BY '\"' "
            f"ESCAPED BY '' LINES TERMINATED BY '\\n' ({names})",
            (str(path),),
        )

    def _through_stage_table(self, cursor: Any, table: str, path: Path, columns: list[str]) -> None:
        # A temporary table is the connection's own, and neither CREATE nor DROP TEMPORARY
        # TABLE ends the open transaction; a new one per batch costs less than emptying it.
        stage = STAGE_PREFIX + hashlib.sha256(table.encode()).hexdigest()[:16]
        cursor.execute(f"DROP TEMPORARY TABLE IF EXISTS {quote(stage)}")
        cursor.execute(f"CREATE TEMPORARY TABLE {quote(stage)} LIKE {quote(table)}")
        self._load_data(cursor, stage, path, columns)
        names = ", ".join(quote(c) for c in columns)
        updates = ", ".join(
            f"{quote(c)} = VALUES({quote(c)})" for c in columns if c not in (DEVICE_ID, TS)
        )
        cursor.execute(
            f"INSERT INTO {quote(table)} ({names}) SELECT {names} FROM {quote(stage)} "
            f"ON DUPLICATE KEY UPDATE {updates}"
        )


def write_load_csv(rows: pl.DataFrame, path: str) -> None:
    """Write rows in the CSV form the LOAD DATA statement above reads.

    Strings and times are quoted (a quote inside is doubled), NULL is the bare word,
    booleans are 0/1, floats keep every digit, and a time carries its fraction of a second
    when it has one. A float column whose every value is a whole number is written as
    integers: the server reads the same doubles from fewer bytes. (The messy benchmark's
    1M rows: 0.68 s of CPU to write with every fraction and float written out, 0.56 s so.)

    Parameters
    ----------
    rows
        Encoded rows.
    path
        Where to write.
    """
    import polars as pl

    booleans = [name for name, dtype in rows.schema.items() if dtype == pl.Boolean]
    floats = [name for name, dtype in rows.schema.items() if dtype == pl.Float64]
    whole = rows.select(_whole_numbers(name) for name in floats).row(0) if floats else ()
    integral = [name for name, is_whole in zip(floats, whole, strict=True) if is_whole]
    if booleans or integral:
        rows = rows.with_columns(pl.col(booleans).cast(pl.Int8), pl.col(integral).cast(pl.Int64))
    rows.write_csv(
        path,
        include_header=False,
        null_value="NULL",
        quote_style="non_numeric",
        # chrono's %.f: no fraction when it is zero, else 3, 6 or 9 digits (microseconds: 6)
        datetime_format="%Y-%m-%d %H:%M:%S%.f",
        line_terminator="\n",
    )


def _whole_numbers(name: str) -> pl.Expr:
    """Whether every value of a float column is a whole number an Int64 holds exactly.

    Not NaN or an infinity; nulls do not count. (-0.0 is written as 0: MariaDB stores +0.0
    for either.)
    """
    import polars as pl

    value = pl.col(name)
    return ((value == value.floor()) & (value.abs() <= 2**53)).all().alias(name)


class MySQLStore(SqlStore):
    """`SqlStore` on MySQL/MariaDB: two connections (main, dictionary) and LOAD DATA.

    Parameters
    ----------
    params
        Connection parameters.
    """

    def __init__(self, params: MySQLParams) -> None:
        self.params = params
        self.load_data = LoadDataBulkPath(params.local_infile)
        main = Database(MYSQL, params.connect, _ping)
        self.locks = NamedLocks(main)
        super().__init__(
            main,
            self.locks,
            dictionary=Database(MYSQL, params.connect, _ping),
            bulk=self.load_data,
        )

    @classmethod
    def from_url(cls, url: str) -> MySQLStore:
        """Build a store from a ``mysql://`` URL."""
        return cls(MySQLParams.from_url(url))

    @property
    def uses_local_infile(self) -> bool | None:
        """True once LOAD DATA LOCAL worked, False once it was refused, None before."""
        return self.load_data.uses_local_infile


# What each function's database user may do on iotpipe's schema (and nothing elsewhere).
# Ingest creates tables for new datasets, widens and adds columns, loads with LOAD DATA ...
# REPLACE (INSERT + DELETE) and stages partial rows in temporary tables.
ROLE_PRIVILEGES = {
    "ingest": ("SELECT, INSERT, UPDATE, DELETE, CREATE, ALTER, INDEX, CREATE TEMPORARY TABLES"),
    "read": "SELECT",
}
USER_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,31}")
SCHEMA_NAME = re.compile(r"[A-Za-z0-9_]{1,64}")


def ensure_user(db: Database, user: str, password: str, role: str) -> None:
    """Create (or update) a database user for one function: its password, TLS, its grants.

    Run again, it sets the password the secret holds now and the role's grants: the schema
    step can be repeated after a rotation or a change of roles.

    Parameters
    ----------
    db
        A connection of a user allowed to create users and grant (the RDS master user).
    user, password
        From the function's own secret. The name must be a plain identifier.
    role
        ``ingest`` or ``read`` (`ROLE_PRIVILEGES`).

    Raises
    ------
    StorageError
        For a user name or role iotpipe will not write into SQL.
    """
    if not USER_NAME.fullmatch(user):
        raise StorageError(f"database user name {user!r} is not a plain identifier")
    if role not in ROLE_PRIVILEGES:
        raise StorageError(f"unknown database role {role!r}")

    def run(cursor: Any) -> None:
        cursor.execute("SELECT DATABASE()")
        (schema,) = cursor.fetchone()
        if not schema or not SCHEMA_NAME.fullmatch(schema):
            raise StorageError(f"database name {schema!r} is not a plain identifier")
        # User names and passwords are string literals, escaped by the driver as parameters.
        cursor.execute("CREATE USER IF NOT EXISTS %s@'%%' IDENTIFIED BY %s", (user, password))
        cursor.execute("ALTER USER %s@'%%' IDENTIFIED BY %s REQUIRE SSL", (user, password))
        cursor.execute("REVOKE ALL PRIVILEGES, GRANT OPTION FROM %s@'%%'", (user,))
        cursor.execute(f"GRANT {ROLE_PRIVILEGES[role]} ON {quote(schema)}.* TO %s@'%%'", (user,))

    db.run(run)
