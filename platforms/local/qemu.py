"""Start and stop one QEMU virtual machine: command line, loopback port, QMP, clean stop.

The VM boots from its own disk through OVMF (UEFI) or QEMU's SeaBIOS (BIOS), never with -kernel,
so what is checked is what XCP-ng (and CloudStack on it) will boot. SSH is forwarded to a
loopback address only.
"""

from __future__ import annotations

import contextlib
import json
import random
import signal
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from core.proc import parent_death_signal
from platforms.local.accel import Accel

OVMF_CODE_CANDIDATES = ("/usr/share/OVMF/OVMF_CODE_4M.fd", "/usr/share/OVMF/OVMF_CODE.fd")
OVMF_VARS_CANDIDATES = ("/usr/share/OVMF/OVMF_VARS_4M.fd", "/usr/share/OVMF/OVMF_VARS.fd")
QEMU = "qemu-system-x86_64"
MEMORY_MB = 1536
CPUS = 2


def ovmf_files() -> tuple[Path, Path] | None:
    """(code, vars) of Debian's ovmf package, matching sizes, or None if absent."""
    for code, vars_ in zip(OVMF_CODE_CANDIDATES, OVMF_VARS_CANDIDATES, strict=True):
        if Path(code).is_file() and Path(vars_).is_file():
            return Path(code), Path(vars_)
    return None


def free_loopback() -> tuple[str, int]:
    """A loopback address other than 127.0.0.1 and a port free on it right now."""
    for _ in range(50):
        address = f"127.0.0.{random.randint(2, 254)}"  # noqa: S311 - spreading, not secrecy
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind((address, 0))
            except OSError:
                continue
            return address, s.getsockname()[1]
    raise OSError("no free loopback address/port found")


@dataclass
class VMSpec:
    """Everything a QEMU command line needs; paths are created by the caller."""

    name: str
    disk: Path  # the qcow2 overlay
    seed: Path | None
    ovmf_code: Path | None  # None: BIOS (QEMU's own SeaBIOS)
    ovmf_vars: Path | None  # a writable copy
    console_log: Path
    qmp_socket: Path
    address: str
    port: int
    accel: Accel
    memory_mb: int = MEMORY_MB
    cpus: int = CPUS
    extra: list[str] = field(default_factory=list)

    def argv(self) -> list[str]:
        args = [
            QEMU,
            "-name",
            self.name,
            "-machine",
            "q35",
            *self.accel.machine_args(),
            "-smp",
            str(self.cpus),
            "-m",
            str(self.memory_mb),
            "-nodefaults",
            "-display",
            "none",
        ]
        if self.ovmf_code is not None:
            args += [
                "-drive",
                f"if=pflash,format=raw,unit=0,readonly=on,file={self.ovmf_code}",
                "-drive",
                f"if=pflash,format=raw,unit=1,file={self.ovmf_vars}",
            ]
        args += ["-drive", f"file={self.disk},if=virtio,format=qcow2,discard=unmap"]
        if self.seed:
            args += ["-drive", f"file={self.seed},if=virtio,format=raw,readonly=on"]
        args += [
            "-netdev",
            f"user,id=net0,hostfwd=tcp:{self.address}:{self.port}-:22",
            "-device",
            "virtio-net-pci,netdev=net0",
            "-device",
            "virtio-rng-pci",
            "-serial",
            f"file:{self.console_log}",
            "-qmp",
            f"unix:{self.qmp_socket},server=on,wait=off",
            *self.extra,
        ]
        return args


# In the child: Linux SIGKILLs QEMU if the harness dies outright (SIGKILL).
_DIE_WITH_PARENT = parent_death_signal(signal.SIGKILL)


def start(spec: VMSpec, stderr_path: Path, die_with_parent: bool = True) -> subprocess.Popen[bytes]:
    """Launch QEMU in its own process group (a terminal's Ctrl-C reaches the harness only).

    With die_with_parent, QEMU is killed by the kernel if the harness dies outright; a VM
    that may be kept (--keep-vm) must outlive the harness, so it does not get that.
    """
    with stderr_path.open("wb") as err:
        return subprocess.Popen(
            spec.argv(),
            stdin=subprocess.DEVNULL,
            stdout=err,
            stderr=err,
            start_new_session=True,
            preexec_fn=_DIE_WITH_PARENT if die_with_parent else None,  # noqa: PLW1509
        )


def qmp(socket_path: Path, command: str, timeout_s: float = 5.0) -> dict[str, object]:
    """Send one QMP command after the capabilities handshake; return the first reply."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout_s)
        s.connect(str(socket_path))
        f = s.makefile("rwb")
        f.readline()  # greeting
        for cmd in ("qmp_capabilities", command):
            f.write(json.dumps({"execute": cmd}).encode() + b"\n")
            f.flush()
            while True:
                line = f.readline()
                if not line:
                    return {}
                reply = json.loads(line)
                if "return" in reply or "error" in reply:
                    break
        return dict(reply)


def stop(proc: subprocess.Popen[bytes], qmp_socket: Path, grace_s: float = 10.0) -> None:
    """QMP quit, then SIGTERM, then SIGKILL, each given `grace_s`; returns once QEMU is gone."""
    if proc.poll() is not None:
        return
    try:
        qmp(qmp_socket, "quit")
        proc.wait(timeout=grace_s)
        return
    except (OSError, ValueError, subprocess.TimeoutExpired):
        pass
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)
        try:
            proc.wait(timeout=grace_s)
            return
        except subprocess.TimeoutExpired:
            continue
    proc.wait()
