"""Timestamp parsing, vectorised: ISO 8601 shapes and epoch numbers to naive UTC instants.

`parse_timestamps` is what cleaning calls: the canonical shapes most files hold go through
Polars' own ``strptime``, the rest through `timestamp_expr`, the general parser (one regular
expression); both give the same instants (tests/unit/test_properties.py checks it).
"""

from __future__ import annotations

import polars as pl

from iotpipe.contract.formats import chrono_format, has_offset
from iotpipe.contract.schema import Ambiguous
from iotpipe.times import EPOCH_MS_THRESHOLD

ISO_PATTERN = (
    r"^(?P<y>\d{4})[-/](?P<mo>\d{1,2})[-/](?P<d>\d{1,2})"
    r"(?:(?:T|\s+)(?P<h>\d{1,2}):(?P<mi>\d{1,2})(?::(?P<s>\d{1,2})(?:[.,](?P<f>\d{1,9}))?)?)?"
    r"\s*(?P<tz>[Zz]|[+-]\d{2}(?::?\d{2})?)?$"
)
EPOCH_PATTERN = r"^[+-]?\d+(?:\.\d+)?$"
# The shapes most files use: a subset of ISO_PATTERN that Polars' own strptime reads directly
# once a 'T' is a space and a '/' in the date a '-' (loggers write 2024/05/01 10:00:00 too).
CANONICAL_PATTERN = (
    r"^\d{4}[-/]\d{2}[-/]\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}:\d{2})?$"
)
ZONED_PATTERN = r"(?:Z|[+-]\d{2}:\d{2})$"  # a canonical text's zone, when it has one
UTC = "UTC"


def timestamp_expr(raw: pl.Expr, timezone: str = UTC, ambiguous: Ambiguous = "earliest") -> pl.Expr:
    """Parse trimmed timestamp strings to naive UTC ``Datetime('us')``; null when unparseable.

    Parameters
    ----------
    raw
        An expression of trimmed strings.
    timezone
        IANA zone of naive times. A local time that does not exist (a DST gap) is null.
    ambiguous
        Which instant a repeated local time (clocks going back) takes: ``earliest``,
        ``latest``, or none (``reject``: null).

    Returns
    -------
    pl.Expr
        The parsed instants, as naive UTC.
    """
    parts = raw.str.extract_groups(ISO_PATTERN)

    def part(name: str, default: str, width: int) -> pl.Expr:
        return parts.struct.field(name).fill_null(default).str.zfill(width)

    canonical = pl.concat_str(
        [
            parts.struct.field("y"),
            pl.lit("-"),
            part("mo", "1", 2),
            pl.lit("-"),
            part("d", "1", 2),
            pl.lit(" "),
            part("h", "0", 2),
            pl.lit(":"),
            part("mi", "0", 2),
            pl.lit(":"),
            part("s", "0", 2),
            pl.lit("."),
            parts.struct.field("f").fill_null("0").str.pad_end(6, "0").str.slice(0, 6),
        ]
    )
    naive = canonical.str.to_datetime("%Y-%m-%d %H:%M:%S%.f", strict=False, time_unit="us")
    tz = parts.struct.field("tz")
    digits = tz.str.replace_all(":", "", literal=True).str.slice(1)
    offset_minutes = (
        pl.when(tz.str.to_uppercase() == "Z")
        .then(0)
        .otherwise(
            pl.when(tz.str.starts_with("-")).then(-1).otherwise(1)
            * (
                digits.str.slice(0, 2).cast(pl.Int64, strict=False) * 60
                + digits.str.slice(2, 2).cast(pl.Int64, strict=False).fill_null(0)
            )
        )
    )
    with_offset = naive - pl.duration(minutes=offset_minutes)
    return (
        pl.when(raw.str.contains(EPOCH_PATTERN))
        .then(_epoch(raw))
        .when(tz.is_not_null())
        .then(with_offset)
        .otherwise(_as_utc(naive, timezone, ambiguous))
    )


