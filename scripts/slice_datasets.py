#!/usr/bin/env python3
"""Cut the test slices in tests/data from the full real datasets in ../shared/data.

Whole lines are kept byte for byte (line ends included), in their original order; the header
line of a CSV is always kept. The CampusIoT slices are gzipped, as CampusIoT publishes them
(``mtime=0``, so the bytes are reproducible). tests/data/README.md says which lines each slice
holds and why; run this to remake them: python scripts/slice_datasets.py [../shared/data]
"""

from __future__ import annotations

import gzip
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = ROOT / "tests" / "data"

# (folder, file, 1-based inclusive line ranges; line 1 is a CSV's header, gzip the output?)
SLICES: list[tuple[str, str, list[tuple[int, int]], bool]] = [
    # First 400 hours (the UTC test reads the start), then the summer 2015 stretch with the
    # wind-direction NAs (data rows 16749 and 17264), and for Dongsi the CO = 10000 readings.
    (
        "beijing_airquality",
        "PRSA_Data_Aotizhongxin_20130301-20170228.csv",
        [(1, 401), (16701, 17300)],
        False,
    ),
    (
        "beijing_airquality",
        "PRSA_Data_Dongsi_20130301-20170228.csv",
        [(1, 401), (16701, 17300), (19801, 19850)],
        False,
    ),
    # MAC000016 whole; the others around a gap (MAC000079, MAC000124) and the year's start.
    ("london_smart_meters", "MAC000016.csv", [(1, 722)], False),
    ("london_smart_meters", "MAC000002.csv", [(1, 500)], False),
    ("london_smart_meters", "MAC000079.csv", [(1, 300), (1300, 1700)], False),
    ("london_smart_meters", "MAC000124.csv", [(1, 300), (6000, 6400)], False),
    # Each device of the FTD file (line 55 is the frame whose payload is all null); status
    # records, light and battery readings in both ChirpStack files.
    ("campusiot_lorawan", "FTD_0018B20000020.ndjson", [(1, 150), (501, 600), (1001, 1100)], True),
    ("campusiot_lorawan", "EMS_A81758FFFE04B1C1.ndjson", [(1, 200)], True),
    ("campusiot_lorawan", "IMST_33323431007C727B.ndjson", [(1, 200)], True),
    ("campusiot_lorawan", "d1d1e80000000032_campusiot.ndjson", [(1, 300)], True),
    ("campusiot_lorawan", "d1d1e80000000033_campusiot.ndjson", [(1, 120)], True),
]


def main() -> int:
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT.parent / "shared" / "data"
    for folder, name, ranges, compress in SLICES:
        lines = (source / folder / name).read_bytes().splitlines(keepends=True)
        kept = b"".join(b"".join(lines[a - 1 : b]) for a, b in ranges)
        out = TARGET / folder / (name + (".gz" if compress else ""))
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(gzip.compress(kept, mtime=0) if compress else kept)
        print(
            f"{out.relative_to(ROOT)}: {sum(b - a + 1 for a, b in ranges)} lines, "
            f"{out.stat().st_size:,} bytes"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
