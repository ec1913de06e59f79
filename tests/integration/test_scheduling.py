"""Self-test of the scheduling promise: under -n N each OS runs on one worker and builds once.

pytest 9.2 with xdist 3.8 silently ignores `--dist loadgroup` (xdist #1386); the harness has its
own scheduler. If a pytest or xdist upgrade breaks it, this test fails.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest

from benchmarks.fake_project import builds_started, run_harness, write_project

THREE = {"debian12": ("debian", "12"), "rocky9": ("el", "9"), "ubuntu2204": ("debian", "22.04")}


@pytest.mark.parametrize("dist", [None, "load", "loadgroup", "worksteal"])
def test_each_os_on_one_worker_built_once(tmp_path: Path, dist: str | None) -> None:
    root = write_project(tmp_path, THREE, sleep=1)
    extra = ["--dist", dist] if dist else []
    proc = run_harness(root, "--os", "all", "-n", "2", *extra)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    workers: dict[str, set[str]] = defaultdict(set)
    for line in (root / "trace.log").read_text().splitlines():
        os_name, worker, _pid = line.split()
        workers[os_name].add(worker)
    assert set(workers) == set(THREE)
    for os_name, seen in workers.items():
        assert len(seen) == 1, f"{os_name} ran on workers {sorted(seen)}"
        assert next(iter(seen)).startswith("gw"), "tests did not run under xdist"
    builds = builds_started(root)
    assert len(builds) == 3, builds
    assert {b.split()[1].split("-")[1] for b in builds} == set(THREE)
    r = json.loads((root / "reports" / "results.json").read_text())
    assert all(v["verdict"] == "passed" for v in r["os"].values())
