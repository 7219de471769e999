"""The one place that builds adapters from configuration (never at import time)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from iotpipe.config import DEFAULT_SQLITE_PATH, Settings
from iotpipe.contract import DataContract, load_contract
from iotpipe.errors import StorageError
from iotpipe.storage.base import SqlStore

if TYPE_CHECKING:
    from iotpipe.aws.s3 import S3Objects
    from iotpipe.retrieve import CursorCodec


def database_url(explicit: str | None, settings: Settings | None = None) -> str:
    """Choose the database: ``--database-url``, else ``IOTPIPE_DATABASE_URL``, else SQLite.

    Parameters
    ----------
    explicit
        A URL given on the command line, or None.
    settings
        Settings (read from the environment when None).

    Returns
    -------
    str
        The URL to use.
    """
    settings = settings or Settings.from_env()
    return explicit or settings.database_url or f"sqlite:///{DEFAULT_SQLITE_PATH}"


def build_store(url: str) -> SqlStore:
    """Build the store a URL names (``mysql://...`` or ``sqlite:///...``).

    Parameters
    ----------
    url
        The database URL.

    Returns
    -------
    SqlStore
        A store; it connects lazily, on first use.
    """
    scheme = url.split(":", 1)[0].lower()
    if scheme in ("mysql", "mysql+pymysql", "mariadb"):
        from iotpipe.storage.mysql import MySQLStore

        return MySQLStore.from_url(url)
    if scheme == "sqlite":
        from iotpipe.storage.sqlite import SQLiteStore

        return SQLiteStore.from_url(url)
    raise StorageError(f"unsupported database URL scheme {scheme!r} (use mysql:// or sqlite:///)")


def redact(url: str) -> str:
    """Return a database URL with its password masked, for messages and logs."""
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    credentials, host = rest.rsplit("@", 1)
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}"


def local_path(url: str) -> Path | None:
    """Return the file of a SQLite URL, or None for other databases."""
    if url.startswith("sqlite:"):
        from iotpipe.storage.sqlite import sqlite_path

        return sqlite_path(url)
    return None


def aws_client(service: str, settings: Settings) -> Any:
    """Build a boto3 client (``AWS_ENDPOINT_URL`` points it at a local stand-in)."""
    import boto3

    return boto3.client(service, endpoint_url=settings.aws_endpoint_url)


def store_from_settings(settings: Settings) -> SqlStore:
    """Build the store: ``IOTPIPE_DATABASE_URL``, else the Secrets Manager secret, else SQLite.

    Parameters
    ----------
    settings
        Settings.

    Returns
    -------
    SqlStore
        The store (it connects on first use).
    """
    if settings.database_url:
        return build_store(settings.database_url)
    if settings.db_secret_arn:
        from iotpipe.aws.secrets import DatabaseSecrets

        secrets = DatabaseSecrets(aws_client("secretsmanager", settings))
        url = secrets.database_url(
            settings.db_secret_arn, settings.db_host, settings.db_port, settings.db_name
        )
        return build_store(url)
    return build_store(database_url(None, settings))


@dataclass
class IngestRuntime:
    """What the ingest function keeps across warm invocations: store, S3, contracts."""

    settings: Settings
    store: SqlStore
    objects: S3Objects
    contracts: dict[str, DataContract] = field(default_factory=dict)

    def contract_for(self, key: str) -> DataContract:
        """Return the contract of an object key (routes by prefix; cached)."""
        ref = self.settings.contract_for_key(key)
        if ref not in self.contracts:
            self.contracts[ref] = load_contract(ref)
        return self.contracts[ref]


# One runtime per thread: a Lambda container runs one invocation at a time (so this is one
# per container), and in-process concurrency (tests, local tools) never shares a connection.
_runtimes = threading.local()


def ingest_runtime() -> IngestRuntime:
    """Return this thread's ingest runtime, building it from the environment once."""
    runtime: IngestRuntime | None = getattr(_runtimes, "ingest", None)
    if runtime is None:
        from iotpipe.aws.s3 import OutputPrefixes, S3Objects

        settings = Settings.from_env()
        prefixes = OutputPrefixes(
            settings.rejected_prefix, settings.reports_prefix, settings.quarantine_prefix
        )
        objects = S3Objects(aws_client("s3", settings), prefixes, settings.output_bucket)
        runtime = IngestRuntime(settings, store_from_settings(settings), objects)
        _runtimes.ingest = runtime
    return runtime


def use_ingest_runtime(runtime: IngestRuntime | None) -> None:
    """Install (or, with None, forget) this thread's ingest runtime: for tests, local tools."""
    current: IngestRuntime | None = getattr(_runtimes, "ingest", None)
    if current is not None and runtime is not current:
        current.store.close()
    _runtimes.ingest = runtime


@dataclass
class RetrieveRuntime:
    """What the retrieval function keeps across warm invocations."""

    store: SqlStore
    cursors: CursorCodec
    dataset: str


def retrieve_runtime() -> RetrieveRuntime:
    """Return this thread's retrieval runtime, building it from the environment once."""
    runtime: RetrieveRuntime | None = getattr(_runtimes, "retrieve", None)
    if runtime is None:
        from iotpipe.retrieve import CursorCodec

        settings = Settings.from_env()
        runtime = RetrieveRuntime(
            store_from_settings(settings),
            CursorCodec(settings.cursor_secret),
            default_dataset(settings),
        )
        _runtimes.retrieve = runtime
    return runtime


def use_retrieve_runtime(runtime: RetrieveRuntime | None) -> None:
    """Install (or, with None, forget) this thread's retrieval runtime."""
    current: RetrieveRuntime | None = getattr(_runtimes, "retrieve", None)
    if current is not None and runtime is not current:
        current.store.close()
    _runtimes.retrieve = runtime


def default_dataset(settings: Settings) -> str:
    """Return the name of the configured default dataset (``IOTPIPE_CONTRACT``)."""
    ref = settings.contract
    return load_contract(ref).name if ref.endswith((".yaml", ".yml")) else ref
