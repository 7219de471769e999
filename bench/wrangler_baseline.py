"""What a user would write instead of iotpipe: pandas cleaning + awswrangler's MySQL upsert.

The cleaning follows iotpipe's default policy as closely as pandas makes natural: trim,
missing markers, case-folded categoricals, numbers coerced and range-checked, timestamps in
the same formats (ISO with or without offset, epoch s/ms, slashes), the same reject rules,
exact duplicates dropped and the last row per key kept. Ragged lines are skipped by pandas.
It does not encode categories (awswrangler has nothing for it), so it does less work than
iotpipe.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

MARKERS = ["", "na", "n/a", "null", "none", "nan", "-", "?"]
CATEGORIES = {
    "device_type": ["thermostat", "smart_plug", "camera", "hub", "sensor"],
    "status": ["active", "idle", "sleep", "error", "offline"],
}
NUMBERS = {
    "battery_pct": (0, 100),
    "temperature_c": (-40, 85),
    "power_w": (0, 5000),
    "usage_minutes": (0, 1440),
    "signal_dbm": (-130, 0),
    "error_count": (0, None),
}


def clean(path: Path) -> Any:
    import pandas as pd

    raw = pd.read_csv(
        path, dtype=str, keep_default_na=False, on_bad_lines="skip", encoding="utf-8-sig"
    )
    raw.columns = [c.strip().lower() for c in raw.columns]
    df = raw.apply(lambda s: s.str.strip())
    df = df.mask(df.apply(lambda s: s.str.lower().isin(MARKERS)))
    for column in ("device_type", "firmware_version", "region", "status"):
        df[column] = df[column].str.lower()
    for column, allowed in CATEGORIES.items():
        df.loc[~df[column].isin(allowed), column] = None
    for column, (low, high) in NUMBERS.items():
        values = pd.to_numeric(df[column], errors="coerce")
        bad = values.isna() | ~values.between(
            low if low is not None else -1e308, high if high is not None else 1e308
        )
        df[column] = values.where(~bad)
    df["error_count"] = df["error_count"].where(df["error_count"] == df["error_count"].round())
    text = df["timestamp"]
    numeric = pd.to_numeric(
        text.where(text.str.fullmatch(r"[+-]?\d+(\.\d+)?", na=False)), errors="coerce"
    )
    epoch = pd.to_datetime(numeric.where(numeric.abs() < 1e11) * 1e6, unit="us", utc=True).fillna(
        pd.to_datetime(numeric.where(numeric.abs() >= 1e11) * 1e3, unit="us", utc=True)
    )
    iso = pd.to_datetime(
        text.where(numeric.isna()).str.replace("/", "-", n=2),
        format="ISO8601",
        utc=True,
        errors="coerce",
    )
    df["ts"] = epoch.fillna(iso).dt.tz_localize(None)
    measures = list(NUMBERS)
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    keep = (
        df["device_id"].notna()
        & (df["device_id"].str.len() <= 128)
        & df["ts"].notna()
        & (df["ts"] >= pd.Timestamp("2000-01-01"))
        & (df["ts"] <= pd.Timestamp(now + dt.timedelta(days=1)))
        & df[measures].notna().any(axis=1)
    )
    columns = ["device_id", "ts", "device_type", "firmware_version", "region", "status", *measures]
    df = df.loc[keep, columns].drop_duplicates()
    return df.drop_duplicates(["device_id", "ts"], keep="last")


def load(frame: Any, database: str) -> int:
    import awswrangler as wr
    import pymysql

    conn = pymysql.connect(host="127.0.0.1", user="root", password="", database=database)
    try:
        wr.mysql.to_sql(
            frame,
            conn,
            table="device_usage",
            schema=database,
            mode="upsert_duplicate_key",
            use_column_names=True,
            chunksize=1000,
        )
    finally:
        conn.close()
    return len(frame)
