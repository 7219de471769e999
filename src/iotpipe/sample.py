"""Realistic, messy Acme usage data with a known truth (seeded, reproducible).

Every fault the default cleaning policy handles appears: padded and re-cased values, missing
markers, six timestamp formats, unparseable and out-of-range timestamps, missing ids, ragged
rows, quoted commas and newlines, an unknown column, invalid and out-of-range numbers, unknown
closed-vocabulary values, exact duplicates (re-formatted), key conflicts, blank lines and a BOM.

The generator decides each row's fate before writing it and keeps the count, so
`SampleTruth` says exactly what a correct cleaner must report, and `SampleTruth.rows` (when
asked for) holds the exact rows a correct load must store.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
import random
from collections import Counter, OrderedDict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any, cast

DEVICE_TYPES = ("thermostat", "smart_plug", "camera", "hub", "sensor")
STATUSES = ("active", "idle", "sleep", "error", "offline")
REGIONS = ("eu-west-1", "us-east-1", "ap-southeast-2", "eu-central-1", "sa-east-1, são paulo")
HEADER = (
    "Device_ID",
    "timestamp",
    "device_type",
    "Firmware_Version",
    "region",
    "status",
    "battery_pct",
    "temperature_c",
    "power_w",
    "usage_minutes",
    "signal_dbm",
    "error_count",
    "note",
)
NUMERIC = {
    "battery_pct": (0.0, 100.0),
    "temperature_c": (-40.0, 85.0),
    "power_w": (0.0, 5000.0),
    "usage_minutes": (0.0, 1440.0),
    "signal_dbm": (-130.0, 0.0),
}
MEASUREMENTS = (*NUMERIC, "error_count")
MARKERS = ("", "NA", "N/A", "null", "None", "nan", "-", "?", "n/a", "NULL")
GARBAGE = ("abc", "1.2.3", "#VALUE!", "12,5", "inf", "0x1F", "--3")
BAD_TIMESTAMPS = ("2024-13-45 25:00:00", "yesterday", "2024-02-30T10:00:00Z", "12/31/2024", "T")
OUT_OF_RANGE_TIMESTAMPS = ("1999-12-31T23:59:59Z", "1970-01-01 00:00:00", "2199-01-01T00:00:00Z")
START = dt.datetime(2024, 1, 1)
EPOCH = dt.datetime(1970, 1, 1)

# Fate of a row, with weights (per 1000).
FATES = (
    ("new", 855),
    ("duplicate", 30),
    ("conflict", 20),
    ("missing_device_id", 12),
    ("invalid_device_id", 3),
    ("missing_timestamp", 10),
    ("invalid_timestamp", 12),
    ("timestamp_out_of_range", 8),
    ("no_measurements", 20),
    ("malformed_row", 15),
    ("blank", 15),
)
RECENT_KEYS = 2000

Canonical = tuple[Any, ...]


@dataclass
class SampleTruth:
    """What a correct validation of the generated file reports."""

    rows_read: int = 0
    rows_valid: int = 0
    rows_rejected: int = 0
    rows_duplicate: int = 0
    rows_conflict: int = 0
    reject_reasons: Counter[str] = field(default_factory=Counter)
    nulled: Counter[str] = field(default_factory=Counter)
    rows: dict[tuple[str, dt.datetime], Canonical] | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the counts as JSON-ready data (without the rows)."""
        out = asdict(self)
        out.pop("rows")
        out["reject_reasons"] = dict(sorted(self.reject_reasons.items()))
        out["nulled"] = dict(sorted(self.nulled.items()))
        return out


@dataclass
class _Device:
    id: str
    type: str
    firmware: str
    region: str
    clock: dt.datetime
    battery: float


