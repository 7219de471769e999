"""Fleet simulation: many files, K Lambda-like workers polling one SQS queue, one MariaDB.

The parts are real: moto's S3 and SQS server (its own process, on 127.0.0.1), a MariaDB
server of the benchmark's own (`bench.private_db`: its ``Threads_connected`` and its restart
are not the machine's), and K worker processes that each do what the Lambda service does with
an SQS event source: receive up to ``--batch`` messages, invoke
`iotpipe.handlers.ingest.handler` with the SQS event, delete the messages it did not report in
``batchItemFailures`` and leave the others to come back after the visibility timeout; the
queue moves a message to its dead-letter queue after 5 receives (the template's redrive).

The objects - mixed sizes, gateways whose files share devices and interleave in time, new
firmware categories along the way - are announced with `iotpipe.backfill`. Each run starts
from an empty database and a new queue, and ends by proving its end state: the table equals
the truth (per device: rows, timestamps, every measurement, each firmware value through its
code), one ``loaded`` ledger row per object, no category code given twice, both queues empty.

The fault run kills a worker in the middle of a file (SIGKILL; a new worker replaces it, as
Lambda would) and restarts the database once, then checks the same truth. Usage::

    .venv/bin/python -m bench.fleet --workers 1,2,4,8 [--files 200] [--fault-workers 4]

Prints a table and writes docs/scale.png.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing as mp
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pymysql

from bench.private_db import PrivateMariaDB
from iotpipe.local.stack import free_port, local_client

BUCKET = "fleet-raw"
DATABASE = "iotpipe_fleet"
GATEWAYS = 20
DEVICES_PER_GATEWAY = 10
SIZES = (1_000, 5_000, 20_000, 50_000)  # rows per file, drawn with WEIGHTS
WEIGHTS = (0.35, 0.35, 0.2, 0.1)
HEADER = (
    "device_id,timestamp,device_type,firmware_version,region,status,battery_pct,"
    "temperature_c,power_w,usage_minutes,signal_dbm,error_count\n"
)
TYPES = ("thermostat", "smart_plug", "camera", "hub", "sensor")
STATUSES = ("active", "idle", "sleep", "error", "offline")
BASE = datetime(2025, 6, 1, tzinfo=UTC)
MAX_RECEIVES = 5
TABLE = "device_usage"


# ------------------------------------------------------------------------------ the objects
@dataclass
class DeviceTruth:
    """What the table must hold for one device (sums are exact integers)."""

    rows: int = 0
    epoch: int = 0
    battery: int = 0
    errors: int = 0
    firmware_crc: int = 0


@dataclass
class Fleet:
    """The generated objects and the truth they add up to."""

    keys: list[str] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)
    truth: dict[str, DeviceTruth] = field(default_factory=lambda: defaultdict(DeviceTruth))

    @property
    def rows(self) -> int:
        return sum(self.sizes)


def generate(directory: Path, files: int, seed: int = 7) -> tuple[Fleet, list[Path]]:
    """Write the fleet's files; return the truth and the paths.

    File ``i`` belongs to gateway ``i % GATEWAYS`` and is its ``slot = i // GATEWAYS``-th file:
    it cycles over the gateway's devices, at times ``(step * slots + slot)`` minutes after
    `BASE` - the files of one gateway share its devices and time range and never a key.
    Firmware ``fw-<i // 8>`` makes new category values appear all along the run.
    """
    rng = random.Random(seed)
    slots = -(-files // GATEWAYS)
    fleet, paths = Fleet(), []
    for i in range(files):
        gateway, slot = i % GATEWAYS, i // GATEWAYS
        rows = rng.choices(SIZES, WEIGHTS)[0]
        firmware = f"fw-{i // 8}"
        crc = zlib.crc32(firmware.encode())
        lines = [HEADER]
        for k in range(rows):
            d = k % DEVICES_PER_GATEWAY
            device = f"gw{gateway:02d}-dev{d}"
            moment = BASE + timedelta(minutes=(k // DEVICES_PER_GATEWAY) * slots + slot)
            battery, errors = (k * 7 + i) % 101, (k + i) % 5
            lines.append(
                f"{device},{moment:%Y-%m-%dT%H:%M:%SZ},{TYPES[d % 5]},{firmware},"
                f"r{gateway % 5},{STATUSES[(k + i) % 5]},{battery},{(k % 60) - 10},"
                f"{k % 3000},{k % 1440},{-40 - (k % 80)},{errors}\n"
            )
            truth = fleet.truth[device]
            truth.rows += 1
            truth.epoch += int(moment.timestamp())
            truth.battery += battery
            truth.errors += errors
            truth.firmware_crc += crc
        path = directory / f"gw{gateway:02d}" / f"part-{slot:04d}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(lines), encoding="utf-8")
        fleet.keys.append(f"incoming/gw{gateway:02d}/part-{slot:04d}.csv")
        fleet.sizes.append(rows)
        paths.append(path)
    return fleet, paths


# ------------------------------------------------------------------------------ a worker
@dataclass(frozen=True)
class WorkerSpec:
    """Where a worker polls and what it connects to."""

    name: str
    endpoint: str
    queue_url: str
    database_url: str
    batch: int
    timeout: float


def worker(spec: WorkerSpec, stop: Any, ready: Any, busy: Any, results: Any) -> None:
    """Poll the queue like Lambda's event source mapping; invoke the real handler."""
    name, endpoint, queue_url = spec.name, spec.endpoint, spec.queue_url
    database_url, batch, timeout = spec.database_url, spec.batch, spec.timeout
    os.environ.update(
        {
            "IOTPIPE_DATABASE_URL": database_url,
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_DEFAULT_REGION": "us-east-1",
            "POWERTOOLS_METRICS_DISABLED": "true",
            "POWERTOOLS_LOG_LEVEL": "ERROR",
            "IOTPIPE_INPUT_PREFIX": "incoming/",
        }
    )
    sys.stdout = Path(os.devnull).open("w")  # noqa: SIM115 (the process's: metrics, logs)
    from iotpipe.handlers.ingest import handler
    from iotpipe.local.stack import LocalContext

    sqs = local_client("sqs", endpoint)
    ready.set()
    while not stop.is_set():
        messages = sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=batch,
            WaitTimeSeconds=1,
            AttributeNames=["ApproximateReceiveCount"],
        ).get("Messages", [])
        if not messages:
            continue
        event = {
            "Records": [
                {
                    "messageId": m["MessageId"],
                    "receiptHandle": m["ReceiptHandle"],
                    "body": m["Body"],
                    "attributes": m.get("Attributes", {}),
                    "eventSource": "aws:sqs",
                }
                for m in messages
            ]
        }
        busy.value = 1
        started = time.perf_counter()
        try:
            failed = {
                f["itemIdentifier"]
                for f in handler(event, LocalContext(timeout)).get("batchItemFailures", [])
            }
        except Exception:  # as on AWS: the whole batch comes back
            failed = {m["MessageId"] for m in messages}
        seconds = time.perf_counter() - started
        busy.value = 0
        done = [m for m in messages if m["MessageId"] not in failed]
        if done:
            sqs.delete_message_batch(
                QueueUrl=queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in
                         enumerate(done)],
            )  # fmt: skip
        receives = max(int(m["Attributes"]["ApproximateReceiveCount"]) for m in messages)
        results.put((name, seconds, len(messages), len(failed), receives))


