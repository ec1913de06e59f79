"""End to end through the XCP-ng platform code: the local Debian 12 image written to an XVA,
imported into the XAPI twin by an unmodified harness run (`--platform xcpng --xva`), booted
for real under QEMU by the twin's start hook (the imported system disk plus the seed disk the
platform uploaded, UEFI, SSH on a loopback address), then checked over SSH.

This Debian image has no Xen guest agent (Debian ships none; the local build records
guest_tools "none"), so on xcpng, with the twin reporting PV drivers, the inside guest-tools
check must fail and nothing else. (The outside check's refusal of a pool that sees no PV
drivers is proven on metrics alone, without a boot: tests/unit/test_guest_tools_reporting.py.)
The imported disk boots once. Afterwards the twin holds nothing, no QEMU runs and the ledger
closes every object it opened.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from benchmarks.fake_project import qemu_processes
from core.model import BuildResult
from diskformats.xva.writer import raw_to_xva
from platforms.local import accel, qemu
from platforms.local.boot import make_overlay
from platforms.local.slots import qemu_slot
from platforms.xcpng.ledger import LEDGER_NAME, Entry, Ledger
from tests.twins.xapi import XapiTwin, host_ports
from tests.twins.xapi.helpers import ssh_banner_endpoint, twin_env
from validations.expected import GUEST_TOOLS, expected_checks

REPO = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.e2e, pytest.mark.slow]
AGENT_INSIDE, AGENT_OUTSIDE = "guest-agent-single", "guest-agent-reporting"
RUN_TIMEOUT_S = 40 * 60


class TwinQemu:
    """The twin's VM.start made real: the imported system disk (through a qcow2 overlay) and
    seed disk booted under QEMU with Debian's OVMF; VM.hard_shutdown stops QEMU again."""

    def __init__(self, twin: XapiTwin, workdir: Path, chosen: accel.Accel):
        firmware = qemu.ovmf_files()
        assert firmware is not None, "OVMF firmware missing: apt-get install -y ovmf"
        self.twin, self.workdir, self.accel, self.firmware = twin, workdir, chosen, firmware
        self.address, self.port = qemu.free_loopback()
        self.running: dict[str, tuple[subprocess.Popen[bytes], Path]] = {}
        self.boots: list[dict[str, Any]] = []  # what each VM.start handed over
        workdir.mkdir(parents=True, exist_ok=True)
        twin.guest.ip = self.address
        twin.on_start, twin.on_stop = self.start, self.stop

    def start(self, vm_ref: str, disks: list[Path]) -> None:
        with self.twin.db.lock:
            rec = self.twin.db.get("VM", vm_ref)
            uuid, params = str(rec["uuid"]), dict(rec.get("HVM_boot_params") or {})
        if params.get("firmware") != "uefi":
            raise RuntimeError(f"VM asks for {params.get('firmware')!r} firmware; image is UEFI")
        if len(disks) != 2:
            raise RuntimeError(f"want the system disk and the seed, got {len(disks)} disks")
        system, seed = disks
        vmdir = self.workdir / uuid[:8]  # short: QMP's unix socket path must stay < 108 bytes
        vmdir.mkdir()
        overlay, vars_copy = vmdir / "overlay.qcow2", vmdir / "OVMF_VARS.fd"
        make_overlay(system, "raw", overlay)
        shutil.copyfile(self.firmware[1], vars_copy)
        console = self.workdir / f"console-{uuid[:8]}.log"
        spec = qemu.VMSpec(
            name=f"twin-{uuid}",
            disk=overlay,
            seed=seed,
            ovmf_code=self.firmware[0],
            ovmf_vars=vars_copy,
            console_log=console,
            qmp_socket=vmdir / "qmp.sock",
            address=self.address,
            port=self.port,
            accel=self.accel,
        )
        # The twin calls this from a request thread that ends right after; PR_SET_PDEATHSIG
        # fires when the creating *thread* exits, so QEMU must not "die with its parent".
        # stop() and the fixture's stop_all() stop it instead.
        proc = qemu.start(spec, vmdir / "qemu.stderr", die_with_parent=False)
        self.running[vm_ref] = (proc, vmdir)
        self.boots.append(
            {
                "vm_uuid": uuid,
                "system_disk": system,
                "seed_meta_data": read_fat_file(seed, "meta-data"),
                "console": console,
                "argv": spec.argv(),
            }
        )

    def stop(self, vm_ref: str) -> None:
        proc, vmdir = self.running.pop(vm_ref, (None, None))
        if proc is not None and vmdir is not None:
            qemu.stop(proc, vmdir / "qmp.sock")
            shutil.rmtree(vmdir, ignore_errors=True)

    def stop_all(self) -> list[str]:
        """Stop whatever is still running (a safety net); return the VMs that were."""
        left = list(self.running)
        for vm_ref in left:
            self.stop(vm_ref)
        return left


def read_fat_file(image: Path, name: str) -> str:
    """One file of a FAT image (the NoCloud seed), read with mtools: no mount needed."""
    out = subprocess.run(
        ["mtype", "-i", str(image), f"::/{name}"],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "MTOOLS_SKIP_CHECK": "1"},
    )
    return out.stdout


