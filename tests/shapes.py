"""The real-world-shaped files in tests/data/shapes, the contracts a user writes for them, and
their truth - computed here with the csv, datetime and zoneinfo modules, not with iotpipe.

Each `Shape` says how to read its files as a person would (delimiter, header, decimal mark,
where the device and the time are, which numbers mean "no reading"); `truth` applies exactly
that to the bytes. scripts/make_shapes.py wrote the files.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import statistics
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

SHAPES_DIR = Path(__file__).resolve().parent / "data" / "shapes"
MISSING = {"", "na", "n/a", "null", "none", "nan", "-", "?"}
EARLIEST = dt.datetime(2000, 1, 1)


@dataclass(frozen=True)
class Shape:
    """How a person reads one shape of file, and the contract they would write for it."""

    name: str
    files: tuple[str, ...]
    contract: str  # YAML
    delimiter: str
    device: tuple[str, str]  # ("column", name) | ("value", id) | ("path", regex)
    time: tuple[str, ...]  # the column(s), joined with a space
    time_format: str  # for datetime.strptime, or "epoch" (seconds)
    fields: dict[str, str]  # field name -> source column (all numbers here)
    timezone: str = "UTC"
    decimal: str = "."
    columns: tuple[str, ...] | None = None  # a headerless file's names
    sentinels: dict[str, set[float]] = field(default_factory=dict)  # field -> "no reading"

    def paths(self) -> list[Path]:
        """The shape's files."""
        return [SHAPES_DIR / f for f in self.files]


@dataclass
class Truth:
    """What iotpipe must report and store for a file."""

    rows_read: int = 0
    rows_valid: int = 0
    rows_rejected: int = 0
    rows_duplicate: int = 0
    rows_conflict: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    stored: dict[tuple[str, dt.datetime], dict[str, float | None]] = field(default_factory=dict)

    def counts(self) -> dict[str, Any]:
        """The report's counts."""
        return {
            "rows_read": self.rows_read,
            "rows_valid": self.rows_valid,
            "rows_rejected": self.rows_rejected,
            "rows_duplicate": self.rows_duplicate,
            "rows_conflict": self.rows_conflict,
            "reject_reasons": dict(sorted(self.reasons.items())),
        }

    def stats(self, device: str, name: str) -> dict[str, float] | None:
        """Mean, median, min and max of one field of one device's stored rows."""
        values = [
            value
            for (d, _), v in self.stored.items()
            if d == device and (value := v[name]) is not None
        ]
        if not values:
            return None
        return {
            "mean": statistics.fmean(values),
            "median": statistics.median(values),
            "min": min(values),
            "max": max(values),
        }


