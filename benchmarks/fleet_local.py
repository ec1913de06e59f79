"""Benchmark: several OSes in one session on the local platform against each OS alone.

Runs `pytest --os X --platform local` for each OS alone, then `pytest -n K --os A,B,...
--platform local` once, and prints each run's wall time, every OS's build status, and the
parallel wall time divided by the slowest single run (1.0 is the ideal: the fleet takes as long
as its slowest member; K would mean no parallelism at all). It also checks what the parallel run
promises: every OS built (or taken from the cache) once and booted once, every OS passed.

    .venv/bin/python benchmarks/fleet_local.py             # debian12,debian13, cached images
    .venv/bin/python benchmarks/fleet_local.py --rebuild   # builds included (long)
    .venv/bin/python benchmarks/fleet_local.py --oses debian12,debian13 --json

Heavy (real builds and QEMU boots): run it alone on the machine (`flock /work/heavy.lock ...`
on shared build machines). Images come from the operator's cache like any harness run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from core.ownership import scratch

REPO = Path(__file__).resolve().parents[1]


def run_session(work: Path, oses: list[str], rebuild: bool) -> dict[str, Any]:
    """One harness session; its wall time and, per OS, build status, boots and verdict."""
    argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q"]
    if len(oses) > 1:
        argv += ["-n", str(len(oses))]
    argv += [
        "--os",
        ",".join(oses),
        "--platform",
        "local",
        f"--artifacts-dir={work / 'artifacts'}",
        f"--reports-dir={work / 'reports'}",
        f"--basetemp={work / 'basetemp'}",
    ]
    if rebuild:
        argv.append("--rebuild")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "TEMPLATE_"))}
    started = time.monotonic()
    proc = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, check=False)
    wall = time.monotonic() - started
    results_file = work / "reports" / "results.json"
    results = json.loads(results_file.read_text()) if results_file.is_file() else {"os": {}}
    per_os = {}
    for name in oses:
        entry = results["os"].get(name, {})
        console = work / "artifacts" / name / "console.log"
        text = console.read_text(errors="replace") if console.is_file() else ""
        per_os[name] = {
            "build": entry.get("build", {}).get("status"),
            "build_s": entry.get("build", {}).get("duration_s"),
            "verdict": entry.get("verdict"),
            # the boot log of the check VM: one kernel banner per boot
            "boots": text.count("Linux version"),
        }
    return {"oses": oses, "wall_s": round(wall, 1), "rc": proc.returncode, "per_os": per_os}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--oses", default="debian12,debian13", help="comma list (default: %(default)s)")
    ap.add_argument("--rebuild", action="store_true", help="build every image (each run)")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON too")
    args = ap.parse_args()
    oses = [o for o in args.oses.split(",") if o]
    with scratch("xcpng-bench-fleet") as tmp:
        singles = [run_session(Path(tmp) / f"alone-{o}", [o], args.rebuild) for o in oses]
        fleet = run_session(Path(tmp) / "fleet", oses, args.rebuild)
    slowest = max(s["wall_s"] for s in singles)
    ratio = fleet["wall_s"] / slowest if slowest else float("nan")
    for s in singles:
        (name,) = s["oses"]
        o = s["per_os"][name]
        print(f"alone  {name:<12} {s['wall_s']:8.1f} s  build {o['build']}  verdict {o['verdict']}")
    print(f"fleet  -n {len(oses)} {','.join(oses)}  {fleet['wall_s']:.1f} s")
    for name, o in fleet["per_os"].items():
        build = f"{o['build']} ({o['build_s'] or 0:.0f} s)"
        print(f"       {name:<12} build {build}  boots {o['boots']}  verdict {o['verdict']}")
    print(
        f"fleet wall / slowest single   {ratio:.2f}  (1.00 ideal, {len(oses)}.00 = no parallelism)"
    )
    ok = fleet["rc"] == 0 and all(
        o["verdict"] == "passed" and o["boots"] == 1 and o["build"] in ("built", "cached")
        for o in fleet["per_os"].values()
    )
    if args.json:
        print(json.dumps({"singles": singles, "fleet": fleet, "ratio": round(ratio, 2)}, indent=1))
    if not ok:
        print("the fleet run did not pass with one build and one boot per OS", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
