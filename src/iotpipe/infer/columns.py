"""What a sampled column holds: its kind (text, numbers, times...), how many values, their range."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from iotpipe.contract import DEFAULT_MISSING_VALUES
from iotpipe.timestamps import timestamp_expr

PARSE_SHARE = 0.95  # share of non-missing values that must parse for a kind to be chosen
EPOCH_RANGE = (946_684_800, 4_102_444_800)  # 2000-01-01 .. 2100-01-01 in seconds
MISSING = frozenset(v.casefold() for v in DEFAULT_MISSING_VALUES)


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
        ``string``, ``integer``, ``number``, ``boolean``, ``datetime`` (text) or ``epoch``.
    present, distinct
        Non-missing values, and how many differ.
    low, high
        The numeric range (numbers only).
    sequential
        Whole numbers counting up by one (a row counter).
    """

    source: str
    values: list[str | None]
    kind: str = "string"
    present: int = 0
    distinct: int = 0
    low: float | None = None
    high: float | None = None
    sequential: bool = False

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
        column.low, column.high = float(numbers.min()), float(numbers.max())  # type: ignore[arg-type]
        low, high = column.low, column.high
        in_seconds = EPOCH_RANGE[0] <= low and high <= EPOCH_RANGE[1]
        in_millis = EPOCH_RANGE[0] * 1000 <= low and high <= EPOCH_RANGE[1] * 1000
        if integral and (in_seconds or in_millis):
            column.kind = "epoch"
        if integral and column.distinct == column.present > 1:
            column.sequential = bool((numbers.diff().drop_nulls() == 1).all())
    else:
        # Over a frame's column: the same expression over pl.lit(series) panics in Polars 2.1
        # on some columns of hex strings that look like epoch numbers.
        stamps = texts.to_frame("v").select(timestamp_expr(pl.col("v"))).to_series()
        if stamps.is_not_null().sum() / column.present >= PARSE_SHARE:
            column.kind = "datetime"
    return column
