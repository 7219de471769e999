"""The schema step of a deployment: tables for the configured contracts, one user per function.

A deployed database lives in private subnets that only the functions reach, so this runs
inside the VPC, as the admin function (``{"action": "init"}``, docs/deploy.md) with the master
user's secret; ``iotpipe db init`` does the table part from anywhere that reaches the database.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from iotpipe import bootstrap
from iotpipe.config import Settings
from iotpipe.errors import StorageError

ROLES = ("ingest", "read")


@dataclass(frozen=True)
class InitResult:
    """What the schema step made sure of."""

    tables: tuple[str, ...]
    users: tuple[tuple[str, str], ...]  # (user, role)

    def to_dict(self) -> dict[str, Any]:
        """Return the result as JSON-ready data."""
        return {
            "tables": list(self.tables),
            "users": [{"user": user, "role": role} for user, role in self.users],
        }


def init_database(settings: Settings) -> InitResult:
    """Create the tables of every configured contract and the functions' users.

    Parameters
    ----------
    settings
        The admin connection (``IOTPIPE_DB_SECRET_ARN``: the master user), the contracts
        (``IOTPIPE_CONTRACT``, ``IOTPIPE_CONTRACT_ROUTES``) and the users' secrets
        (``IOTPIPE_INGEST_USER_SECRET_ARN``, ``IOTPIPE_READ_USER_SECRET_ARN``).

    Returns
    -------
    InitResult
        The tables and users; running it again changes nothing but rotated passwords.
    """
    from iotpipe.aws.secrets import SecretCredentials

    catalog = bootstrap.ContractCatalog(settings)
    refs = sorted({settings.contract, *(ref for _, ref in settings.contract_routes)})
    user_secrets = [
        (arn, role)
        for arn, role in zip(
            (settings.ingest_user_secret_arn, settings.read_user_secret_arn), ROLES, strict=True
        )
        if arn
    ]
    store = bootstrap.store_for(settings)
    try:
        tables = []
        for ref in refs:
            contract = catalog.get(ref)
            store.ensure_schema(contract)
            tables.append(contract.table)
        users = []
        if user_secrets:
            from iotpipe.storage.mysql import MySQLStore, ensure_user

            if not isinstance(store, MySQLStore):
                raise StorageError("database users can only be created on MySQL")
            for arn, role in user_secrets:
                secrets = bootstrap.aws_client("secretsmanager", settings)
                user, password = SecretCredentials(secrets, arn).get()
                ensure_user(store.db, user, password, role)
                users.append((user, role))
    finally:
        store.close()
    return InitResult(tuple(tables), tuple(users))
