"""The composition root: every adapter is built here, from one `Settings` (never at import time).

The drivers (both Lambda handlers, the CLI, ``iotpipe serve``, ``local up`` and the demo) take
what they need from here. Settings come from the environment (`Settings.from_env`); a driver
with settings of its own (a command-line flag, a local stack's endpoint) passes them to
`configure` as overrides, and every runtime built afterwards uses them. Nothing writes
``os.environ`` to pass a setting (docs/architecture.md, "Composition").

One order chooses the database: the URL given (``--database-url`` or ``IOTPIPE_DATABASE_URL``),
else the Secrets Manager secret (``IOTPIPE_DB_SECRET_ARN``) or RDS IAM tokens
(``IOTPIPE_DB_IAM_USER``) over verified TLS, else the embedded SQLite file.
One `ContractCatalog` chooses the contract: the one named, else the longest key-prefix route
(``IOTPIPE_CONTRACT_ROUTES``), else ``IOTPIPE_CONTRACT``, else ``acme_usage``.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import parse_qs, urlsplit

from iotpipe.config import DEFAULT_SQLITE_PATH, Settings
from iotpipe.contract import DataContract, load_contract
from iotpipe.errors import StorageError
from iotpipe.storage.store import SqlStore

if TYPE_CHECKING:
    from iotpipe.aws.s3 import S3Objects
    from iotpipe.retrieve import CursorCodec
    from iotpipe.storage.mysql import MySQLParams

ClientFactory = Callable[[str], Any]  # service name -> boto3 client


@dataclass(frozen=True)
class _Overrides:
    values: dict[str, Any] = dataclasses.field(default_factory=dict)
    generation: int = 0


_overrides = _Overrides()
_lock = threading.Lock()
AWS_CLIENT = "aws_client"  # the override that builds boto3 clients (a `ClientFactory`)


def configure(**changes: Any) -> None:
    """Change the overrides every runtime is built with from now on.

    Parameters
    ----------
    **changes
        `Settings` fields to use instead of the environment's, and ``aws_client``: a
        `ClientFactory` (a local stack points boto3 at its own server). None removes an
        override (the environment's value applies again).
    """
    global _overrides  # noqa: PLW0603 (the process's one composition state)
    unknown = set(changes) - {f.name for f in dataclasses.fields(Settings)} - {AWS_CLIENT}
    if unknown:
        raise TypeError(f"not settings: {', '.join(sorted(unknown))}")
    with _lock:
        merged = {**_overrides.values, **changes}
        _overrides = _Overrides(
            {k: v for k, v in merged.items() if v is not None}, _overrides.generation + 1
        )


@contextmanager
def configured(**changes: Any) -> Iterator[None]:
    """Apply `configure` changes for the length of a block, then restore what was before."""
    global _overrides  # noqa: PLW0603 (the process's one composition state)
    previous = _overrides.values
    configure(**changes)
    try:
        yield
    finally:
        with _lock:
            _overrides = _Overrides(previous, _overrides.generation + 1)


def current_settings(**changes: Any) -> Settings:
    """Return the environment's settings with the configured overrides, then ``changes``."""
    values: dict[str, Any] = {}
    for layer in (_overrides.values, {k: v for k, v in changes.items() if v is not None}):
        values.update({k: v for k, v in layer.items() if k != AWS_CLIENT})
        if layer.get("database_url") and "read_database_url" not in layer:
            values["read_database_url"] = None  # a driver named the database: read it there
    return dataclasses.replace(Settings.from_env(), **values)


# --------------------------------------------------------------------------------------------
# Adapters
# --------------------------------------------------------------------------------------------


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


def store_for(settings: Settings) -> SqlStore:
    """Build the store the settings choose.

    The URL given, else MySQL with the credentials of ``IOTPIPE_DB_SECRET_ARN`` (or RDS IAM
    tokens for ``IOTPIPE_DB_IAM_USER``) over TLS with verification, else the SQLite file.
    """
    if settings.database_url:
        return build_store(settings.database_url)
    params = mysql_params(settings)
    if params is None:
        return build_store(f"sqlite:///{DEFAULT_SQLITE_PATH}")
    from iotpipe.storage.mysql import MySQLStore

    return MySQLStore(params)


def read_store_for(settings: Settings) -> SqlStore:
    """Build the retrieval store: the reader ``IOTPIPE_READ_DATABASE_URL`` names, else `store_for`.

    A reader URL with a user is used as it is. Without one (``mysql://reader-host:3306/db``,
    what a deployment sets), the connection takes the function's credentials - its secret or
    its IAM user - and its TLS settings, with the reader's host, port and database.
    """
    url = settings.read_database_url
    if not url:
        return store_for(settings)
    parts = urlsplit(url)
    deployed = settings.db_secret_arn or settings.db_iam_user
    if parts.scheme == "sqlite" or parts.username or not deployed:
        return build_store(url)
    from iotpipe.storage.mysql import MySQLStore

    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    reader = dataclasses.replace(
        settings,
        database_url=None,
        db_host=parts.hostname,
        db_port=parts.port or settings.db_port,
        db_name=parts.path.lstrip("/") or settings.db_name,
        db_ssl_ca=query.get("ssl_ca") or settings.db_ssl_ca,
    )
    params = mysql_params(reader)
    if params is None:  # unreachable: a secret or an IAM user is set
        raise StorageError("the reader URL has no user and the function no credentials")
    return MySQLStore(params)


def mysql_params(settings: Settings, secret_arn: str | None = None) -> MySQLParams | None:
    """Return the parameters of a deployed function's MySQL connection (None: not deployed).

    Parameters
    ----------
    settings
        ``db_secret_arn`` or ``db_iam_user``, and ``db_host``/``db_port``/``db_name``/
        ``db_ssl_ca``.
    secret_arn
        Another secret than ``db_secret_arn`` (the admin step connects as each user it made).
    """
    from iotpipe.aws.secrets import IamTokenCredentials, SecretCredentials, params_from_secret
    from iotpipe.storage.mysql import RDS_CA_BUNDLE, MySQLParams

    if settings.db_iam_user and secret_arn is None:
        if not settings.db_host:
            raise StorageError("IOTPIPE_DB_IAM_USER needs IOTPIPE_DB_HOST")
        port = settings.db_port or 3306
        tokens = IamTokenCredentials(
            aws_client("rds", settings), settings.db_host, port, settings.db_iam_user
        )
        return MySQLParams(
            host=settings.db_host,
            port=port,
            database=settings.db_name or "iotpipe",
            ssl_ca=settings.db_ssl_ca or RDS_CA_BUNDLE,
            credentials=tokens,
        )
    arn = secret_arn or settings.db_secret_arn
    if not arn:
        return None
    credentials = SecretCredentials(aws_client("secretsmanager", settings), arn)
    return params_from_secret(
        credentials, settings.db_host, settings.db_port, settings.db_name, settings.db_ssl_ca
    )


def describe_database(settings: Settings, store: SqlStore) -> str:
    """Say which database a store built by `store_for` is, without a password (for messages).

    From the store itself: building the description again would read the secret again.
    """
    if settings.database_url:
        return redact(settings.database_url)
    params = getattr(store, "params", None)  # MySQL's connection parameters (no password)
    return repr(params) if params is not None else f"sqlite:///{DEFAULT_SQLITE_PATH}"


def redact(url: str) -> str:
    """Return a database URL with its password masked, for messages and logs."""
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    credentials, host = rest.rsplit("@", 1)
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}"


