"""The S3 upload benchmark runs end to end (tiny sizes) and prints its figures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.publishing import moto_s3, sparse_disk

REPO = Path(__file__).resolve().parents[2]
MiB = 1 << 20
SCRIPT = str(REPO / "benchmarks" / "s3_upload.py")


def run_benchmark(
    *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, SCRIPT, *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, **(env or {})},
    )


def test_benchmark_runs_tiny(tmp_path: Path) -> None:
    raw = tmp_path / "disk.raw"
    sparse_disk(raw, 64 * MiB, 8 * MiB)
    out = run_benchmark("--size", "6M,12M", "--raw", str(raw), "--repeat", "1", "--json")
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
    out = run_benchmark("--size", "6M", "--repeat", "1", "--server-cpu", "own", "--json")
    assert out.returncode == 0, out.stderr[-2000:]
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    assert figures["cpus"].startswith("server on CPU 0, clients on "), figures["cpus"]


def test_benchmark_measures_an_endpoint_elsewhere() -> None:
    """--endpoint: a server that checks every signature, the environment's key, the objects
    removed afterwards."""
    with moto_s3() as m:
        bucket = m.bucket()
        out = run_benchmark(
            *("--endpoint", m.endpoint, "--bucket", bucket, "--size", "6M", "--repeat", "1"),
            "--json",
            env=m.env(),
        )
        assert out.returncode == 0, out.stderr[-2000:]
        figures = json.loads(out.stdout.strip().splitlines()[-1])
        assert figures["cpus"] == "server elsewhere"
        assert figures["runs"][0]["ours"]["sent"] == 6 * MiB
        assert m.client().list_objects_v2(Bucket=bucket).get("KeyCount") == 0

        wrong = run_benchmark(
            *("--endpoint", m.endpoint, "--bucket", bucket, "--size", "6M"),
            env=m.env(AWS_SECRET_ACCESS_KEY="not-the-secret"),
        )
        assert wrong.returncode != 0
        assert f"--bucket {bucket} at {m.endpoint}" in wrong.stderr
        assert "check the AWS_* credentials" in wrong.stderr
        assert m.secret not in wrong.stdout + wrong.stderr

    alone = run_benchmark("--endpoint", "http://127.0.0.1:9")
    assert alone.returncode == 2
    assert "--endpoint and --bucket go together" in alone.stderr
