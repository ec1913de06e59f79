"""Network renderer policy: each clone's network comes from cloud-init through the one stack its
family uses (docs/fleet/index.md, "Network renderer policy"; packer/scripts/60-network.sh sets
it up).

- debian (Debian, Ubuntu): cloud-init writes netplan YAML, netplan hands it to
  systemd-networkd; no ifupdown configuration, no NetworkManager, no second DHCP client.
- el: NetworkManager with the connection cloud-init's network-manager renderer wrote.

Checked on the booted clone, where it shows what really configured the link: a stale installer
stanza or a second stack is an image defect even when the VM happens to get an address.
"""

from __future__ import annotations

import re
from typing import Any

from core.checks import check
from core.model import TemplateSpec
from validations.remote import ask

RENDERER = {"debian": "netplan", "el": "network-manager"}
NETPLAN_NETWORK_FILE = re.compile(r"Network File:\s*(/run/systemd/network/10-netplan-\S+\.network)")
IFUPDOWN_STANZA = re.compile(r"^\s*(?:auto|allow-[\w-]+|iface|mapping)\s+(\S+)", re.MULTILINE)


def ifupdown_stanzas(text: str) -> list[str]:
    """Interfaces an ifupdown file configures, the loopback aside."""
    return [name for name in IFUPDOWN_STANZA.findall(text) if name != "lo"]


# The interface of the default route, found on the clone (shell, for the questions below).
LINK = "ip -o route show default | sed -n 's/.* dev \\([^ ]*\\).*/\\1/p' | head -n 1"
QUESTIONS = {
    "debian": {
        "link": LINK,
        "networkctl": f'networkctl status --no-pager "$({LINK})"',
        "netplan": "ls /etc/netplan/50-cloud-init.yaml",
        "ifupdown": (
            "for f in /etc/network/interfaces /etc/network/interfaces.d/*; do "
            '[ -f "$f" ] && printf \'%s\\0\' "$f" && cat "$f" && printf \'\\0\'; done; true'
        ),
        "networking": "systemctl is-enabled networking.service",
        "nm": "systemctl is-active NetworkManager.service",
        "dhclients": "pgrep -a -x 'dhclient|dhcpcd|udhcpc' || true",
    },
    "el": {
        "link": LINK,
        "nm": "systemctl is-active NetworkManager.service",
        "active": "nmcli -t -f NAME,DEVICE connection show --active",
    },
}


def _debian_family(a: dict[str, str]) -> list[str]:
    link = a["link"].strip()
    problems = []
    if not NETPLAN_NETWORK_FILE.search(a["networkctl"]):
        problems.append(
            f"{link} is not configured by systemd-networkd from netplan's file "
            f"(networkctl status: {' '.join(a['networkctl'].split())[:300]})"
        )
    if not a["netplan"].strip():
        problems.append("cloud-init rendered no /etc/netplan/50-cloud-init.yaml")
    parts = a["ifupdown"].split("\0")
    found = [
        f"{path}: {name}"
        for path, text in zip(parts[::2], parts[1::2], strict=False)
        for name in ifupdown_stanzas(text)
    ]
    if found:
        problems.append("ifupdown configures interfaces: " + ", ".join(found))
    if a["networking"].strip() == "enabled":
        problems.append("ifupdown's networking.service is enabled")
    if a["nm"].strip() == "active":
        problems.append("NetworkManager runs beside systemd-networkd")
    if a["dhclients"].strip():
        problems.append(f"a DHCP client runs beside systemd-networkd: {a['dhclients'].strip()}")
    return problems


def _el_family(a: dict[str, str]) -> list[str]:
    link = a["link"].strip()
    if a["nm"].strip() != "active":
        return ["NetworkManager is not running"]
    names = [
        line.rsplit(":", 1)[0] for line in a["active"].splitlines() if line.endswith(f":{link}")
    ]
    if not any(n.startswith("cloud-init") for n in names):
        return [f"{link} is not up through cloud-init's connection (active: {names or 'none'})"]
    return []


FAMILY_CHECKS = {"debian": _debian_family, "el": _el_family}


@check(
    "network-renderer",
    "the clone's network comes from cloud-init through its family's one stack (debian: "
    "netplan and systemd-networkd, no ifupdown stanza or second DHCP client)",
)
def test_renderer(host: Any, spec: TemplateSpec) -> None:
    assert spec.family in RENDERER, f"no network renderer policy for family {spec.family!r}"
    answers = {n: a.stdout for n, a in ask(host, QUESTIONS[spec.family]).items()}
    assert answers["link"].strip(), "the clone has no default route"
    problems = FAMILY_CHECKS[spec.family](answers)
    assert not problems, f"{spec.family} policy ({RENDERER[spec.family]}):\n" + "\n".join(problems)