# Short timeouts and bounded retries: a function in a VPC without a route to S3 or Secrets
# Manager fails within seconds (and says so) instead of hanging until its own timeout.
AWS_CONNECT_TIMEOUT_SECONDS = 3.0
AWS_READ_TIMEOUT_SECONDS = {"s3": 30.0}  # a streaming read waits for the next bytes
AWS_DEFAULT_READ_TIMEOUT_SECONDS = 10.0
AWS_MAX_ATTEMPTS = 3


def aws_config(service: str) -> Any:
    """Return the botocore `Config` iotpipe's clients of ``service`` use."""
    from botocore.config import Config

    return Config(
        connect_timeout=AWS_CONNECT_TIMEOUT_SECONDS,
        read_timeout=AWS_READ_TIMEOUT_SECONDS.get(service, AWS_DEFAULT_READ_TIMEOUT_SECONDS),
        retries={"max_attempts": AWS_MAX_ATTEMPTS, "mode": "standard"},
    )


def aws_client(service: str, settings: Settings) -> Any:
    """Build a boto3 client: the configured factory's, else one for ``AWS_ENDPOINT_URL``."""
    factory: ClientFactory | None = _overrides.values.get(AWS_CLIENT)
    if factory is not None:
        return factory(service)
    import boto3

    return boto3.client(service, endpoint_url=settings.aws_endpoint_url, config=aws_config(service))


def cursor_secret(settings: Settings) -> str:
    """Return the key that signs paging cursors: read from its secret at runtime when deployed."""
    if not settings.cursor_secret_arn:
        return settings.cursor_secret
    client = aws_client("secretsmanager", settings)
    value = client.get_secret_value(SecretId=settings.cursor_secret_arn)["SecretString"]
    if not value:
        raise StorageError(f"the cursor secret {settings.cursor_secret_arn} is empty")
    return str(value)


def object_source(settings: Settings) -> S3Objects:
    """Build the S3 adapter with the configured output bucket and prefixes."""
    from iotpipe.aws.s3 import OutputPrefixes, S3Objects

    prefixes = OutputPrefixes(
        settings.rejected_prefix, settings.reports_prefix, settings.quarantine_prefix
    )
    return S3Objects(aws_client("s3", settings), prefixes, settings.output_bucket)


