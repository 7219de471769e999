"""When a file fails as a whole, rather than loading with every row rejected.

Two checks: `check_fit`, as soon as the source's columns are known (none of the contract's
measurement columns is there: the contract does not describe this file), and `check_outcome`,
once the file is read (no row is valid, or more are rejected than the contract's
``quality.max_rejected_ratio`` allows). Either raises a `iotpipe.errors.SourceFormatError`, so
the load rolls back, the ledger says ``failed`` with the reason and the object is quarantined.
"""

from __future__ import annotations

from iotpipe.clean import CleanCounters
from iotpipe.contract import DataContract
from iotpipe.errors import ContractMismatchError, QualityError
from iotpipe.readers import RecordReader

SHOWN_REASONS = 3
SHOWN_COLUMNS = 30


def check_fit(contract: DataContract, reader: RecordReader) -> None:
    """Fail when none of the contract's measurement columns is in the source.

    Raises
    ------
    ContractMismatchError
        Naming the columns expected and those found.
    """
    measurements = contract.measurements
    absent = set(reader.absent_columns)
    if not measurements or any(f.name not in absent for f in measurements):
        return
    expected = [source for f in measurements for source in f.sources]
    found = reader.columns[:SHOWN_COLUMNS]
    more = len(reader.columns) - len(found)
    raise ContractMismatchError(
        f"the file does not match contract {contract.name}: expected any of "
        f"[{', '.join(expected)}], found [{', '.join(found)}{f', +{more} more' if more else ''}]"
    )


def check_outcome(contract: DataContract, counters: CleanCounters) -> None:
    """Fail a file that was read to the end when no row is valid or too many are rejected.

    Raises
    ------
    QualityError
        Saying which rule failed, with the counts and the main reject reasons.
    """
    read, rejected = counters.rows_read, counters.rows_rejected
    reasons = ", ".join(
        f"{reason} {n:,}" for reason, n in counters.reject_reasons.most_common(SHOWN_REASONS)
    )
    if read == 0:
        raise QualityError("the file has no data rows")
    if counters.rows_valid == 0:
        raise QualityError(f"no row is valid: {read:,} read, {rejected:,} rejected ({reasons})")
    ratio = contract.quality.max_rejected_ratio
    if rejected / read > ratio:
        raise QualityError(
            f"{rejected:,} of {read:,} rows rejected ({rejected / read:.1%}), over "
            f"quality.max_rejected_ratio {ratio:g} ({reasons})"
        )
