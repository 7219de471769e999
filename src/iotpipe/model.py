"""The values and ports the layers share (docs/architecture.md, "Ports").

Values: object versions, claims, ledger entries, announced objects, rejected rows. Ports: the
store, the category dictionary, reject sinks and object sources. Stdlib only: the retrieval
function imports this module, and it must stay lean (no Polars).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:  # Polars is the ingest engine; retrieval never imports it
    import polars as pl

    from iotpipe.contract import DataContract
    from iotpipe.stats import NumericStats

ClaimStatus = Literal["claimed", "skipped", "busy"]


@dataclass(frozen=True)
class ObjectRef:
    """One version of one source object: what the ledger keys on.

    Attributes
    ----------
    source
        ``s3://bucket/key`` or ``file:///absolute/path``.
    version
        The S3 ETag (plus version id when the bucket is versioned) or a content hash.
    size
        Bytes, when known.
    """

    source: str
    version: str
    size: int | None = None


def ledger_id(ref: ObjectRef, dataset: str) -> str:
    """Return the ledger key of an object version loaded into a dataset.

    The same bytes loaded into two datasets (two contracts, or a contract fixed after a
    failed load into a new one) are two ledger entries. The key is a fixed-length hash: S3
    keys can be 1 KB, too long to index.
    """
    return hashlib.sha256(f"{ref.source}\n{ref.version}\n{dataset}".encode()).hexdigest()


@dataclass(frozen=True)
class Claim:
    """The outcome of claiming an object version for a dataset in the ledger."""

    status: ClaimStatus
    ref: ObjectRef
    owner: str
    attempts: int = 0
    dataset: str = ""

    @property
    def object_id(self) -> str:
        """The ledger key (`ledger_id`)."""
        return ledger_id(self.ref, self.dataset)


@dataclass(frozen=True)
class LedgerEntry:
    """A ledger row."""

    object_id: str
    dataset: str
    source: str
    version: str
    status: str
    owner: str | None
    lease_until: dt.datetime | None
    attempts: int
    rows_read: int | None
    rows_loaded: int | None
    rows_rejected: int | None
    error: str | None
    report: dict[str, Any] | None
    claimed_at: dt.datetime | None
    finished_at: dt.datetime | None


@dataclass(frozen=True)
class AnnouncedObject:
    """An S3 object version an event (or an ``s3://`` URL) announced."""

    bucket: str
    key: str
    etag: str | None = None
    version_id: str | None = None
    size: int | None = None

    @property
    def version(self) -> str | None:
        """The ledger version: ETag, plus the version id on versioned buckets."""
        if self.etag is None:
            return None
        return f"{self.etag}#{self.version_id}" if self.version_id else self.etag

    @property
    def url(self) -> str:
        """``s3://bucket/key``."""
        return f"s3://{self.bucket}/{self.key}"


@dataclass(frozen=True)
class ReadingsQuery:
    """A validated retrieval query: one device, an inclusive range, one page.

    Attributes
    ----------
    device_id
        The device.
    start, end
        Naive UTC bounds, both inclusive.
    limit
        Rows per page.
    dataset
        The dataset (contract) name.
    after
        Keyset position: the page holds rows with ``ts > after`` (None: the first page).
    """

    device_id: str
    start: dt.datetime
    end: dt.datetime
    limit: int
    dataset: str
    after: dt.datetime | None = None


@dataclass(frozen=True)
class Bucket:
    """The rows of one device in ``[start, start + width)``, summarised.

    ``stats`` maps each numeric field to its JSON-ready figures ``{"count", "mean", "min",
    "max"}`` (nulls ignored; None when the count is 0; an integer field's min and max are
    ints; never a non-finite float). They are built once, in the shape the body carries: a
    30-day range at one hour is 720 buckets of every numeric field.
    """

    start: dt.datetime
    count: int
    stats: Mapping[str, Mapping[str, Any]]


@dataclass(frozen=True)
class DatasetSummary:
    """A registered dataset: its table, fields and the time span of its rows."""

    name: str
    table: str
    fields: tuple[tuple[str, str], ...]  # (name, type)
    first: dt.datetime | None
    last: dt.datetime | None


@dataclass(frozen=True)
class DeviceSpan:
    """A device of a dataset and the time span of its rows."""

    device_id: str
    first: dt.datetime
    last: dt.datetime


@dataclass(frozen=True)
class RejectedRow:
    """A row that will not be loaded, with why and what it was.

    Attributes
    ----------
    line
        Line number (1-based, header included) where the record starts.
    reason
        A short machine-readable reason code, for example ``invalid_timestamp``.
    detail
        A human-readable explanation.
    record
        The original record as text: a CSV line (re-quoted) or the JSON line.
    """

    line: int
    reason: str
    detail: str
    record: str


# --------------------------------------------------------------------------------------------
# Ports
# --------------------------------------------------------------------------------------------


class CategoryDictionary(Protocol):
    """Where category codes live. Implementations must never change a code once given."""

    def codes(self, dataset: str, column: str, values: Sequence[str]) -> Mapping[str, int]:
        """Return the code of every value, giving new values the next free codes.

        Parameters
        ----------
        dataset
            The contract name.
        column
            The categorical field.
        values
            Distinct normalised values, in the order new ones should be numbered.

        Returns
        -------
        Mapping[str, int]
            A code (>= 1) for every value asked for.
        """
        ...


class Loader(Protocol):
    """An open file load: one database transaction that ends committed or rolled back."""

    @property
    def spilled(self) -> bool:
        """Whether batches go to sorted runs, written by `finish`, not to the table at once."""
        ...

    @property
    def takes_clean_rows(self) -> bool:
        """Whether `upsert` takes clean rows now (it keeps runs and encodes what it merges)."""
        ...

    def upsert(self, rows: pl.DataFrame) -> int:
        """Upsert encoded rows (columns in `DataContract.output_columns` order).

        Once `takes_clean_rows`, clean rows do too (`DataContract.value_columns`, their
        category values already given codes). Returns once the rows are being written (or
        kept in a run, once `spilled`).
        """
        ...

    def finish(self, report: Mapping[str, Any]) -> None:
        """Mark the object loaded, in the same transaction as its rows."""
        ...


class Store(CategoryDictionary, Protocol):
    """What the ingest and retrieval services need from storage (`iotpipe.storage`)."""

    def ensure_schema(self, contract: DataContract) -> None:
        """Create the dataset's table (or add new columns) and register its contract."""
        ...

    def dataset(self, name: str) -> DataContract | None:
        """Return a registered dataset's contract, or None."""
        ...

    def claim(
        self, ref: ObjectRef, dataset: str, lease_seconds: float, owner: str, *, force: bool = False
    ) -> Claim:
        """Claim an object version for loading (see `iotpipe.storage.ledger.Ledger.claim`)."""
        ...

    def release(self, claim: Claim) -> None:
        """Let go of a claim's liveness lock (after each attempt, whatever its outcome)."""
        ...

    def fail(self, claim: Claim, error: str, report: Mapping[str, Any] | None) -> None:
        """Record that a claimed object failed."""
        ...

    def load(self, claim: Claim, contract: DataContract) -> Any:
        """Open a `Loader` as a context manager: commit on success, roll back on error."""
        ...

    def ledger_entry(self, ref: ObjectRef, dataset: str) -> LedgerEntry | None:
        """Return the ledger row of an object version in a dataset, if any."""
        ...

    def files(
        self, *, status: str | None = None, dataset: str | None = None, limit: int = 100
    ) -> list[LedgerEntry]:
        """Return ledger rows, the most recent first."""
        ...

    def count_and_stats(
        self, contract: DataContract, query: ReadingsQuery
    ) -> tuple[int, dict[str, NumericStats]]:
        """Row count and per-numeric-field stats over the query's whole range."""
        ...

    def page(
        self, contract: DataContract, query: ReadingsQuery, limit: int
    ) -> list[dict[str, Any]]:
        """Up to ``limit`` rows of the range after ``query.after``, ordered by ts."""
        ...

    def buckets(
        self, contract: DataContract, query: ReadingsQuery, width_seconds: int
    ) -> list[Bucket]:
        """Return the range's non-empty buckets of ``width_seconds`` (UTC-aligned)."""
        ...

    def list_datasets(self) -> list[DatasetSummary]:
        """Return every registered dataset, by name."""
        ...

    def list_devices(
        self, contract: DataContract, *, prefix: str, after: str | None, limit: int
    ) -> list[DeviceSpan]:
        """Return up to ``limit`` devices after ``after`` starting with ``prefix``, by id."""
        ...

    def category_dictionary(self, dataset: str) -> dict[str, dict[str, int]]:
        """Return the dataset's category dictionary: field -> value -> code."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


class RejectSink(Protocol):
    """Where a load's rejected rows go. ``begin`` starts (or restarts) an attempt."""

    def begin(self) -> None:
        """Forget anything written by an earlier attempt."""
        ...

    def write(self, rows: list[RejectedRow]) -> None:
        """Add a batch of rejected rows."""
        ...


class UploadingRejectSink(RejectSink, Protocol):
    """A reject sink that is published once the load commits."""

    def upload(self) -> str | None:
        """Publish the rejects; return their URL, or None when there were none."""
        ...

    def close(self) -> None:
        """Release local resources."""
        ...


class ObjectSource(Protocol):
    """Where announced objects are read and their outputs written (S3: `iotpipe.aws.s3`)."""

    def head(
        self, bucket: str, key: str, version_id: str | None = None
    ) -> tuple[str, str | None, int]:
        """Return (ETag, version id, size) of a version (the current one by default)."""
        ...

    def open(self, bucket: str, key: str, version_id: str | None = None) -> IO[bytes]:
        """Open the object as a stream."""
        ...

    def rejects_sink(self, bucket: str, key: str) -> UploadingRejectSink:
        """Return a sink for the object's rejected rows."""
        ...

    def write_report(self, bucket: str, key: str, report: dict[str, Any]) -> str:
        """Write the object's quality report; return its URL."""
        ...

    def quarantine(self, bucket: str, key: str, version_id: str | None = None) -> str:
        """Copy a failed object aside; return its URL."""
        ...
