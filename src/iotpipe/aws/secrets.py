"""Database credentials from Secrets Manager, cached across warm invocations."""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import quote

from iotpipe.errors import StorageError

CACHE_SECONDS = 900.0


class DatabaseSecrets:
    """Build a MySQL URL from an RDS-style secret (username, password[, host, port, dbname]).

    Secrets that RDS manages (``ManageMasterUserPassword``) hold only the user name and
    password, so host, port and database may come from settings instead.

    Parameters
    ----------
    client
        A boto3 Secrets Manager client.
    ttl
        Seconds to keep a secret before fetching it again (rotation).
    """

    def __init__(self, client: Any, ttl: float = CACHE_SECONDS) -> None:
        self._client = client
        self._ttl = ttl
        self._cache: dict[str, tuple[float, dict[str, Any]]] = {}

    def secret(self, arn: str) -> dict[str, Any]:
        """Return the secret's JSON document (cached)."""
        now = time.monotonic()
        hit = self._cache.get(arn)
        if hit is not None and now - hit[0] < self._ttl:
            return hit[1]
        raw = self._client.get_secret_value(SecretId=arn)["SecretString"]
        try:
            document = json.loads(raw)
        except ValueError as exc:
            raise StorageError(f"the database secret {arn} is not JSON") from exc
        self._cache[arn] = (now, document)
        return dict(document)

    def database_url(
        self, arn: str, host: str | None, port: int | None, database: str | None
    ) -> str:
        """Return ``mysql://user:password@host:port/database`` for the secret.

        Raises
        ------
        StorageError
            When neither the secret nor the settings name a host.
        """
        doc = self.secret(arn)
        host = doc.get("host") or host
        if not host:
            raise StorageError("the database secret has no host; set IOTPIPE_DB_HOST")
        user = quote(str(doc.get("username", "")), safe="")
        password = quote(str(doc.get("password", "")), safe="")
        port = int(doc.get("port") or port or 3306)
        name = doc.get("dbname") or database or "iotpipe"
        return f"mysql://{user}:{password}@{host}:{port}/{name}"
