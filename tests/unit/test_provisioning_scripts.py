"""The provisioning scripts: shellcheck clean, strict mode, and clear refusals of bad input.

They run for real in the local Debian 12 build (tests/integration, lead's e2e); here only the
paths that stop before changing anything run on this machine.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[2] / "packer/scripts"
NAMES = [
    "10-update.sh",
    "20-ssh-hardening.sh",
    "30-system-hardening.sh",
    "40-xen-guest-tools.sh",
    "50-cloud-init.sh",
    "60-network.sh",
    "90-seal.sh",
]
# Scripts that act per family: they take it from the template (OS_FAMILY), never guess it.
FAMILY_SCRIPTS = ["10-update.sh", "30-system-hardening.sh", "50-cloud-init.sh", "60-network.sh"]


def test_all_scripts_present() -> None:
    assert sorted(p.name for p in SCRIPTS.glob("*.sh")) == NAMES


@pytest.mark.skipif(not shutil.which("shellcheck"), reason="apt-get install shellcheck")
def test_shellcheck_clean() -> None:
    out = subprocess.run(
        ["shellcheck", "-x", *(str(SCRIPTS / n) for n in NAMES)], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stdout


@pytest.mark.parametrize("name", NAMES)
def test_strict_mode_and_syntax(name: str) -> None:
    text = (SCRIPTS / name).read_text()
    assert "\nset -euo pipefail\n" in text
    assert subprocess.run(["bash", "-n", str(SCRIPTS / name)]).returncode == 0


def _run(name: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {"PATH": os.environ["PATH"]}
    return subprocess.run(
        ["bash", str(SCRIPTS / name)],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_guest_tools_rejects_unknown_source() -> None:
    out = _run("40-xen-guest-tools.sh", GUEST_TOOLS_SOURCE="floppy")
    assert out.returncode == 1
    assert (
        "unknown GUEST_TOOLS_SOURCE=floppy; expected iso, package, xen-guest-agent or none"
        in out.stderr
    )


def test_guest_tools_requires_a_source() -> None:
    out = _run("40-xen-guest-tools.sh")
    assert out.returncode == 1 and "GUEST_TOOLS_SOURCE is not set" in out.stderr


def test_guest_tools_none_is_loud_and_changes_nothing() -> None:
    out = _run("40-xen-guest-tools.sh", GUEST_TOOLS_SOURCE="none")
    assert out.returncode == 0
    assert "WARNING: GUEST_TOOLS_SOURCE=none: NO Xen guest agent is installed" in out.stderr


def test_seal_requires_the_build_user() -> None:
    out = _run("90-seal.sh")
    assert out.returncode == 1 and "BUILD_USER is not set" in out.stderr
    out = _run("90-seal.sh", BUILD_USER="root")
    assert out.returncode == 1 and "BUILD_USER=root cannot be removed" in out.stderr


def test_update_can_be_skipped_loudly() -> None:
    out = _run("10-update.sh", UPDATE_PACKAGES="0", OS_FAMILY="debian")
    assert out.returncode == 0 and "NOT updated" in out.stderr


def test_seal_locks_then_deletes_then_drops_the_backups() -> None:
    """Issue 14's order: lock the build account, delete it, then remove the shadow-utils
    backups (each usermod/userdel wrote one that still lists it); no account change after."""
    text = (SCRIPTS / "90-seal.sh").read_text()
    lines = [line.strip() for line in text.splitlines() if not line.strip().startswith("#")]
    lock = next(
        i
        for i, x in enumerate(lines)
        if x.startswith('usermod --lock --expiredate 1 "$BUILD_USER"')
    )
    delete = next(i for i, x in enumerate(lines) if x.startswith('userdel -f -r "$BUILD_USER"'))
    backups = next(
        i for i, x in enumerate(lines) if x.startswith("rm -f /etc/passwd- /etc/shadow-")
    )
    assert lock < delete < backups
    for name in ("/etc/passwd-", "/etc/shadow-", "/etc/group-", "/etc/gshadow-", "/etc/subuid-"):
        assert name in lines[backups]
    changes = ("usermod", "userdel", "useradd", "groupdel", "groupadd", "chpasswd", "passwd ")
    assert not any(x.startswith(changes) for x in lines[backups + 1 :])
    # nothing is left for a power-off to do: no stop unit, the disk synced at the end
    assert "ExecStop" not in text and lines[-2:][0] == "sync"


def test_seal_refuses_a_build_user_that_does_not_exist() -> None:
    out = _run("90-seal.sh", BUILD_USER="no-such-user-here")
    assert out.returncode == 1 and "BUILD_USER=no-such-user-here does not exist" in out.stderr


@pytest.mark.parametrize("name", FAMILY_SCRIPTS)
@pytest.mark.parametrize("family", [None, "", "ubuntu", "Debian"])
def test_family_scripts_refuse_a_missing_or_unknown_family(name: str, family: str | None) -> None:
    env = {"UPDATE_PACKAGES": "0"} if family is None else {"OS_FAMILY": family}
    out = _run(name, **env)
    assert out.returncode == 1
    assert (
        f"{name}: OS_FAMILY='{family or ''}' (set by the template's script_env); expected debian or el"
        in out.stderr
    )


def test_guest_tools_refuses_an_unknown_family_before_installing() -> None:
    out = _run("40-xen-guest-tools.sh", GUEST_TOOLS_SOURCE="package", OS_FAMILY="suse")
    assert out.returncode == 1 and "OS_FAMILY='suse'" in out.stderr


@pytest.mark.parametrize("name", NAMES)
def test_no_script_guesses_the_os_from_os_release(name: str) -> None:
    text = (SCRIPTS / name).read_text()
    assert not re.search(r"^\s*(\.|source)\s+\S*os-release", text, re.MULTILINE)
    assert "ID_LIKE" not in text


@pytest.mark.parametrize("folder", ["local", "xcpng"])
def test_templates_pass_the_os_to_the_scripts(folder: str) -> None:
    text = "".join(p.read_text() for p in (SCRIPTS.parent / folder).glob("*.pkr.hcl"))
    for var in (
        "OS_NAME=${var.os_name}",
        "OS_FAMILY=${var.os_family}",
        "OS_VERSION=${var.os_version}",
    ):
        assert f'"{var}"' in text
