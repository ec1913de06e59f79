"""Choose QEMU's accelerator: KVM only when a short probe boot proves it works, else TCG.

On these machines /dev/kvm answers the API yet a guest under KVM spins without output or
QEMU aborts on an MSR (machine-facts.md), so "the device exists" proves nothing. The probe
boots a 512-byte boot sector that writes a line to the serial port, with the very CPU model
the real VMs would get, under its own short time limit. The answer is cached per machine
(host name, kernel, QEMU binary) so that each session pays for it at most once.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

from filelock import FileLock

from core.ownership import scratch
from core.waiting import WaitTimeout, wait_for

PROBE_MESSAGE = b"ACCEL-PROBE-OK"
PROBE_TIMEOUT_S = 15.0
QEMU = "qemu-system-x86_64"


@dataclass(frozen=True)
class Accel:
    accelerator: str  # "kvm" or "tcg"
    cpu: str  # "-cpu" value: "host" under KVM, "max" under TCG (EL9 needs x86-64-v2)
    reason: str

    def machine_args(self) -> list[str]:
        accel = "tcg,thread=multi" if self.accelerator == "tcg" else self.accelerator
        return ["-accel", accel, "-cpu", self.cpu]


TCG = Accel("tcg", "max", "")


def boot_sector() -> bytes:
    """Real-mode code: print PROBE_MESSAGE on COM1 (0x3f8), then halt forever."""
    msg_at = 0x7C00 + 23  # the message follows the 23 bytes of code
    code = bytes(
        [
            0xFA,  # cli
            0x31, 0xC0,  # xor ax, ax
            0x8E, 0xD8,  # mov ds, ax
            0xFC,  # cld
            0xBA, 0xF8, 0x03,  # mov dx, 0x3f8
            0xBE, msg_at & 0xFF, msg_at >> 8,  # mov si, msg
            0xAC,  # loop: lodsb
            0x84, 0xC0,  # test al, al
            0x74, 0x03,  # jz done
            0xEE,  # out dx, al
            0xEB, 0xF8,  # jmp loop
            0xF4,  # done: hlt
            0xEB, 0xFD,  # jmp done
        ]
    )  # fmt: skip
    sector = code + PROBE_MESSAGE + b"\r\n\0"
    return sector + b"\0" * (510 - len(sector)) + b"\x55\xaa"


def probe(accelerator: str, cpu: str, timeout_s: float = PROBE_TIMEOUT_S, qemu: str = QEMU) -> bool:
    """True when QEMU under `accelerator` runs guest code and reaches the serial port in time."""
    with scratch("xcpng-accel-probe") as tmp:
        disk = Path(tmp) / "probe.img"
        disk.write_bytes(boot_sector())
        out = Path(tmp) / "serial.log"
        argv = [
            qemu,
            "-accel",
            accelerator,
            "-cpu",
            cpu,
            "-m",
            "32",
            "-nodefaults",
            "-display",
            "none",
            "-no-reboot",
            "-serial",
            f"file:{out}",
            "-drive",
            f"file={disk},format=raw,if=ide",
        ]
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )

        def printed() -> bool:
            return out.exists() and PROBE_MESSAGE in out.read_bytes()

        try:
            wait_for(
                lambda: printed() or proc.poll() is not None,
                what="the probe boot's message",
                timeout=timeout_s,
                interval=0.2,
            )
            return printed()
        except WaitTimeout:
            return False
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()


def _machine_key() -> str:
    qemu_path = shutil.which(QEMU) or ""
    try:
        stamp = os.stat(qemu_path).st_mtime if qemu_path else 0
    except OSError:
        stamp = 0
    return f"{platform.node()}|{platform.release()}|{qemu_path}|{stamp}"


def choose(cache_dir: Path, timeout_s: float = PROBE_TIMEOUT_S) -> Accel:
    """KVM if /dev/kvm is usable and the probe boots under it, else TCG; cached per machine."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    cache = cache_dir / "accel.json"
    key = _machine_key()
    with FileLock(str(cache_dir / "accel.lock"), timeout=120):
        try:
            data = json.loads(cache.read_text())
            if data.get("key") == key:
                return Accel(data["accelerator"], data["cpu"], data["reason"] + " (cached)")
        except (OSError, ValueError, KeyError):
            pass
        if not os.access("/dev/kvm", os.R_OK | os.W_OK):
            chosen = Accel("tcg", "max", "/dev/kvm absent or not accessible")
        elif probe("kvm", "host", timeout_s):
            chosen = Accel("kvm", "host", f"KVM probe boot answered within {timeout_s:.0f} s")
        else:
            chosen = Accel("tcg", "max", f"KVM probe boot failed within {timeout_s:.0f} s")
        cache.write_text(json.dumps({"key": key, **asdict(chosen)}))
        return chosen
