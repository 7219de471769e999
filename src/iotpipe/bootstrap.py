"""The one place that builds adapters from configuration (never at import time)."""

from __future__ import annotations

from pathlib import Path

from iotpipe.config import DEFAULT_SQLITE_PATH, Settings
from iotpipe.errors import StorageError
from iotpipe.storage.base import SqlStore


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
