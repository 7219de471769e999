#!/usr/bin/env python3
"""Write the small real-world-shaped files in tests/data/shapes (issue "Real-world files").

Each file has a shape public sensor files have and that today's loggers still write; the
values are made up here (seeded, so the bytes are reproducible). The tests compute each file's
truth themselves with the csv module (tests/unit/shapes_truth.py), not from this script.
Run it to remake the files: python scripts/make_shapes.py
"""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = ROOT / "tests" / "data" / "shapes"


def write(path: Path, text: str, newline: str = "\n", encoding: str = "utf-8") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.replace("\n", newline).encode(encoding))


def us_12_hour_clock(rng: random.Random) -> str:
    """Beach-weather style: a station name per row, a US 12-hour clock, newest rows first."""
    stations = [
        "Foster Weather Station",
        "Oak Street Weather Station",
        "63rd Street Weather Station",
    ]
    lines = [
        "Station Name,Measurement Timestamp,Air Temperature,Wet Bulb Temperature,Humidity,"
        "Rain Intensity,Wind Speed,Barometric Pressure,Battery Life,Measurement ID"
    ]
    start = dt.datetime(2016, 5, 20, 0, 0)
    rows = []
    for hour in range(60):
        at = start + dt.timedelta(hours=hour)
        for station in stations:
            wet = "" if rng.random() < 0.2 else f"{rng.uniform(5, 20):.1f}"
            rain = "" if station.startswith("Foster") else f"{rng.choice([0, 0, 0, 0.4, 1.2])}"
            ident = station.replace(" ", "") + at.strftime("%Y%m%d%H%M")
            rows.append(
                f"{station},{at.strftime('%m/%d/%Y %I:%M:%S %p')},{rng.uniform(8, 24):.1f},"
                f"{wet},{rng.randint(30, 95)},{rain},{rng.uniform(0, 9):.1f},"
                f"{rng.uniform(990, 1010):.1f},{rng.uniform(11.5, 12.4):.1f},{ident}"
            )
    rows.reverse()  # the portal exports newest first
    rows.insert(17, rows[16])  # an exact repeat (a re-sent reading)
    bad = rows[40].split(",")
    rows.insert(41, ",".join([*bad[:1], "", *bad[2:]]))  # no timestamp
    return "\n".join(lines + rows) + "\n"


def semicolon_decimal_comma(rng: random.Random) -> str:
    """Air-quality style: one device, `;`, decimal comma, day-first dates, dotted times.

    Date and time are separate columns; -200 means "no reading" (also written -200,0); two
    empty trailing columns; rows of nothing but separators at the end.
    """
    header = "Date;Time;CO(GT);PT08.S1(CO);NMHC(GT);C6H6(GT);NOx(GT);T;RH;AH;;"
    rows = [header]
    start = dt.datetime(2004, 3, 10, 18, 0)
    for hour in range(24 * 6):
        at = start + dt.timedelta(hours=hour)

        def num(low: float, high: float, places: int) -> str:
            if rng.random() < 0.08:
                return rng.choice(["-200", "-200,0"]) if places else "-200"
            return f"{rng.uniform(low, high):.{places}f}".replace(".", ",")

        rows.append(
            f"{at.strftime('%d/%m/%Y')};{at.strftime('%H.%M.%S')};{num(0.1, 8, 1)};"
            f"{num(700, 2000, 0)};{num(20, 1200, 0)};{num(0.2, 40, 1)};{num(10, 900, 0)};"
            f"{num(-2, 30, 1)};{num(10, 90, 1)};{num(0.2, 2.2, 4)};;"
        )
    rows += [";;;;;;;;;;;;"] * 5
    return "\n".join(rows) + "\n"


def headerless_space_separated(rng: random.Random) -> str:
    """Lab-mote style: no header, one space between fields, date and time apart.

    Then an epoch counter, the mote id and the readings; some lines stop early (a dying mote).
    """
    lines = []
    at = dt.datetime(2004, 2, 28, 0, 58, 46)
    for epoch in range(2, 122):
        for mote in (1, 2, 3, 7):
            at += dt.timedelta(seconds=rng.uniform(5, 40), microseconds=rng.randint(0, 999_999))
            fields = [
                at.strftime("%Y-%m-%d"),
                at.strftime("%H:%M:%S.%f"),
                str(epoch),
                str(mote),
                f"{rng.uniform(17, 24):.4f}",
                f"{rng.uniform(30, 45):.4f}",
                f"{rng.choice([45.08, 97.52, 1.84, 23.92])}",
                f"{rng.uniform(2.6, 2.7):.5f}",
            ]
            if rng.random() < 0.04:
                fields = fields[:4]  # no readings at all
            lines.append(" ".join(fields))
    return "\n".join(lines) + "\n"


def single_device_sentinels(rng: random.Random) -> str:
    """One weather station, no device column, CRLF; sentinels per column.

    999.9 means "no reading" for the wind but is a real pressure; -9999 means "no reading" for
    the temperature.
    """
    lines = ["time,temperature_c,pressure_hpa,wind_speed_ms,wind_dir_deg,rain_mm"]
    start = dt.datetime(2023, 10, 28, 0, 0)
    for step in range(300):
        at = start + dt.timedelta(minutes=10 * step)
        temp = "-9999" if rng.random() < 0.05 else f"{rng.uniform(-3, 14):.1f}"
        pressure = "999.9" if step % 37 == 0 else f"{rng.uniform(985, 1030):.1f}"
        wind = "999.9" if rng.random() < 0.07 else f"{rng.uniform(0, 18):.1f}"
        lines.append(
            f"{at.strftime('%Y-%m-%dT%H:%M')},{temp},{pressure},{wind},"
            f"{rng.randint(0, 359)},{rng.choice(['0', '0', '0', '0.2', '1.4'])}"
        )
    return "\n".join(lines) + "\n"


def device_in_path(rng: random.Random, device: str, day: dt.date) -> str:
    """Write a gateway's per-device, per-day upload: the device is only in the object key."""
    lines = ["timestamp,temperature,humidity,battery_v"]
    start = dt.datetime.combine(day, dt.time())
    for step in range(96):
        at = start + dt.timedelta(minutes=15 * step)
        lines.append(
            f"{int(at.replace(tzinfo=dt.UTC).timestamp())},{rng.uniform(18, 26):.2f},"
            f"{rng.uniform(35, 60):.1f},{rng.uniform(3.0, 3.3):.3f}"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    rng = random.Random(20261127)
    write(TARGET / "us_12_hour_clock.csv", us_12_hour_clock(rng), newline="\r\n")
    write(TARGET / "semicolon_decimal_comma.csv", semicolon_decimal_comma(rng), newline="\r\n")
    write(TARGET / "headerless_space_separated.txt", headerless_space_separated(rng))
    write(TARGET / "single_device_sentinels.csv", single_device_sentinels(rng), newline="\r\n")
    for device in ("th-0007", "th-0112"):
        for day in (dt.date(2024, 5, 1), dt.date(2024, 5, 2)):
            path = TARGET / "devices" / device / day.strftime("%Y/%m/%d") / "readings.csv"
            write(path, device_in_path(rng, device, day))


if __name__ == "__main__":
    main()
