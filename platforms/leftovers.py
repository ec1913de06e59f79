"""What runs killed outright left on this machine: found, then removed or named.

A run stopped by SIGINT or SIGTERM removes what it made. One killed by SIGKILL, a lost runner
or a machine crash cannot, so every run starts by looking (and `xcpng-golden cleanup`
does the same on demand). Only what no live process owns is touched (core.ownership): another
session building right now keeps its folders.

- image cache: build folders and replaced or discarded entries (`.tmp-*`, `.old-*`,
  `.trash-*`), with any mount point a killed base-disk build of an older version left in them;
- temporary folder: build scratch, QMP and SSH socket folders, publish staging (`xcpng-*`);
- processes of dead runs (every process the harness starts carries its run id in its
  environment): Packer's children, a clone's QEMU that was never recorded as kept;
- artifacts: run records of runs no longer alive (`.runs/<run-id>`), the clone folders of those
  runs (`vms/<name>`: overlay, seed, key) and any QEMU still running from one; half-written
  files (`*.part`) here, in the reports and in a publish folder;
- named, not removed: a kept clone whose QEMU is gone (its disk may matter to whoever kept it;
  the janitor command removes it), pool objects of dead runs when no pool is configured (the
  command that removes them), a mount point nothing of ours contains.
"""

from __future__ import annotations

import re
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from core.ownership import claim_alive, is_leftover, processes_of_runs, stale_entries
from core.proc import argv_of, find_processes, stop_pid
from core.settings import Settings
from core.trees import mounts_below, remove_tree
from platforms.kept import VMS_DIR, all_kept, janitor_command

RUNS_DIR = ".runs"
CACHE_TEMP = (".tmp-", ".old-", ".trash-")
SCRATCH = ("xcpng-",)
LEGACY_RUN_AGE_S = 86400.0
STOP_GRACE_S = 10.0  # a run folder from before owner records: dead after a quiet day
RUN_ID = re.compile(r"-(\d{14}-[0-9a-f]{6})$")


@dataclass
class Tidy:
    removed: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # could not be removed: why and how
    notes: list[str] = field(default_factory=list)  # left on purpose, with the command

    @property
    def clean(self) -> bool:
        return not (self.problems or self.notes)


def run_dir(artifacts_dir: Path, run_id: str) -> Path:
    return artifacts_dir / RUNS_DIR / run_id


def _quiet_since(folder: Path) -> float:
    newest = folder.stat().st_mtime
    for p in folder.rglob("*"):
        newest = max(newest, p.lstat().st_mtime)
    return time.time() - newest


def dead_runs(artifacts_dir: Path, current: str | None = None) -> list[Path]:
    """Run record folders whose controller is gone."""
    out = []
    for folder in sorted((artifacts_dir / RUNS_DIR).glob("*")):
        if not folder.is_dir() or folder.name == current:
            continue
        alive = claim_alive(folder)
        if alive is False or (alive is None and _quiet_since(folder) > LEGACY_RUN_AGE_S):
            out.append(folder)
    return out


def live_runs(artifacts_dir: Path) -> set[str]:
    return {
        f.name
        for f in (artifacts_dir / RUNS_DIR).glob("*")
        if f.is_dir() and claim_alive(f) is not False
    }


def _remove(path: Path, report: Tidy, dry_run: bool, what: str) -> None:
    if dry_run:
        report.removed.append(f"would remove {what} {path}")
        return
    problems = remove_tree(path)
    report.problems += problems
    if not problems:
        report.removed.append(f"removed {what} {path}")


def _cache(cache_dir: Path, report: Tidy, dry_run: bool) -> None:
    folders = [cache_dir / "base", *sorted(cache_dir.glob("images/*/*"))]
    for folder in folders:
        for path in stale_entries(folder, CACHE_TEMP):
            _remove(path, report, dry_run, "unfinished cache entry")


def temp_dirs() -> list[Path]:
    """Where temporary folders go: $TMPDIR, and /tmp for socket folders (core.ownership)."""
    return sorted({Path(tempfile.gettempdir()), Path("/tmp")})


def _scratch(parents: list[Path], report: Tidy, dry_run: bool, in_use: set[str]) -> None:
    for parent in parents:
        for path in stale_entries(parent, SCRATCH, untagged=False):
            if str(path) not in in_use:
                _remove(path, report, dry_run, "temporary folder")


def _clone_of(folder: Path, live: set[str]) -> bool:
    """True when the clone folder belongs to a run still alive."""
    return any(folder.name.endswith(f"-{run}") for run in live)


