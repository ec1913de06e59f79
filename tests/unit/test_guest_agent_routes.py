"""How the guest agent gets into the image, run for real with stand-ins for what this machine
has not got (the installer's commands, a CD drive, a package mirror):

- during the install: the preseed's late_command fetches packer/http/guest-tools.sh from
  Packer's HTTP server and installs xe-guest-utilities from the guest-tools CD into /target,
  so the installed system's first boot reports its IP;
- after the first boot: 40-xen-guest-tools.sh with GUEST_TOOLS_SOURCE=xen-guest-agent takes
  XEN_GUEST_AGENT_URL (installing curl first when it is missing) or the OS's package, and
  says plainly when the OS has neither (Debian 12, this machine).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HOOK = ROOT / "packer" / "http" / "guest-tools.sh"
PRESEED = ROOT / "packer" / "http" / "debian" / "preseed.cfg"
TOOLS = ROOT / "packer" / "scripts" / "40-xen-guest-tools.sh"
DEB = "xe-guest-utilities_7.30.0-12_amd64.deb"


def stub(bindir: Path, name: str, body: str) -> None:
    path = bindir / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)


def link_tools(bindir: Path, *names: str) -> None:
    for name in names:
        real = shutil.which(name)
        assert real, name
        (bindir / name).symlink_to(real)


@pytest.fixture
def installer(tmp_path: Path) -> dict[str, Path]:
    """A d-i-like world: a target root, a tools CD image, the commands of the installer."""
    bindir, log = tmp_path / "bin", tmp_path / "calls.log"
    bindir.mkdir()
    cd = tmp_path / "cd"
    (cd / "Linux").mkdir(parents=True)
    (cd / "Linux" / "install.sh").write_text("#!/bin/sh\n")
    (cd / "Linux" / DEB).write_bytes(b"!<arch>\n")
    target = tmp_path / "target"
    for d in ("var/lib/dpkg", "tmp", "etc/sudoers.d", "etc/cloud/cloud.cfg.d"):
        (target / d).mkdir(parents=True)
    drive = tmp_path / "sr1"
    drive.write_text("")
    # mount DEV DIR copies the CD when DEV is the drive; umount empties the mount point
    stub(
        bindir,
        "mount",
        f'for a; do dev=$dir; dir=$a; done; echo "mount $dev" >> {log}\n'
        f'[ "$dev" = "{drive}" ] || exit 32\ncp -r {cd}/. "$dir"/',
    )
    stub(bindir, "umount", f'echo "umount $1" >> {log}; rm -rf "$1"/*')
    stub(
        bindir,
        "in-target",
        f'echo "in-target $*" >> {log}; [ -f {target}/tmp/xe-guest-utilities.deb ]',
    )
    stub(bindir, "chroot", f'echo "chroot $*" >> {log}')
    return {"bin": bindir, "log": log, "target": target, "drive": drive, "tmp": tmp_path}


def run_hook(
    world: dict[str, Path], target: Path, devices: str
) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": f"{world['bin']}:{os.environ['PATH']}",
        "GUEST_TOOLS_DEVICES": devices,
        "TMPDIR": str(world["tmp"]),
    }
    return subprocess.run(
        ["sh", str(HOOK), str(target)], env=env, capture_output=True, text=True, timeout=30
    )


def test_hook_installs_the_agent_from_the_tools_cd(installer: dict[str, Path]) -> None:
    out = run_hook(installer, installer["target"], f"/nonexistent {installer['drive']}")
    assert out.returncode == 0, out.stderr
    assert "xe-guest-utilities installed from" in out.stdout
    calls = installer["log"].read_text().splitlines()
    assert f"mount {installer['drive']}" in calls
    assert f"chroot {installer['target']} dpkg -i /tmp/xe-guest-utilities.deb" in calls
    assert calls[-1].startswith("umount ")
    assert not (installer["target"] / "tmp" / "xe-guest-utilities.deb").exists()  # cleaned


def test_hook_never_fails_the_install(installer: dict[str, Path]) -> None:
    out = run_hook(installer, installer["target"], "/nonexistent")
    assert out.returncode == 0
    assert "no guest-tools CD found; the agent is installed after the first boot" in out.stdout
    stub(installer["bin"], "chroot", "exit 1")  # dpkg fails in the target
    out = run_hook(installer, installer["target"], str(installer["drive"]))
    assert out.returncode == 0 and "could not install the agent" in out.stdout


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="apt-get install shellcheck")
def test_hook_is_posix_sh_for_busybox() -> None:
    out = subprocess.run(["shellcheck", "-s", "sh", str(HOOK)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout
    assert HOOK.read_text().startswith("#!/bin/sh\n")


def late_command() -> str:
    text = PRESEED.read_text().replace("\\\n", " ")
    (line,) = [x for x in text.splitlines() if x.startswith("d-i preseed/late_command string ")]
    return line.split(" string ", 1)[1]


def test_preseed_late_command_fetches_the_hook_beside_the_preseed(
    installer: dict[str, Path],
) -> None:
    world, target = installer, installer["target"]
    served = world["tmp"] / "served"
    served.mkdir()
    shutil.copy(HOOK, served / "guest-tools.sh")
    log = world["log"]
    stub(
        world["bin"],
        "debconf-get",
        "case $1 in passwd/username) echo packer ;; "
        "preseed/url) echo http://10.0.0.9:8012/debian/preseed.cfg ;; esac",
    )
    stub(world["bin"], "wget", f'echo "wget $*" >> {log}; cp {served}/guest-tools.sh "$3"')
    stub(world["bin"], "in-target", f'echo "in-target $*" >> {log}')
    cmd = late_command().replace("/target", str(target))
    cmd = cmd.replace("/tmp/guest-tools.sh", str(world["tmp"] / "hook.sh"))
    env = {
        "PATH": f"{world['bin']}:{os.environ['PATH']}",
        "GUEST_TOOLS_DEVICES": str(world["drive"]),
        "TMPDIR": str(world["tmp"]),
    }
    out = subprocess.run(["sh", "-c", cmd], env=env, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    calls = log.read_text().splitlines()
    assert f"wget -q -O {world['tmp'] / 'hook.sh'} http://10.0.0.9:8012/guest-tools.sh" in calls
    assert "in-target visudo -c -q" in calls
    assert f"chroot {target} dpkg -i /tmp/xe-guest-utilities.deb" in calls
    sudoers = (target / "etc/sudoers.d/90-template-build").read_text()
    assert sudoers == "packer ALL=(ALL) NOPASSWD:ALL\n"
    # an unreachable HTTP server costs the agent, never the install
    stub(world["bin"], "wget", "exit 4")
    out = subprocess.run(["sh", "-c", cmd], env=env, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0


# -- after the first boot: the xen-guest-agent route -------------------------------------------
@pytest.fixture
def box(tmp_path: Path) -> dict[str, Path]:
    """Only the commands 40-xen-guest-tools.sh needs; apt and systemd are stand-ins."""
    bindir, log, state = tmp_path / "bin", tmp_path / "calls.log", tmp_path / "state"
    shelf = tmp_path / "shelf"  # what `apt-get install curl` brings
    for d in (bindir, state, shelf):
        d.mkdir()
    link_tools(bindir, "mktemp", "rm", "sed", "cat", "cp", "touch")
    stub(
        shelf,
        "curl",
        f'echo "curl $*" >> {log}\n'
        'while [ $# -gt 0 ]; do [ "$1" = -o ] && echo deb > "$2"; shift; done',
    )
    stub(bindir, "apt-cache", 'echo "xen-guest-agent:"; echo "  Candidate: (none)"')
    stub(
        bindir,
        "apt-get",
        f'echo "apt-get $*" >> {log}\n'
        f"for a; do case $a in curl) cp {shelf}/curl {bindir}/curl ;;\n"
        f'  */xen-guest-agent.deb) [ -f "$a" ] && touch {state}/agent ;; esac; done',
    )
    stub(
        bindir,
        "systemctl",
        f'echo "systemctl $*" >> {log}\n'
        f'case "$*" in "list-unit-files --no-legend xen-guest-agent.service") '
        f'[ -f {state}/agent ] && echo "xen-guest-agent.service disabled" ;; '
        f'"is-enabled --quiet xen-guest-agent.service") exit 1 ;; esac; exit 0',
    )
    return {"bin": bindir, "log": log, "state": state}


def run_tools(box: dict[str, Path], **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["/bin/bash", str(TOOLS)],
        env={
            "PATH": str(box["bin"]),
            "GUEST_TOOLS_SOURCE": "xen-guest-agent",
            "OS_FAMILY": "debian",
            "OS_NAME": "debian12",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_agent_from_a_url_installs_curl_first_and_enables_it(box: dict[str, Path]) -> None:
    assert not (box["bin"] / "curl").exists()
    out = run_tools(box, XEN_GUEST_AGENT_URL="https://example.test/xen-guest-agent_0.4.0_amd64.deb")
    assert out.returncode == 0, out.stderr
    calls = box["log"].read_text().splitlines()
    assert calls.index("apt-get -y -q -o DPkg::Lock::Timeout=600 install curl") < next(
        i for i, c in enumerate(calls) if c.startswith("curl ")
    )
    assert any(
        c.startswith("curl -fsSL --retry 3 -o ") and "xen-guest-agent_0.4.0" in c for c in calls
    )
    assert any(
        c.startswith("apt-get -y -q -o DPkg::Lock::Timeout=600 install /")
        and c.endswith("/xen-guest-agent.deb")
        for c in calls
    )
    assert "systemctl enable xen-guest-agent.service" in calls
    assert "xen-guest-agent.service installed and enabled" in out.stdout


def test_agent_route_on_an_os_without_the_package_says_what_to_do(box: dict[str, Path]) -> None:
    out = run_tools(box)
    assert out.returncode == 1
    assert "has no xen-guest-agent package; set XEN_GUEST_AGENT_URL" in out.stderr
    assert 'guest_tools_source = "iso"' in out.stderr
    assert "apt-get" not in (box["log"].read_text() if box["log"].exists() else "")


def test_agent_url_must_be_a_package(box: dict[str, Path]) -> None:
    out = run_tools(box, XEN_GUEST_AGENT_URL="https://example.test/agent.tar.gz")
    assert out.returncode == 1 and "must name a .deb or .rpm" in out.stderr
