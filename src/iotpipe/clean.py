"""Cleaning: one raw `RecordBatch` in; clean rows, rejected rows with reasons, and counters out.

The policy is the contract's (README.md, "Cleaning policy"), applied with vectorised
Polars expressions:

- trim every value, turn missing markers into nulls, case-fold categoricals;
- parse the timestamp (ISO 8601 with T or space, fraction, Z or offset; epoch seconds or
  milliseconds; ``YYYY/MM/DD HH:MM:SS``; composite parts), take naive times in the contract's
  zone, and keep it as naive UTC (`parse_timestamps`: a fast path for the canonical shapes,
  the general parser for the rest);
- reject a row (first matching reason wins) for: ``invalid_encoding`` (bytes not valid in the
  source's encoding), ``missing_device_id``, ``invalid_device_id``, ``missing_timestamp``,
  ``nonexistent_local_time`` (a DST gap), ``ambiguous_local_time`` (a repeated hour, when the
  contract says ``timestamp.ambiguous: reject``), ``invalid_timestamp``,
  ``timestamp_out_of_range``, ``missing_value`` (a required field), ``invalid_value`` (a
  field with ``on_invalid: reject``), ``no_measurements``; the readers add ``malformed_row``,
  ``malformed_json`` and ``record_too_large``;
- null an invalid value (``on_invalid: null``) and count it per field;
- drop exact duplicates, and let the last row of a (device_id, ts) key win over earlier
  different ones (a conflict), across batches of the same file.

Accounting, per file: ``rows_read = rows_valid + rows_rejected + rows_duplicate + rows_conflict``
where ``rows_valid`` is the number of distinct keys (the rows that end up stored) and
``rows_conflict`` the number of rows superseded by a later row with the same key.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import polars as pl

from iotpipe.contract import DEVICE_ID, TS, DataContract, Field
from iotpipe.dedupe import Deduplicator
from iotpipe.model import RejectedRow
from iotpipe.readers import RecordBatch
from iotpipe.timestamps import UTC, local_time_faults, parse_timestamps
from iotpipe.values import check_exprs, null_markers, null_sentinels, parse_expr

INVALID_ENCODING = "invalid_encoding"
MISSING_DEVICE_ID = "missing_device_id"
INVALID_DEVICE_ID = "invalid_device_id"
MISSING_TIMESTAMP = "missing_timestamp"
INVALID_TIMESTAMP = "invalid_timestamp"
TIMESTAMP_OUT_OF_RANGE = "timestamp_out_of_range"
NONEXISTENT_LOCAL_TIME = "nonexistent_local_time"
AMBIGUOUS_LOCAL_TIME = "ambiguous_local_time"
MISSING_VALUE = "missing_value"
INVALID_VALUE = "invalid_value"
NO_MEASUREMENTS = "no_measurements"

REPLACEMENT_CHARACTER = "\ufffd"
# Batches this small trim, null and parse every text of `Cleaner._quick`'s fields: the calls
# that find the plain ones cost more than they save (a 5,779-row batch of `iotpipe sample`'s
# messy rows, 61% of them with some text to trim or null: 3.8 -> 7.8 ms).
QUICK_MIN_ROWS = 20_000


@dataclass
class CleanCounters:
    """Running totals for one source file."""

    rows_read: int = 0
    rows_valid: int = 0
    rows_rejected: int = 0
    rows_duplicate: int = 0
    rows_conflict: int = 0
    reject_reasons: Counter[str] = field(default_factory=Counter)
    nulled: Counter[str] = field(default_factory=Counter)
    # Every valid timestamp so far at one and the same time of day (local): dates, not times.
    one_time_of_day: bool = True

    def add(self, other: CleanCounters) -> None:
        """Add another set of counters into this one."""
        self.one_time_of_day = self.one_time_of_day and other.one_time_of_day
        self.rows_read += other.rows_read
        self.rows_valid += other.rows_valid
        self.rows_rejected += other.rows_rejected
        self.rows_duplicate += other.rows_duplicate
        self.rows_conflict += other.rows_conflict
        self.reject_reasons.update(other.reject_reasons)
        self.nulled.update(other.nulled)


@dataclass
class CleanBatch:
    """The result of cleaning one batch.

    Attributes
    ----------
    rows
        Clean rows to upsert, one per (device_id, ts) key, in file order. Columns are the
        contract's stored columns (``device_id``, ``ts``, then each field).
    rejected
        Rejected rows, by line number.
    counters
        This batch's counters.
    """

    rows: pl.DataFrame
    rejected: list[RejectedRow]
    counters: CleanCounters


@dataclass(frozen=True)
class _ValueExprs:
    """The expressions that null, parse and check a batch's values: the contract's alone.

    Built once per file, not per batch (building them cost about 1 ms of Python a batch).
    """

    markers: list[pl.Expr]  # every raw column but `quick`'s, its missing markers nulled
    quick: dict[str, tuple[Field, pl.Expr]]  # fields read before trimming (`Cleaner._quick`)
    sentinels: list[pl.Expr]  # each field with numeric markers, those nulled
    parsed: list[pl.Expr]  # ``__p.<field>``: each field's text parsed once
    bad: list[pl.Expr]  # ``__bad.<field>``: the parsed value breaks a check (or is nested)
    typed: list[pl.Expr]  # the typed frame's columns


@dataclass
class CheckedBatch:
    """A batch typed and checked on its own, before de-duplication (`Cleaner.check`)."""

    kept: pl.DataFrame  # the rows that break no rule: device_id, ts, then each field
    rejected: list[RejectedRow]
    counters: CleanCounters  # without the de-duplication's (valid, duplicate, conflict)


class Cleaner:
    """Clean the batches of one source file against a contract.

    Parameters
    ----------
    contract
        The data contract.
    now
        The current time (naive UTC or aware); timestamps later than ``now + max_future``
        are rejected. Defaults to the wall clock at construction.
    """

    def __init__(self, contract: DataContract, now: dt.datetime | None = None) -> None:
        if contract.device_from_path is not None:
            raise ValueError("resolve device_id.from_path first: contract.for_source(source)")
        self.contract = contract
        now = now or dt.datetime.now(dt.UTC)
        if now.tzinfo is not None:
            now = now.astimezone(dt.UTC).replace(tzinfo=None)
        self._earliest = contract.timestamp.earliest
        self._latest = now + contract.timestamp.max_future
        self.counters = CleanCounters()
        self.columns = contract.value_columns
        self._dedupe = Deduplicator(self.columns)
        self._time_of_day: dt.time | None = None
        # The reject rules depend on the contract and `now` alone: built once, not per batch
        # (building their expressions cost 0.1 s of Python per million rows).
        self._reason = self._reason_expr().alias("__reason")
        self._detail = self._detail_expr().alias("__detail")
        self._values = self._value_exprs()

    def clean(self, batch: RecordBatch) -> CleanBatch:
        """Clean one batch; counters accumulate in ``self.counters``.

        The same as `finish` of `check`: the ingest pipeline checks batches in parallel,
        then finishes them one at a time, in order.

        Parameters
        ----------
        batch
            Raw values from a reader.

        Returns
        -------
        CleanBatch
            Clean rows, rejected rows and this batch's counters.
        """
        return self.finish(self.check(batch))

    def check(self, batch: RecordBatch) -> CheckedBatch:
        """Type and check one batch's rows on their own.

        No state of the file is read or changed, so batches may be checked in parallel.

        Parameters
        ----------
        batch
            Raw values from a reader.

        Returns
        -------
        CheckedBatch
            The rows that break no rule, the rejected rows, and the counters so far.
        """
        counters = CleanCounters(rows_read=batch.rows_read)
        rejected = list(batch.rejected)
        frame = self._typed(self._raw_frame(batch))
        # Details are text for people: built only for the rows rejected.
        bad = frame.filter(pl.col("__reason").is_not_null())
        bad = bad.select("__line", "__idx", "__reason", self._detail)
        texts = batch.record_texts(bad.get_column("__idx").to_list())
        for (line, _, reason, detail), text in zip(bad.iter_rows(), texts, strict=True):
            rejected.append(RejectedRow(line, reason, detail, text))
        for row in rejected:
            counters.reject_reasons[row.reason] += 1
        counters.rows_rejected = len(rejected)
        rejected.sort(key=lambda r: r.line)

        kept = frame.filter(pl.col("__reason").is_null())
        nullable = [f for f in self.contract.fields if f.on_invalid == "null" and not f.required]
        if nullable and kept.height:
            sums = kept.select(pl.col(f"__bad.{f.name}").sum() for f in nullable).row(0)
            counters.nulled.update({f.name: n for f, n in zip(nullable, sums, strict=True) if n})
        return CheckedBatch(kept.select(self.columns), rejected, counters)

    def finish(self, checked: CheckedBatch) -> CleanBatch:
        """Drop duplicates against the file's earlier batches, in file order.

        Counters accumulate in ``self.counters``.

        Parameters
        ----------
        checked
            A batch from `check`.

        Returns
        -------
        CleanBatch
            Clean rows, rejected rows and this batch's counters.
        """
        kept, counters = checked.kept, checked.counters
        if self.counters.one_time_of_day and kept.height:  # until the first other time of day
            counters.one_time_of_day = self._one_time_of_day(kept.get_column(TS))
        rows, keys = self._dedupe.apply(kept)
        counters.rows_valid, counters.rows_duplicate, counters.rows_conflict = (
            keys.new,
            keys.duplicate,
            keys.conflict,
        )
        self.counters.add(counters)
        return CleanBatch(rows, checked.rejected, counters)

    # ----------------------------------------------------------------------------------------

    def _one_time_of_day(self, stamps: pl.Series) -> bool:
        """Say whether these and the earlier times share one time of day (in the zone)."""
        zone = self.contract.timestamp.timezone
        local = stamps.dt.replace_time_zone(UTC).dt.convert_time_zone(zone).dt.time().unique()
        seen = {*local.to_list(), *([self._time_of_day] if self._time_of_day else [])}
        self._time_of_day = next(iter(seen)) if len(seen) == 1 else None
        return len(seen) == 1

    def _raw_frame(self, batch: RecordBatch) -> pl.DataFrame:
        n = len(batch.lines)
        series = [
            _column(slot.name, batch.columns.get(slot.name), n) for slot in self.contract.slots
        ]
        names = [slot.name for slot in self.contract.slots]
        trimmed = [name for name in names if name not in self._values.quick]
        # Trim, then null the markers: two eager steps, or Polars trims twice per column.
        frame = pl.DataFrame(series, height=n).with_columns(
            pl.col(trimmed).str.strip_chars(),
            pl.Series("__line", batch.lines, dtype=pl.Int64),
            pl.int_range(n, dtype=pl.Int64).alias("__idx"),
            _undecodable(names, batch.replacement_free).alias("__undecodable"),
        )
        # Arrays and objects (JSON, Parquet) where the contract wants one value.
        nested = [
            (
                pl.Series(f"__nested.{name}", batch.nested[name], dtype=pl.Boolean)
                if batch.nested.get(name)
                else pl.repeat(False, n, dtype=pl.Boolean).alias(f"__nested.{name}")
            )
            for name in (DEVICE_ID, *(f.name for f in self.contract.fields if f.type != "string"))
        ]
        frame = frame.with_columns(*self._values.markers, *nested, *self._quick(frame))
        if self._values.sentinels:
            frame = frame.with_columns(self._values.sentinels)
        if self.contract.device_value is not None:  # one-device files, or from the path
            frame = frame.with_columns(pl.lit(self.contract.device_value).alias(DEVICE_ID))
        return frame

    def _quick(self, frame: pl.DataFrame) -> list[pl.Series]:
        """Return the text and ``__p.<field>`` value of each field in `_ValueExprs.quick`.

        A text Polars reads as a finite number, or one of a category's values, has no space
        around it and is no missing marker (`_reads_quickly` says which fields may rely on
        that), so trimming, the markers and case-folding would leave it as it is: only the
        other texts are trimmed, nulled and parsed, by the expressions every other field's
        go through. Trimming and the markers of every value cost 25 ns a value per column.
        """
        quick = self._values.quick
        if not quick:
            return []
        if frame.height < QUICK_MIN_ROWS:  # the fixed cost of the calls below outweighs it
            return self._full(frame, list(quick)).get_columns()
        # Two calls find, for every field at once, the values and the texts that are not
        # plain; each field's alone go the full way (a plain text comes out of it as it went
        # in). Field by field: a row with one odd value does not send its other fields along
        # (in a file with a few percent of odd values per field, most rows have one).
        values = frame.select(
            (pl.col(n) if f.type == "category" else pl.col(n).cast(pl.Float64, strict=False))
            for n, (f, _) in quick.items()
        )
        odd = values.select(
            (pl.col(n).is_in(f.enum or ()) if f.type == "category" else pl.col(n).is_finite())
            .fill_null(value=False)
            .not_()
            for n, (f, _) in quick.items()
        )
        texts, parsed = [], []
        for name in quick:
            text, value = frame.get_column(name), values.get_column(name)
            at = odd.get_column(name).arg_true()
            if at.len():
                rest = self._full(frame.select(pl.col(name).gather(at)), [name])
                # (clones: `scatter` changes a Series in place, and a category's value is
                # its text)
                text = text.clone().scatter(at, rest.get_column(name))
                value = value.clone().scatter(at, rest.get_column(f"__p.{name}"))
            texts.append(text)
            parsed.append(value.alias(f"__p.{name}"))
        return [*texts, *parsed]

    def _full(self, frame: pl.DataFrame, names: list[str]) -> pl.DataFrame:
        """Return every text of these quick fields trimmed and nulled, and its ``__p.`` value."""
        quick = self._values.quick
        return (
            frame.select(pl.col(names).str.strip_chars())
            .select(quick[n][1] for n in names)
            .with_columns(
                parse_expr(quick[n][0], self.contract.dialect.decimal).alias(f"__p.{n}")
                for n in names
            )
        )

    def _typed(self, raw: pl.DataFrame) -> pl.DataFrame:
        # Eager steps: timestamps first (`parse_timestamps` picks the rows that need the
        # general parser), then each field's parsed value, then the checks and reasons.
        contract = self.contract
        zone = (contract.timestamp.timezone, contract.timestamp.ambiguous)
        ts_raw, ts_missing = self._timestamp_source()
        normalised = raw.with_columns(ts_raw.alias("__ts_raw"), ts_missing.alias("__ts_missing"))
        formats = contract.timestamp.formats
        ts_text = normalised.get_column("__ts_raw")
        stamp = parse_timestamps(ts_text, *zone, formats)
        stamps = [stamp.alias(TS), _zone_faults(ts_text, stamp, zone[0], formats)]
        stamps.extend(
            parse_timestamps(normalised.get_column(f.name), *zone).alias(f"__parsed.{f.name}")
            for f in contract.fields
            if f.type == "datetime"
        )
        frame = normalised.with_columns(stamps).with_columns(self._values.parsed)
        typed = frame.with_columns(self._values.bad).select(self._values.typed)
        return typed.with_columns(self._reason)

    def _value_exprs(self) -> _ValueExprs:
        contract = self.contract
        markers = {DEVICE_ID: contract.device_id.missing_values}
        markers.update({f.name: f.missing_values for f in contract.fields})
        checks = [
            check_exprs(f, pl.col(f"__p.{f.name}"), pl.col(f.name).is_not_null())
            for f in contract.fields
        ]
        nulled = {
            slot.name: null_markers(slot.name, markers.get(slot.name, contract.missing_values))
            for slot in contract.slots
        }
        quick = {
            f.name: (f, nulled[f.name]) for f in contract.fields if _reads_quickly(f, contract)
        }
        return _ValueExprs(
            markers=[marker for name, marker in nulled.items() if name not in quick],
            quick=quick,
            # Numeric markers (-200, 999.9) match the value in any spelling, per field.
            sentinels=[null_sentinels(f.name, f.sentinels) for f in contract.fields if f.sentinels],
            # Each field's text is parsed once (a column), then checked: inside one lazy query
            # Polars re-parsed it for every check (measured: 0.45 s -> 0.14 s for the five
            # number columns of 1M rows).
            parsed=[
                parse_expr(f, contract.dialect.decimal).alias(f"__p.{f.name}")
                for f in contract.fields
                if f.name not in quick
            ],
            bad=[
                (invalid | pl.col(f"__nested.{f.name}") if f.type != "string" else invalid).alias(
                    f"__bad.{f.name}"
                )
                for f, (_, invalid) in zip(contract.fields, checks, strict=True)
            ],
            typed=[
                pl.col("__line"),
                pl.col("__idx"),
                pl.col(DEVICE_ID),
                pl.col(TS),
                *(
                    pl.when(pl.col(f"__bad.{f.name}")).then(None).otherwise(value).alias(f.name)
                    for f, (value, _) in zip(contract.fields, checks, strict=True)
                ),
                *(pl.col(f"__bad.{f.name}") for f in contract.fields),
                pl.col("__ts_raw"),
                pl.col("__ts_missing"),
                pl.col("__ts_fault"),
                pl.col("__undecodable"),
                pl.col(f"__nested.{DEVICE_ID}"),
                *(pl.col(f.name).alias(f"__raw.{f.name}") for f in contract.fields),
            ],
        )

    def _timestamp_source(self) -> tuple[pl.Expr, pl.Expr]:
        parts = self.contract.timestamp.parts
        if self.contract.timestamp.is_single:
            return pl.col(TS), pl.col(TS).is_null()
        cols = {p: pl.col(f"{TS}.{p}") for p in parts}
        missing = pl.all_horizontal(c.is_null() for c in cols.values())
        if "year" in cols:
            # Composite numeric parts: each must be digits, then they read as one ISO string.
            def num(p: str) -> pl.Expr:
                c = cols.get(p, pl.lit("0"))
                return pl.when(c.str.contains(r"^\d{1,4}$")).then(c)

            raw = pl.concat_str(
                [
                    num("year"),
                    pl.lit("-"),
                    num("month"),
                    pl.lit("-"),
                    num("day"),
                    pl.lit(" "),
                    num("hour"),
                    pl.lit(":"),
                    num("minute"),
                    pl.lit(":"),
                    num("second"),
                ]
            )
        elif "time" in cols:
            raw = pl.concat_str([cols["date"], pl.lit(" "), cols["time"]])
        else:
            raw = cols["date"]
        return raw, missing

    def _where(self) -> dict[str, str]:
        """Name the source column(s) of the key and each field, for messages.

        ``" (column 'CO(GT)')"``, or nothing where the column has the field's own name.
        """
        where = {DEVICE_ID: "", TS: ""}
        slots = self.contract.slots
        parts = [s for s in slots if s.name == TS or s.name.startswith(f"{TS}.")]
        columns = " + ".join(repr(s.sources[0]) for s in parts)
        where[TS] = f" (column{'s' if len(parts) > 1 else ''} {columns})"
        for slot in slots:
            if slot.name != TS and not slot.name.startswith(f"{TS}."):
                shown = " or ".join(repr(c) for c in slot.sources)
                where[slot.name] = "" if slot.sources == (slot.name,) else f" (column {shown})"
        return where

    def _reason_expr(self) -> pl.Expr:
        """Return the code of the first rule a row breaks (null when it breaks none)."""
        reason: pl.Expr = pl.lit(None, dtype=pl.String)
        for condition, code, _ in reversed(self._rules()):
            reason = pl.when(condition).then(pl.lit(code)).otherwise(reason)
        return reason

    def _detail_expr(self) -> pl.Expr:
        """Return the text that explains the first rule a row breaks."""
        detail: pl.Expr = pl.lit(None, dtype=pl.String)
        for condition, code, text in reversed(self._rules()):
            first = (pl.col("__reason") == code) & condition  # codes repeat across fields
            detail = pl.when(first).then(text).otherwise(detail)
        return detail

    def _rules(self) -> list[tuple[pl.Expr, str, pl.Expr]]:
        """(condition, reason code, detail text) of each reject rule, first match wins."""
        device = pl.col(DEVICE_ID)
        ts = pl.col(TS)
        max_length = self.contract.device_id_length
        where = self._where()
        given = self.contract.timestamp.formats
        formats = f" (timestamp.format: {' or '.join(given)})" if given else ""
        rules: list[tuple[pl.Expr, str, pl.Expr]] = [
            (
                pl.col("__undecodable"),
                INVALID_ENCODING,
                pl.lit(
                    f"the record holds bytes that are not valid {self.contract.dialect.encoding} "
                    "(shown as U+FFFD)"
                ),
            ),
            (
                device.is_null(),
                MISSING_DEVICE_ID,
                pl.lit(f"device_id is missing{where[DEVICE_ID]}"),
            ),
            (
                pl.col(f"__nested.{DEVICE_ID}"),
                INVALID_DEVICE_ID,
                pl.lit("device_id is an array or object, not one value"),
            ),
            (
                device.str.len_chars() > max_length,
                INVALID_DEVICE_ID,
                pl.lit(f"device_id is longer than {max_length} characters"),
            ),
            (pl.col("__ts_missing"), MISSING_TIMESTAMP, pl.lit(f"timestamp is missing{where[TS]}")),
            (
                ts.is_null() & (pl.col("__ts_fault") == "nonexistent"),
                NONEXISTENT_LOCAL_TIME,
                pl.format(
                    "local time {} does not exist in {} (the clocks skipped it)",
                    pl.col("__ts_raw"),
                    pl.lit(self.contract.timestamp.timezone),
                ),
            ),
            (
                ts.is_null() & (pl.col("__ts_fault") == "ambiguous"),
                AMBIGUOUS_LOCAL_TIME,
                pl.format(
                    "local time {} happens twice in {} (timestamp.ambiguous: reject)",
                    pl.col("__ts_raw"),
                    pl.lit(self.contract.timestamp.timezone),
                ),
            ),
            (
                ts.is_null(),
                INVALID_TIMESTAMP,
                pl.format(
                    "unparseable timestamp {}{}",
                    pl.col("__ts_raw").fill_null("(parts)"),
                    pl.lit(f"{where[TS]}{formats}"),
                ),
            ),
            (
                (ts < self._earliest) | (ts > self._latest),
                TIMESTAMP_OUT_OF_RANGE,
                pl.format(
                    "timestamp {} is outside {} .. now+{}",
                    ts.dt.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    pl.lit(self._earliest.date().isoformat()),
                    pl.lit(_human(self.contract.timestamp.max_future)),
                ),
            ),
        ]
        for f in self.contract.fields:
            if f.required:
                rules.append(
                    (
                        pl.col(f"__raw.{f.name}").is_null(),
                        MISSING_VALUE,
                        pl.lit(f"{f.name} is missing{where[f.name]}"),
                    )
                )
        for f in self.contract.fields:
            if f.required or f.on_invalid == "reject":
                rules.append(
                    (
                        pl.col(f"__bad.{f.name}"),
                        INVALID_VALUE,
                        pl.format(
                            f"{f.name}: invalid value {{}}{where[f.name]}",
                            pl.col(f"__raw.{f.name}"),
                        ),
                    )
                )
        if self.contract.measurements:
            rules.append(
                (
                    pl.all_horizontal(pl.col(f.name).is_null() for f in self.contract.measurements),
                    NO_MEASUREMENTS,
                    pl.lit("every measurement is missing or invalid"),
                )
            )
        return rules


def _reads_quickly(f: Field, contract: DataContract) -> bool:
    """Say whether a field's texts may be read before trimming and the markers (`Cleaner._quick`).

    A number or integer field with ``.`` as the decimal mark, none of whose missing markers
    Polars reads as a finite number; a category with a closed list of values (trimmed by the
    contract's parser), each its own lowercase and none a missing marker.
    """
    if f.type == "category":
        values = f.enum or ()
        return bool(values) and all(v == v.lower() and v not in f.missing_values for v in values)
    if f.type not in ("number", "integer") or contract.dialect.decimal != "." or f.sentinels:
        return False
    return not _any_finite(f.missing_values)


@functools.lru_cache(maxsize=64)
def _any_finite(texts: frozenset[str]) -> bool:
    """Say whether Polars reads any of ``texts`` as a finite number (asked once per set)."""
    numbers = pl.Series(sorted(texts), dtype=pl.String).cast(pl.Float64, strict=False)
    return bool(numbers.is_finite().any())


def _zone_faults(
    raw: pl.Series, stamps: pl.Series, timezone: str, formats: tuple[str, ...]
) -> pl.Series:
    """``__ts_fault``: why an unparsed timestamp failed, when its zone is the reason."""
    faults = pl.repeat(None, raw.len(), dtype=pl.String, eager=True).alias("__ts_fault")
    if timezone == UTC:  # no gaps and no repeated hours: the zone is never the reason
        return faults
    unparsed = (stamps.is_null() & raw.is_not_null()).arg_true()
    if unparsed.len():
        why = local_time_faults(raw.gather(unparsed), timezone, formats)
        faults = faults.scatter(unparsed, why)
    return faults


def _undecodable(names: list[str], replacement_free: bool) -> pl.Expr:
    """Whether a record holds U+FFFD: what bytes not valid in the source's encoding became."""
    if replacement_free:  # the reader saw none in the batch's text
        return pl.repeat(False, pl.len(), dtype=pl.Boolean)
    return pl.any_horizontal(
        pl.col(name).str.contains(REPLACEMENT_CHARACTER, literal=True) for name in names
    ).fill_null(False)


def _column(name: str, values: Sequence[str | None] | pl.Series | None, n: int) -> pl.Series:
    if isinstance(values, pl.Series):
        return values.alias(name)
    if values is None:
        return pl.repeat(None, n, dtype=pl.String, eager=True).alias(name)
    return pl.Series(name, values, dtype=pl.String)


def _human(delta: dt.timedelta) -> str:
    seconds = int(delta.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
