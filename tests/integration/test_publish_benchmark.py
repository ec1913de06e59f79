"""The S3 upload benchmark runs end to end (tiny size) and prints its figures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_benchmark_runs_tiny() -> None:
    out = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "s3_upload.py"), "--size", "6M", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "throughput ratio publisher/bare:" in out.stdout
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    assert figures["size"] == 6 << 20
    for kind in ("bare", "ours"):
        assert figures[kind]["seconds"] > 0 and figures[kind]["peak_rss_mib"] > 10
    assert figures["throughput_ratio"] > 0
