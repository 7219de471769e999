"""Which columns are the row's key (timestamp and device id), judged from the values.

No dataset's column names are known here. The timestamp is the time column that tells the
records apart best (text before epoch numbers), or separate date and time columns, or integer
columns whose ranges and order make them year, month, day[, hour[, minute[, second]]]. The
device id is the text (or integer) column that, with the timestamp, keys the records uniquely
and splits them into the most regular series: one reading every so often per device, or long
runs of one device. Generic words ("id", "device", "time"...) only break near-ties.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import polars as pl

from iotpipe.infer.columns import PARSE_SHARE, Profile
from iotpipe.timestamps import parse_formatted, timestamp_expr

ID_WORDS = frozenset({"id", "uid", "uuid", "guid", "eui", "serial", "sn", "mac", "imei", "iccid"})
THING_WORDS = frozenset(
    {"device", "dev", "sensor", "meter", "node", "unit", "thing", "asset", "gateway", "probe"}
)
TIME_WORDS = ("timestamp", "datetime", "time", "date", "ts")
PART_RANGES = {
    "month": (1, 12),
    "day": (1, 31),
    "hour": (0, 23),
    "minute": (0, 59),
    "second": (0, 59),
}
YEAR_RANGE = (1970, 2100)
MAX_PART = 59  # the largest month, day, hour, minute or second
MAX_PART_COLUMNS = 6  # composite timestamps are searched among at most this many columns
ORDERED_SHARE = 0.9
KEYED_SHARE = 0.99  # records the timestamp alone tells apart, for it to key the file alone
MIN_ID = 3  # characters of the shortest constant text taken for a device name


@dataclass
class TimeChoice:
    """The timestamp found: contract parts, and the instant of each sampled record."""

    parts: dict[str, str]  # {"source": column} or {"date": ..., "time": ...} or year/month/...
    instants: list[dt.datetime | None]
    format: str | None = None  # timestamp.format, where today's rules do not read it
    date_only: bool = False  # a date without a time of day
    note: str = ""  # why the format may be wrong

    @property
    def columns(self) -> set[str]:
        """The source columns the timestamp takes."""
        return set(self.parts.values())


def words(source: str) -> list[str]:
    """Split a column name into lowercase words (``devEUI`` -> dev, eui; ``LCLid`` -> ..., id)."""
    leaf = source.rsplit(".", 1)[-1]
    pieces = re.findall(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+", leaf)
    found = [p.lower() for p in pieces]
    if leaf.lower().endswith("id") and "id" not in found:
        found.append("id")  # "LCLid": an id, however it is cased
    return found


def choose_timestamp(profiles: Sequence[Profile]) -> TimeChoice | None:
    """Return the best timestamp of the sample, or None when nothing looks like one.

    A date alone is never chosen when a date and a time column read together.
    """
    choices: list[TimeChoice | None] = [
        _single(p) for p in profiles if p.kind in ("datetime", "epoch") and p.present
    ]
    combined = _date_and_time(profiles)
    if any(c is not None for c in combined):
        choices = [c for c in choices if c is not None and not c.date_only]
    choices += combined
    choices += _composites(profiles)
    scored = [(c, _time_score(c, profiles)) for c in choices if c is not None]
    if not scored:
        return None
    return max(scored, key=lambda pair: pair[1])[0]


def choose_device(
    profiles: Sequence[Profile], time: TimeChoice | None
) -> tuple[Profile | None, float]:
    """Return the column that is the device id (None when none is) and its score.

    A column that says it is an id - an id or thing word in its name, or one text value
    throughout (one device's file) - is a candidate; so is one that tells apart at least
    half the records the timestamp alone cannot. When the timestamp alone keys the records,
    any other column would be a guess, and none is taken.
    """
    used = time.columns if time is not None else set()
    rows = len(profiles[0].values) if profiles else 0
    candidates = [
        p
        for p in profiles
        if p.source not in used
        and p.kind in ("string", "integer")
        and p.present >= 0.9 * rows
        and p.distinct <= max(1, rows // 2)
    ]
    if not candidates:
        return None, 0.0
    instants = time.instants if time is not None else [None] * rows
    alone = _key_share(None, instants)
    plausible = [
        p
        for p in candidates
        if _says_it_is_an_id(p)
        or (alone < KEYED_SHARE and _key_share(p, instants) >= (1 + alone) / 2)
    ]
    if not plausible:
        return None, 0.0
    scored = [(p, _device_score(p, instants)) for p in plausible]
    return max(scored, key=lambda pair: pair[1])


def _key_share(p: Profile | None, instants: Sequence[dt.datetime | None]) -> float:
    """Share of the timed records that the timestamp - with the column, if given - tells apart."""
    values = p.texts().to_list() if p is not None else [None] * len(instants)
    keyed = [(v, t) for v, t in zip(values, instants, strict=True) if t is not None]
    return len(set(keyed)) / len(keyed) if keyed else 0.0


def _says_it_is_an_id(p: Profile) -> bool:
    """Say whether the column says it is an id: by its name, or one text value throughout."""
    name = set(words(p.source))
    if name & (ID_WORDS | THING_WORDS):
        return True
    return p.kind == "string" and p.distinct == 1 and len(p.texts().drop_nulls()[0]) >= MIN_ID


def device_from_path(path: str) -> str | None:
    """Return a ``device_id.from_path`` regex when the path names a device, or None.

    A directory named for devices (``devices/<id>/``, ``sensors/<id>/``...) or a partition
    ``device=<id>/`` (an id or thing word before ``=``).
    """
    segments = path.replace("\\", "/").split("/")[:-1]
    for i, segment in enumerate(segments):
        key, eq, value = segment.partition("=")
        if eq and value and set(words(key)) & (ID_WORDS | THING_WORDS):
            return f"(?:^|/){re.escape(key)}=(?P<device_id>[^/]+)/"
        singular = segment.lower().removesuffix("s")
        if i + 1 < len(segments) and singular in THING_WORDS and segments[i + 1]:
            return f"(?:^|/){re.escape(segment)}/(?P<device_id>[^/]+)/"
    return None


# --------------------------------------------------------------------------------------------
# Timestamps
# --------------------------------------------------------------------------------------------


def _instants(texts: Iterable[str | None], fmt: str | None = None) -> list[dt.datetime | None]:
    series = pl.Series("v", list(texts), dtype=pl.String)
    if fmt is not None:
        return list(parse_formatted(series, (fmt,)).to_list())
    return list(series.to_frame().select(timestamp_expr(pl.col("v"))).to_series().to_list())


def _single(p: Profile) -> TimeChoice:
    fmt = p.time_format if p.kind == "datetime" and not p.iso else None
    instants = _instants(p.texts().to_list(), fmt)
    return TimeChoice({"source": p.source}, instants, fmt, p.date_only, p.note)


def _date_and_time(profiles: Sequence[Profile]) -> list[TimeChoice | None]:
    """Separate date and time columns, where they read as one timestamp together."""
    dates = [p for p in profiles if p.kind == "datetime" and p.date_only and p.time_format]
    times = [p for p in profiles if p.kind == "time" and p.present and p.time_format]
    choices: list[TimeChoice | None] = []
    for date, time in itertools.product(dates, times):
        joined = [
            f"{d} {t}" if d is not None and t is not None else None
            for d, t in zip(date.texts().to_list(), time.texts().to_list(), strict=True)
        ]
        fmt: str | None = f"{date.time_format} {time.time_format}"
        instants = _instants(joined)  # today's rules first: no format needed when they read it
        if sum(i is not None for i in instants) < PARSE_SHARE * max(date.present, 1):
            instants = _instants(joined, fmt)
        else:
            fmt = None
        if sum(i is not None for i in instants) >= PARSE_SHARE * max(date.present, 1):
            note = "; ".join(n for n in (date.note, time.note) if n)
            parts = {"date": date.source, "time": time.source}
            choices.append(TimeChoice(parts, instants, fmt, note=note))
    return choices


def _composites(profiles: Sequence[Profile]) -> list[TimeChoice | None]:
    """Integer columns that make year, month, day[, hour[, minute[, second]]] by their values."""
    ints = [p for p in profiles if p.kind == "integer" and p.present and p.low is not None]
    years = [p for p in ints if YEAR_RANGE[0] <= (p.low or 0) and (p.high or 0) <= YEAR_RANGE[1]]
    small = [p for p in ints if p not in years and (p.low or 0) >= 0 and (p.high or 0) <= MAX_PART]
    small = small[:MAX_PART_COLUMNS]
    choices: list[TimeChoice | None] = []
    names = list(PART_RANGES)
    for year in years:
        for k in range(len(small), 1, -1):
            for columns in itertools.permutations(small, k):
                parts = dict(zip(names, columns, strict=False))
                if not all(_fits(col, part) for part, col in parts.items()):
                    continue
                instants = _composed(year, parts)
                if _ordered(instants):
                    choices.append(
                        TimeChoice(
                            {"year": year.source, **{k: c.source for k, c in parts.items()}},
                            instants,
                        )
                    )
    return choices


def _fits(p: Profile, part: str) -> bool:
    low, high = PART_RANGES[part]
    return low <= (p.low or 0) and (p.high or 0) <= high


def _composed(year: Profile, parts: dict[str, Profile]) -> list[dt.datetime | None]:
    values = [year.numbers().to_list(), *(p.numbers().to_list() for p in parts.values())]
    instants: list[dt.datetime | None] = []
    for row in zip(*values, strict=True):
        if any(v is None for v in row):
            instants.append(None)
            continue
        y, mo, d, h, mi, s = [int(v) for v in row] + [0] * (6 - len(row))
        try:
            instants.append(dt.datetime(y, mo, d, h, mi, s))
        except ValueError:  # day 0, February 30th...
            instants.append(None)
    return instants


def _ordered(instants: Sequence[dt.datetime | None]) -> bool:
    """Tell whether instants are valid and mostly in time order (files mostly are sorted)."""
    valid = [i for i in instants if i is not None]
    if len(valid) < PARSE_SHARE * len(instants) or len(valid) < 2:  # noqa: PLR2004
        return False
    ordered = sum(b >= a for a, b in itertools.pairwise(valid))
    return ordered >= ORDERED_SHARE * (len(valid) - 1)


def _time_score(choice: TimeChoice, profiles: Sequence[Profile]) -> tuple[float, ...]:
    valid = [i for i in choice.instants if i is not None]
    distinct = round(len(set(valid)) / max(len(choice.instants), 1), 2)
    text = choice.parts.get("source") is None or any(
        p.source == choice.parts["source"] and p.kind == "datetime" for p in profiles
    )
    named = max(
        (
            len(TIME_WORDS) - TIME_WORDS.index(w)
            for c in choice.columns
            for w in words(c)
            if w in TIME_WORDS
        ),
        default=0,
    )
    order = -min(i for i, p in enumerate(profiles) if p.source in choice.columns)
    # Telling records apart first; then text over epoch numbers; then more of the time
    # (more parts); then a time word in the name; then the leftmost.
    return (distinct, float(text), float(len(choice.parts)), float(named), float(order))


# --------------------------------------------------------------------------------------------
# Device ids
# --------------------------------------------------------------------------------------------


def _device_score(p: Profile, instants: Sequence[dt.datetime | None]) -> float:
    values = p.texts().to_list()
    pairs = [(v, t) for v, t in zip(values, instants, strict=True) if v is not None]
    keyed = [(v, t) for v, t in pairs if t is not None]
    unique = len(set(keyed)) / len(keyed) if keyed else 0.0
    same = sum(a == b for a, b in itertools.pairwise(v for v, _ in pairs))
    stable = same / max(len(pairs) - 1, 1)
    regular = _regularity(keyed)
    name = set(words(p.source))
    bonus = (1.0 if name & ID_WORDS else 0.0) + (0.5 if name & THING_WORDS else 0.0)
    bonus += 0.25 if "name" in name else 0.0
    texts = [v for v, _ in pairs]
    if texts and sum(any(ch.isdigit() for ch in v) for v in texts) >= 0.8 * len(texts):
        bonus += 0.3  # identifier-like values: serials, hex, "dev-00001"
    if p.kind == "integer" and not name & ID_WORDS:
        bonus -= 0.5  # a number that is not called an id is more likely a reading
    return float(2 * unique + max(stable, regular) + min(bonus, 1.5))


def _regularity(keyed: Sequence[tuple[str, dt.datetime | None]]) -> float:
    """Share of records one usual step after their device's previous record (0..1)."""
    series: dict[str, list[dt.datetime]] = {}
    for value, instant in keyed:
        if instant is not None:
            series.setdefault(value, []).append(instant)
    regular = total = 0
    for instants in series.values():
        steps = [b - a for a, b in itertools.pairwise(sorted(instants))]
        if len(steps) < 2:  # noqa: PLR2004
            continue
        usual, count = Counter(steps).most_common(1)[0]
        regular += count if usual > dt.timedelta(0) else 0
        total += len(steps)
    return regular / total if total else 0.0
