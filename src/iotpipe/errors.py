"""Typed errors: every failure iotpipe raises on purpose is an ``IotpipeError``.

Drivers (handlers, CLI) map these to exit codes or HTTP statuses by type, never by message.
"""

from __future__ import annotations

from typing import Any


class IotpipeError(Exception):
    """Base class of every error iotpipe raises on purpose."""


class ContractError(IotpipeError):
    """A data contract is invalid; the message names the offending key."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key


class SourceFormatError(IotpipeError):
    """A source file cannot be read as a whole (not one bad row: the file)."""


class ContractMismatchError(SourceFormatError):
    """The contract does not describe the file: none of its measurement columns is there."""


class QualityError(SourceFormatError):
    """The file was read, but no row is valid or more are rejected than the contract allows."""


class SourceMissingError(IotpipeError):
    """The source object no longer exists (deleted after its event): nothing to quarantine."""


class MissingColumnError(SourceFormatError):
    """A column the contract requires is absent from the source."""

    def __init__(self, missing: list[str], available: list[str]) -> None:
        shown = ", ".join(available[:30]) or "(none)"
        super().__init__(
            f"required column(s) missing: {', '.join(missing)}; the source has: {shown}"
        )
        self.missing = missing
        self.available = available


class SourceReadError(IotpipeError):
    """Reading the source broke off (a network error mid-stream); retrying may succeed."""


class FileTooLongError(IotpipeError):
    """A file cannot be loaded within one invocation's time: split it (docs/scale.md)."""


class FileFailedError(IotpipeError):
    """A file as a whole cannot be loaded; it was quarantined and the ledger says failed."""

    def __init__(self, message: str, report: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.report = report


class RetryLaterError(IotpipeError):
    """Some announced objects could not be processed now; the event should be delivered again."""


class StorageError(IotpipeError):
    """A storage operation failed."""


class TransientStorageError(StorageError):
    """The database was unreachable or the connection dropped; retrying may succeed."""


class ObjectBusyError(IotpipeError):
    """Another worker holds a live claim on this object version; try again later."""


class EventShapeError(IotpipeError):
    """A Lambda event is not one the function accepts."""


class InvalidQueryError(IotpipeError):
    """A retrieval query is invalid; ``parameter`` names the culprit."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(f"{parameter}: {message}")
        self.parameter = parameter
