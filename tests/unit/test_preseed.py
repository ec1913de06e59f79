"""The production preseed of every Debian release, checked statically (Debian's installer
cannot run on these machines)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

PRESEED = Path(__file__).resolve().parents[2] / "packer" / "http" / "debian" / "preseed.cfg"

pytestmark = pytest.mark.skipif(
    shutil.which("debconf-set-selections") is None, reason="debconf-utils not installed"
)


def _check(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["debconf-set-selections", "--checkonly", str(path)], capture_output=True, text=True
    )


def _answers() -> dict[str, tuple[str, str]]:
    """question -> (type, value), continuation lines joined."""
    text = PRESEED.read_text().replace("\\\n", " ")
    out = {}
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        _owner, question, qtype, *value = line.split(None, 3)
        out[question] = (qtype, value[0] if value else "")
    return out


def test_debconf_accepts_the_preseed():
    result = _check(PRESEED)
    assert result.returncode == 0, result.stderr


def test_the_check_rejects_a_malformed_line(tmp_path: Path):
    broken = tmp_path / "preseed.cfg"
    broken.write_text(PRESEED.read_text() + "d-i passwd/root-login\n")
    assert _check(broken).returncode != 0


def test_no_password_is_written_in_the_file():
    answers = _answers()
    for q in (
        "passwd/root-password",
        "passwd/root-password-again",
        "passwd/root-password-crypted",
        "passwd/user-password",
        "passwd/user-password-again",
        "passwd/user-password-crypted",
    ):
        assert q not in answers, f"{q} must come from the boot command, not the file"
    assert answers["passwd/root-login"] == ("boolean", "false")


def test_installs_what_the_template_needs():
    answers = _answers()
    include = answers["pkgsel/include"][1].split()
    for pkg in ("openssh-server", "cloud-init", "sudo", "netplan.io", "locales"):
        assert pkg in include
    assert answers["pkgsel/upgrade"][1] == "full-upgrade"


def test_one_file_for_every_release_names_no_os():
    """Hostname and locale come from the template's kernel arguments, so a new Debian release
    adds no installer file."""
    answers = _answers()
    for question in ("netcfg/get_hostname", "netcfg/hostname", "netcfg/get_domain"):
        assert question not in answers
    answers_text = "\n".join(f"{q} {v}" for q, (_t, v) in answers.items())
    assert not re.search(r"debian1[0-9]|bookworm|trixie", answers_text)


def test_uefi_gets_an_esp_and_a_removable_boot_path():
    answers = _answers()
    recipe = answers["partman-auto/expert_recipe"][1]
    assert "method{ efi }" in recipe and "$iflabel{ gpt }" in recipe
    assert answers["grub-installer/force-efi-extra-removable"] == ("boolean", "true")


def test_build_user_gets_a_nopasswd_dropin_that_the_seal_removes():
    late = _answers()["preseed/late_command"][1]
    m = re.search(r"/target(/etc/sudoers\.d/[\w.-]+)", late)
    assert m, "the late_command writes a sudoers drop-in"
    assert "NOPASSWD" in late and "debconf-get passwd/username" in late
    assert "visudo -c" in late
    seal = (PRESEED.parents[2] / "scripts" / "90-seal.sh").read_text()
    # 90-seal.sh deletes every sudoers drop-in naming BUILD_USER: the drop-in names the user.
    assert "/etc/sudoers.d/*" in seal and "BUILD_USER" in seal
