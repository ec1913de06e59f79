"""The local platform: build with Packer's qemu builder and boot under QEMU, no XCP-ng needed.

Used by operators without a pool and by this project's CI. Parts, one job each:
basedisk (the mmdebstrap base disk, cached), buildseed (Packer's login during the build),
accel (KVM only when a probe boot proves it, else TCG), slots (machine-wide QEMU limit),
qemu (command line and clean stop) and boot (one clone, always torn down).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from pathlib import Path

from core.model import BootedVM, BuildResult, TemplateSpec
from core.platform import Starting, booted
from core.settings import Settings
from platforms.local import accel, basedisk, boot, qemu
from platforms.local.buildseed import make_build_seed

# (command or file, apt package that provides it)
TOOLS = (
    ("qemu-system-x86_64", "qemu-system-x86"),
    ("qemu-img", "qemu-utils"),
    ("mkfs.vfat", "dosfstools"),
    ("mcopy", "mtools"),
    ("mmd", "mtools"),
    ("mmdebstrap", "mmdebstrap"),
    ("unshare", "util-linux"),  # the base disk is built in its own mount namespace
    ("grub-mkstandalone", "grub-common"),
    ("grub-mkimage", "grub-common"),
    ("sfdisk", "fdisk"),
    ("mkfs.ext4", "e2fsprogs"),
    ("ssh", "openssh-client"),
    ("ssh-keygen", "openssh-client"),
)
GRUB_EFI_DIR = Path("/usr/lib/grub/x86_64-efi")
GRUB_PC_DIR = Path("/usr/lib/grub/i386-pc")  # the base disk boots by BIOS too


class LocalPlatform:
    """QEMU on this machine; no Xen, so Xen-side checks skip with platform-has-no-xen."""

    name = "local"
    has_xen = False

    def __init__(self, settings: Settings, run_id: str):
        self.settings = settings
        self.run_id = run_id

    @property
    def cache_dir(self) -> Path:
        return self.settings.cache_dir

    def preflight(self, specs: Sequence[TemplateSpec] = (), building: bool = True) -> list[str]:
        """The tools this machine needs; the OSes need nothing more of it."""
        problems = [
            f"{tool} not found: apt-get install -y --no-install-recommends {package}"
            for tool, package in TOOLS
            if shutil.which(tool) is None
        ]
        if not GRUB_EFI_DIR.is_dir():
            problems.append(
                f"{GRUB_EFI_DIR} missing (GRUB for UEFI): apt-get install -y grub-efi-amd64-bin"
            )
        if not GRUB_PC_DIR.is_dir():
            problems.append(
                f"{GRUB_PC_DIR} missing (GRUB for BIOS): apt-get install -y grub-pc-bin"
            )
        if qemu.ovmf_files() is None:
            problems.append("OVMF firmware not found: apt-get install -y ovmf")
        if os.geteuid() != 0 and not (self.cache_dir / "base").is_dir():
            problems.append(
                "building the Debian base disk needs root (mmdebstrap and mkfs.ext4 -d must "
                "keep file owners): run the first local build as root"
            )
        return problems

    def accelerator(self) -> accel.Accel:
        return accel.choose(self.cache_dir)

    def recipe_digest(self, spec: TemplateSpec) -> dict[str, str]:
        """Extra build inputs for the image cache: a new base-disk recipe means a rebuild."""
        return {"local_base_disk": basedisk.recipe_for(spec).digest()}

    def build_vars(
        self, spec: TemplateSpec, workdir: Path, log: Callable[[str], None]
    ) -> dict[str, str]:
        """Base disk (cached), build seed, accelerator and firmware for packer/local."""
        max_age = self.settings.max_image_age
        started = time.monotonic()
        base = basedisk.ensure_base_disk(self.cache_dir, log, basedisk.recipe_for(spec), max_age)
        log(f"base disk ready in {time.monotonic() - started:.1f} s")
        seed = make_build_seed(workdir / "build-seed", spec.name, self.run_id)
        chosen = self.accelerator()
        log(f"accelerator: {chosen.accelerator} -cpu {chosen.cpu} ({chosen.reason})")
        firmware = qemu.ovmf_files()
        if firmware is None:
            from core.errors import InfrastructureError

            raise InfrastructureError("OVMF firmware not found: apt-get install -y ovmf")
        vars_copy = workdir / "OVMF_VARS.fd"
        shutil.copyfile(firmware[1], vars_copy)
        console = self.settings.artifacts_dir / spec.name / "build-console.log"
        console.parent.mkdir(parents=True, exist_ok=True)
        return {
            "base_image": str(base.path),
            "base_image_checksum": f"sha256:{base.sha256}",
            "build_seed_image": str(seed.image),
            "ssh_username": seed.user,
            "ssh_private_key_file": str(seed.key_path),
            "qemu_accelerator": chosen.accelerator,
            "qemu_cpu": chosen.cpu,
            "ovmf_code": str(firmware[0]),
            "ovmf_vars": str(vars_copy),
            "serial_log": str(console),
            # Debian has no guest-tools package and the XCP-ng tools ISO is not reachable here;
            # recorded in BuildResult.guest_tools so the check skips with its code.
            "guest_tools_source": "none",
        }

    def boot(
        self, spec: TemplateSpec, build: BuildResult, workdir: Path
    ) -> AbstractContextManager[BootedVM]:
        return booted(self.start(spec, build, workdir))

    def start(
        self, spec: TemplateSpec, build: BuildResult, workdir: Path
    ) -> AbstractContextManager[Starting]:
        plan = boot.BootPlan(
            workdir=workdir,
            run_id=self.run_id,
            accel=self.accelerator(),
            console_log=self.settings.artifacts_dir / spec.name / "console.log",
            slots_dir=self.cache_dir / "qemu-slots",
            boot_timeout_s=self.settings.boot_timeout,
            may_keep=self.settings.keep_vm != "never",
            keep_ttl_s=self.settings.keep_vm_ttl,
            janitor_artifacts=self.settings.artifacts_dir,
            firmware=self.settings.local_firmware,
            datasource=self.settings.local_datasource,
            router_lock_dir=self.cache_dir,
        )
        return boot.start_vm(spec, build, plan)
