"""S3 adapter: stream objects, write rejects and quality reports, quarantine failed files.

The boto3 client is injected (`bootstrap` builds it; ``AWS_ENDPOINT_URL`` points boto3 at a
local S3). Objects are read as streams, never whole, and a network error mid-stream becomes a
`SourceReadError` so the load is retried rather than the file quarantined.
"""

from __future__ import annotations

import io
import json
import tempfile
from dataclasses import dataclass
from typing import IO, Any

from iotpipe.errors import SourceMissingError, SourceReadError
from iotpipe.model import RejectedRow
from iotpipe.readers.streams import ReadStream
from iotpipe.rejects import RejectsCsvWriter

SPOOL_BYTES = 8 * 1024 * 1024
READ_BUFFER_BYTES = 1024 * 1024


@dataclass(frozen=True)
class OutputPrefixes:
    """Where derived objects go, under the same (or an output) bucket."""

    rejected: str = "rejected/"
    reports: str = "reports/"
    quarantine: str = "quarantine/"

    def owns(self, key: str) -> bool:
        """Tell whether a key is one of ours (never ingest our own outputs)."""
        return key.startswith((self.rejected, self.reports, self.quarantine))


class S3Objects:
    """Read source objects and write iotpipe's outputs through an injected S3 client.

    Parameters
    ----------
    client
        A boto3 S3 client.
    prefixes
        Output key prefixes.
    output_bucket
        Bucket for outputs (default: the source object's bucket).
    """

    def __init__(
        self, client: Any, prefixes: OutputPrefixes | None = None, output_bucket: str | None = None
    ) -> None:
        self.client = client
        self.prefixes = prefixes or OutputPrefixes()
        self.output_bucket = output_bucket

    def head(
        self, bucket: str, key: str, version_id: str | None = None
    ) -> tuple[str, str | None, int]:
        """Return (ETag, version id, size) of an object (its current version by default).

        Raises
        ------
        SourceMissingError
            No such key or version.
        SourceReadError
            S3 unreachable.
        """
        from botocore.exceptions import BotoCoreError, ClientError

        extra = {"VersionId": version_id} if version_id else {}
        try:
            meta = self.client.head_object(Bucket=bucket, Key=key, **extra)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "NoSuchVersion", "404"):
                raise SourceMissingError(f"s3://{bucket}/{key} does not exist") from exc
            raise
        except BotoCoreError as exc:
            raise SourceReadError(f"cannot reach s3://{bucket}/{key}: {exc}") from exc
        return str(meta["ETag"]).strip('"'), meta.get("VersionId"), int(meta["ContentLength"])

    def open(self, bucket: str, key: str, version_id: str | None = None) -> IO[bytes]:
        """Open an object as a stream (read in pieces; never whole).

        Parameters
        ----------
        bucket, key
            The object.
        version_id
            A specific version (versioned buckets).

        Returns
        -------
        IO[bytes]
            A readable stream; network errors while reading raise `SourceReadError`.
        """
        from botocore.exceptions import BotoCoreError, ClientError

        extra = {"VersionId": version_id} if version_id else {}
        try:
            body = self.client.get_object(Bucket=bucket, Key=key, **extra)["Body"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "NoSuchVersion", "404"):
                raise SourceMissingError(f"s3://{bucket}/{key} no longer exists") from exc
            raise
        except BotoCoreError as exc:  # connection trouble: retry
            raise SourceReadError(f"cannot open s3://{bucket}/{key}: {exc}") from exc

        def read(n: int) -> bytes:
            try:
                data: bytes = body.read(n)
            except Exception as exc:  # botocore/urllib3 raise several types mid-stream
                raise SourceReadError(f"reading the object broke off: {exc}") from exc
            return data

        return io.BufferedReader(ReadStream(read, body.close), buffer_size=READ_BUFFER_BYTES)

    def rejects_sink(self, bucket: str, key: str) -> S3RejectSink:
        """Return a sink that collects rejected rows and uploads them as one CSV."""
        target = (self.output_bucket or bucket, f"{self.prefixes.rejected}{key}.csv")
        return S3RejectSink(self.client, *target)

    def write_report(self, bucket: str, key: str, report: dict[str, Any]) -> str:
        """Write the JSON quality report of a source object; return its URL."""
        out_bucket, out_key = self.output_bucket or bucket, f"{self.prefixes.reports}{key}.json"
        self.client.put_object(
            Bucket=out_bucket,
            Key=out_key,
            Body=json.dumps(report, indent=2).encode(),
            ContentType="application/json",
        )
        return f"s3://{out_bucket}/{out_key}"

    def quarantine(self, bucket: str, key: str, version_id: str | None = None) -> str:
        """Copy a failed object under the quarantine prefix; return its URL."""
        out_bucket, out_key = self.output_bucket or bucket, f"{self.prefixes.quarantine}{key}"
        source: dict[str, str] = {"Bucket": bucket, "Key": key}
        if version_id:
            source["VersionId"] = version_id
        self.client.copy(source, out_bucket, out_key)  # managed copy: multipart when large
        return f"s3://{out_bucket}/{out_key}"


class S3RejectSink:
    """Rejected rows spooled locally (memory, then disk), uploaded once at the end."""

    def __init__(self, client: Any, bucket: str, key: str) -> None:
        self._client = client
        self.bucket, self.key = bucket, key
        self._spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115
        self._text = io.TextIOWrapper(self._spool, encoding="utf-8", newline="")
        self._writer = RejectsCsvWriter(self._text)

    @property
    def rows(self) -> int:
        """Rows written in the current attempt."""
        return self._writer.rows

    def begin(self) -> None:
        """Start over (a retried load)."""
        self._writer.begin()

    def write(self, rows: list[RejectedRow]) -> None:
        """Add rejected rows."""
        self._writer.write(rows)

    def upload(self) -> str | None:
        """Upload the CSV when it has rows; return its URL (None when there was nothing)."""
        if self.rows == 0:
            return None
        self._text.flush()
        self._spool.seek(0)
        self._client.upload_fileobj(self._spool, self.bucket, self.key)
        return f"s3://{self.bucket}/{self.key}"

    def close(self) -> None:
        """Discard the spool."""
        self._text.close()
