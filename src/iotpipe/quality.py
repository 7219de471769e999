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
CONFLICT_WARNING = 0.10  # share of rows that are key conflicts
REJECTED_WARNING = 0.5  # share of rows rejected
NULLED_WARNING = 0.5  # share of a field's values nulled as invalid or out of range


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


def warnings_for(contract: DataContract, counters: CleanCounters) -> list[str]:
    """Say what in a file's outcome suggests that the contract is wrong, though it loaded.

    Parameters
    ----------
    contract
        The contract the file was cleaned against.
    counters
        The file's counts.

    Returns
    -------
    list[str]
        One sentence per suspicion: many key conflicts (a timestamp too coarse), most rows
        rejected, a field mostly nulled, every timestamp at the same time of day.
    """
    read = counters.rows_read
    if read == 0:
        return []
    warnings = []
    conflicts = counters.rows_conflict
    if conflicts > CONFLICT_WARNING * read:
        warnings.append(
            f"{conflicts:,} of {read:,} rows ({conflicts / read:.0%}) are key conflicts (another "
            "reading for the same device and time): is the timestamp too coarse (a date without "
            "its time column?), or the device id the wrong column?"
        )
    rejected = counters.rows_rejected
    if rejected > REJECTED_WARNING * read:
        reasons = ", ".join(
            f"{reason} {n:,}" for reason, n in counters.reject_reasons.most_common(SHOWN_REASONS)
        )
        warnings.append(
            f"{rejected:,} of {read:,} rows ({rejected / read:.0%}) were rejected ({reasons}): "
            "does the contract describe this file?"
        )
    kept = read - rejected
    for f in contract.fields:
        nulled = counters.nulled.get(f.name, 0)
        if kept and nulled > NULLED_WARNING * kept:
            warnings.append(
                f"{f.name}: {nulled:,} of {kept:,} values ({nulled / kept:.0%}) were nulled as "
                "invalid or out of range: check its type, constraints and missingValues"
            )
    if counters.one_time_of_day and counters.rows_valid > 1:
        warnings.append(
            f"every timestamp is at the same time of day in {contract.timestamp.timezone}: are "
            "these dates without their time (in another column)?"
        )
    return warnings