def parse_timestamps(
    raw: pl.Series,
    timezone: str = UTC,
    ambiguous: Ambiguous = "earliest",
    formats: tuple[str, ...] = (),
) -> pl.Series:
    """Parse trimmed timestamp strings exactly as `timestamp_expr` does, faster.

    With ``formats`` (the contract's ``timestamp.format``), only those are tried, in order
    (`parse_formatted`).

    Epoch numbers and the canonical ISO shapes (`CANONICAL_PATTERN`: what most files hold)
    are read by Polars' strptime in one pass; only the rows that pass neither (other
    layouts, and the invalid) go through the general parser. Each fast-path value equals
    the general parser's for the same text (tests/unit/test_properties.py checks it), and
    a fast-path null falls through to the general parser, so the result is the same.

    Parameters
    ----------
    raw
        Trimmed strings.
    timezone, ambiguous
        How naive times are read (see `timestamp_expr`).
    formats
        strftime-style formats (`iotpipe.contract.formats`); none: ISO 8601 and epoch.

    Returns
    -------
    pl.Series
        Naive UTC ``Datetime('us')``, null where unparseable.
    """
    if formats:
        return parse_formatted(raw, formats, timezone, ambiguous)
    text = pl.col("raw")
    frame = raw.alias("raw").to_frame()
    # Each parser reads only the rows of its shape (a when/then would run every branch on
    # every row): epoch numbers, then the canonical shapes. A fast-path null (2024-02-30, a
    # local time in a DST gap) goes on to the general parser, which gives null too.
    epoch = raw.str.contains(EPOCH_PATTERN)
    canonical = ~epoch & raw.str.contains(CANONICAL_PATTERN)
    fast = pl.repeat(None, raw.len(), dtype=pl.Datetime("us"), eager=True).alias(raw.name)
    at = epoch.arg_true()
    if at.len():
        fast = fast.scatter(at, frame[at].select(_epoch(text)).to_series())
    # A canonical text with a zone (Z or an offset) is read with it, the others as local
    # times: each row is parsed once (a naive parse of every text, then an aware parse of
    # those it failed, cost 0.67 s per million mixed rows; this 0.48 s).
    zone_given = raw.str.contains(ZONED_PATTERN)
    for zoned in (False, True):
        at = (canonical & (zone_given == zoned)).arg_true()
        if not at.len():
            continue
        stamps = _canonical(raw.gather(at), zoned=zoned)
        if not zoned:
            stamps = pl.select(_as_utc(pl.lit(stamps), timezone, ambiguous)).to_series()
        fast = fast.scatter(at, stamps)
    rest = (fast.is_null() & raw.is_not_null()).arg_true()
    if rest.len():
        slow = frame[rest].select(timestamp_expr(text, timezone, ambiguous)).to_series()
        fast = fast.scatter(rest, slow)
    return fast


def _canonical(texts: pl.Series, *, zoned: bool) -> pl.Series:
    """Read texts of `CANONICAL_PATTERN` as naive instants (UTC ones when ``zoned``).

    The date and time of day (the first 19 characters; a 'T' made a space, a '/' a '-') go
    through Polars' fixed-width strptime, a seventh of the cost of a format with a fraction
    or an offset (chrono reads those value by value). The fraction (cut to microseconds) and
    the offset (Z or +-HH:MM) are then added as numbers, as `timestamp_expr` adds them. Where
    the date or time does not exist (2024-02-30, 24:00:00, a leap second), the result is
    null: the general parser decides.
    """
    text = pl.col("t")
    head = text.str.slice(0, 19).str.replace("T", " ", literal=True, n=1)
    stamp = head.str.replace_all("/", "-", literal=True).str.to_datetime(
        "%Y-%m-%d %H:%M:%S", strict=False, time_unit="us", exact=True, cache=False
    )
    # The fraction's digits: from after the '.' to the zone (a regular expression cost
    # five times as much).
    utc = text.str.ends_with("Z")
    zone = pl.when(utc).then(1).otherwise(6) if zoned else pl.lit(0)
    digits = text.str.slice(20, text.str.len_bytes() - 20 - zone)
    fraction = pl.when(text.str.slice(19, 1) == ".").then(digits)
    micros = fraction.str.pad_end(6, "0").str.slice(0, 6).cast(pl.Int64).fill_null(0)
    stamp = stamp + pl.duration(microseconds=micros)
    if zoned:
        offset = text.str.slice(-6)
        minutes = pl.when(offset.str.starts_with("-")).then(-1).otherwise(1) * (
            offset.str.slice(1, 2).cast(pl.Int64, strict=False) * 60
            + offset.str.slice(4, 2).cast(pl.Int64, strict=False)
        )
        stamp = stamp - pl.duration(minutes=pl.when(utc).then(0).otherwise(minutes))
    return texts.alias("t").to_frame().select(stamp.alias(texts.name)).to_series()


