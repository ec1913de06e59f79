"""boot_vm's teardown logic with a stand-in process for QEMU (the real boots are in
tests/integration/test_local_boot.py): stopped and cleaned on success, on failure and on
KeyboardInterrupt; left running only when the caller asks to keep the VM."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.errors import ImageDefect
from core.model import BuildResult, TemplateSpec
from core.trees import remove_trees
from platforms.local import boot, qemu
from platforms.local.accel import TCG

SPEC = TemplateSpec("debian12", "debian", "12", {})


@pytest.fixture
def started(monkeypatch, tmp_path: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []

    def fake_start(spec, stderr_path, die_with_parent=True):
        assert "-kernel" not in spec.argv()
        p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
        procs.append(p)
        return p

    monkeypatch.setattr(qemu, "start", fake_start)
    monkeypatch.setattr(boot, "wait_ready", lambda vm, proc, timeout_s, stderr, console=None: 0.0)
    yield procs
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()


def _build(tmp_path: Path) -> BuildResult:
    raw = tmp_path / "image.raw"
    raw.write_bytes(b"\0" * 1024 * 1024)
    return BuildResult(
        os_name="debian12",
        status="built",
        artifact=str(raw),
        artifact_format="raw",
        sha256=None,
        size=None,
        log_path=None,
        duration_s=0,
        packer_version=None,
        plugins={},
        inputs_digest=None,
        template=None,
        var_file=None,
        built_at=None,
        platform="local",
    )


def _plan(tmp_path: Path, may_keep: bool = False) -> boot.BootPlan:
    return boot.BootPlan(
        workdir=tmp_path / "artifacts" / "vms" / "debian12-t",
        run_id="t",
        accel=TCG,
        console_log=tmp_path / "artifacts" / "debian12" / "console.log",
        slots_dir=tmp_path / "slots",
        boot_timeout_s=5,
        may_keep=may_keep,
        keep_ttl_s=3600,
        janitor_artifacts=tmp_path / "artifacts",
    )


def _boot(tmp_path: Path, may_keep: bool = False):
    return boot.boot_vm(SPEC, _build(tmp_path), _plan(tmp_path, may_keep))


def test_success_stops_and_removes(tmp_path: Path, started):
    with _boot(tmp_path) as vm:
        vmdir = tmp_path / "artifacts" / "vms" / "debian12-t"
        assert (vmdir / "overlay.qcow2").is_file() and vm.key_path.is_file()
        assert vm.known_hosts and vm.known_hosts.read_text().startswith(f"[{vm.address}]:")
        assert vm.facts["accelerator"] == "tcg"
    assert started[0].poll() is not None
    assert not vmdir.exists()


@pytest.mark.parametrize("exc", [RuntimeError("check failed"), KeyboardInterrupt()])
def test_failure_and_interrupt_stop_and_remove(tmp_path: Path, started, exc):
    with pytest.raises(type(exc)), _boot(tmp_path):
        raise exc
    assert started[0].poll() is not None
    assert not (tmp_path / "artifacts" / "vms" / "debian12-t").exists()


def test_a_vm_marked_keep_is_left_running(tmp_path: Path, started):
    with _boot(tmp_path, may_keep=True) as vm:
        vm.keep = True
    assert started[0].poll() is None
    assert vm.kept is not None and vm.kept.details["qemu_pid"] == started[0].pid
    record = json.loads((tmp_path / "artifacts" / "vms" / "debian12-t" / "kept.json").read_text())
    assert record["name"] == "debian12-t" and "janitor" in record["stop"]
    assert str(vm.key_path) in record["ssh"] and vm.key_path.is_file()
    (qmp_dir,) = record["details"]["remove"]  # the janitor removes it with the clone
    assert Path(qmp_dir).is_dir()
    assert remove_trees([Path(qmp_dir)]) == []


def test_missing_artifact_fails_before_starting_anything(tmp_path: Path, started):
    build = _build(tmp_path)
    build.artifact = str(tmp_path / "gone.raw")
    with (
        pytest.raises(ImageDefect, match="does not exist"),
        boot.boot_vm(SPEC, build, _plan(tmp_path)),
    ):
        pass
    assert started == []
    assert not (tmp_path / "artifacts" / "vms" / "debian12-t").exists()


def test_a_port_taken_between_choice_and_start_is_retried(tmp_path: Path, monkeypatch):
    procs: list[subprocess.Popen[bytes]] = []

    def fake_start(spec, stderr_path, die_with_parent=True):
        if not procs:
            stderr_path.write_text("qemu: Could not set up host forwarding rule 'tcp:...'\n")
            p = subprocess.Popen([sys.executable, "-c", "raise SystemExit(1)"])
        else:
            p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
        procs.append(p)
        return p

    monkeypatch.setattr(qemu, "start", fake_start)
    monkeypatch.setattr(boot, "wait_ready", lambda vm, proc, timeout_s, stderr, console=None: 0.0)
    with _boot(tmp_path) as vm:
        assert vm.facts["qemu_pid"] == procs[1].pid
    assert len(procs) == 2 and all(p.poll() is not None for p in procs)


def test_start_returns_before_the_wait_and_cleans_up_without_it(
    tmp_path: Path, started, monkeypatch
) -> None:
    """start_vm leaves QEMU booting while the offline checks run: a run that ends (or is
    interrupted) before ready() still stops it; ready() waits once, with the time left of the
    boot timeout, never less than the grace."""
    waits: list[float] = []
    monkeypatch.setattr(
        boot,
        "wait_ready",
        lambda vm, proc, timeout_s, stderr, console=None: waits.append(timeout_s),
    )
    with pytest.raises(KeyboardInterrupt), boot.start_vm(SPEC, _build(tmp_path), _plan(tmp_path)):
        assert started[0].poll() is None and waits == []
        raise KeyboardInterrupt
    assert started[0].poll() is not None
    assert not (tmp_path / "artifacts" / "vms" / "debian12-t").exists()
    with boot.start_vm(SPEC, _build(tmp_path), _plan(tmp_path)) as clone:
        vm = clone.ready()
        assert clone.ready() is vm and waits == [boot.READY_GRACE_S]  # 5 s plan: the grace
        assert vm.facts["boot_seconds"] >= 0
