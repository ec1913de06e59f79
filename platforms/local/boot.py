"""Boot one clone of a built image under QEMU and hand it to the checks; always clean up.

The artifact is never written: the VM runs on a qcow2 overlay whose backing file is the
artifact. Its NoCloud seed (platforms/seed.py) brings the per-VM SSH key, instance id and
marker. Whatever happens (a check fails, Ctrl-C, SIGTERM turned into KeyboardInterrupt),
QEMU is stopped and the overlay, seed, firmware variables and sockets are removed.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from tenacity import Retrying, retry_if_exception_type, stop_after_delay, wait_fixed

from harness.model import BootedVM, BuildResult, ImageDefect, InfrastructureError, TemplateSpec
from platforms.local import qemu
from platforms.local.accel import Accel
from platforms.local.slots import qemu_slot
from platforms.seed import make_seed

FORMATS = ("raw", "qcow2", "xva")
PORT_ATTEMPTS = 3
READY_LOGIN_TIMEOUT_S = 120.0


class NotReady(Exception):
    """The VM does not answer yet; tenacity tries again."""


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
    from platforms.xva.reader import xva_to_raw  # written by the XVA helper

    raw = workdir / "from-xva.raw"
    xva_to_raw(artifact, raw)
    return raw, "raw"


def make_overlay(backing: Path, fmt: str, overlay: Path) -> None:
    subprocess.run(
        ["qemu-img", "create", "-q", "-f", "qcow2", "-F", fmt, "-b", str(backing), str(overlay)],
        check=True,
        capture_output=True,
        text=True,
    )


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


def ssh_banner(address: str, port: int, timeout_s: float = 5.0) -> bytes:
    """The first bytes the guest's sshd sends; QEMU's forwarder accepts even when none runs."""
    with socket.create_connection((address, port), timeout=timeout_s) as s:
        s.settimeout(timeout_s)
        try:
            return s.recv(64)
        except OSError:
            return b""


def ssh_login(vm: BootedVM, command: str = "true", timeout_s: float = 30.0) -> int:
    """Run one command over SSH with the seed's key and strict host key checking."""
    argv = [
        "ssh",
        "-i",
        str(vm.key_path),
        "-p",
        str(vm.port),
        "-o",
        "BatchMode=yes",
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        f"UserKnownHostsFile={vm.known_hosts}",
        "-o",
        "ConnectTimeout=10",
        f"{vm.user}@{vm.address}",
        command,
    ]
    try:
        return subprocess.run(argv, check=False, capture_output=True, timeout=timeout_s).returncode
    except subprocess.TimeoutExpired:
        return 255


def wait_ready(
    vm: BootedVM, proc: subprocess.Popen[bytes], timeout_s: float, stderr: Path
) -> float:
    """Wait for the SSH banner, then for a login with the seed's key; return seconds taken."""
    started = time.monotonic()

    def attempt() -> None:
        if proc.poll() is not None:
            raise InfrastructureError(
                f"QEMU exited with code {proc.returncode} before SSH answered; its stderr:\n"
                + _tail(stderr)
            )
        try:
            banner = ssh_banner(vm.address, vm.port)
        except OSError as e:
            raise NotReady(str(e)) from e
        if not banner.startswith(b"SSH-"):
            raise NotReady("no SSH banner yet")
        # 255 is ssh's own failure (refused, key not installed yet); anything else is a login.
        settle = "cloud-init status --wait >/dev/null 2>&1; true"
        if ssh_login(vm, settle, timeout_s=READY_LOGIN_TIMEOUT_S) == 255:
            raise NotReady("SSH answers but the seed's key is not accepted yet")

    try:
        for try_ in Retrying(
            stop=stop_after_delay(timeout_s),
            wait=wait_fixed(3),
            retry=retry_if_exception_type(NotReady),
            reraise=True,
        ):
            with try_:
                attempt()
    except NotReady as e:
        raise ImageDefect(
            f"{vm.os_name}: no SSH login on {vm.address}:{vm.port} within {timeout_s:.0f} s "
            f"({e}); the console is in {vm.facts.get('console_log')}"
        ) from None
    return time.monotonic() - started