class _Generator:
    def __init__(self, devices: int, seed: int, keep_rows: bool) -> None:
        self.rng = random.Random(seed)
        rng = self.rng
        self.devices = [
            _Device(
                id=f"dev-{i:05d}",
                type=rng.choice(DEVICE_TYPES),
                firmware=f"v{rng.randint(1, 3)}.{rng.randint(0, 9)}.{rng.randint(0, 20)}",
                region=rng.choice(REGIONS),
                clock=START + dt.timedelta(seconds=rng.randint(0, 3600)),
                battery=rng.uniform(20, 100),
            )
            for i in range(devices)
        ]
        self.recent: OrderedDict[tuple[str, dt.datetime], Canonical] = OrderedDict()
        self.truth = SampleTruth(rows={} if keep_rows else None)
        self.fates = [f for f, _ in FATES]
        self.weights = [w for _, w in FATES]

    def row(self) -> list[str] | None:
        """Return the next CSV row, or None for a blank line."""
        fate = self.rng.choices(self.fates, self.weights)[0]
        if fate in ("duplicate", "conflict") and not self.recent:
            fate = "new"
        if fate == "blank":
            return None
        truth = self.truth
        truth.rows_read += 1
        if fate == "new":
            canonical, nulled = self._new_canonical()
            self._remember(canonical)
            truth.rows_valid += 1
            truth.nulled.update(nulled)
            return self._render(canonical, nulled)
        if fate == "duplicate":
            key = self.rng.choice(list(self.recent)[-200:])
            truth.rows_duplicate += 1
            return self._render(self.recent[key], {})
        if fate == "conflict":
            key = self.rng.choice(list(self.recent)[-200:])
            changed = self._changed(self.recent[key])
            self._remember(changed)
            truth.rows_conflict += 1
            return self._render(changed, {})
        truth.rows_rejected += 1
        truth.reject_reasons[fate] += 1
        return self._reject(fate)

    # ----------------------------------------------------------------------------------------

    def _remember(self, canonical: Canonical) -> None:
        key = (canonical[0], canonical[1])
        self.recent[key] = canonical
        self.recent.move_to_end(key)
        if len(self.recent) > RECENT_KEYS:
            self.recent.popitem(last=False)
        if self.truth.rows is not None:
            self.truth.rows[key] = canonical

    def _new_canonical(self) -> tuple[Canonical, dict[str, int]]:
        rng = self.rng
        device = rng.choice(self.devices)
        step = dt.timedelta(seconds=rng.randint(30, 90))
        if rng.random() < 0.1:
            step += dt.timedelta(milliseconds=rng.randint(1, 999))
        device.clock += step
        device.battery = max(0.0, device.battery - rng.random() * 0.2)
        values: dict[str, float | int | None] = {
            "battery_pct": round(device.battery, 1),
            "temperature_c": round(rng.gauss(21, 6), 2),
            "power_w": round(rng.expovariate(1 / 40), 2),
            "usage_minutes": round(rng.uniform(0, 60), 1),
            "signal_dbm": float(rng.randint(-110, -40)),
            "error_count": rng.choice((0, 0, 0, 0, 1, 2, 5)),
        }
        status: str | None = rng.choice(STATUSES)
        nulled: dict[str, int] = {}
        # Missing markers: some fields simply absent (never all of them).
        for name in rng.sample(MEASUREMENTS, k=rng.choice((0, 0, 0, 0, 1, 2))):
            values[name] = None
        present = [n for n in MEASUREMENTS if values[n] is not None]
        if len(present) > 1 and rng.random() < 0.05:
            # An invalid value (garbage or out of range) that cleaning must null and count.
            victim = rng.choice(present)
            values[victim] = None
            nulled[victim] = 1
        if rng.random() < 0.01:
            status = None
            nulled["status"] = 1
        canonical = (
            device.id,
            device.clock,
            device.type,
            device.firmware,
            device.region,
            status,
            *(values[n] for n in MEASUREMENTS),
        )
        return canonical, nulled

    def _changed(self, canonical: Canonical) -> Canonical:
        values = list(canonical)
        index = 6 + self.rng.randrange(len(NUMERIC))  # a float measurement
        low, high = NUMERIC[MEASUREMENTS[index - 6]]
        old = values[index]
        if old is None:
            values[index] = (low + high) / 2
        else:
            values[index] = round(old + 0.5 if old + 0.5 <= high else old - 0.5, 2)
        return tuple(values)

    def _render(self, canonical: Canonical, nulled: dict[str, int]) -> list[str]:
        rng = self.rng
        device_id, ts, dtype, firmware, region, status, *measures = canonical
        row = [
            self._pad(device_id),
            self._timestamp(ts),
            self._case(dtype),
            self._case(firmware),
            self._case(region),
            self._case(status) if status is not None else rng.choice(MARKERS),
        ]
        if "status" in nulled:
            row[5] = rng.choice(("rebooting", "UNKNOWN", "standby"))
        for name, value in zip(MEASUREMENTS, measures, strict=True):
            if name in nulled:
                row.append(self._invalid_number(name))
            elif value is None:
                row.append(rng.choice(MARKERS))
            else:
                row.append(self._pad(_number_text(value, rng)))
        row.append(self._note())
        return row

    def _reject(self, reason: str) -> list[str]:
        rng = self.rng
        canonical, _ = self._new_canonical()
        row = self._render(canonical, {})
        if reason == "missing_device_id":
            row[0] = rng.choice(MARKERS)
        elif reason == "invalid_device_id":
            row[0] = "x" * 129
        elif reason == "missing_timestamp":
            row[1] = rng.choice(MARKERS)
        elif reason == "invalid_timestamp":
            row[1] = rng.choice(BAD_TIMESTAMPS)
        elif reason == "timestamp_out_of_range":
            row[1] = rng.choice(OUT_OF_RANGE_TIMESTAMPS)
        elif reason == "no_measurements":
            for i in range(6, 12):
                row[i] = rng.choice(MARKERS)
        elif reason == "malformed_row":
            row = row[: rng.randint(2, 10)] if rng.random() < 0.5 else [*row, "surplus"]
        return row

    def _timestamp(self, ts: dt.datetime) -> str:
        frac = _fraction(ts.microsecond)
        hours = self.rng.choice((-5, 1, 2, 9))
        local = (ts + dt.timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%S") + frac
        spaced = ts.strftime("%Y-%m-%d %H:%M:%S") + frac
        forms = [
            ts.strftime("%Y-%m-%dT%H:%M:%S") + frac + "Z",
            f"{local}{hours:+03d}:00",
            spaced,
            f" {spaced}+00:00 ",
            str((ts - EPOCH) // dt.timedelta(milliseconds=1)),
        ]
        if not ts.microsecond:
            forms += [
                str((ts - EPOCH) // dt.timedelta(seconds=1)),
                ts.strftime("%Y/%m/%d %H:%M:%S"),
            ]
        return self.rng.choice(forms)

    def _invalid_number(self, name: str) -> str:
        if self.rng.random() < 0.5:
            return self.rng.choice(GARBAGE)
        if name == "error_count":
            return self.rng.choice(("-1", "2.5"))
        low, high = NUMERIC[name]
        return str(high + 10) if self.rng.random() < 0.5 else str(low - 10)

    def _pad(self, text: str) -> str:
        return f" {text} " if self.rng.random() < 0.05 else text

    def _case(self, text: str) -> str:
        r = self.rng.random()
        if r < 0.05:
            return text.upper()
        if r < 0.08:
            return f"  {text.title()}"
        return text

    def _note(self) -> str:
        r = self.rng.random()
        if r < 0.01:
            return 'serviced, "filter" replaced\nsecond line'
        if r < 0.03:
            return "battery, swapped"
        return ""


def _fraction(micros: int) -> str:
    return f".{micros // 1000:03d}" if micros else ""


def _number_text(value: float | int, rng: random.Random) -> str:
    if isinstance(value, int):
        return str(value)
    if value == int(value) and rng.random() < 0.5:
        return str(int(value))
    return repr(value)


def generate(
    out: IO[str], rows: int, devices: int = 50, seed: int = 0, keep_rows: bool = False
) -> SampleTruth:
    """Write ``rows`` CSV lines of messy Acme usage data and return the truth.

    Parameters
    ----------
    out
        A text stream opened with ``newline=""``.
    rows
        Lines to write after the header (blank lines included, as in a real file).
    devices
        Distinct devices.
    seed
        Random seed; the same arguments give the same bytes.
    keep_rows
        Also keep, in ``truth.rows``, the exact row each stored key must hold.

    Returns
    -------
    SampleTruth
        Exact expected counts.
    """
    gen = _Generator(devices, seed, keep_rows)
    writer = csv.writer(out, lineterminator="\n")
    out.write("\ufeff")
    writer.writerow(HEADER)
    for _ in range(rows):
        row = gen.row()
        if row is None:
            out.write("\n")
        else:
            writer.writerow(row)
    out.write("\n\n")  # trailing blank lines
    return gen.truth


def write_sample(
    path: Path,
    rows: int,
    devices: int = 50,
    seed: int = 0,
    *,
    compress: bool | None = None,
    keep_rows: bool = False,
) -> SampleTruth:
    """Write a sample file (gzip when ``compress`` or the name ends in ``.gz``).

    Parameters
    ----------
    path
        Where to write.
    rows, devices, seed
        See `generate`.
    compress
        Force gzip on or off; by default it follows the file name.
    keep_rows
        See `generate`.

    Returns
    -------
    SampleTruth
        Exact expected counts.
    """
    if compress is None:
        compress = path.suffix == ".gz"
    with path.open("wb") as raw:
        binary = cast(
            IO[bytes], gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=5) if compress else raw
        )
        with binary, io.TextIOWrapper(binary, encoding="utf-8", newline="") as text:
            return generate(text, rows, devices, seed, keep_rows)
