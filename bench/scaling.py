"""Does `iotpipe ingest` scale linearly in time and stay flat in memory? 1x, 4x and 16x rows.

Each size is ingested into a fresh MariaDB database by a fresh child process (peak RSS is the
child's VmHWM). Writes a table to stdout and a plot to docs/scaling.png. Usage::

    .venv/bin/python -m bench.scaling --rows 250000
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.ingest import measure


def plot(points: list[tuple[int, dict[str, float]]], target: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [p[0] / 1e6 for p in points]
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.4))
    left.plot(rows, [p[1]["seconds"] for p in points], marker="o")
    left.set(xlabel="generated rows (millions)", ylabel="seconds", title="ingest time")
    right.plot(rows, [p[1]["peak_rss_mb"] for p in points], marker="o", color="tab:orange")
    right.set(xlabel="generated rows (millions)", ylabel="MB", title="peak RSS", ylim=(0, None))
    for axis in (left, right):
        axis.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(target, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=250_000)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/iotpipe-bench"))
    parser.add_argument("--plot", type=Path, default=Path("docs/scaling.png"))
    args = parser.parse_args()
    from iotpipe.sample import write_sample

    args.dir.mkdir(parents=True, exist_ok=True)
    points = []
    for factor in (1, 4, 16):
        rows = args.rows * factor
        path = args.dir / f"acme_{rows}.csv"
        if not path.exists():
            write_sample(path, rows, devices=200, seed=1)
        points.append((rows, measure("iotpipe", path, "iotpipe_bench_scaling")))
    base = points[0][1]
    print("| generated rows | rows stored | seconds | x time | peak RSS MB | x RSS |")
    print("|---:|---:|---:|---:|---:|---:|")
    for rows, r in points:
        print(
            f"| {rows:,} | {r['rows']:,.0f} | {r['seconds']:.1f} "
            f"| {r['seconds'] / base['seconds']:.1f} | {r['peak_rss_mb']:.0f} "
            f"| {r['peak_rss_mb'] / base['peak_rss_mb']:.2f} |"
        )
    plot(points, args.plot)


if __name__ == "__main__":
    main()
