"""Boot one clone of a built image under QEMU and hand it to the checks; always clean up.

The artifact is never written: the VM runs on a qcow2 overlay whose backing file is the
artifact. Its NoCloud seed (platforms/seed.py) brings the per-VM SSH key, instance id and
marker. Whatever happens (a check fails, Ctrl-C, SIGTERM turned into KeyboardInterrupt),
QEMU is stopped and the overlay, seed, firmware variables and sockets are removed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path

from core.errors import ImageDefect, InfrastructureError
from core.model import BootedVM, BuildResult, KeptVM, TemplateSpec
from core.ownership import socket_dir
from core.platform import Started, booted
from core.signals import deferred
from core.ssh import ssh_command
from core.trees import remove_trees
from core.waiting import WaitTimeout, wait_for
from platforms.console import read_console
from platforms.kept import janitor_command, record_kept
from platforms.local import qemu
from platforms.local.accel import Accel
from platforms.local.cloudstack_router import metadata, virtual_router
from platforms.local.slots import qemu_slot
from platforms.reach import OK, SETTLED_LOGIN, SETTLED_LOGIN_TIMEOUT_S, Diagnosis, Target, observe
from platforms.seed import Seed, make_seed

FORMATS = ("raw", "qcow2", "xva")
# --local-datasource -> the cloud-init datasource that must have read the seed
DATASOURCES = {"nocloud": "NoCloud", "cloudstack": "CloudStack"}
ROUTER_ZONE = "local-zone"
PORT_ATTEMPTS = 3
READY_GRACE_S = 60.0  # the least time ready() waits, however long the offline checks took
GROW_BYTES = 2 << 30  # clones boot on a disk this much larger than the template's


def artifact_format(build: BuildResult) -> str:
    fmt = build.artifact_format or Path(build.artifact or "").suffix.lstrip(".")
    if fmt not in FORMATS:
        raise ImageDefect(
            f"{build.artifact}: unknown image format {fmt!r}; the local platform boots "
            f"{', '.join(FORMATS)}"
        )
    return fmt


def backing_image(build: BuildResult, workdir: Path) -> tuple[Path, str]:
    """The image the overlay is backed by; an XVA is first turned into a raw disk."""
    if not build.artifact or not Path(build.artifact).is_file():
        raise ImageDefect(f"artifact {build.artifact!r} does not exist; build it or fix --xva")
    artifact = Path(build.artifact).absolute()
    fmt = artifact_format(build)
    if fmt != "xva":
        return artifact, fmt
    from diskformats.xva.reader import xva_to_raw  # written by the XVA helper

    raw = workdir / "from-xva.raw"
    xva_to_raw(artifact, raw)
    return raw, "raw"


def virtual_size(image: Path, fmt: str) -> int:
    """The disk size a guest sees (a raw file's size, a qcow2's virtual size)."""
    if fmt == "raw":
        return image.stat().st_size
    out = subprocess.run(
        ["qemu-img", "info", "--output=json", "-f", fmt, str(image)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return int(json.loads(out)["virtual-size"])


def make_overlay(backing: Path, fmt: str, overlay: Path, size: int | None = None) -> None:
    """A qcow2 overlay over the (never written) artifact; `size` makes the clone's disk larger
    than the template's, as a real deployment does, so the checks see the root grow."""
    argv = ["qemu-img", "create", "-q", "-f", "qcow2", "-F", fmt, "-b", str(backing), str(overlay)]
    subprocess.run(argv + ([str(size)] if size else []), check=True, capture_output=True, text=True)


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(none)"


def _lost_port_race(proc: subprocess.Popen[bytes], stderr: Path) -> bool:
    """True if QEMU exited at once because another process took the forwarded port."""
    try:
        proc.wait(timeout=1.0)
    except subprocess.TimeoutExpired:
        return False
    return "host forwarding" in stderr.read_text(errors="replace")


def target_of(vm: BootedVM) -> Target:
    return Target(vm.user, vm.address, vm.port, vm.key_path, vm.known_hosts)


