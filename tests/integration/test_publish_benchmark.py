"""The S3 upload benchmark runs end to end (tiny sizes) and prints its figures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.publishing import sparse_disk

REPO = Path(__file__).resolve().parents[2]
MiB = 1 << 20
OWN_CPU = ["--size", "6M", "--repeat", "1", "--server-cpu", "own", "--json"]


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
    assert figures["cpus"].startswith("server and clients share "), figures["cpus"]
    assert [r["size"] for r in figures["runs"]] == [6 * MiB, 12 * MiB]
    kinds = [("bare", "bare-required", "ours", "ours-crc")] * 2 + [("bare", "ours-raw")]
    for run, expected in zip([*figures["runs"], figures["raw"]], kinds, strict=True):
        for kind in expected:
            assert run[kind]["seconds"] > 0 and run[kind]["peak_rss_mib"] > 10
        assert run["throughput_ratio"] > 0
    for run in figures["runs"]:
        assert run["ours"]["median_ratio"] > 0 and run["ours-crc"]["median_ratio"] > 0


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs to split")
def test_benchmark_gives_the_server_a_cpu_of_its_own() -> None:
    out = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "s3_upload.py"), *OWN_CPU],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    assert figures["cpus"].startswith("server on CPU 0, clients on "), figures["cpus"]
