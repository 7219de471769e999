"""Database credentials from Secrets Manager or IAM, read when a connection is opened.

A deployed function never holds a password in its environment: it holds the ARN of a secret
(``IOTPIPE_DB_SECRET_ARN``) and reads it through the Secrets Manager client. The document is
kept for the container's life and read again, uncached, when the database refuses it: an RDS
managed secret rotates every 7 days, and the next reconnect must use the new password.
With ``IOTPIPE_DB_IAM_USER`` the password is an RDS IAM authentication token instead (through
RDS Proxy with ``IAMAuth: REQUIRED``), generated for each connection (valid 15 minutes).
"""

from __future__ import annotations

import json
import threading
from typing import Any

from iotpipe.errors import StorageError
from iotpipe.storage.mysql import RDS_CA_BUNDLE, MySQLParams


def secret_document(client: Any, arn: str) -> dict[str, Any]:
    """Return a secret's JSON document (read from Secrets Manager, never cached here)."""
    raw = client.get_secret_value(SecretId=arn)["SecretString"]
    try:
        document = json.loads(raw)
    except ValueError as exc:
        raise StorageError(f"the secret {arn} is not JSON") from exc
    if not isinstance(document, dict):
        raise StorageError(f"the secret {arn} is not a JSON object")
    return document


class SecretCredentials:
    """The user name and password of an RDS-style secret; read again on ``refresh``.

    Parameters
    ----------
    client
        A boto3 Secrets Manager client.
    arn
        The secret's ARN (or name).
    """

    def __init__(self, client: Any, arn: str) -> None:
        self._client = client
        self.arn = arn
        self._lock = threading.Lock()
        self._document: dict[str, Any] | None = None

    def document(self, *, refresh: bool = False) -> dict[str, Any]:
        """Return the secret's document: the one read before, or a fresh one."""
        with self._lock:
            if self._document is None or refresh:
                self._document = secret_document(self._client, self.arn)
            return self._document

    def get(self, *, refresh: bool = False) -> tuple[str, str]:
        """Return (user, password) from the secret."""
        doc = self.document(refresh=refresh)
        user, password = doc.get("username"), doc.get("password")
        if not user or password is None:
            raise StorageError(f"the database secret {self.arn} has no username and password")
        return str(user), str(password)


class IamTokenCredentials:
    """An RDS IAM authentication token as the password, made for every connection.

    Parameters
    ----------
    client
        A boto3 RDS client (``generate_db_auth_token`` signs locally; no network call).
    host, port, user
        What the token is for: the proxy (or instance) endpoint and the database user.
    """

    def __init__(self, client: Any, host: str, port: int, user: str) -> None:
        self._client = client
        self._host, self._port, self._user = host, port, user

    def get(self, *, refresh: bool = False) -> tuple[str, str]:
        """Return (user, a new token); a token is never reused, so ``refresh`` changes nothing."""
        token = self._client.generate_db_auth_token(
            DBHostname=self._host, Port=self._port, DBUsername=self._user
        )
        return self._user, str(token)


def params_from_secret(
    credentials: SecretCredentials,
    host: str | None,
    port: int | None,
    database: str | None,
    ssl_ca: str | None = None,
) -> MySQLParams:
    """Return connection parameters for a secret: TLS with verification, always.

    Secrets that RDS manages (``ManageMasterUserPassword``) hold only the user name and
    password, so host, port and database may come from settings instead (the settings win
    for the host: it may be RDS Proxy's endpoint in front of the instance the secret names).

    Raises
    ------
    StorageError
        When neither the settings nor the secret name a host.
    """
    doc = credentials.document()
    host = host or doc.get("host")
    if not host:
        raise StorageError("the database secret has no host; set IOTPIPE_DB_HOST")
    return MySQLParams(
        host=str(host),
        port=int(port or doc.get("port") or 3306),
        database=str(database or doc.get("dbname") or "iotpipe"),
        ssl_ca=ssl_ca or RDS_CA_BUNDLE,
        credentials=credentials,
    )