def wait_ready(
    vm: BootedVM,
    proc: subprocess.Popen[bytes],
    timeout_s: float,
    stderr: Path,
    console: Path | None = None,
) -> float:
    """Wait for a login with the seed's key (and cloud-init to settle); return seconds taken.

    Every poll also reads the serial console, so a clone that cannot be reached is reported as
    soon as the cause is certain (platforms/reach.py), not when the timeout runs out."""
    started = time.monotonic()
    diagnosis = Diagnosis(f"{vm.os_name} on {vm.address}:{vm.port}", str(console or ""))

    def logged_in() -> bool:
        if proc.poll() is not None:
            raise InfrastructureError(
                f"QEMU exited with code {proc.returncode} before SSH answered; its stderr:\n"
                + _tail(stderr)
            )
        obs = observe(target_of(vm), SETTLED_LOGIN, SETTLED_LOGIN_TIMEOUT_S)
        if obs.login == OK:
            return True
        cause = diagnosis.cause(time.monotonic(), obs, read_console(console))
        if cause:
            raise ImageDefect(cause)
        return False

    try:
        wait_for(logged_in, what=f"a login on {vm.address}", timeout=timeout_s, interval=3)
    except WaitTimeout:
        raise ImageDefect(
            f"{vm.os_name}: no SSH login on {vm.address}:{vm.port} within {timeout_s:.0f} s "
            f"({diagnosis.summary()}); the console is in {vm.facts.get('console_log')}"
        ) from None
    return time.monotonic() - started


# Kept clones' QEMU processes: held for the life of the harness, so that no Popen of a running
# QEMU is garbage collected (and warns) when its boot context ends.
_KEPT: list[subprocess.Popen[bytes]] = []


@dataclass(frozen=True)
class BootPlan:
    """Where one clone lives and how long it may take and stay."""

    workdir: Path  # <artifacts>/vms/<name>: overlay, seed, key, known_hosts, firmware vars
    run_id: str
    accel: Accel
    console_log: Path
    slots_dir: Path
    boot_timeout_s: float
    may_keep: bool  # QEMU must then outlive the harness (no parent-death signal)
    keep_ttl_s: float
    janitor_artifacts: Path  # for the janitor command shown for a kept clone
    firmware: str = "uefi"  # or "bios" (SeaBIOS): the image boots both
    datasource: str = "nocloud"  # or "cloudstack": CloudStack's virtual router, no seed disk
    router_lock_dir: Path | None = None  # where the router's machine-wide lock lives

    @property
    def name(self) -> str:
        return self.workdir.name


def _firmware(kind: str) -> tuple[Path, Path] | None:
    """OVMF's code and variables for UEFI; None for BIOS (QEMU's built-in SeaBIOS)."""
    if kind == "bios":
        return None
    firmware = qemu.ovmf_files()
    if firmware is None:
        raise InfrastructureError("OVMF firmware not found; install it: apt-get install ovmf")
    return firmware


def _start(
    plan: BootPlan,
    overlay: Path,
    seed: Seed,
    firmware: tuple[Path, Path] | None,
    qmp_socket: Path,
) -> tuple[subprocess.Popen[bytes], str, int]:
    """Start QEMU on a free loopback port; retry when another process takes the port first."""
    vars_copy = None
    if firmware is not None:
        vars_copy = plan.workdir / "OVMF_VARS.fd"
        shutil.copyfile(firmware[1], vars_copy)
    stderr = plan.workdir / "qemu.stderr"
    for _attempt in range(PORT_ATTEMPTS):
        address, port = qemu.free_loopback()
        vm_spec = qemu.VMSpec(
            name=plan.name,
            disk=overlay,
            seed=seed.image if plan.datasource == "nocloud" else None,
            ovmf_code=firmware[0] if firmware else None,
            ovmf_vars=vars_copy,
            console_log=plan.console_log,
            qmp_socket=qmp_socket,
            address=address,
            port=port,
            accel=plan.accel,
        )
        proc = qemu.start(vm_spec, stderr, die_with_parent=not plan.may_keep)
        if not _lost_port_race(proc, stderr):
            return proc, address, port
    raise InfrastructureError(f"{plan.name}: no free loopback port after {PORT_ATTEMPTS} tries")


def _booted(
    spec: TemplateSpec, plan: BootPlan, seed: Seed, *, address: str, port: int, pid: int
) -> BootedVM:
    return BootedVM(
        os_name=spec.name,
        platform="local",
        address=address,
        port=port,
        user=seed.user,
        key_path=seed.key_path,
        known_hosts=seed.known_hosts(plan.workdir / "known_hosts", address, port),
        instance_id=seed.instance_id,
        hostname=seed.hostname,
        marker=seed.marker,
        facts={
            "accelerator": plan.accel.accelerator,
            "cpu": plan.accel.cpu,
            "console_log": str(plan.console_log),
            "qemu_pid": pid,
            "firmware": plan.firmware,
            "datasource": DATASOURCES[plan.datasource],
        },
    )


