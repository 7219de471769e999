"""An independent messy generator for the ingest benchmarks (not `iotpipe.sample`).

What a merged export from many gateways looks like, written with the csv module and nothing
of iotpipe's: a UTF-8 byte-order mark, CRLF line ends, the header shuffled and case-varied with
an extra column, quoted fields holding commas, and the seven timestamp shapes the cleaning
policy accepts mixed evenly - ISO ``Z``, naive ``YYYY-MM-DD HH:MM:SS``, ISO with ``+09:00`` /
``-05:00`` offsets, epoch seconds, epoch milliseconds, ``YYYY/MM/DD HH:MM:SS`` and ISO
``.000+00:00``. About 1% of the rows are rejects (no device, an unparseable timestamp, no
measurement), 1% exact duplicates of an earlier row and 0.5% conflicts (an earlier key with a
new value). ``order="time"`` writes the rows as a device log would (by time);
``order="random"`` shuffles the records (seeded), as a merge of many gateways' files does.

`write_messy` returns the truth, counted here: rows read, valid (distinct keys), rejected,
duplicate and conflict.
"""

from __future__ import annotations

import csv
import gzip
import random
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import IO

COLUMNS = (
    "device_id", "timestamp", "device_type", "firmware_version", "region", "status",
    "battery_pct", "temperature_c", "power_w", "usage_minutes", "signal_dbm", "error_count",
)  # fmt: skip
EXTRA = "gateway_note"  # a column the contract does not know (ignored, reported)
TYPES = ("thermostat", "smart_plug", "camera", "hub", "sensor")
STATUSES = ("active", "idle", "sleep", "error", "offline")
REGIONS = ("eu-west, zone 1", "us-east, zone 2", "ap-south, zone 3")  # quoted: they hold commas
START = datetime(2025, 3, 1, tzinfo=UTC)
TOKYO, NEW_YORK = timezone(timedelta(hours=9)), timezone(timedelta(hours=-5))


SHAPES = (
    lambda m: m.strftime("%Y-%m-%dT%H:%M:%SZ"),
    lambda m: m.strftime("%Y-%m-%d %H:%M:%S"),  # naive: the contract's zone, UTC
    lambda m: m.astimezone(TOKYO if m.second % 2 else NEW_YORK).isoformat(),
    lambda m: str(int(m.timestamp())),
    lambda m: str(int(m.timestamp()) * 1000),
    lambda m: m.strftime("%Y/%m/%d %H:%M:%S"),
    lambda m: m.strftime("%Y-%m-%dT%H:%M:%S.000+00:00"),
)  # the seven shapes, each meaning the same moment


@dataclass
class MessyTruth:
    """The counts a correct cleaner reports for the file."""

    rows_read: int = 0
    rows_valid: int = 0
    rows_rejected: int = 0
    rows_duplicate: int = 0
    rows_conflict: int = 0


Key = tuple[str, int]
Record = tuple[list[str], Key | None, tuple[str, ...]]  # values, key (None: a reject), values


def write_messy(
    path: Path, rows: int, *, devices: int = 200, order: str = "time", seed: int = 11
) -> MessyTruth:
    """Write ``rows`` data records to ``path`` (gzip when it ends in ``.gz``); return the truth."""
    rng = random.Random(seed)
    header = [*COLUMNS, EXTRA]
    rng.shuffle(header)
    records: list[Record] = []
    keys: list[Key] = []
    for step in range(rows):
        fate = rng.random()
        if fate < 0.01 and records:  # an earlier record again, byte for byte
            records.append(records[rng.randrange(max(0, len(records) - 50_000), len(records))])
            continue
        key: Key = (f"dev-{rng.randrange(devices):04d}", step * 3 + rng.randrange(3))
        if fate < 0.015 and keys:  # an earlier key with new values
            key = keys[rng.randrange(len(keys))]
        values = _values(rng, key, step)
        reject = 0.015 <= fate < 0.025
        if reject:
            _spoil(values, step % 3)
        else:
            keys.append(key)
        signature = tuple(values[c] for c in COLUMNS[2:])
        records.append(([values[c] for c in header], None if reject else key, signature))
    if order == "random":
        rng.shuffle(records)
    elif order != "time":  # time: already (repeats come later, as retransmissions do)
        raise ValueError(f"order must be time or random, not {order!r}")
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wt", encoding="utf-8", newline="") as out:
        _write(out, [_case(name, rng) for name in header], [r[0] for r in records])
    return _count(records)


def _values(rng: random.Random, key: Key, step: int) -> dict[str, str]:
    device, second = key
    moment = START + timedelta(seconds=second)
    crc = zlib.crc32(device.encode())
    return {
        "device_id": device,
        "timestamp": SHAPES[step % 7](moment),
        "device_type": TYPES[crc % 5],
        "firmware_version": f"v{1 + second // 86_400 % 3}.{rng.randrange(4)}",
        "region": REGIONS[crc % 3],
        "status": rng.choice(STATUSES),
        "battery_pct": str(rng.randrange(101)),
        "temperature_c": f"{rng.uniform(-10, 45):.2f}",
        "power_w": f"{rng.uniform(0, 1500):.1f}",
        "usage_minutes": str(rng.randrange(1441)),
        "signal_dbm": str(-rng.randrange(30, 120)),
        "error_count": str(rng.randrange(4)),
        EXTRA: f"batch {step % 97}, relay {rng.randrange(9)}",
    }


def _spoil(values: dict[str, str], kind: int) -> None:
    """Make a reject: no device, an unparseable time, or no measurement."""
    if kind == 0:
        values["device_id"] = ""
    elif kind == 1:
        values["timestamp"] = "not a time"
    else:
        for name in COLUMNS[6:]:
            values[name] = ""


def _count(records: list[Record]) -> MessyTruth:
    """Replay the file in its order: the last row of a key wins, as the policy says."""
    truth = MessyTruth(rows_read=len(records))
    winner: dict[Key, tuple[str, ...]] = {}
    for _, key, signature in records:
        if key is None:
            truth.rows_rejected += 1
        elif key not in winner:
            winner[key] = signature
        elif winner[key] == signature:
            truth.rows_duplicate += 1
        else:
            truth.rows_conflict += 1
            winner[key] = signature
    truth.rows_valid = len(winner)
    return truth


def _write(out: IO[str], header: list[str], records: list[list[str]]) -> None:
    out.write("\ufeff")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(records)


def _case(name: str, rng: random.Random) -> str:
    """``device_id`` as ``Device_ID``, ``DEVICE_ID`` or ``device_id``."""
    return rng.choice((name, name.upper(), name.title().replace("Id", "ID")))