def parse_formatted(
    raw: pl.Series, formats: tuple[str, ...], timezone: str = UTC, ambiguous: Ambiguous = "earliest"
) -> pl.Series:
    """Parse trimmed strings with strftime-style formats, vectorised; the first that reads wins.

    Parameters
    ----------
    raw
        Trimmed strings.
    formats
        Valid formats (`iotpipe.contract.formats.format_problem` says which are), tried in
        order. A format with ``%z`` reads the offset; the others are naive times in
        ``timezone``.
    timezone, ambiguous
        How naive times are read (see `timestamp_expr`).

    Returns
    -------
    pl.Series
        Naive UTC ``Datetime('us')``, null where no format reads the text.
    """
    text = pl.col("raw")
    tries = []
    for fmt in formats:
        parsed = text.str.to_datetime(chrono_format(fmt), strict=False, time_unit="us")
        if has_offset(fmt):
            tries.append(parsed.dt.convert_time_zone(UTC).dt.replace_time_zone(None))
        else:
            tries.append(_as_utc(parsed, timezone, ambiguous))
    frame = raw.alias("raw").to_frame()
    return frame.select(pl.coalesce(tries).alias(raw.name)).to_series()


def local_time_faults(raw: pl.Series, timezone: str, formats: tuple[str, ...] = ()) -> pl.Series:
    """Say why texts that do not parse in ``timezone`` fail, when the zone is the reason.

    Parameters
    ----------
    raw
        Trimmed strings that `parse_timestamps` left null (only those: it costs a parse).
    timezone
        The zone of naive times (not UTC: UTC has no gaps, so no fault is the zone's).
    formats
        The contract's timestamp formats (none: ISO 8601 and epoch).

    Returns
    -------
    pl.Series
        ``nonexistent`` for a wall-clock time that a DST gap skips, ``ambiguous`` for one that
        happens twice, null for the rest (they are not times at all).
    """
    checks = pl.DataFrame(
        {
            # a wall-clock time at all
            "readable": parse_timestamps(raw, UTC, formats=formats).is_not_null(),
            "exists": parse_timestamps(raw, timezone, "earliest", formats).is_not_null(),
        }
    )
    return checks.select(
        pl.when(~pl.col("readable"))
        .then(pl.lit(None, dtype=pl.String))
        .when(~pl.col("exists"))
        .then(pl.lit("nonexistent"))
        .otherwise(pl.lit("ambiguous"))
        .alias(raw.name)
    ).to_series()


def _as_utc(naive: pl.Expr, timezone: str, ambiguous: Ambiguous) -> pl.Expr:
    """Naive local times in ``timezone`` as naive UTC (null where no one instant fits)."""
    if timezone == UTC:
        return naive
    return (
        naive.dt.replace_time_zone(
            timezone,
            ambiguous="null" if ambiguous == "reject" else ambiguous,
            non_existent="null",
        )
        .dt.convert_time_zone(UTC)
        .dt.replace_time_zone(None)
    )


def _epoch(raw: pl.Expr) -> pl.Expr:
    """Epoch seconds, or milliseconds above `EPOCH_MS_THRESHOLD`, as naive UTC."""
    number = raw.cast(pl.Float64, strict=False)
    micros = (
        pl.when(number.abs() >= EPOCH_MS_THRESHOLD)
        .then(number * 1_000)
        .otherwise(number * 1_000_000)
        .round(0)
        .cast(pl.Int64, strict=False)
    )
    return pl.from_epoch(micros, time_unit="us")
