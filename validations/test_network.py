"""Network renderer policy: each clone's network comes from cloud-init through the one stack its
family uses (README "Network renderer policy"; packer/scripts/60-network.sh sets it up).

- debian (Debian, Ubuntu): cloud-init writes netplan YAML, netplan hands it to
  systemd-networkd; no ifupdown configuration, no NetworkManager, no second DHCP client.
- el: NetworkManager with the connection cloud-init's network-manager renderer wrote.

Checked on the booted clone, where it shows what really configured the link: a stale installer
stanza or a second stack is an image defect even when the VM happens to get an address.
"""

from __future__ import annotations

import re
import shlex
from typing import Any

from core.checks import check
from core.model import TemplateSpec

RENDERER = {"debian": "netplan", "el": "network-manager"}
NETPLAN_NETWORK_FILE = re.compile(r"Network File:\s*(/run/systemd/network/10-netplan-\S+\.network)")
IFUPDOWN_STANZA = re.compile(r"^\s*(?:auto|allow-[\w-]+|iface|mapping)\s+(\S+)", re.MULTILINE)


def default_link(host: Any) -> str:
    out = host.run("ip -o route show default").stdout
    match = re.search(r"\bdev\s+(\S+)", out)
    assert match, f"the clone has no default route: {out.strip() or '(none)'}"
    return match.group(1)


def ifupdown_stanzas(text: str) -> list[str]:
    """Interfaces an ifupdown file configures, the loopback aside."""
    return [name for name in IFUPDOWN_STANZA.findall(text) if name != "lo"]


def _debian_family(host: Any, link: str) -> list[str]:
    problems = []
    status = host.run(f"networkctl status --no-pager {shlex.quote(link)}").stdout
    if not NETPLAN_NETWORK_FILE.search(status):
        problems.append(
            f"{link} is not configured by systemd-networkd from netplan's file "
            f"(networkctl status: {' '.join(status.split())[:300]})"
        )
    if not host.file("/etc/netplan/50-cloud-init.yaml").exists:
        problems.append("cloud-init rendered no /etc/netplan/50-cloud-init.yaml")
    found = []
    for path in ("/etc/network/interfaces", *host_listing(host, "/etc/network/interfaces.d")):
        text = host.run(f"sudo cat {shlex.quote(path)} 2>/dev/null").stdout
        found += [f"{path}: {name}" for name in ifupdown_stanzas(text)]
    if found:
        problems.append("ifupdown configures interfaces: " + ", ".join(found))
    if host.run("systemctl is-enabled networking.service").stdout.strip() == "enabled":
        problems.append("ifupdown's networking.service is enabled")
    if host.run("systemctl is-active NetworkManager.service").stdout.strip() == "active":
        problems.append("NetworkManager runs beside systemd-networkd")
    dhclients = host.run("pgrep -a -x 'dhclient|dhcpcd|udhcpc' || true").stdout.strip()
    if dhclients:
        problems.append(f"a DHCP client runs beside systemd-networkd: {dhclients}")
    return problems


def _el_family(host: Any, link: str) -> list[str]:
    if host.run("systemctl is-active NetworkManager.service").stdout.strip() != "active":
        return ["NetworkManager is not running"]
    active = host.run("nmcli -t -f NAME,DEVICE connection show --active").stdout
    names = [line.rsplit(":", 1)[0] for line in active.splitlines() if line.endswith(f":{link}")]
    if not any(n.startswith("cloud-init") for n in names):
        return [f"{link} is not up through cloud-init's connection (active: {names or 'none'})"]
    return []


def host_listing(host: Any, folder: str) -> list[str]:
    out = host.run(f"sudo find {shlex.quote(folder)} -maxdepth 1 -type f 2>/dev/null").stdout
    return sorted(p for p in out.split() if p)


FAMILY_CHECKS = {"debian": _debian_family, "el": _el_family}


@check(
    "network-renderer",
    "the clone's network comes from cloud-init through its family's one stack (debian: "
    "netplan and systemd-networkd, no ifupdown stanza or second DHCP client)",
)
def test_renderer(host: Any, spec: TemplateSpec) -> None:
    assert spec.family in RENDERER, f"no network renderer policy for family {spec.family!r}"
    problems = FAMILY_CHECKS[spec.family](host, default_link(host))
    assert not problems, f"{spec.family} policy ({RENDERER[spec.family]}):\n" + "\n".join(problems)
