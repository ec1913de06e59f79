"""Benchmark: K OSes whose builds each take S seconds, run with -n K.

Prints the total wall time over S (ideal: close to 1 plus pytest/xdist start-up), the number of
builds executed (must be K) and the collection time of `--os all` on the repository's catalog.

    .venv/bin/python benchmarks/build_parallel.py --oses 4 --seconds 20
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from core.ownership import scratch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.fake_project import builds_started, run_harness, write_project  # noqa: E402

NAMES = [
    "debian12",
    "ubuntu2204",
    "ubuntu2404",
    "almalinux9",
    "rocky9",
    "centos-stream9",
    "fedora41",
    "debian13",
]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--oses", type=int, default=4, help="K: number of OSes (and workers)")
    ap.add_argument("--seconds", type=float, default=20, help="S: duration of each build")
    args = ap.parse_args()
    k = max(1, min(args.oses, len(NAMES)))
    oses = {n: ("debian" if n.startswith(("debian", "ubuntu")) else "el", "1") for n in NAMES[:k]}
    with scratch("xcpng-bench-build") as tmp:
        root = write_project(Path(tmp), oses, sleep=args.seconds)
        started = time.monotonic()
        proc = run_harness(root, "--os", "all", "-n", str(k), timeout=3600)
        wall = time.monotonic() - started
        builds = len(builds_started(root))
        if proc.returncode != 0:
            print(proc.stdout[-3000:], proc.stderr[-3000:])
            return 1
    started = time.monotonic()
    collect = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--collect-only",
            "-q",
            "--os",
            "all",
            "--platform",
            "local",
            "-p",
            "no:cacheprovider",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    collect_s = time.monotonic() - started
    n_items = sum(1 for line in collect.stdout.splitlines() if "::" in line)
    print(f"OSes (K)                  {k}")
    print(f"build seconds (S)         {args.seconds:.1f}")
    print(f"workers (-n)              {k}")
    print(f"wall time                 {wall:.1f} s")
    print(f"wall time / S             {wall / args.seconds:.2f}  (sum of builds would be {k:.2f})")
    print(f"builds executed           {builds}  (must be {k})")
    print(f"overhead (wall - S)       {wall - args.seconds:.1f} s (pytest, xdist start, checks)")
    print(f"collection of --os all    {collect_s:.2f} s for {n_items} tests")
    return 0 if builds == k else 1


if __name__ == "__main__":
    raise SystemExit(main())