def _keep(vm: BootedVM, plan: BootPlan, proc: subprocess.Popen[bytes], qmp_dir: Path) -> KeptVM:
    _KEPT.append(proc)
    kept = KeptVM(
        name=plan.name,
        os_name=vm.os_name,
        platform="local",
        run_id=plan.run_id,
        folder=str(plan.workdir),
        expires_at=time.time() + plan.keep_ttl_s,
        ssh=ssh_command(vm.user, vm.address, vm.port, vm.key_path, vm.known_hosts),
        stop=janitor_command(plan.janitor_artifacts, plan.name),
        details={"qemu_pid": proc.pid, "remove": [str(qmp_dir)]},
    )
    return record_kept(plan.workdir, kept)


@contextmanager
def _datasource(plan: BootPlan, seed: Seed, log: Callable[[str], None]) -> Iterator[None]:
    """The seed's data served the way the boot offers it: NoCloud's disk needs nothing more; the
    CloudStack way needs the virtual router for the whole boot."""
    if plan.datasource != "cloudstack":
        yield
        return
    meta = metadata(seed.instance_id, seed.hostname, seed.public_key, ROUTER_ZONE)
    lock_dir = plan.router_lock_dir or plan.slots_dir
    with virtual_router(lock_dir, meta, seed.user_data, plan.boot_timeout_s) as router:
        log(f"{plan.name}: CloudStack virtual router stand-in on 127.0.0.1:80 and :8080")
        try:
            yield
        finally:
            log(
                f"{plan.name}: the instance asked the router for {len(router.requests)} "
                f"path(s) and the password server {router.password_requests or 'nothing'}"
            )


@contextmanager
def start_vm(
    spec: TemplateSpec,
    build: BuildResult,
    plan: BootPlan,
    log: Callable[[str], None] = lambda _m: None,
) -> Iterator[Started]:
    """Start QEMU on a clone of `build`'s artifact and return while the guest boots: its
    `ready()` waits for the SSH login. Always torn down on the way out, unless the harness set
    `vm.keep` (--keep-vm), which leaves QEMU and its folder."""
    firmware = _firmware(plan.firmware)
    plan.workdir.mkdir(parents=True, exist_ok=True)
    plan.console_log.parent.mkdir(parents=True, exist_ok=True)
    proc: subprocess.Popen[bytes] | None = None
    vm: BootedVM | None = None
    qmp_dir = socket_dir("xcpng-qmp")
    qmp_socket = qmp_dir / "qmp.sock"
    try:
        backing, fmt = backing_image(build, plan.workdir)
        overlay = plan.workdir / "overlay.qcow2"
        template_bytes = virtual_size(backing, fmt)
        make_overlay(backing, fmt, overlay, template_bytes + GROW_BYTES)
        seed = make_seed(plan.workdir / "seed", spec.name, plan.run_id)
        with _datasource(plan, seed, log), qemu_slot(plan.slots_dir, plan.boot_timeout_s):
            started = time.monotonic()
            proc, address, port = _start(plan, overlay, seed, firmware, qmp_socket)
            log(f"{spec.name}: QEMU pid {proc.pid}, SSH on {address}:{port}")
            vm = _booted(spec, plan, seed, address=address, port=port, pid=proc.pid)
            vm.facts.update(template_disk_bytes=template_bytes, disk_grown_by=GROW_BYTES)

            def ready(vm: BootedVM = vm, proc: subprocess.Popen[bytes] = proc) -> BootedVM:
                # the boot timeout counts from QEMU's start; what is left is never less than a
                # grace, so offline checks that ran long cannot fail a clone still booting
                left = max(plan.boot_timeout_s - (time.monotonic() - started), READY_GRACE_S)
                wait_ready(vm, proc, left, plan.workdir / "qemu.stderr", plan.console_log)
                vm.facts["boot_seconds"] = round(time.monotonic() - started, 1)
                log(f"{spec.name}: SSH login works after {vm.facts['boot_seconds']} s")
                return vm

            yield Started(ready)
    finally:
        with deferred():  # a second signal (SIGTERM after SIGINT) waits for the teardown
            if vm is not None and proc is not None and vm.keep and proc.poll() is None:
                vm.kept = _keep(vm, plan, proc, qmp_dir)
                log(f"{spec.name}: kept; {vm.kept.ssh}")
            else:
                if proc is not None:
                    qemu.stop(proc, qmp_socket)
                for problem in remove_trees([plan.workdir, qmp_dir]):
                    log(f"{spec.name}: left behind: {problem}")


def boot_vm(
    spec: TemplateSpec,
    build: BuildResult,
    plan: BootPlan,
    log: Callable[[str], None] = lambda _m: None,
) -> AbstractContextManager[BootedVM]:
    """Boot a clone and yield it once SSH works (start_vm, then waited for at once)."""
    return booted(start_vm(spec, build, plan, log))
