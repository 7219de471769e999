"""Field values, vectorised: missing markers, parsing each field type, checking constraints.

Cleaning (`iotpipe.clean`) applies these per batch: `null_markers` on every raw column, then
`parse_expr` and `check_exprs` per field (each field's text is parsed once, then checked).
"""

from __future__ import annotations

import functools
import itertools
import math

import polars as pl

from iotpipe.contract import Field

MAX_MARKER_SPELLINGS = 4096
KELVIN_SIGN = "\u212a"
MAX_EXACT_INT = 2**53
TRUE_WORDS = ("true", "t", "yes", "y", "1", "on")
FALSE_WORDS = ("false", "f", "no", "n", "0", "off")


def null_markers(name: str, markers: frozenset[str]) -> pl.Expr:
    """Null a trimmed column's missing markers (compared case-insensitively)."""
    trimmed = pl.col(name)
    spellings = marker_spellings(markers)
    if spellings is None:
        missing = trimmed.str.to_lowercase().is_in(sorted(markers))
    else:  # the same test without lowercasing every value (half the cost of normalising)
        missing = trimmed.is_in(spellings)
    return pl.when(missing).then(None).otherwise(trimmed).alias(name)


def null_sentinels(name: str, sentinels: tuple[float, ...]) -> pl.Expr:
    """Null a trimmed numeric column's values that equal a numeric missing marker.

    The value is compared, not the text, with either decimal mark: ``-200`` matches
    ``-200``, ``-200.0``, ``-200,0`` and ``-2e2``.
    """
    text = pl.col(name)
    number = text.str.replace(",", ".", literal=True).cast(pl.Float64, strict=False)
    return pl.when(number.is_in(list(sentinels))).then(None).otherwise(text).alias(name)


@functools.cache
def marker_spellings(markers: frozenset[str]) -> list[str] | None:
    """Every string whose lowercase is one of ``markers``; None when that is not practical.

    Parameters
    ----------
    markers
        Lowercase missing-value markers.

    Returns
    -------
    list[str] or None
        The spellings, when every marker is ASCII and lowercase and they number at most
        `MAX_MARKER_SPELLINGS`; otherwise None (values must be lowercased to compare).
    """
    if not all(m.isascii() and m == m.lower() for m in markers):
        return None
    # The only non-ASCII character whose lowercase is ASCII is the Kelvin sign ("k").
    choices = [
        [{c, c.upper()} | ({KELVIN_SIGN} if c == "k" else set()) for c in marker]
        for marker in markers
    ]
    if sum(math.prod(len(c) for c in marker) for marker in choices) > MAX_MARKER_SPELLINGS:
        return None
    return sorted({"".join(p) for marker in choices for p in itertools.product(*marker)})


def parse_expr(f: Field, decimal: str) -> pl.Expr:
    """Return a field's typed value before its checks, from its normalised raw column.

    A datetime field's parsed value is the ``__parsed.<name>`` column (`parse_timestamps`).
    """
    raw = pl.col(f.name)
    if f.type in ("number", "integer"):
        text = raw.str.replace_all(",", ".", literal=True) if decimal == "," else raw
        return text.cast(pl.Float64, strict=False)
    if f.type == "boolean":
        lower = raw.str.to_lowercase()
        return (
            pl.when(lower.is_in(TRUE_WORDS)).then(True).when(lower.is_in(FALSE_WORDS)).then(False)
        )
    if f.type == "datetime":
        return pl.col(f"__parsed.{f.name}")
    return raw.str.to_lowercase() if f.type == "category" else raw


def check_exprs(f: Field, parsed: pl.Expr, present: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """Return (stored value, is-invalid) expressions from a field's parsed column."""
    if f.type in ("number", "integer"):
        bad = parsed.is_null() | parsed.is_nan() | parsed.is_infinite()
        if f.minimum is not None:
            bad = bad | (parsed < f.minimum)
        if f.maximum is not None:
            bad = bad | (parsed > f.maximum)
        if f.type == "integer":
            bad = bad | (parsed != parsed.floor()) | (parsed.abs() > MAX_EXACT_INT)
            return parsed.cast(pl.Int64, strict=False), present & bad.fill_null(True)
        return parsed, present & bad.fill_null(True)
    if f.type in ("boolean", "datetime"):
        return parsed, present & parsed.is_null()
    bad = pl.lit(False)
    if f.enum:
        bad = bad | ~parsed.is_in(f.enum)
    if f.max_length:
        bad = bad | (parsed.str.len_chars() > f.max_length)
    return parsed, present & bad