# ------------------------------------------------------------------------------ a run
@dataclass
class RunResult:
    """What one run measured and proved."""

    workers: int
    seconds: float
    files: int
    rows: int
    latencies: list[float]
    peak_connections: int
    deadlocks: int
    failed_deliveries: int
    redelivered: int
    faults: list[str] = field(default_factory=list)

    @property
    def files_per_second(self) -> float:
        return self.files / self.seconds

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds


class Simulation:
    """The servers and the objects, shared by the runs."""

    def __init__(self, files: int, batch: int, visibility: int, timeout: float) -> None:
        self.batch, self.visibility, self.timeout = batch, visibility, timeout
        self.scratch = Path(tempfile.mkdtemp(prefix="iotpipe-fleet-"))
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.moto = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.db = PrivateMariaDB().start()
        self._wait_for_moto()
        started = time.perf_counter()
        self.fleet, paths = generate(self.scratch / "files", files)
        self.s3, self.sqs = local_client("s3", self.endpoint), local_client("sqs", self.endpoint)
        self.s3.create_bucket(Bucket=BUCKET)
        for key, path in zip(self.fleet.keys, paths, strict=True):
            self.s3.upload_file(str(path), BUCKET, key)
        print(
            f"# {files} objects, {self.fleet.rows:,} rows, generated and uploaded in "
            f"{time.perf_counter() - started:.1f} s",
            flush=True,
        )

    def _wait_for_moto(self) -> None:
        import urllib.request

        for _ in range(100):
            with contextlib.suppress(OSError):
                urllib.request.urlopen(self.endpoint, timeout=1).close()  # noqa: S310 (127.0.0.1)
                return
            time.sleep(0.1)
        raise RuntimeError("moto's server did not start")

    def close(self) -> None:
        self.moto.terminate()
        self.moto.wait()
        self.db.stop()
        import shutil

        shutil.rmtree(self.scratch, ignore_errors=True)

    def queues(self, name: str) -> tuple[str, str]:
        import json

        dlq = self.sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])
        redrive = {
            "deadLetterTargetArn": arn["Attributes"]["QueueArn"],
            "maxReceiveCount": str(MAX_RECEIVES),
        }
        url = self.sqs.create_queue(
            QueueName=name,
            Attributes={
                "VisibilityTimeout": str(self.visibility),
                "RedrivePolicy": json.dumps(redrive),
            },
        )["QueueUrl"]
        return url, dlq

    def run(self, workers: int, faults: bool = False) -> RunResult:  # noqa: C901, PLR0915
        """Load every object with ``workers`` workers; prove the end state."""
        from iotpipe.backfill import backfill

        name = f"fleet-{workers}{'-faults' if faults else ''}-{int(time.time())}"
        url = self.db.fresh_database(DATABASE)
        queue_url, dlq_url = self.queues(name)
        context = mp.get_context("spawn")
        stop, results = context.Event(), context.Queue()
        procs: dict[str, tuple[Any, Any]] = {}

        def start_worker(label: str) -> None:
            ready, busy = context.Event(), context.Value("i", 0)
            proc = context.Process(
                target=worker,
                args=(
                    WorkerSpec(label, self.endpoint, queue_url, url, self.batch, self.timeout),
                    stop, ready, busy, results,
                ),
                daemon=True,
            )  # fmt: skip
            proc.start()
            procs[label] = (proc, busy)
            if not ready.wait(60):
                raise RuntimeError(f"worker {label} did not start")

        for n in range(workers):
            start_worker(f"w{n}")
        baseline_connections = self.db.status("Threads_connected")
        deadlocks_before = self.db.status("Innodb_deadlocks")
        started = time.perf_counter()
        backfill(self.s3, self.sqs, BUCKET, "incoming/", queue_url)
        peak = 0
        fault_log: list[str] = []
        killed = restarted = not faults
        total = len(self.fleet.keys)
        deadline = started + 1800
        while time.perf_counter() < deadline:
            loaded = self._loaded(url)
            with contextlib.suppress(pymysql.err.OperationalError):
                peak = max(peak, self.db.status("Threads_connected") - baseline_connections)
            if not killed and loaded >= total * 0.3:
                label, (proc, _busy) = self._busy_worker(procs)
                os.kill(proc.pid, signal.SIGKILL)
                proc.join()
                del procs[label]
                fault_log.append(f"killed worker {label} in a file at {loaded}/{total} loaded")
                start_worker(f"{label}-replacement")
                killed = True
            elif killed and not restarted and loaded >= total * 0.6:
                seconds = self.db.restart()
                fault_log.append(f"restarted the database at {loaded}/{total} ({seconds:.1f} s)")
                restarted = True
            if loaded == total and self._depth(queue_url) == 0:
                break
            time.sleep(0.25)
        seconds = time.perf_counter() - started
        stop.set()
        for proc, _busy in procs.values():
            proc.join(timeout=30)
        latencies, failed_deliveries, redelivered = [], 0, 0
        while not results.empty():
            _name, took, count, failed, receives = results.get()
            latencies += [took] * count
            failed_deliveries += failed
            redelivered += receives > 1
        self._prove(url, queue_url, dlq_url)
        return RunResult(
            workers,
            seconds,
            total,
            self.fleet.rows,
            latencies,
            peak,
            self.db.status("Innodb_deadlocks") - deadlocks_before if not faults else -1,
            failed_deliveries,
            redelivered,
            fault_log,
        )

    def _busy_worker(self, procs: dict[str, tuple[Any, Any]]) -> tuple[str, tuple[Any, Any]]:
        for _ in range(400):  # wait until one is inside the handler
            for label, entry in procs.items():
                if entry[1].value:
                    return label, entry
            time.sleep(0.005)
        return next(iter(procs.items()))

    def _loaded(self, url: str) -> int:
        with contextlib.suppress(pymysql.err.MySQLError):
            rows = _query(url, "SELECT COUNT(*) FROM iotpipe_ledger WHERE status = 'loaded'")
            return int(rows[0][0])
        return 0

    def _depth(self, queue_url: str) -> int:
        attrs = self.sqs.get_queue_attributes(
            QueueUrl=queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attrs["ApproximateNumberOfMessages"]) + int(
            attrs["ApproximateNumberOfMessagesNotVisible"]
        )

    def _prove(self, url: str, queue_url: str, dlq_url: str) -> None:
        """Raise unless the end state is exactly the truth."""
        ledger = _query(url, "SELECT source, status, COUNT(*) FROM iotpipe_ledger GROUP BY 1, 2")
        expected = {(f"s3://{BUCKET}/{k}", "loaded", 1) for k in self.fleet.keys}
        if set(ledger) != expected:
            wrong = sorted(set(ledger) ^ expected)[:5]
            raise AssertionError(f"ledger differs from one 'loaded' row per object: {wrong}")
        stored = _query(
            url,
            "SELECT d.device_id, COUNT(*), SUM(TIMESTAMPDIFF(SECOND, '1970-01-01', d.ts)),"
            " SUM(d.battery_pct), SUM(d.error_count), SUM(CRC32(c.value))"
            f" FROM {TABLE} d JOIN iotpipe_categories c ON c.dataset = 'acme_usage'"
            " AND c.column_name = 'firmware_version' AND c.code = d.firmware_version_code"
            " GROUP BY d.device_id",
        )
        got: dict[str, tuple[int, ...]] = {str(r[0]): tuple(int(v) for v in r[1:]) for r in stored}
        want: dict[str, tuple[int, ...]] = {
            device: (t.rows, t.epoch, t.battery, t.errors, t.firmware_crc)
            for device, t in self.fleet.truth.items()
        }
        if got != want:
            devices = sorted(k for k in set(want) | set(got) if got.get(k) != want.get(k))
            raise AssertionError(f"the table differs from the truth for {devices[:5]}")
        (total,) = _query(url, f"SELECT COUNT(*) FROM {TABLE}")[0]
        if total != self.fleet.rows:
            raise AssertionError(f"{total} rows stored, {self.fleet.rows} generated")
        reused = _query(
            url,
            "SELECT column_name, code FROM iotpipe_categories"
            " GROUP BY dataset, column_name, code HAVING COUNT(*) > 1",
        )
        if reused:
            raise AssertionError(f"category codes given twice: {reused[:5]}")
        for label, queue in (("queue", queue_url), ("dead-letter queue", dlq_url)):
            if self._depth(queue):
                raise AssertionError(f"the {label} is not empty")


