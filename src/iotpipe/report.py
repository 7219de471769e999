"""The quality report of one source file: what was read, loaded, rejected and why."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal

from iotpipe.clean import CleanCounters
from iotpipe.model import RejectedRow

Status = Literal["validated", "loaded", "skipped", "failed"]
REJECT_SAMPLE_SIZE = 20


@dataclass
class IngestReport:
    """Outcome of validating or ingesting one source object.

    ``rows_read = rows_valid + rows_rejected + rows_duplicate + rows_conflict`` always holds
    for a file that was read to the end (see `iotpipe.clean`).
    """

    source: str
    contract: str
    # Until `end` says otherwise a report says "failed": nothing is reported done by default.
    status: Status = "failed"
    format: str | None = None
    compressed: bool = False
    counters: CleanCounters = field(default_factory=CleanCounters)
    rows_loaded: int = 0
    unknown_columns: list[str] = field(default_factory=list)
    absent_columns: list[str] = field(default_factory=list)
    rejected_sample: list[RejectedRow] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0
    outputs: dict[str, str] = field(default_factory=dict)  # rejects / report / quarantine URLs
    source_missing: bool = False  # the object was gone: nothing to quarantine
    too_long: bool = False  # could not finish in one invocation: to split, not to quarantine
    matched: dict[str, Any] | None = None  # what a "skipped" version matched in the ledger
    warnings: list[str] = field(default_factory=list)  # a contract that looks wrong
    started: float = field(default_factory=time.perf_counter, repr=False)

    def end(self, status: Status, error: str | None = None) -> IngestReport:
        """Set the outcome (the one place a status is decided) and the time it took."""
        self.status, self.error = status, error
        self.seconds = time.perf_counter() - self.started
        return self

    def note_rejected(self, rows: list[RejectedRow]) -> None:
        """Keep the first few rejected rows as examples for the report."""
        room = REJECT_SAMPLE_SIZE - len(self.rejected_sample)
        if room > 0:
            self.rejected_sample.extend(rows[:room])

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-ready report (the ``--json`` output of validate and ingest)."""
        c = self.counters
        return {
            "status": self.status,
            "source": self.source,
            "contract": self.contract,
            "format": self.format,
            "compressed": self.compressed,
            "rows_read": c.rows_read,
            "rows_valid": c.rows_valid,
            "rows_loaded": self.rows_loaded,
            "rows_rejected": c.rows_rejected,
            "rows_duplicate": c.rows_duplicate,
            "rows_conflict": c.rows_conflict,
            "reject_reasons": dict(sorted(c.reject_reasons.items())),
            "nulled": dict(sorted(c.nulled.items())),
            "unknown_columns": self.unknown_columns,
            "absent_columns": self.absent_columns,
            "rejected_sample": [
                {"line": r.line, "reason": r.reason, "detail": r.detail}
                for r in self.rejected_sample
            ],
            "error": self.error,
            "warnings": list(self.warnings),
            "matched": self.matched,
            "seconds": round(self.seconds, 3),
            "outputs": dict(self.outputs),
        }
