"""Kept clones: recorded beside the artifacts, stopped by the janitor only once expired."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from core.model import KeptVM
from core.proc import argv_of
from platforms.cli import stop_local
from platforms.kept import all_kept, kept_of_run, record_kept, sweep, vm_folder


def kept(tmp: Path, name: str, platform: str, expires_at: float, **details: object) -> KeptVM:
    folder = vm_folder(tmp, name)
    folder.mkdir(parents=True)
    (folder / "id_ed25519").write_text("key")
    return record_kept(
        folder,
        KeptVM(
            name=name,
            os_name="debian12",
            platform=platform,
            run_id="r1",
            folder=str(folder),
            expires_at=expires_at,
            ssh="ssh ...",
            stop="xcpng-golden janitor ...",
            details=dict(details),
        ),
    )


def test_only_expired_clones_are_stopped_on_every_platform(tmp_path: Path) -> None:
    now = time.time()
    kept(tmp_path, "old-local", "local", now - 1)
    kept(tmp_path, "young-local", "local", now + 3600)
    kept(tmp_path, "old-pool", "xcpng", now - 1, vm_uuid="u1")
    stopped: list[str] = []

    def stopper(k: KeptVM) -> list[str]:
        stopped.append(k.name)
        return []

    report = sweep(tmp_path, {"local": stopper, "xcpng": stopper}, now=now)
    assert sorted(stopped) == ["old-local", "old-pool"]
    assert report.left == ["young-local"] and report.problems == []
    assert [k.name for k in all_kept(tmp_path)] == ["young-local"]
    assert not vm_folder(tmp_path, "old-local").exists()


def test_a_clone_that_cannot_be_stopped_keeps_its_folder_and_is_reported(tmp_path: Path) -> None:
    kept(tmp_path, "stuck", "xcpng", time.time() - 1)
    report = sweep(tmp_path, {"xcpng": lambda k: ["VM busy"]})
    assert report.problems == ["stuck: VM busy"]
    assert vm_folder(tmp_path, "stuck").is_dir()


def test_by_name_now_and_unknown_names(tmp_path: Path) -> None:
    kept(tmp_path, "young", "local", time.time() + 3600)
    assert sweep(tmp_path, {"local": lambda k: []}, name="young").stopped
    assert "no kept VM named other" in sweep(tmp_path, {}, name="other").problems[0]
    assert kept_of_run(tmp_path, "r1") == []


def test_local_stopper_stops_only_the_process_of_that_clone(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "clone-a"])
    try:
        while "clone-a" not in argv_of(proc.pid):  # until the child has exec'd
            time.sleep(0.05)
        other = kept(tmp_path, "clone-b", "local", 0, qemu_pid=proc.pid)
        assert stop_local(other) == [] and proc.poll() is None  # not its process: untouched
        mine = kept(tmp_path, "clone-a", "local", 0, qemu_pid=proc.pid)
        assert stop_local(mine) == []
        assert proc.wait(timeout=15) is not None
    finally:
        proc.kill()
        proc.wait()