def truth(shape: Shape, path: Path) -> Truth:  # noqa: C901, PLR0912 (one rule after another)
    """Read one file as the shape says, with the standard library only."""
    text = path.read_bytes().decode("utf-8-sig")
    records = [
        r for r in csv.reader(io.StringIO(text, newline=""), delimiter=shape.delimiter)
        if any(v.strip() for v in r)  # blank: every field empty
    ]  # fmt: skip
    if shape.columns is None:
        header, records = [h.strip() for h in records[0]], records[1:]
    else:
        header = list(shape.columns)
    at = {name: i for i, name in enumerate(header) if name}
    width = len(header)
    out = Truth(rows_read=len(records))
    last: dict[tuple[str, dt.datetime], tuple[Any, ...]] = {}
    zone = ZoneInfo(shape.timezone)
    for record in records:
        if len(record) < width or any(v.strip() for v in record[width:]):
            out.reasons["malformed_row"] += 1
            continue
        kind, where = shape.device
        if kind == "column":
            device = record[at[where]].strip()
        elif kind == "value":
            device = where
        else:
            match = re.search(where, path.as_posix())
            assert match is not None
            device = match.group("device_id")
        stamp_text = " ".join(record[at[c]].strip() for c in shape.time).strip()
        if not device or device.lower() in MISSING:
            out.reasons["missing_device_id"] += 1
            continue
        if not stamp_text:
            out.reasons["missing_timestamp"] += 1
            continue
        try:
            if shape.time_format == "epoch":
                local = dt.datetime.fromtimestamp(float(stamp_text), dt.UTC)
            else:
                local = dt.datetime.strptime(stamp_text, shape.time_format)  # noqa: DTZ007
        except ValueError:
            out.reasons["invalid_timestamp"] += 1
            continue
        if local.tzinfo is None:
            local = local.replace(tzinfo=zone)
        stamp = local.astimezone(dt.UTC).replace(tzinfo=None)
        if stamp < EARLIEST:
            out.reasons["timestamp_out_of_range"] += 1
            continue
        values = {
            name: _number(record[at[source]], shape.decimal, shape.sentinels.get(name, set()))
            for name, source in shape.fields.items()
        }
        if all(v is None for v in values.values()):
            out.reasons["no_measurements"] += 1
            continue
        key, row = (device, stamp), tuple(values.values())
        if key not in last:
            out.rows_valid += 1
        elif last[key] == row:
            out.rows_duplicate += 1
            continue
        else:
            out.rows_conflict += 1
        last[key] = row
        out.stored[key] = values
    out.rows_rejected = sum(out.reasons.values())
    return out


def _number(text: str, decimal: str, sentinels: set[float]) -> float | None:
    text = text.strip()
    if text.lower() in MISSING:
        return None
    try:
        value = float(text.replace(",", ".") if decimal == "," else text)
    except ValueError:
        return None
    return None if value in sentinels else value


US_12_HOUR = Shape(
    name="us_12_hour_clock",
    files=("us_12_hour_clock.csv",),
    contract="""
name: beach_weather
device_id: Station Name
timestamp:
  source: Measurement Timestamp
  format: "%m/%d/%Y %I:%M:%S %p"
  timezone: America/Chicago
fields:
  - {name: air_temperature, source: Air Temperature, type: number}
  - {name: wet_bulb, source: Wet Bulb Temperature, type: number}
  - {name: humidity, source: Humidity, type: integer}
  - {name: rain_intensity, source: Rain Intensity, type: number}
  - {name: wind_speed, source: Wind Speed, type: number}
  - {name: pressure, source: Barometric Pressure, type: number}
  - {name: battery, source: Battery Life, type: number}
""",
    delimiter=",",
    device=("column", "Station Name"),
    time=("Measurement Timestamp",),
    time_format="%m/%d/%Y %I:%M:%S %p",
    timezone="America/Chicago",
    fields={
        "air_temperature": "Air Temperature",
        "wet_bulb": "Wet Bulb Temperature",
        "humidity": "Humidity",
        "rain_intensity": "Rain Intensity",
        "wind_speed": "Wind Speed",
        "pressure": "Barometric Pressure",
        "battery": "Battery Life",
    },
)

SEMICOLON = Shape(
    name="semicolon_decimal_comma",
    files=("semicolon_decimal_comma.csv",),
    contract="""
name: air_quality
device_id: {value: station-1}
dialect: {delimiter: ";", decimal: ","}
timestamp:
  date: Date
  time: Time
  format: "%d/%m/%Y %H.%M.%S"
  timezone: Europe/Rome
fields:
  - {name: co, source: CO(GT), type: number, missingValues: ["", "-200"]}
  - {name: pt08_s1_co, source: PT08.S1(CO), type: integer, missingValues: ["-200"]}
  - {name: nmhc, source: NMHC(GT), type: integer, missingValues: ["-200"]}
  - {name: c6h6, source: C6H6(GT), type: number, missingValues: ["-200"]}
  - {name: nox, source: NOx(GT), type: integer, missingValues: ["-200"]}
  - {name: t, source: T, type: number, missingValues: ["-200"]}
  - {name: rh, source: RH, type: number, missingValues: ["-200"]}
  - {name: ah, source: AH, type: number, missingValues: ["-200"]}
""",
    delimiter=";",
    decimal=",",
    device=("value", "station-1"),
    time=("Date", "Time"),
    time_format="%d/%m/%Y %H.%M.%S",
    timezone="Europe/Rome",
    fields={
        "co": "CO(GT)",
        "pt08_s1_co": "PT08.S1(CO)",
        "nmhc": "NMHC(GT)",
        "c6h6": "C6H6(GT)",
        "nox": "NOx(GT)",
        "t": "T",
        "rh": "RH",
        "ah": "AH",
    },
    sentinels={
        name: {-200.0} for name in ("co", "pt08_s1_co", "nmhc", "c6h6", "nox", "t", "rh", "ah")
    },
)