@contextmanager
def boot_vm(
    spec: TemplateSpec,
    build: BuildResult,
    workdir: Path,
    *,
    run_id: str,
    accel: Accel,
    console_log: Path,
    slots_dir: Path,
    boot_timeout_s: float,
    may_keep: bool = False,
    log: Callable[[str], None] = lambda _m: None,
) -> Iterator[BootedVM]:
    """Boot a clone of `build`'s artifact; yield it once SSH works; always tear it down,
    unless the caller set vm.facts["keep"] (--keep-vm), which leaves QEMU and its files."""
    firmware = qemu.ovmf_files()
    if firmware is None:
        raise InfrastructureError("OVMF firmware not found; install it: apt-get install ovmf")
    workdir.mkdir(parents=True, exist_ok=True)
    vmdir = workdir / f"qemu-{spec.name}"
    vmdir.mkdir(exist_ok=True)
    console_log.parent.mkdir(parents=True, exist_ok=True)
    proc: subprocess.Popen[bytes] | None = None
    vm: BootedVM | None = None
    # A short folder: a unix socket path is limited to 108 bytes, and workdirs under pytest's
    # temporary tree easily exceed that.
    qmp_dir = Path(tempfile.mkdtemp(prefix="qmp-", dir="/tmp"))
    qmp_socket = qmp_dir / "qmp.sock"
    try:
        backing, fmt = backing_image(build, vmdir)
        overlay = vmdir / "overlay.qcow2"
        make_overlay(backing, fmt, overlay)
        seed = make_seed(vmdir / "seed", spec.name, run_id)
        vars_copy = vmdir / "OVMF_VARS.fd"
        shutil.copyfile(firmware[1], vars_copy)
        with qemu_slot(slots_dir, boot_timeout_s):
            stderr = vmdir / "qemu.stderr"
            started = time.monotonic()
            for _attempt in range(PORT_ATTEMPTS):
                address, port = qemu.free_loopback()
                vm_spec = qemu.VMSpec(
                    name=f"{spec.name}-{run_id}",
                    disk=overlay,
                    seed=seed.image,
                    ovmf_code=firmware[0],
                    ovmf_vars=vars_copy,
                    console_log=console_log,
                    qmp_socket=qmp_socket,
                    address=address,
                    port=port,
                    accel=accel,
                )
                proc = qemu.start(vm_spec, stderr, die_with_parent=not may_keep)
                if not _lost_port_race(proc, stderr):
                    break
            assert proc is not None
            log(f"{spec.name}: QEMU pid {proc.pid} ({accel.accelerator}), SSH on {address}:{port}")
            vm = BootedVM(
                os_name=spec.name,
                platform="local",
                address=address,
                port=port,
                user=seed.user,
                key_path=seed.key_path,
                known_hosts=seed.known_hosts(vmdir / "known_hosts", address, port),
                instance_id=seed.instance_id,
                hostname=seed.hostname,
                marker=seed.marker,
                facts={
                    "accelerator": accel.accelerator,
                    "cpu": accel.cpu,
                    "console_log": str(console_log),
                    "qemu_pid": proc.pid,
                    "firmware": "uefi",
                },
            )
            wait_ready(vm, proc, boot_timeout_s, stderr)
            vm.facts["boot_seconds"] = round(time.monotonic() - started, 1)
            log(f"{spec.name}: SSH login works after {vm.facts['boot_seconds']} s")
            yield vm
    finally:
        if vm is not None and proc is not None and vm.facts.get("keep") and proc.poll() is None:
            note = (
                f"kept: QEMU pid {proc.pid}; ssh -i {vm.key_path} -o UserKnownHostsFile="
                f"{vm.known_hosts} -p {vm.port} {vm.user}@{vm.address}; "
                f"stop it with kill {proc.pid}"
            )
            (vmdir / "KEPT").write_text(note + "\n")
            log(f"{spec.name}: {note}")
        else:
            if proc is not None:
                qemu.stop(proc, qmp_socket)
            with contextlib.suppress(OSError):
                shutil.rmtree(vmdir)
            shutil.rmtree(qmp_dir, ignore_errors=True)