@dataclass
class TwinRun:
    """One harness run against the twin and what was left behind after it."""

    tmp: Path
    proc: subprocess.CompletedProcess[str]
    seconds: float
    boots: list[dict[str, Any]]
    calls: list[str]
    requests: list[str]
    left_running: list[str]  # VMs still running under QEMU when the harness had exited
    qemu_after: list[int]
    twin_empty: bool
    twin_inventory: dict[str, Any]
    storage_after: list[str]
    basetemp_after: list[str]  # seed folders, keys and XVA copies the run left in its basetemp
    ledger: dict[str, Entry]
    password: str  # the twin's, which the harness had in XCPNG_PASSWORD

    @property
    def results(self) -> dict[str, Any]:
        path = self.tmp / "reports" / "results.json"
        assert path.is_file(), self.output()
        return dict(json.loads(path.read_text()))

    @property
    def debian12(self) -> dict[str, Any]:
        return dict(self.results["os"]["debian12"])

    def output(self) -> str:
        return self.proc.stdout[-8000:] + "\n--- stderr ---\n" + self.proc.stderr[-3000:]


def harness_env(twin: XapiTwin, tmp: Path, ssh_port: int, banner_port: int) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "TEMPLATE_", "XCPNG_"))
    }
    env["PYTHONPATH"] = str(REPO)
    env.update(twin_env(twin, tmp / "artifacts", XCPNG_SSH_PORT=str(ssh_port)))
    # the host's SSH and HTTPS, which preflight probes: an sshd banner and the twin's port
    env[host_ports.VARIABLE] = host_ports.value(banner_port, int(twin.url.rsplit(":", 1)[1]))
    return env


def run_against_twin(tmp: Path, xva: Path, cache_dir: Path, *, tools: bool) -> TwinRun:
    """Start a twin whose VMs boot under QEMU; run the harness on the XVA; collect leftovers."""
    storage = tmp / "twin-storage"
    storage.mkdir()
    qemu_dir = tmp / "qemu"
    # Short: the harness's SSH ControlPath (<basetemp>/ssh-<os>N/cm-<40 hex>.<16 chars>) must
    # stay under the 108-byte limit of a unix socket path; pytest's own tmp paths are too long.
    basetemp = Path(tempfile.mkdtemp(prefix="xe-"))
    with XapiTwin(storage=storage, password=f"pw-{secrets.token_hex(12)}") as twin:
        twin.guest.tools = tools
        backend = TwinQemu(twin, qemu_dir, accel.choose(cache_dir))
        cmd = [
            sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
            "-p", "tests.twins.xapi.host_ports",
            "--os", "debian12", "--platform", "xcpng", f"--xva={xva}",
            f"--artifacts-dir={tmp / 'artifacts'}", f"--reports-dir={tmp / 'reports'}",
            f"--basetemp={basetemp}", "--boot-timeout=20m",
        ]  # fmt: skip
        started = time.monotonic()
        try:
            # one machine-wide QEMU slot, as the local platform takes for each of its VMs
            with (
                qemu_slot(cache_dir / "qemu-slots", RUN_TIMEOUT_S),
                ssh_banner_endpoint() as (_, banner_port),
            ):
                proc = subprocess.run(
                    cmd,
                    cwd=REPO,
                    env=harness_env(twin, tmp, backend.port, banner_port),
                    capture_output=True,
                    text=True,
                    timeout=RUN_TIMEOUT_S,
                    check=False,
                )
            qemu_after = qemu_processes(str(qemu_dir))
        finally:
            left = backend.stop_all()
            leftovers = sorted(
                str(p.relative_to(basetemp))
                for p in basetemp.rglob("*")
                if p.name in ("seed", "image.xva", "disk.raw", "id_ed25519")
            )
            shutil.rmtree(basetemp, ignore_errors=True)
        seconds = time.monotonic() - started
        sys.stderr.write(f"harness against the twin (tools={tools}): {seconds:.0f}s\n")
        sys.stderr.write(proc.stdout[-4000:])
        return TwinRun(
            tmp=tmp,
            proc=proc,
            seconds=seconds,
            boots=backend.boots,
            calls=list(twin.calls),
            requests=[r.split("?")[0] for r in twin.requests],  # no session ids kept
            left_running=left,
            qemu_after=qemu_after,
            twin_empty=twin.empty(),
            twin_inventory=twin.inventory(),
            storage_after=sorted(p.name for p in storage.iterdir()),
            basetemp_after=leftovers,
            ledger=Ledger.read(tmp / "artifacts" / LEDGER_NAME),
            password=twin.password,
        )


@pytest.fixture(scope="module")
def debian12_xva(
    debian12_raw_disk: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Path]:
    """The local image as Packer's xenserver-iso would export it: a UEFI template in an XVA
    (removed afterwards: it is as large as the image's data and pytest keeps old tmp dirs)."""
    xva = tmp_path_factory.mktemp("xcpng-xva") / "debian12.xva"
    raw_to_xva(debian12_raw_disk, xva, "debian12", vcpus=2, firmware="uefi", template=True)
    yield xva
    xva.unlink(missing_ok=True)


