"""Ubuntu installs keep the address the Packer plugin knows (issue 23, finding 3).

With `ip_getter = "auto"` the plugin learns the VM's address from the installer's requests to
its HTTP server, and later from the guest agent's metrics (plugin `step_wait_for_ip.go`: each
new one replaces the last). The installed system's systemd-networkd asks DHCP with a DUID made
from its new machine-id, so a DHCP server keyed on the client id hands it another address and
Packer waits out ssh_wait_timeout on the old one. So the user-data:

- gives the installer and the installed system one DHCP identity, the MAC (`network:`, applied
  during the install and written to the installed system; netplan's `dhcp-identifier: mac`);
- fetches guest-tools.sh from Packer's HTTP server after that network is applied, which also
  tells the plugin the address under that identity;
- installs the guest agent into /target during the install: xe-guest-utilities from universe,
  else from the XCP-ng tools ISO (guest-tools.sh), never failing the install for it;

and the boot command waits long enough for GRUB's menu before typing `c`.

The late-command runs here for real under sh, with stand-ins for curtin and the network.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from build.catalog import load_catalog, parse_hcl

ROOT = Path(__file__).resolve().parents[2]
USER_DATA = ROOT / "packer" / "http" / "ubuntu" / "user-data"
HOOK = ROOT / "packer" / "http" / "guest-tools.sh"
CMDLINE = (
    "BOOT_IMAGE=/casper/vmlinuz autoinstall ds=nocloud-net;s=http://10.0.0.9:8012/ubuntu/ "
    "template_build_user=packer template_build_hash='$2a$10$x' ---"
)


def autoinstall() -> dict[str, Any]:
    return dict(yaml.safe_load(USER_DATA.read_text())["autoinstall"])


def agent_command() -> str:
    (cmd,) = [c for c in autoinstall()["late-commands"] if "xe-guest-utilities" in c]
    return str(cmd)


def test_the_installer_and_the_installed_system_ask_dhcp_by_mac() -> None:
    network = autoinstall()["network"]
    assert network["version"] == 2
    (iface,) = network["ethernets"].values()
    assert iface["match"] == {"name": "en*"}  # Xen's PV NIC is enX0, emulated ones ens*/enp*
    assert iface["dhcp4"] is True
    assert iface["dhcp-identifier"] == "mac"


def stub(bindir: Path, name: str, body: str) -> None:
    path = bindir / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)


@pytest.fixture
def live(tmp_path: Path) -> dict[str, Path]:
    """The live installer's world: curtin, curl, a /target, the kernel command line."""
    bindir, log, target = tmp_path / "bin", tmp_path / "calls.log", tmp_path / "target"
    bindir.mkdir()
    (target / "var/lib/dpkg").mkdir(parents=True)
    (target / "tmp").mkdir()
    served = tmp_path / "served"
    served.mkdir()
    shutil.copy(HOOK, served / "guest-tools.sh")
    (tmp_path / "cmdline").write_text(CMDLINE + "\n")
    stub(bindir, "curtin", f'echo "curtin $*" >> {log}; exit "${{CURTIN_RC:-0}}"')
    stub(
        bindir,
        "curl",
        f'echo "curl $*" >> {log}; [ -n "${{NO_HTTP:-}}" ] && exit 7\n'
        f'while [ $# -gt 1 ]; do [ "$1" = -o ] && cp {served}/guest-tools.sh "$2"; shift; done',
    )
    stub(bindir, "chroot", f'echo "chroot $*" >> {log}')
    return {"bin": bindir, "log": log, "target": target, "tmp": tmp_path}


def run_late(world: dict[str, Path], **env: str) -> subprocess.CompletedProcess[str]:
    cmd = agent_command().replace("/target", str(world["target"]))
    cmd = cmd.replace("/tmp/guest-tools.sh", str(world["tmp"] / "hook.sh"))
    return subprocess.run(
        ["sh", "-c", cmd],
        env={
            "PATH": f"{world['bin']}:{os.environ['PATH']}",
            "TEMPLATE_CMDLINE": str(world["tmp"] / "cmdline"),
            "GUEST_TOOLS_DEVICES": "/nonexistent",
            "TMPDIR": str(world["tmp"]),
            **env,
        },
        capture_output=True,
        text=True,
        timeout=30,
    )


def calls(world: dict[str, Path]) -> list[str]:
    return world["log"].read_text().splitlines()


def test_the_agent_comes_from_universe_into_the_target(live: dict[str, Path]) -> None:
    out = run_late(live)
    assert out.returncode == 0, out.stderr
    log = calls(live)
    # first the fetch (the plugin sees the installer's address under its MAC identity) ...
    assert log[0] == f"curl -fsS -o {live['tmp'] / 'hook.sh'} http://10.0.0.9:8012/guest-tools.sh"
    # ... then the agent, into the installed system
    target = live["target"]
    assert log[1] == (
        f"curtin in-target --target={target} -- apt-get -y -q install xe-guest-utilities"
    )
    assert len(log) == 2  # the tools ISO was not needed


def test_without_universe_the_agent_comes_from_the_tools_iso(live: dict[str, Path]) -> None:
    out = run_late(live, CURTIN_RC="100")
    assert out.returncode == 0, out.stderr
    assert "guest-tools.sh: no guest-tools CD found" in out.stdout  # the ISO route ran
    log = calls(live)
    assert log[1].startswith("curtin in-target") and len(log) == 2


def test_the_agent_never_fails_the_install(live: dict[str, Path]) -> None:
    out = run_late(live, CURTIN_RC="100", NO_HTTP="1")
    assert out.returncode == 0, out.stderr


def test_the_late_command_is_what_subiquity_and_cloud_init_accept(tmp_path: Path) -> None:
    """One string (subiquity runs it with sh -c), POSIX sh, reading the kernel command line
    itself (the template types the HTTP server's address there)."""
    cmd = agent_command()
    assert cmd.startswith("sh -c '") and cmd.endswith("'")
    assert "${TEMPLATE_CMDLINE:-/proc/cmdline}" in cmd  # the file: tests only
    if shutil.which("shellcheck"):
        body = cmd[len("sh -c '") : -1]
        script = tmp_path / "late-agent.sh"
        script.write_text("#!/bin/sh\n" + body + "\n")
        done = subprocess.run(["shellcheck", "-s", "sh", str(script)], capture_output=True)
        assert done.returncode == 0, done.stdout


def seconds(duration: str) -> float:
    m = re.fullmatch(r"(\d+)(ms|s|m)", duration)
    assert m, duration
    return int(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60}[m.group(2)]


def test_boot_wait_lets_grub_show_its_menu_before_c_is_typed() -> None:
    """The boot commands that open GRUB's command line (`c`) on the ISO wait as long as
    Debian 13's, which is proven to reach it: 5 s can land before GRUB reads keys."""
    catalog = load_catalog(ROOT / "packer")
    grub = {
        name: spec.variables
        for name, spec in catalog.specs.items()
        if str(spec.variables.get("boot_command", [""])[0]).startswith("<wait>c")
    }
    assert {"debian13", "ubuntu2204", "ubuntu2404", "ubuntu2604"} <= set(grub)
    default = parse_hcl(ROOT / "packer" / "xcpng" / "variables.pkr.hcl")
    assert any("boot_wait" in block for block in default["variable"])
    short = {n: v["boot_wait"] for n, v in grub.items() if seconds(str(v["boot_wait"])) < 10}
    assert short == {}
