"""Clones kept by --keep-vm: their folder, their record, and the janitor that stops them.

Every clone works in its own folder, <artifacts>/vms/<name>/, outside pytest's temporary tree
(which pytest rotates away after a few runs). A kept clone's folder keeps its SSH key, its
known_hosts and kept.json; the janitor stops the clone once its time-to-live has passed and
removes the folder.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import InfrastructureError, UsageError
from core.files import read_json, write_json_atomic
from core.model import KeptVM
from core.trees import remove_trees

VMS_DIR = "vms"
RECORD = "kept.json"


def vm_folder(artifacts_dir: Path, name: str) -> Path:
    return artifacts_dir / VMS_DIR / name


def janitor_command(artifacts_dir: Path, name: str) -> str:
    return f"xcpng-golden janitor --artifacts-dir {artifacts_dir} --name {name}"


def record_kept(folder: Path, kept: KeptVM) -> KeptVM:
    write_json_atomic(folder / RECORD, kept.to_json(), mode=0o600)
    return kept


def all_kept(artifacts_dir: Path) -> list[KeptVM]:
    out = []
    for path in sorted((artifacts_dir / VMS_DIR).glob(f"*/{RECORD}")):
        data = read_json(path)
        if isinstance(data, dict):
            out.append(KeptVM.from_json(data))
    return out


def kept_of_run(artifacts_dir: Path, run_id: str) -> list[KeptVM]:
    return [k for k in all_kept(artifacts_dir) if k.run_id == run_id]


@dataclass
class JanitorReport:
    stopped: list[str] = field(default_factory=list)
    left: list[str] = field(default_factory=list)  # still within their time-to-live
    problems: list[str] = field(default_factory=list)


Stopper = Callable[[KeptVM], list[str]]  # stops one clone; returns problems


def sweep(
    artifacts_dir: Path,
    stoppers: dict[str, Stopper],
    *,
    name: str | None = None,
    now: float | None = None,
    dry_run: bool = False,
) -> JanitorReport:
    """Stop every kept clone whose time-to-live has passed (or the one named), on any
    platform, and remove its folder; a clone that cannot be stopped keeps its folder."""
    now = time.time() if now is None else now
    report = JanitorReport()
    for kept in all_kept(artifacts_dir):
        if name is not None and kept.name != name:
            continue
        if name is None and kept.expires_at > now:
            report.left.append(kept.name)
            continue
        if dry_run:
            report.stopped.append(f"would stop {kept.name} ({kept.platform})")
            continue
        stopper = stoppers.get(kept.platform)
        try:
            problems = stopper(kept) if stopper else [f"no janitor for {kept.platform}"]
        except (UsageError, InfrastructureError) as exc:
            problems = [str(exc)]
        if problems:
            report.problems += [f"{kept.name}: {p}" for p in problems]
            continue
        problems = remove_trees([Path(p) for p in kept.details.get("remove", [])])
        problems += remove_trees([Path(kept.folder)])
        if problems:
            report.problems += [f"{kept.name}: {p}" for p in problems]
            continue
        report.stopped.append(f"stopped {kept.name} ({kept.platform})")
    if name is not None and not (report.stopped or report.problems):
        report.problems.append(f"no kept VM named {name} under {artifacts_dir / VMS_DIR}")
    return report