@pytest.fixture(scope="module")
def twin_run(
    debian12_xva: Path, operator_cache_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> TwinRun:
    """One harness session against the twin, which reports PV drivers for the VM it started."""
    return run_against_twin(
        tmp_path_factory.mktemp("xcpng-twin"), debian12_xva, operator_cache_dir, tools=True
    )


def non_xen_checks() -> set[str]:
    """What passes on the twin: everything but the agent checks (guest-xen-drivers, read
    offline from the image, passes like any other)."""
    return set(expected_checks("debian")) - {AGENT_INSIDE, AGENT_OUTSIDE}


def test_image_is_the_local_build_without_guest_tools(debian12_local_image: BuildResult) -> None:
    """The premise of the expected verdict: the local build had no guest-tools source."""
    assert debian12_local_image.platform == "local"
    assert debian12_local_image.guest_tools == "none"
    assert {AGENT_INSIDE, AGENT_OUTSIDE} <= set(GUEST_TOOLS)  # the ids this file names


def test_checks_reached_the_vm_through_the_xcpng_code_path(twin_run: TwinRun) -> None:
    run = twin_run
    r = run.results
    assert r["platform"] == "xcpng" and r["partial"] is False, run.output()
    deb = run.debian12
    assert deb["validated_platform"] == "xcpng"
    assert deb["build"]["status"] == "provided"
    # the platform imported the XVA and uploaded a seed over XAPI's HTTP handlers, then started
    # exactly one VM, which the twin booted from the imported disks
    assert "PUT /import" in run.requests and "PUT /import_raw_vdi" in run.requests
    assert run.calls.count("VM.start") == 1
    (boot,) = run.boots
    assert "-kernel" not in boot["argv"]
    assert "Linux version" in boot["console"].read_text(errors="replace")
    # the seed the platform uploaded names the VM's own uuid as instance id, and the guest
    # applied that very seed (instance id, hostname and user-data marker: the check below)
    assert f"instance-id: {boot['vm_uuid']}" in boot["seed_meta_data"]
    assert "cloud-init-seed-applied" in deb["checks"]["passed"], deb["reasons"]


def test_every_check_passes_but_the_inside_agent_check(twin_run: TwinRun) -> None:
    """The pool sees PV drivers, so the outside check passes; the image runs no agent, so the
    inside one fails, and nothing else: the verdict is failed, an image defect."""
    run = twin_run
    deb = run.debian12
    assert run.proc.returncode == 1, run.output()
    assert deb["verdict"] == "failed" and deb["failure_class"] == "image-defect", deb["reasons"]
    checks = deb["checks"]
    assert set(checks["failed"]) == {AGENT_INSIDE}, deb["reasons"]
    assert set(checks["passed"]) == non_xen_checks() | {AGENT_OUTSIDE}, deb["reasons"]
    # no skip is allowed on xcpng: build-has-no-guest-tools is a local-only excuse
    assert checks["skipped"] == [] and checks["missing"] == []
    assert len(deb["reasons"]) == 1
    messages = {t["check_id"]: t["message"] or "" for t in deb["tests"] if t["check_id"]}
    assert "no guest agent enabled" in messages[AGENT_INSIDE]


def test_nothing_left_behind(twin_run: TwinRun) -> None:
    run = twin_run
    assert run.boots, run.output()
    assert run.left_running == [], "the harness ended without stopping its VM"
    assert run.qemu_after == []
    assert run.twin_empty, run.twin_inventory
    assert run.storage_after == []  # every VDI (system disk and seed) destroyed
    assert run.basetemp_after == []  # the seed's keys and any converted XVA removed too
    assert not (run.tmp / "qemu").exists() or not any(
        p.is_dir() for p in (run.tmp / "qemu").iterdir()
    )  # overlays and firmware variables removed by VM.hard_shutdown


def test_ledger_is_complete(twin_run: TwinRun) -> None:
    """Every VM and VDI the run created is in the ledger, and every entry reached `destroyed`."""
    entries = twin_run.ledger
    kinds = sorted(e.kind for e in entries.values())
    assert kinds == ["vdi", "vdi", "vm"], kinds  # the imported VM, its disk, the seed
    assert {e.state for e in entries.values()} == {"destroyed"}, entries
    assert all(e.fields.get("ref") for e in entries.values()), entries


def test_password_never_printed_nor_written(twin_run: TwinRun) -> None:
    """XCPNG_PASSWORD reaches neither the terminal nor any report, log or record of the run."""
    run = twin_run
    assert run.password not in run.proc.stdout + run.proc.stderr
    written = [p for d in ("reports", "artifacts") for p in (run.tmp / d).rglob("*") if p.is_file()]
    assert any(p.name == "results.json" for p in written)
    leaks = [str(p) for p in written if run.password.encode() in p.read_bytes()]
    assert leaks == []
