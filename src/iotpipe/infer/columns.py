"""What a sampled column holds: its kind (text, numbers, times...), how many values, their range."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import polars as pl

from iotpipe.contract import DEFAULT_MISSING_VALUES
from iotpipe.infer.timeformats import (
    guess_date_format,
    guess_datetime_format,
    guess_time_format,
)
from iotpipe.timestamps import timestamp_expr

PARSE_SHARE = 0.95  # share of non-missing values that must parse for a kind to be chosen
EPOCH_RANGE = (946_684_800, 4_102_444_800)  # 2000-01-01 .. 2100-01-01 in seconds
MISSING = frozenset(v.casefold() for v in DEFAULT_MISSING_VALUES)
SENTINEL_MIN_COUNT = 2
SENTINEL_MIN_MAGNITUDE = 99
DATE_ONLY = r"^\d{4}[-/.]\d{1,2}[-/.]\d{1,2}$"


@dataclass
class Profile:
    """One sampled column.

    Attributes
    ----------
    source
        Its name (a dotted path in JSON).
    values
        Its raw values, one per sampled record (None where absent).
    kind
        ``string``, ``integer``, ``number``, ``boolean``, ``datetime`` (text), ``time`` (a
        time of day alone) or ``epoch``.
    present, distinct
        Non-missing values, and how many differ.
    low, high
        The numeric range (numbers only).
    sequential
        Whole numbers counting up by one (a row counter).
    time_format
        For ``datetime`` text that today's rules (ISO 8601) do not read, and for ``time``
        (a time of day alone): the strftime-style format that reads it.
    date_only
        ``datetime`` values that are dates without a time of day.
    note
        Why the format guess may be wrong.
    sentinels
        Numbers that stand for "no reading" (`find_sentinels`), as text, with their counts;
        ``low`` and ``high`` leave them out.
    """

    source: str
    values: list[str | None]
    kind: str = "string"
    present: int = 0
    distinct: int = 0
    low: float | None = None
    high: float | None = None
    sequential: bool = False
    time_format: str | None = None
    date_only: bool = False
    note: str = ""
    sentinels: dict[str, int] = field(default_factory=dict)  # "no reading" value -> count
    iso: bool = False  # times that today's rules (ISO 8601) read without a format

    def texts(self) -> pl.Series:
        """Return the values trimmed, missing markers as nulls (one per sampled record)."""
        series = pl.Series("v", self.values, dtype=pl.String).str.strip_chars()
        return (
            series.to_frame()
            .select(
                pl.when(pl.col("v").str.to_lowercase().is_in(sorted(MISSING)))
                .then(None)
                .otherwise(pl.col("v"))
            )
            .to_series()
        )

    def numbers(self, decimal: str = ".") -> pl.Series:
        """Return the values as numbers (null where not one)."""
        text = self.texts()
        if decimal == ",":
            text = text.str.replace_all(",", ".", literal=True)
        return text.cast(pl.Float64, strict=False)


def profile(source: str, values: list[str | None], decimal: str) -> Profile:
    """Say what a column holds, from its sampled values.

    Parameters
    ----------
    source
        The column.
    values
        Its raw values.
    decimal
        The file's decimal mark.

    Returns
    -------
    Profile
        Whole numbers within 2000-2100 as epoch seconds or milliseconds are ``epoch``; text
        that the cleaning policy parses as a timestamp is ``datetime``.
    """
    column = Profile(source, values)
    texts = column.texts().drop_nulls()
    column.present, column.distinct = texts.len(), texts.n_unique()
    if column.present == 0:
        return column
    numbers = column.numbers(decimal).drop_nulls()
    if texts.str.to_lowercase().is_in(["true", "false"]).all():
        column.kind = "boolean"
    elif numbers.len() / column.present >= PARSE_SHARE:
        integral = bool((numbers == numbers.floor()).all()) and not texts.str.contains(r"\.").any()
        column.kind = "integer" if integral else "number"
        column.sentinels = find_sentinels(numbers)
        readings = numbers.filter(~numbers.is_in([float(v) for v in column.sentinels]))
        if readings.len() == 0:
            readings = numbers
        column.low, column.high = float(readings.min()), float(readings.max())  # type: ignore[arg-type]
        low, high = column.low, column.high
        in_seconds = EPOCH_RANGE[0] <= low and high <= EPOCH_RANGE[1]
        in_millis = EPOCH_RANGE[0] * 1000 <= low and high <= EPOCH_RANGE[1] * 1000
        if integral and (in_seconds or in_millis):
            column.kind = "epoch"
        if integral and column.distinct == column.present > 1:
            column.sequential = bool((numbers.diff().drop_nulls() == 1).all())
    else:
        _times(column, texts)
    return column


def find_sentinels(numbers: pl.Series) -> dict[str, int]:
    """Find the values that stand for "no reading" in a numeric column.

    A sentinel is a round value (-200, -999, 9999, 999.9, -32768...) that repeats and lies
    far outside the rest of the column - below its 1st percentile, or above its 99th, by more
    than the spread between the two - or is negative where the rest never is.

    Parameters
    ----------
    numbers
        The column's values as numbers (no nulls).

    Returns
    -------
    dict
        Each sentinel as the text a contract lists (``"-200"``, ``"999.9"``) and its count.
    """
    found: dict[str, int] = {}
    counts = numbers.value_counts(sort=True)
    for value, count in counts.iter_rows():
        if count < SENTINEL_MIN_COUNT or not _round(value):
            continue
        rest = numbers.filter(numbers != value)
        if rest.len() < SENTINEL_MIN_COUNT:
            continue
        low, high = rest.quantile(0.01), rest.quantile(0.99)
        if low is None or high is None:
            continue
        spread = max(high - low, 1.0)
        far = value < low - spread or value > high + spread
        # A negative value in a column that is otherwise never negative (a count, a level).
        wrong_sign = value < 0 <= float(rest.min())  # type: ignore[arg-type]
        if far or wrong_sign:
            found[_number_text(value)] = int(count)
    return found


def _round(value: float) -> bool:
    """Say whether loggers write this for "no reading": all nines, a digit and zeros, int16."""
    text = _number_text(abs(value))
    nines = re.fullmatch(r"9+(\.9+)?", text) is not None and abs(value) >= SENTINEL_MIN_MAGNITUDE
    zeros = re.fullmatch(r"[1-9]0+", text) is not None and abs(value) >= SENTINEL_MIN_MAGNITUDE
    return nines or zeros or abs(value) in (32767, 32768, 65535)


def _number_text(value: float) -> str:
    return str(int(value)) if value == int(value) else repr(value)


def _times(column: Profile, texts: pl.Series) -> None:
    """Tell timestamps, dates and times of day apart, and find the format they are written in."""
    # Over a frame's column: the same expression over pl.lit(series) panics in Polars 2.1
    # on some columns of hex strings that look like epoch numbers.
    stamps = texts.to_frame("v").select(timestamp_expr(pl.col("v"))).to_series()
    if stamps.is_not_null().sum() / column.present >= PARSE_SHARE:
        column.kind, column.iso = "datetime", True
        column.date_only = bool(texts.str.contains(DATE_ONLY).all())
        if column.date_only:
            guess = guess_date_format(texts)
            column.time_format = guess.format if guess else None
        return
    for guess_format, date_only in ((guess_datetime_format, False), (guess_date_format, True)):
        guess = guess_format(texts)
        if guess is not None:
            column.kind, column.time_format, column.date_only = "datetime", guess.format, date_only
            column.note = guess.note
            return
    guess = guess_time_format(texts)
    if guess is not None:
        column.kind, column.time_format, column.note = "time", guess.format, guess.note