HEADERLESS = Shape(
    name="headerless_space_separated",
    files=("headerless_space_separated.txt",),
    contract="""
name: lab_motes
dialect:
  delimiter: " "
  header: false
  columns: [date, time, epoch, moteid, temperature, humidity, light, voltage]
device_id: moteid
timestamp: {date: date, time: time, format: "%Y-%m-%d %H:%M:%S.%f"}
fields:
  - {name: epoch, type: integer, measurement: false}
  - {name: temperature, type: number}
  - {name: humidity, type: number}
  - {name: light, type: number}
  - {name: voltage, type: number}
""",
    delimiter=" ",
    columns=("date", "time", "epoch", "moteid", "temperature", "humidity", "light", "voltage"),
    device=("column", "moteid"),
    time=("date", "time"),
    time_format="%Y-%m-%d %H:%M:%S.%f",
    fields={
        "temperature": "temperature",
        "humidity": "humidity",
        "light": "light",
        "voltage": "voltage",
    },
)

SINGLE_DEVICE = Shape(
    name="single_device_sentinels",
    files=("single_device_sentinels.csv",),
    contract="""
name: one_station
device_id: {value: station-12}
timestamp: {source: time, format: "%Y-%m-%dT%H:%M", timezone: Europe/London}
fields:
  - {name: temperature_c, type: number, missingValues: ["-9999"]}
  - {name: pressure_hpa, type: number}
  - {name: wind_speed_ms, type: number, missingValues: ["999.9"]}
  - {name: wind_dir_deg, type: integer}
  - {name: rain_mm, type: number}
""",
    delimiter=",",
    device=("value", "station-12"),
    time=("time",),
    time_format="%Y-%m-%dT%H:%M",
    timezone="Europe/London",
    fields={
        "temperature_c": "temperature_c",
        "pressure_hpa": "pressure_hpa",
        "wind_speed_ms": "wind_speed_ms",
        "wind_dir_deg": "wind_dir_deg",
        "rain_mm": "rain_mm",
    },
    sentinels={"temperature_c": {-9999.0}, "wind_speed_ms": {999.9}},
)

DEVICE_IN_PATH = Shape(
    name="device_in_path",
    files=tuple(
        f"devices/{device}/2024/05/{day}/readings.csv"
        for device in ("th-0007", "th-0112")
        for day in ("01", "02")
    ),
    contract="""
name: gateway
device_id: {from_path: "devices/(?P<device_id>[^/]+)/"}
timestamp: {source: timestamp}
fields:
  - {name: temperature, type: number}
  - {name: humidity, type: number}
  - {name: battery_v, type: number}
""",
    delimiter=",",
    device=("path", "devices/(?P<device_id>[^/]+)/"),
    time=("timestamp",),
    time_format="epoch",
    fields={"temperature": "temperature", "humidity": "humidity", "battery_v": "battery_v"},
)

SHAPES = [US_12_HOUR, SEMICOLON, HEADERLESS, SINGLE_DEVICE, DEVICE_IN_PATH]
