"""Settings from the environment: every environment variable iotpipe reads is named here."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from iotpipe.contract import DataContract, load_contract

ENV_DATABASE_URL = "IOTPIPE_DATABASE_URL"
ENV_DB_SECRET_ARN = "IOTPIPE_DB_SECRET_ARN"
ENV_CONTRACT = "IOTPIPE_CONTRACT"
ENV_AWS_ENDPOINT_URL = "AWS_ENDPOINT_URL"
ENV_CURSOR_SECRET = "IOTPIPE_CURSOR_SECRET"
# Only for local use: deployments set IOTPIPE_CURSOR_SECRET (the template generates one).
DEV_CURSOR_SECRET = "iotpipe-local-cursor-secret"
DEFAULT_CONTRACT = "acme_usage"
DEFAULT_SQLITE_PATH = Path("iotpipe.db")  # in the working directory


@dataclass(frozen=True)
class Settings:
    """Configuration of one process (a Lambda container or a CLI run)."""

    database_url: str | None = None
    db_secret_arn: str | None = None
    contract: str = DEFAULT_CONTRACT
    aws_endpoint_url: str | None = None
    cursor_secret: str = DEV_CURSOR_SECRET

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
        )


def resolve_contract(ref: str | None, settings: Settings | None = None) -> DataContract:
    """Load the contract named on the command line, else ``IOTPIPE_CONTRACT``, else the default.

    Parameters
    ----------
    ref
        A path or shipped contract name, or None.
    settings
        Settings to fall back on (read from the environment when None).

    Returns
    -------
    DataContract
        The validated contract.
    """
    settings = settings or Settings.from_env()
    return load_contract(ref or settings.contract)
