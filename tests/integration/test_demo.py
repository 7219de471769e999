"""`iotpipe demo` runs on a fresh install: no servers of its own, no AWS credentials."""

from __future__ import annotations

import os
import subprocess
import sys


def test_demo_end_to_end_without_aws() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "IOTPIPE_"))}
    out = subprocess.run(
        [sys.executable, "-m", "iotpipe", "demo", "--rows", "5000"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    text = out.stdout
    assert "uploaded s3://iotpipe-raw/incoming/acme usage 2024-01 + café.csv.gz" in text
    assert "MISMATCH" not in text
    assert text.count(" ok") >= 5
    assert "6. retrieval: device dev-00003" in text
    assert '"timestamp": "2024-01-01T' in text