class ContractCatalog:
    """Choose (and cache) contracts: the one named, a key-prefix route, or the default.

    Parameters
    ----------
    settings
        ``contract`` (``IOTPIPE_CONTRACT``) and ``contract_routes`` (``IOTPIPE_CONTRACT_ROUTES``).
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._loaded: dict[str, DataContract] = {}

    def get(self, ref: str | None = None) -> DataContract:
        """Return the contract a path or shipped name refers to (default: the configured one)."""
        ref = ref or self._settings.contract
        if ref not in self._loaded:
            self._loaded[ref] = load_contract(ref)
        return self._loaded[ref]

    def for_key(self, key: str) -> DataContract:
        """Return the contract of an object key: the longest matching route, else the default."""
        routes = [(p, ref) for p, ref in self._settings.contract_routes if key.startswith(p)]
        return self.get(max(routes, key=lambda r: len(r[0]))[1] if routes else None)

    @property
    def default_dataset(self) -> str:
        """The name of the configured default dataset (a shipped name is the dataset name)."""
        ref = self._settings.contract
        return self.get(ref).name if ref.endswith((".yaml", ".yml")) else ref


# --------------------------------------------------------------------------------------------
# Runtimes: what a function keeps across warm invocations
# --------------------------------------------------------------------------------------------


@dataclass
class IngestRuntime:
    """What the ingest function keeps across warm invocations: store, S3, contracts."""

    settings: Settings
    store: SqlStore
    objects: S3Objects
    contracts: ContractCatalog
    generation: int = 0

    def ignores(self, bucket: str, key: str) -> str | None:
        """Say why an announced object is not for this function (None: ingest it)."""
        settings = self.settings
        if settings.input_buckets and bucket not in settings.input_buckets:
            return f"bucket {bucket!r} is not an input bucket ({', '.join(settings.input_buckets)})"
        if self.objects.prefixes.owns(key):
            return "one of iotpipe's own outputs"
        if not key.startswith(settings.input_prefix):
            return f"key is outside the input prefix {settings.input_prefix!r}"
        return None


@dataclass
class RetrieveRuntime:
    """What the retrieval function keeps across warm invocations."""

    store: SqlStore
    cursors: CursorCodec
    dataset: str
    generation: int = 0


def build_ingest_runtime(
    settings: Settings | None = None,
    *,
    store: SqlStore | None = None,
    objects: S3Objects | None = None,
) -> IngestRuntime:
    """Build the ingest function's runtime; the keyword arguments replace an adapter."""
    settings = settings or current_settings()
    return IngestRuntime(
        settings,
        store or store_for(settings),
        objects or object_source(settings),
        ContractCatalog(settings),
        _overrides.generation,
    )


def build_retrieve_runtime(
    settings: Settings | None = None, *, store: SqlStore | None = None
) -> RetrieveRuntime:
    """Build the retrieval function's runtime; ``store`` replaces the configured one."""
    from iotpipe.retrieve import CursorCodec

    settings = settings or current_settings()
    return RetrieveRuntime(
        store or read_store_for(settings),
        CursorCodec(cursor_secret(settings)),
        ContractCatalog(settings).default_dataset,
        _overrides.generation,
    )


R = TypeVar("R", IngestRuntime, RetrieveRuntime)

# One runtime per thread: a Lambda container runs one invocation at a time (so this is one
# per container), and in-process concurrency (tests, local tools) never shares a connection.
# A runtime built before the last `configure` is rebuilt.
_runtimes = threading.local()


def ingest_runtime() -> IngestRuntime:
    """Return this thread's ingest runtime, building it once (and again after `configure`)."""
    return _runtime("ingest", build_ingest_runtime)


def use_ingest_runtime(runtime: IngestRuntime | None) -> None:
    """Install (or, with None, forget) this thread's ingest runtime: for tests, local tools."""
    _install("ingest", runtime)


def retrieve_runtime() -> RetrieveRuntime:
    """Return this thread's retrieval runtime, building it once (and again after `configure`)."""
    return _runtime("retrieve", build_retrieve_runtime)


def use_retrieve_runtime(runtime: RetrieveRuntime | None) -> None:
    """Install (or, with None, forget) this thread's retrieval runtime."""
    _install("retrieve", runtime)


def _runtime(kind: str, build: Callable[[], R]) -> R:
    runtime: R | None = getattr(_runtimes, kind, None)
    if runtime is None or runtime.generation != _overrides.generation:
        runtime = build()
        _install(kind, runtime)
    return runtime


def _install(kind: str, runtime: IngestRuntime | RetrieveRuntime | None) -> None:
    current: IngestRuntime | RetrieveRuntime | None = getattr(_runtimes, kind, None)
    if current is not None and runtime is not current:
        current.store.close()
    if runtime is not None:
        runtime.generation = _overrides.generation
    setattr(_runtimes, kind, runtime)