def _processes(dead: list[Path], spare: set[int], report: Tidy, dry_run: bool) -> None:
    """Stop what processes of dead runs still run (Packer's own children, an unrecorded
    clone): SIGTERM, then SIGKILL what is left after a grace period."""
    found = {
        pid: run
        for pid, run in processes_of_runs({d.name for d in dead}).items()
        if pid not in spare
    }
    for pid, run in sorted(found.items()):
        what = f"process {pid} of dead run {run} ({' '.join(argv_of(pid))[:80]})"
        if dry_run:
            report.removed.append(f"would stop {what}")
            continue
        if stop_pid(pid, grace=STOP_GRACE_S):
            report.removed.append(f"stopped {what}")
        else:
            report.problems.append(f"{what} did not stop: kill -9 {pid}")


def _clones(artifacts_dir: Path, report: Tidy, dry_run: bool) -> None:
    live = live_runs(artifacts_dir)
    kept = {Path(k.folder).name for k in all_kept(artifacts_dir)}
    for folder in sorted((artifacts_dir / VMS_DIR).glob("*")):
        if not folder.is_dir() or folder.name in kept or _clone_of(folder, live):
            continue
        for pid in find_processes("qemu-system", str(folder)):
            if dry_run:
                report.removed.append(f"would stop QEMU pid {pid} of {folder.name}")
            elif stop_pid(pid):
                report.removed.append(f"stopped QEMU pid {pid} of {folder.name}")
            else:
                report.problems.append(f"QEMU pid {pid} of {folder} did not stop: kill -9 {pid}")
        _remove(folder, report, dry_run, "clone folder")
    for k in all_kept(artifacts_dir):
        pid = int(k.details.get("qemu_pid", 0) or 0)
        if k.platform == "local" and k.name not in argv_of(pid):
            report.notes.append(
                f"kept clone {k.name}: its QEMU is gone (machine restarted?); its folder "
                f"stays until its time-to-live, or remove it now: "
                f"{janitor_command(artifacts_dir, k.name)}"
            )


def _parts(roots: list[Path], report: Tidy, dry_run: bool) -> None:
    for root in roots:
        if root.is_dir():
            for path in sorted(root.rglob("*.part")):
                if is_leftover(path):
                    _remove(path, report, dry_run, "half-written file")


def _mounts(roots: list[Path], report: Tidy) -> None:
    for root in roots:
        for mount in mounts_below(root) if root.exists() else []:
            report.problems.append(
                f"{mount} is mounted inside {root} (a killed base-disk build of an older "
                f"version?); free it with `umount -R {mount}` (as root)"
            )


def _pool(settings: Settings, report: Tidy, dry_run: bool) -> None:
    from platforms.xcpng.ledger import LEDGER_NAME, Ledger

    ledger = settings.artifacts_dir / LEDGER_NAME
    live = live_runs(settings.artifacts_dir)
    runs = sorted(
        {e.run_id for e in Ledger.open_entries(ledger) if e.state != "kept"} - live - {""}
    )
    if not runs:
        return
    if not settings.xcpng.url or dry_run:
        for run in runs:
            report.notes.append(
                f"run {run} left pool objects in {ledger}; remove them with: "
                f"xcpng-golden pool cleanup --run-id {run}"
            )
        return
    from platforms.xcpng.cleanup import cleanup
    from platforms.xcpng.platform import connect

    xapi = connect(settings.xcpng)
    try:
        for run in runs:
            pool = cleanup(xapi, ledger, run_id=run)
            report.removed += [f"pool: {line}" for line in pool.removed]
            report.problems += [f"pool: {line}" for line in pool.problems]
    finally:
        xapi.logout()


def tidy(
    settings: Settings,
    current_run: str | None = None,
    dry_run: bool = False,
    pool: bool = False,
    scratch: list[Path] | None = None,
) -> Tidy:
    """Find and remove (or name) what dead runs left; `pool` also cleans their pool objects;
    `scratch`: the temporary folders to look in (default temp_dirs())."""
    report = Tidy()
    artifacts = settings.artifacts_dir
    kept = all_kept(artifacts)
    kept_sockets = {str(p) for k in kept for p in k.details.get("remove", [])}
    kept_pids = {int(k.details.get("qemu_pid", 0) or 0) for k in kept}
    dead = dead_runs(artifacts, current_run)
    _processes(dead, kept_pids, report, dry_run)
    _cache(settings.cache_dir, report, dry_run)
    _scratch(scratch or temp_dirs(), report, dry_run, kept_sockets)
    _clones(artifacts, report, dry_run)
    for folder in dead:
        _remove(folder, report, dry_run, "record of a dead run")
    publish_folder = settings.publish_to.path  # None for S3
    roots = [artifacts, settings.reports_dir, *([publish_folder] if publish_folder else [])]
    _parts(roots, report, dry_run)
    _mounts([settings.cache_dir, artifacts], report)
    if pool:
        _pool(settings, report, dry_run)
    return report
