"""What a clone's serial console says about its boot: systemd's unit status lines, the login
prompt, sshd, and cloud-init's own lines (which stage ran, which datasource it finished with).

The local platform writes the console to a file; the boot wait reads it again on every poll,
so the facts here are only what the text holds so far. Pure, so it is unit-tested on real
console captures without a VM (tests/unit/test_reach.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

_ANSI = re.compile(r"\x1b(\[[0-9;=?]*[A-Za-z]|\][^\x07]*\x07|[()][A-Z0-9])")
_KMSG = re.compile(r"^\[\s*\d+\.\d+\]\s")  # a kernel timestamp: "[   72.34] "
_STATUS = re.compile(r"^\[\s*(OK|FAILED|DEPEND|TIME)\s*\]\s+(.*)$")
_FAILED_UNIT = re.compile(r"Failed to start (\S+)")
_LOGIN = re.compile(r"^\S+ login:")
_CI_RUNNING = re.compile(r"Cloud-init v\. (\S+) running '([^']+)'")
_CI_FINISHED = re.compile(r"Cloud-init v\. (\S+) finished at .*?Datasource (.+?)\.\s+Up ")
# UEFI (OVMF) names each boot option it cannot load, then, with no disk left, goes on to the
# network: iPXE's option ROM, its own PXE and HTTP boot, and at the end says so. The local
# platform's clones boot from their disk first, so reaching the network means no disk booted.
_FW_FAILED = re.compile(r'BdsDxe: failed to load (Boot[0-9A-F]{4} ".*?" from \S+: .+)$')
_FW_GAVE_UP = re.compile(
    r"BdsDxe: No bootable option or device was found"
    r"|>>Start (PXE|HTTP Boot) over IPv[46]"
    r"|iPXE \S+ -- Open Source Network Boot Firmware"
)
_SSH_UNITS = ("ssh.service", "sshd.service", "ssh.socket", "sshd.socket")
_SSH_STARTED = re.compile(
    r"(Started|Listening on) (ssh\.s|sshd\.s|OpenBSD Secure Shell|OpenSSH server)"
)


@dataclass(frozen=True)
class ConsoleFacts:
    """What the console showed so far. `status_lines` is False when systemd does not print to
    this console (another console is /dev/console): nothing can then be concluded from it."""

    status_lines: bool = False
    login_prompt: bool = False
    sshd_started: bool = False
    sshd_failed: tuple[str, ...] = ()  # "[FAILED] Failed to start ssh.service ..." lines
    cloud_init_version: str | None = None
    cloud_init_stages: tuple[str, ...] = ()  # 'init-local', 'init', 'modules:config', ...
    cloud_init_failed: tuple[str, ...] = ()  # FAILED lines of cloud-init's units
    finished: str | None = None  # cloud-init's "finished at" line
    datasource: str | None = None  # e.g. "DataSourceNoCloud [seed=/dev/vdb][dsmode=net]"
    firmware_failed: tuple[str, ...] = ()  # the boot options UEFI could not load, and why
    firmware_gave_up: bool = False  # it went on to network boot: no disk could boot

    @property
    def cloud_init_ran(self) -> bool:
        return bool(self.cloud_init_stages or self.finished)

    @property
    def no_datasource(self) -> bool:
        return self.datasource is not None and self.datasource.startswith("DataSourceNone")


def _clean(line: str) -> str:
    line = _ANSI.sub("", line).replace("\r", "").strip()
    return _KMSG.sub("", line)


def _is_cloud_init_unit(unit: str) -> bool:
    return unit.startswith(("cloud-init", "cloud-config", "cloud-final"))


def parse_console(text: str) -> ConsoleFacts:
    status = login = sshd_started = False
    sshd_failed: list[str] = []
    ci_failed: list[str] = []
    stages: list[str] = []
    version = finished = datasource = None
    fw_failed: list[str] = []
    fw_gave_up = False
    for raw in text.splitlines():
        line = _clean(raw)
        if not line:
            continue
        for m_fw in _FW_FAILED.finditer(line):
            fw_failed.append(m_fw.group(1).strip())
        fw_gave_up = fw_gave_up or bool(_FW_GAVE_UP.search(line))
        # cloud-init's lines follow "login:" on the same console line when they race the prompt
        if _LOGIN.match(line):
            login = True
        m = _STATUS.match(line)
        if m:
            status = True
            kind, rest = m.groups()
            if _SSH_STARTED.search(rest):
                sshd_started = True
            failed = _FAILED_UNIT.search(rest) if kind == "FAILED" else None
            if failed:
                unit = failed.group(1)
                if unit.startswith(_SSH_UNITS) or unit.startswith(("ssh.", "sshd.")):
                    sshd_failed.append(line)
                elif _is_cloud_init_unit(unit):
                    ci_failed.append(line)
        for m_run in _CI_RUNNING.finditer(line):
            version = m_run.group(1)
            if m_run.group(2) not in stages:
                stages.append(m_run.group(2))
        m_fin = _CI_FINISHED.search(line)
        if m_fin:
            version, datasource = m_fin.group(1), m_fin.group(2).strip()
            finished = line[m_fin.start() :]
    return ConsoleFacts(
        status_lines=status,
        login_prompt=login,
        sshd_started=sshd_started,
        sshd_failed=tuple(sshd_failed),
        cloud_init_version=version,
        cloud_init_stages=tuple(stages),
        cloud_init_failed=tuple(ci_failed),
        finished=finished,
        datasource=datasource,
        firmware_failed=tuple(fw_failed),
        firmware_gave_up=fw_gave_up and not status,
    )


def read_console(path: Path | None) -> ConsoleFacts | None:
    """The facts of a console file, None when there is no file (yet)."""
    if path is None:
        return None
    try:
        return parse_console(path.read_bytes().decode("utf-8", "replace"))
    except OSError:
        return None
