"""The import benchmark runs (tiny) and reports what it promises: throughput of the import into
the twin against `cat`, for a sparse and a dense XVA, and the harness process's peak memory."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.benchmark
def test_benchmark_small_run_reports_throughput_and_flat_memory(tmp_path: Path) -> None:
    out = subprocess.run(
        [
            sys.executable,
            "benchmarks/xva_import.py",
            "--size",
            "24M",
            "--json",
            "--workdir",
            str(tmp_path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    r = json.loads(out.stdout)
    assert set(r["disks"]) == {"sparse", "dense"}
    sparse, dense = r["disks"]["sparse"], r["disks"]["dense"]
    assert sparse["xva_bytes"] < 2 * (1 << 20) + 64 * 1024  # first and last chunks only
    assert dense["xva_bytes"] > 24 * (1 << 20)
    for d in (sparse, dense):
        assert d["import_s"] > 0 and d["cat_s"] > 0 and d["import_MiBps"] > 0
    # Python allocations stay around one chunk, far below the 24 MiB disk
    assert r["python_alloc_peak_bytes"] < 12 * (1 << 20)
    assert list(tmp_path.iterdir()) == []  # images removed