def _query(url: str, sql: str) -> list[tuple[Any, ...]]:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    conn = pymysql.connect(
        host=parts.hostname,
        port=parts.port or 3306,
        user=parts.username,
        database=parts.path[1:],
    )
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            return [tuple(r) for r in cur.fetchall()]
    finally:
        conn.close()


# ------------------------------------------------------------------------------ report
def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def plot(results: list[RunResult], target: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    workers = [r.workers for r in results]
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.4))
    left.plot(workers, [r.rows_per_second / 1000 for r in results], marker="o")
    left.set(xlabel="workers (K)", ylabel="thousand rows/s", title="throughput")
    left.set_xticks(workers)
    right.plot(workers, [percentile(r.latencies, 0.5) for r in results], marker="o", label="p50")
    right.plot(workers, [percentile(r.latencies, 0.95) for r in results], marker="o", label="p95")
    right.set(xlabel="workers (K)", ylabel="seconds", title="file latency (receive to delete)")
    right.set_xticks(workers)
    right.legend()
    for axis in (left, right):
        axis.grid(alpha=0.3)
        axis.set_ylim(bottom=0)
    fig.tight_layout()
    fig.savefig(target, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workers", default="1,2,4,8")
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--batch", type=int, default=5, help="messages per invocation")
    parser.add_argument("--visibility", type=int, default=20, help="visibility timeout, s")
    parser.add_argument("--timeout", type=float, default=60.0, help="invocation timeout, s")
    parser.add_argument("--fault-workers", type=int, default=4, help="0: no fault run")
    parser.add_argument("--plot", type=Path, default=Path("docs/scale.png"))
    args = parser.parse_args()
    sim = Simulation(args.files, args.batch, args.visibility, args.timeout)
    results = []
    try:
        for k in (int(w) for w in args.workers.split(",")):
            results.append(sim.run(k))
            r = results[-1]
            print(f"# K={k}: {r.seconds:.1f} s, end state proved", flush=True)
        fault = sim.run(args.fault_workers, faults=True) if args.fault_workers else None
    finally:
        sim.close()
    print(
        "| workers | seconds | files/s | rows/s | p50 file s | p95 file s "
        "| peak connections | deadlocks | failed deliveries | batches received again |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in [*results, *([fault] if fault else [])]:
        label = f"{r.workers} (faults)" if r.faults else str(r.workers)
        deadlocks = "-" if r.deadlocks < 0 else str(r.deadlocks)
        print(
            f"| {label} | {r.seconds:.1f} | {r.files_per_second:.1f} | "
            f"{r.rows_per_second:,.0f} | {percentile(r.latencies, 0.5):.2f} | "
            f"{percentile(r.latencies, 0.95):.2f} | {r.peak_connections} | {deadlocks} | "
            f"{r.failed_deliveries} | {r.redelivered} |"
        )
    if fault:
        for line in fault.faults:
            print(f"- fault: {line}")
        print("- fault run: end state proved (table = truth, one loaded row per object)")
    print(f"- p50/p95 over {sum(len(r.latencies) for r in results):,} deliveries; "
          f"median of K=1: {statistics.median(results[0].latencies):.2f} s")  # fmt: skip
    plot(results, args.plot)


if __name__ == "__main__":
    main()
