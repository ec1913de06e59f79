"""platforms.leftovers.tidy and `xcpng-golden cleanup`: what runs killed outright left
is removed when no live process owns it, named otherwise; what live runs own is untouched."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.model import KeptVM
from core.ownership import OWNER_FILE, RUN_ENV
from core.settings import Settings
from platforms.kept import record_kept
from platforms.leftovers import tidy
from tests.support.pids import NEVER_ALIVE_PID

REPO = Path(__file__).resolve().parents[2]
DEAD_RUN, LIVE_RUN = "20250101000000-dead00", "20250101000000-a11ve0"


def dead_pid() -> int:
    return NEVER_ALIVE_PID


class World:
    def __init__(self, root: Path):
        self.root = root
        self.settings = Settings.from_env(
            env={},
            artifacts_dir=str(root / "artifacts"),
            reports_dir=str(root / "reports"),
            cache_dir=str(root / "cache"),
            publish_to=str(root / "published"),
        )
        self.tmp = root / "tmp"
        self.dead = dead_pid()

    def make(self, rel: str, text: str = "x") -> Path:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    def run_record(self, run_id: str, pid: int) -> None:
        self.make(f"artifacts/.runs/{run_id}/{OWNER_FILE}", f"{pid}\n")
        self.make(f"artifacts/.runs/{run_id}/status/debian12.json", "{}")

    def tidy(self, **kw: object) -> object:
        return tidy(self.settings, scratch=[self.tmp], **kw)  # type: ignore[arg-type]


@pytest.fixture
def world(tmp_path: Path) -> World:
    w = World(tmp_path)
    d = w.dead
    w.make(f"cache/base/.tmp-c63b17d3.pid{d}.ab12/work/root/etc/hostname")
    w.make(f"cache/base/.old-c63b17d3.pid{d}.0/base.qcow2")
    w.make(f"cache/images/debian12/local/.trash-577dd3cd.pid{d}.17/image.raw")
    w.make(f"cache/images/debian12/local/.tmp-577dd3cd-r.pid{os.getpid()}.zz/output/x")
    w.make(f"tmp/xcpng-build-debian12.pid{d}.q1/build-seed/key")
    w.make(f"tmp/xcpng-qmp.pid{os.getpid()}.q2/qmp.sock")
    w.make("tmp/xcpng-legacy/unknown")  # untagged: not ours to judge
    w.make(f"reports/.results.json.pid{d}.k.part", "{half")
    w.make(f"published/debian12/12/b1/.image.raw.pid{d}.x.part", "half")
    w.run_record(DEAD_RUN, d)
    w.run_record(LIVE_RUN, os.getpid())
    w.make(f"artifacts/vms/debian12-{DEAD_RUN}/overlay.qcow2")
    w.make(f"artifacts/vms/debian12-{LIVE_RUN}/overlay.qcow2")
    return w


def test_what_dead_runs_left_is_removed_and_live_runs_keep_theirs(world: World) -> None:
    d = world.dead
    report = world.tidy()
    gone = [
        f"cache/base/.tmp-c63b17d3.pid{d}.ab12",
        f"cache/base/.old-c63b17d3.pid{d}.0",
        f"cache/images/debian12/local/.trash-577dd3cd.pid{d}.17",
        f"tmp/xcpng-build-debian12.pid{d}.q1",
        f"reports/.results.json.pid{d}.k.part",
        f"published/debian12/12/b1/.image.raw.pid{d}.x.part",
        f"artifacts/.runs/{DEAD_RUN}",
        f"artifacts/vms/debian12-{DEAD_RUN}",
    ]
    for rel in gone:
        assert not (world.root / rel).exists(), rel
    kept = [
        f"cache/images/debian12/local/.tmp-577dd3cd-r.pid{os.getpid()}.zz",
        f"tmp/xcpng-qmp.pid{os.getpid()}.q2",
        "tmp/xcpng-legacy",
        f"artifacts/.runs/{LIVE_RUN}",
        f"artifacts/vms/debian12-{LIVE_RUN}",
    ]
    for rel in kept:
        assert (world.root / rel).exists(), rel
    assert len(report.removed) == len(gone) and report.clean  # type: ignore[attr-defined]


def test_a_file_url_destination_is_the_same_folder_to_the_sweep(tmp_path: Path) -> None:
    """`file:///x` is a folder to the store; the sweep once skipped it as a URL."""
    w = World(tmp_path)
    w.settings = Settings.from_env(
        env={"TEMPLATE_PUBLISH_TO": f"file://{tmp_path}/published"},
        artifacts_dir=str(tmp_path / "artifacts"),
        reports_dir=str(tmp_path / "reports"),
        cache_dir=str(tmp_path / "cache"),
    )
    half = w.make(f"published/debian12/12/b1/.image.raw.pid{w.dead}.x.part", "half")
    w.tidy()
    assert not half.exists()


def test_dry_run_removes_nothing(world: World) -> None:
    before = sorted(p for p in world.root.rglob("*"))
    report = world.tidy(dry_run=True)
    assert sorted(p for p in world.root.rglob("*")) == before
    assert all(line.startswith("would ") for line in report.removed)  # type: ignore[attr-defined]


def test_untagged_cache_folders_wait_for_the_locks_of_their_folder(world: World) -> None:
    legacy = world.make("cache/base/.tmp-ialswjoy/work/x").parents[1]
    lock = world.make("cache/base/c63b17d3.lock", "")
    with lock.open("w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        world.tidy()
        assert legacy.exists(), "an older harness is building there right now"
    world.tidy()
    assert not legacy.exists()


def test_processes_of_dead_runs_are_stopped(world: World) -> None:
    env = {**os.environ, RUN_ENV: DEAD_RUN}
    orphan = subprocess.Popen(["sleep", "300"], env=env)
    alive = subprocess.Popen(["sleep", "300"], env={**os.environ, RUN_ENV: LIVE_RUN})
    try:
        report = world.tidy()
        removed = report.removed  # type: ignore[attr-defined]
        assert any(f"stopped process {orphan.pid} of dead run" in r for r in removed), removed
        assert orphan.wait(timeout=15) is not None
        assert alive.poll() is None
    finally:
        for p in (orphan, alive):
            p.kill()
            p.wait()


def test_kept_clones_and_pool_objects_are_named_with_their_command(world: World) -> None:
    folder = world.root / "artifacts" / "vms" / f"debian12-{DEAD_RUN}-kept"
    folder.mkdir(parents=True)
    record_kept(
        folder,
        KeptVM(
            name=folder.name, os_name="debian12", platform="local", run_id=DEAD_RUN,
            folder=str(folder), expires_at=time.time() + 3600, ssh="ssh ...", stop="...",
            details={"qemu_pid": world.dead},
        ),
    )  # fmt: skip
    ledger = world.root / "artifacts" / "xcpng-ledger.jsonl"
    ledger.write_text(
        json.dumps({"key": "vm-1", "kind": "vm", "run_id": DEAD_RUN, "state": "created", "ts": 1})
        + "\n"
    )
    report = world.tidy(pool=True)
    assert folder.exists(), "a kept clone's disk may matter to whoever kept it"
    notes = "\n".join(report.notes)  # type: ignore[attr-defined]
    assert f"xcpng-golden janitor --artifacts-dir {world.settings.artifacts_dir}" in notes
    assert f"xcpng-golden pool cleanup --run-id {DEAD_RUN}" in notes


def test_cleanup_command(world: World) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("TEMPLATE_")},
        "TEMPLATE_ARTIFACTS_DIR": str(world.root / "artifacts"),
        "TEMPLATE_REPORTS_DIR": str(world.root / "reports"),
        "TEMPLATE_CACHE_DIR": str(world.root / "cache"),
        "TEMPLATE_PUBLISH_TO": str(world.root / "published"),
        "PYTHONPATH": str(REPO),
    }
    cmd = [sys.executable, "-m", "xcpng_golden", "cleanup"]
    dry = subprocess.run([*cmd, "--dry-run"], env=env, capture_output=True, text=True, check=False)
    assert dry.returncode == 0, dry.stderr
    assert (
        f"would remove record of a dead run {world.root}/artifacts/.runs/{DEAD_RUN}" in dry.stdout
    )
    assert (world.root / "artifacts" / ".runs" / DEAD_RUN).exists()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert not (world.root / "artifacts" / ".runs" / DEAD_RUN).exists()
    again = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    assert again.returncode == 0, again.stderr
    assert str(world.root) not in again.stdout + again.stderr  # (the real /tmp is shared)
