"""The S3 upload benchmark runs end to end (tiny sizes) and prints its figures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.support.publishing import sparse_disk

REPO = Path(__file__).resolve().parents[2]
MiB = 1 << 20


def test_benchmark_runs_tiny(tmp_path: Path) -> None:
    raw = tmp_path / "disk.raw"
    sparse_disk(raw, 64 * MiB, 8 * MiB)
    out = subprocess.run(
        [
            sys.executable,
            str(REPO / "benchmarks" / "s3_upload.py"),
            "--size",
            "6M,12M",
            "--raw",
            str(raw),
            "--repeat",
            "1",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    # each publisher line is set against the bare upload that sends the same requests
    assert "throughput publisher, signed / bare upload_file, signed:" in out.stdout
    assert "throughput publisher, CRC32 / bare upload_file, CRC32:" in out.stdout
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    assert [r["size"] for r in figures["runs"]] == [6 * MiB, 12 * MiB]
    kinds = [("bare", "bare-required", "ours", "ours-crc")] * 2 + [("bare", "ours-raw")]
    for run, expected in zip([*figures["runs"], figures["raw"]], kinds, strict=True):
        for kind in expected:
            assert run[kind]["seconds"] > 0 and run[kind]["peak_rss_mib"] > 10
        assert run["throughput_ratio"] > 0
