"""Which strftime-style format a column of dates, times or timestamps is written in.

Candidates are built from the shapes loggers write - ISO-like, month-first and day-first dates
with ``/``, ``-`` or ``.``, month names, compact digits; 24- and 12-hour clocks, dotted times,
fractions - and each one is tried on the sampled values with the same vectorised parser the
cleaning uses. When both a day-first and a month-first reading fit every value (no field over
12), the one whose values step most evenly in time wins, and the guess says it was not sure.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
import statistics
from dataclasses import dataclass

import polars as pl

from iotpipe.timestamps import parse_formatted

PARSE_SHARE = 0.95
PROBE = 20  # values a candidate must read before it is tried on the whole sample

_YMD = ["%Y-%m-%d", "%Y/%m/%d", "%Y.%m.%d", "%Y%m%d"]
_MONTH_FIRST = ["%m/%d/%Y", "%m-%d-%Y", "%m.%d.%Y", "%m/%d/%y", "%m-%d-%y"]
_DAY_FIRST = ["%d/%m/%Y", "%d-%m-%Y", "%d.%m.%Y", "%d/%m/%y", "%d-%m-%y", "%d.%m.%y"]
_NAMED = ["%d %b %Y", "%d-%b-%Y", "%d-%b-%y", "%b %d %Y", "%b %d, %Y", "%d %B %Y", "%B %d, %Y"]
DATES = [*_YMD, *_MONTH_FIRST, *_DAY_FIRST, *_NAMED]
TIMES = [
    "%H:%M:%S.%f",
    "%H:%M:%S",
    "%H:%M",
    "%H.%M.%S",
    "%H.%M",
    "%I:%M:%S %p",
    "%I:%M %p",
    "%I:%M:%S%p",
    "%I:%M%p",
    "%H%M%S",
]
JOINS = [" ", "T", ", "]
ZONES = ["", "%z", " %z"]
_DIGITS = re.compile(r"\d+")


@dataclass(frozen=True)
class FormatGuess:
    """A format that reads a column, and how sure the guess is."""

    format: str
    parsed: int  # values read
    present: int  # values there were
    note: str = ""  # why it might be wrong ("day-first or month-first: the sample cannot tell")

    @property
    def share(self) -> float:
        """The share of the values the format reads."""
        return self.parsed / max(self.present, 1)


def guess_datetime_format(values: pl.Series) -> FormatGuess | None:
    """Return the format of a column of timestamps (a date and a time), or None."""
    candidates = [
        f"{d}{j}{t}{z}"
        for d, j, t, z in itertools.product(DATES, JOINS, TIMES, ZONES)
        if not (d == "%Y%m%d" and j == ", ")
    ]
    return _best(values, candidates)


def guess_date_format(values: pl.Series) -> FormatGuess | None:
    """Return the format of a column of dates alone, or None."""
    return _best(values, DATES)


def guess_time_format(values: pl.Series) -> FormatGuess | None:
    """Return the format of a column of times of day alone (read on a fixed date), or None."""
    dated = (
        pl.Series(values.name, values)
        .to_frame("v")
        .select(pl.concat_str([pl.lit("2000-01-01 "), pl.col("v")]))
    )
    guess = _best(dated.to_series(), [f"%Y-%m-%d {t}" for t in TIMES])
    if guess is None:
        return None
    return FormatGuess(guess.format.removeprefix("%Y-%m-%d "), guess.parsed, guess.present)


def _best(values: pl.Series, candidates: list[str]) -> FormatGuess | None:
    texts = values.drop_nulls()
    if texts.len() == 0 or not texts.str.contains(r"\d").all():
        return None
    probe = texts.head(PROBE)
    first = probe.head(3).to_list()
    chars = set(first[0])
    fits: list[tuple[str, pl.Series]] = []
    for fmt in candidates:
        if not set(re.sub(r"%.", "", fmt)) <= chars:  # its separators are not in the value
            continue
        if not all(_reads(fmt, text) for text in first):  # Python's strptime: a quick sieve
            continue
        if parse_formatted(probe, (fmt,)).null_count() > (1 - PARSE_SHARE) * probe.len():
            continue
        parsed = parse_formatted(texts, (fmt,))
        if parsed.is_not_null().sum() >= PARSE_SHARE * texts.len():
            fits.append((fmt, parsed))
    if not fits:
        return None
    present = texts.len()
    best = max(int(parsed.is_not_null().sum()) for _, parsed in fits)
    fits = [(fmt, parsed) for fmt, parsed in fits if parsed.is_not_null().sum() == best]
    if len(fits) == 1:
        return FormatGuess(fits[0][0], best, present)
    # Several read every value: the same instants (%H and %I on a 24h-free sample, say) are
    # no choice at all; different ones are day-first against month-first.
    distinct = {tuple(parsed.to_list()): fmt for fmt, parsed in reversed(fits)}
    if len(distinct) == 1:
        return FormatGuess(_simplest([fmt for fmt, _ in fits]), best, present)
    ranked = sorted(fits, key=lambda pair: _unevenness(pair[1]))
    chosen = ranked[0][0]
    even = _unevenness(ranked[0][1]) < _unevenness(ranked[1][1])
    note = "day-first or month-first: every day in the sample is 12 or less; " + (
        "chose the reading whose times step evenly" if even else "check it"
    )
    return FormatGuess(chosen, best, present, note)


def _reads(fmt: str, text: str) -> bool:
    try:
        dt.datetime.strptime(text, fmt)  # noqa: DTZ007 (only whether it reads)
    except ValueError:
        # Python reads at most 6 fraction digits; let the real parser judge longer ones.
        return "%f" in fmt and bool(re.search(r"\.\d{7,}", text))
    return True


def _simplest(formats: list[str]) -> str:
    """Of formats that read the same instants, the shortest (no optional zone, 24-hour)."""
    return min(formats, key=lambda f: (len(f), "%I" in f, f))


def _unevenness(parsed: pl.Series) -> float:
    """How unevenly sorted distinct instants step (the spread of the steps, in seconds)."""
    instants = sorted({v for v in parsed.to_list() if v is not None})
    steps = [(b - a).total_seconds() for a, b in itertools.pairwise(instants)]
    if len(steps) < 2:  # noqa: PLR2004
        return 0.0
    return float(statistics.pstdev(steps) / max(statistics.median(steps), 1.0))


def has_date_and_time(fmt: str) -> bool:
    """Say whether a format reads a time of day too (not just a date)."""
    return any(d in fmt for d in ("%H", "%I"))
