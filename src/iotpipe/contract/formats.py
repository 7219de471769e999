"""Timestamp formats (``timestamp.format``): strftime-style, checked here, read by Polars.

A format is written as for Python's ``datetime.strptime``; `format_problem` says what is wrong
with one, and `chrono_format` turns it into the format Polars' ``str.to_datetime`` (Rust's
chrono) reads the same way. Pure Python: the retrieval function validates contracts too and
must not import Polars.
"""

from __future__ import annotations

import re

# The directives a format may use, with what each one reads.
DIRECTIVES = {
    "Y": "year, 4 digits",
    "y": "year, 2 digits",
    "m": "month, 1-12",
    "b": "month name, abbreviated (Jan)",
    "B": "month name (January)",
    "d": "day of the month",
    "j": "day of the year",
    "H": "hour, 0-23",
    "I": "hour, 1-12 (with %p)",
    "p": "AM or PM",
    "M": "minute",
    "S": "second",
    "f": "fraction of a second, after %S. (up to 9 digits)",
    "z": "UTC offset: Z, +01:00, +0100 or +01",
    "a": "weekday name, abbreviated",
    "A": "weekday name",
    "%": "a literal %",
}
_DIRECTIVE = re.compile(r"%(.?)")


def format_problem(text: str) -> str | None:
    """Return what is wrong with a timestamp format, or None when it can be used.

    Parameters
    ----------
    text
        A strftime-style format, e.g. ``%m/%d/%Y %I:%M:%S %p``.

    Returns
    -------
    str or None
        The problem, in words.
    """
    used = _DIRECTIVE.findall(text)
    unknown = sorted({d for d in used if d not in DIRECTIVES})
    if unknown:
        allowed = " ".join(f"%{d}" for d in DIRECTIVES)
        return f"unknown directive(s) {', '.join('%' + d for d in unknown)} (allowed: {allowed})"
    has = set(used)
    rules = [
        (not has & {"Y", "y"}, "needs a year (%Y or %y)"),
        (
            not (has & {"m", "b", "B"} and "d" in has) and "j" not in has,
            "needs a month and a day (%m/%b/%B and %d), or %j",
        ),
        ("I" in has and "p" not in has, "%I (12-hour clock) needs %p (AM/PM)"),
        ("H" in has and "I" in has, "use %H (24-hour) or %I with %p (12-hour), not both"),
        ("f" in has and not re.search(r"%S\.?%f", text), "%f must follow %S and a dot (%S.%f)"),
    ]
    return next((problem for broken, problem in rules if broken), None)


def chrono_format(text: str) -> str:
    """Return the Polars (chrono) spelling of a valid strftime-style format.

    ``%S.%f`` becomes ``%S%.f`` (any number of fraction digits, the dot optional), and ``%z``
    becomes ``%#z`` (``Z``, ``+01:00``, ``+0100`` and ``+01`` all read).
    """
    out = re.sub(r"%S\.?%f", "%S%.f", text)
    return out.replace("%z", "%#z")


def has_offset(text: str) -> bool:
    """Say whether a format reads a UTC offset (then the zone of naive times does not apply)."""
    return "%z" in text
