"""Settings from the environment: every environment variable iotpipe reads is named here.

`iotpipe.bootstrap` reads them once per runtime and applies a driver's overrides on top.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from iotpipe.errors import ContractError

ENV_DATABASE_URL = "IOTPIPE_DATABASE_URL"
ENV_DB_SECRET_ARN = "IOTPIPE_DB_SECRET_ARN"
ENV_CONTRACT = "IOTPIPE_CONTRACT"
ENV_AWS_ENDPOINT_URL = "AWS_ENDPOINT_URL"
ENV_CURSOR_SECRET = "IOTPIPE_CURSOR_SECRET"
ENV_CONTRACT_ROUTES = "IOTPIPE_CONTRACT_ROUTES"  # "prefix/=contract;other/=contract2"
ENV_DB_HOST = "IOTPIPE_DB_HOST"  # with IOTPIPE_DB_SECRET_ARN when the secret has no host
ENV_DB_PORT = "IOTPIPE_DB_PORT"
ENV_DB_NAME = "IOTPIPE_DB_NAME"
ENV_OUTPUT_BUCKET = "IOTPIPE_OUTPUT_BUCKET"
ENV_REJECTED_PREFIX = "IOTPIPE_REJECTED_PREFIX"
ENV_REPORTS_PREFIX = "IOTPIPE_REPORTS_PREFIX"
ENV_QUARANTINE_PREFIX = "IOTPIPE_QUARANTINE_PREFIX"
ENV_BATCH_ROWS = "IOTPIPE_BATCH_ROWS"
# Rows per batch (also `iotpipe.readers.DEFAULT_BATCH_ROWS`): a whole 8 MB chunk of a
# typical CSV (70,000 rows of 120 bytes) is one batch; cleaning a batch costs about 10 ms
# besides its rows (docs/benchmarks.md, twelfth round).
BATCH_ROWS = 100_000
ENV_INPUT_BUCKETS = "IOTPIPE_INPUT_BUCKETS"  # comma-separated; empty: any bucket
ENV_INPUT_PREFIX = "IOTPIPE_INPUT_PREFIX"
ENV_DB_SSL_CA = "IOTPIPE_DB_SSL_CA"  # CA bundle for TLS to MySQL; "rds" = the shipped RDS CAs
ENV_DB_IAM_USER = "IOTPIPE_DB_IAM_USER"  # connect as this user with RDS IAM tokens (RDS Proxy)
ENV_CURSOR_SECRET_ARN = "IOTPIPE_CURSOR_SECRET_ARN"  # read at runtime, never put in the env
# The retrieval function's reader (a replica or an Aurora reader endpoint). A URL without a
# user takes its credentials from the function's secret (or IAM user), never from the env.
ENV_READ_DATABASE_URL = "IOTPIPE_READ_DATABASE_URL"
# The admin function's schema step: the users it creates, each with its own secret.
ENV_INGEST_USER_SECRET_ARN = "IOTPIPE_INGEST_USER_SECRET_ARN"
ENV_READ_USER_SECRET_ARN = "IOTPIPE_READ_USER_SECRET_ARN"
# Only for local use: deployments set IOTPIPE_CURSOR_SECRET_ARN (the template generates one).
DEV_CURSOR_SECRET = "iotpipe-local-cursor-secret"
DEFAULT_CONTRACT = "acme_usage"
# What a deployed function needs set (template.yaml sets them; a test checks it does).
LAMBDA_ENV = (ENV_DB_SECRET_ARN, ENV_DB_HOST, ENV_DB_PORT, ENV_DB_NAME, ENV_CONTRACT)
INGEST_LAMBDA_ENV = (*LAMBDA_ENV, ENV_INPUT_BUCKETS, ENV_INPUT_PREFIX)
RETRIEVE_LAMBDA_ENV = (*LAMBDA_ENV, ENV_CURSOR_SECRET_ARN)
ADMIN_LAMBDA_ENV = (*LAMBDA_ENV, ENV_INGEST_USER_SECRET_ARN, ENV_READ_USER_SECRET_ARN)
DEFAULT_SQLITE_PATH = Path("iotpipe.db")  # in the working directory


@dataclass(frozen=True)
class Settings:
    """Configuration of one process (a Lambda container or a CLI run)."""

    database_url: str | None = None
    db_secret_arn: str | None = None
    contract: str = DEFAULT_CONTRACT
    aws_endpoint_url: str | None = None
    cursor_secret: str = DEV_CURSOR_SECRET
    contract_routes: tuple[tuple[str, str], ...] = ()
    db_host: str | None = None
    db_port: int | None = None
    db_name: str | None = None
    output_bucket: str | None = None
    rejected_prefix: str = "rejected/"
    reports_prefix: str = "reports/"
    quarantine_prefix: str = "quarantine/"
    batch_rows: int = BATCH_ROWS
    input_buckets: tuple[str, ...] = ()
    input_prefix: str = "incoming/"
    db_ssl_ca: str | None = None
    db_iam_user: str | None = None
    cursor_secret_arn: str | None = None
    ingest_user_secret_arn: str | None = None
    read_user_secret_arn: str | None = None
    read_database_url: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read settings from ``environ`` (``os.environ`` by default).

        Parameters
        ----------
        environ
            The environment.

        Returns
        -------
        Settings
            Empty values count as unset.
        """
        env = os.environ if environ is None else environ
        return cls(
            database_url=env.get(ENV_DATABASE_URL) or None,
            db_secret_arn=env.get(ENV_DB_SECRET_ARN) or None,
            contract=env.get(ENV_CONTRACT) or DEFAULT_CONTRACT,
            aws_endpoint_url=env.get(ENV_AWS_ENDPOINT_URL) or None,
            cursor_secret=env.get(ENV_CURSOR_SECRET) or DEV_CURSOR_SECRET,
            contract_routes=_routes(env.get(ENV_CONTRACT_ROUTES, "")),
            db_host=env.get(ENV_DB_HOST) or None,
            db_port=int(env[ENV_DB_PORT]) if env.get(ENV_DB_PORT) else None,
            db_name=env.get(ENV_DB_NAME) or None,
            output_bucket=env.get(ENV_OUTPUT_BUCKET) or None,
            rejected_prefix=env.get(ENV_REJECTED_PREFIX) or "rejected/",
            reports_prefix=env.get(ENV_REPORTS_PREFIX) or "reports/",
            quarantine_prefix=env.get(ENV_QUARANTINE_PREFIX) or "quarantine/",
            batch_rows=int(env.get(ENV_BATCH_ROWS) or BATCH_ROWS),
            input_buckets=tuple(
                b.strip() for b in env.get(ENV_INPUT_BUCKETS, "").split(",") if b.strip()
            ),
            input_prefix=env.get(ENV_INPUT_PREFIX, "incoming/"),
            db_ssl_ca=env.get(ENV_DB_SSL_CA) or None,
            db_iam_user=env.get(ENV_DB_IAM_USER) or None,
            cursor_secret_arn=env.get(ENV_CURSOR_SECRET_ARN) or None,
            ingest_user_secret_arn=env.get(ENV_INGEST_USER_SECRET_ARN) or None,
            read_user_secret_arn=env.get(ENV_READ_USER_SECRET_ARN) or None,
            read_database_url=env.get(ENV_READ_DATABASE_URL) or None,
        )


def _routes(text: str) -> tuple[tuple[str, str], ...]:
    routes = []
    for item in filter(None, (part.strip() for part in text.split(";"))):
        prefix, sep, ref = item.partition("=")
        if not sep or not ref.strip():
            raise ContractError(ENV_CONTRACT_ROUTES, f"{item!r} is not prefix=contract")
        routes.append((prefix.strip(), ref.strip()))
    return tuple(routes)
