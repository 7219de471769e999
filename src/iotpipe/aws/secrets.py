"""Database credentials from Secrets Manager (read once per container, when its store is built)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from iotpipe.errors import StorageError


class DatabaseSecrets:
    """Build a MySQL URL from an RDS-style secret (username, password[, host, port, dbname]).

    Secrets that RDS manages (``ManageMasterUserPassword``) hold only the user name and
    password, so host, port and database may come from settings instead.

    Parameters
    ----------
    client
        A boto3 Secrets Manager client.
    """

    def __init__(self, client: Any) -> None:
        self._client = client

    def secret(self, arn: str) -> dict[str, Any]:
        """Return the secret's JSON document."""
        raw = self._client.get_secret_value(SecretId=arn)["SecretString"]
        try:
            document = json.loads(raw)
        except ValueError as exc:
            raise StorageError(f"the database secret {arn} is not JSON") from exc
        if not isinstance(document, dict):
            raise StorageError(f"the database secret {arn} is not a JSON object")
        return document

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
