"""Benchmark: the main job, warm (the image cached) and cold (an empty image cache), phase by
phase, against the targets (warm <= 75 s with the checks <= 15 s, cold <= 6 min).

    .venv/bin/python benchmarks/main_job.py                 # warm, then cold
    .venv/bin/python benchmarks/main_job.py --runs warm     # warm only (the cache must hold it)
    .venv/bin/python benchmarks/main_job.py --runs cold --os debian13

Each run is `scripts/main-job` itself, with its artifacts, reports and published folder in a
scratch folder (and, cold, an empty TEMPLATE_CACHE_DIR, so the base disk and the Packer build
run). Phases come from the run's own records: `scripts/setup` timed on its own, the base disk
from the build log's `base disk ready in N s`, build, boot and checks from results.json's
`timings` (the status board's phases), publish from the time after results.json was written.
--json prints one JSON object per run too. Set-up is timed as this machine has it: on a
machine set up already it costs seconds; a fresh machine's Debian packages and virtual
environment are measured once, by hand, and given in the docs.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from core.ownership import scratch  # noqa: E402

TARGETS = {"warm": {"total": 75.0, "checks": 15.0}, "cold": {"total": 360.0}}
BASE_DISK = re.compile(r"base disk ready in ([0-9.]+) s")


@dataclass
class Run:
    kind: str
    os_name: str
    exit_code: int
    setup_s: float
    total_s: float  # the main job as a user sees it: set-up included
    phases: dict[str, float] = field(default_factory=dict)
    verdict: str = ""

    def ratios(self) -> dict[str, float]:
        target = TARGETS.get(self.kind, {})
        out = {"total": self.total_s / target["total"]} if "total" in target else {}
        if "checks" in target and "checks" in self.phases:
            out["checks"] = self.phases["checks"] / target["checks"]
        return out


def _iso(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def phases_of(results: dict, build_log: Path, ended_at: float, os_name: str) -> dict[str, float]:
    """Seconds per phase of one OS from the run's own records."""
    entry = results["os"][os_name]
    timings = entry.get("timings") or {}
    phases: dict[str, float] = {}
    if build_log.is_file():
        found = BASE_DISK.findall(build_log.read_text(errors="replace"))
        if found:
            phases["base disk"] = float(found[-1])
    build = float(entry.get("build", {}).get("duration_s") or 0.0)
    phases["build"] = max(0.0, build - phases.get("base disk", 0.0))
    for name, key in (("boot", "boot"), ("checks", "validate"), ("teardown", "teardown")):
        if key in timings:
            phases[name] = float(timings[key])
    phases["publish"] = max(0.0, ended_at - _iso(results["finished_at"]))
    return phases


def run_once(kind: str, os_name: str) -> Run:
    """One main job, as a user runs it; cold runs get an empty image cache."""
    with scratch(f"xcpng-bench-main-{kind}") as tmp:
        work = Path(tmp)
        env = {
            **os.environ,
            "TEMPLATE_OS": os_name,
            "TEMPLATE_ARTIFACTS_DIR": str(work / "artifacts"),
            "TEMPLATE_REPORTS_DIR": str(work / "reports"),
            "TEMPLATE_PUBLISH_TO": str(work / "published"),
        }
        if kind == "cold":
            env["TEMPLATE_CACHE_DIR"] = str(work / "cache")
        started = time.monotonic()
        subprocess.run([str(REPO / "scripts" / "setup")], cwd=REPO, env=env, check=True,
                       capture_output=True)  # fmt: skip
        setup_s = time.monotonic() - started
        proc = subprocess.run(
            [str(REPO / "scripts" / "main-job"), "-p", "no:cacheprovider"],
            cwd=REPO, env=env, capture_output=True, text=True, check=False,
        )  # fmt: skip
        ended_at = time.time()
        total_s = time.monotonic() - started
        results_path = work / "reports" / "results.json"
        if not results_path.is_file():
            print(proc.stdout[-3000:], proc.stderr[-3000:], file=sys.stderr)
            return Run(kind, os_name, proc.returncode, setup_s, total_s, verdict="no results")
        results = json.loads(results_path.read_text())
        phases = {"setup": round(setup_s, 1)}
        phases |= phases_of(results, work / "artifacts" / os_name / "build.log", ended_at, os_name)
        verdict = results["os"][os_name]["verdict"]
        return Run(kind, os_name, proc.returncode, setup_s, total_s, phases, verdict)


# The offline checks run while the clone boots: the status board counts them in "boot", and
# "checks" is what the booted checks add after it.
LABELS = {
    "setup": "setup",
    "base disk": "base disk",
    "build": "build",
    "boot": "boot (offline checks meanwhile)",
    "checks": "checks after the boot",
    "teardown": "teardown",
    "publish": "publish",
}
WIDTH = max(map(len, LABELS.values())) + 1


def table(runs: list[Run]) -> str:
    lines = [f"{'phase':<{WIDTH}}" + "".join(f"{r.kind:>10}" for r in runs)]
    for name, label in LABELS.items():
        cells = "".join(
            f"{r.phases[name]:>9.1f}s" if name in r.phases else f"{'-':>10}" for r in runs
        )
        lines.append(f"{label:<{WIDTH}}{cells}")
    lines.append(f"{'total':<{WIDTH}}" + "".join(f"{r.total_s:>9.1f}s" for r in runs))
    lines.append(f"{'verdict':<{WIDTH}}" + "".join(f"{r.verdict:>10}" for r in runs))
    for r in runs:
        for what, ratio in r.ratios().items():
            target = TARGETS[r.kind][what]
            lines.append(f"{r.kind} {what} / target {target:.0f} s: {ratio:.2f}")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", default="warm,cold", help="warm, cold or both (in that order)")
    ap.add_argument("--os", default="debian12", help="the OS the main job builds and checks")
    ap.add_argument("--json", action="store_true", help="also print one JSON object per run")
    args = ap.parse_args()
    kinds = [k.strip() for k in args.runs.split(",") if k.strip()]
    bad = [k for k in kinds if k not in TARGETS]
    if bad or not kinds:
        ap.error(f"--runs takes warm and/or cold, not {', '.join(bad) or 'nothing'}")
    runs = [run_once(kind, args.os) for kind in kinds]
    machine = f"{os.cpu_count()} cores, {Path('/proc/loadavg').read_text().split()[0]} load"
    print(f"main job, {args.os}, {time.strftime('%Y-%m-%d %H:%M')} ({machine} at the end)")
    print(table(runs))
    if args.json:
        for r in runs:
            print(json.dumps({**asdict(r), "ratios": r.ratios()}))
    return 0 if all(r.exit_code == 0 for r in runs) else 1


if __name__ == "__main__":
    raise SystemExit(main())
