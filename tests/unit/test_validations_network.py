"""The network-renderer check on canned command output: what passes, and each defect it names
(the booted proof is the mutation table's `ifupdown-stanza`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from core.model import TemplateSpec
from validations import test_network as net

NETWORKCTL = """\
● 2: enp0s2
                   Link File: /usr/lib/systemd/network/99-default.link
                Network File: /run/systemd/network/10-netplan-enp0s2.network
                       State: routable (configured)
"""
SPEC = TemplateSpec("debian13", "debian", "13", {})


@dataclass
class Out:
    stdout: str = ""
    rc: int = 0


class FakeHost:
    """Answers the commands the check runs; `files` maps paths to contents."""

    def __init__(self, **over: Any) -> None:
        self.files = {"/etc/netplan/50-cloud-init.yaml": "network: {version: 2}\n"}
        self.answers = {
            "ip -o route show default": "default via 10.0.2.2 dev enp0s2 proto dhcp\n",
            "networkctl status --no-pager enp0s2": NETWORKCTL,
            "systemctl is-enabled networking.service": "not-found\n",
            "systemctl is-active NetworkManager.service": "inactive\n",
        }
        self.answers.update(over.pop("answers", {}))
        self.files.update(over.pop("files", {}))

    def run(self, command: str) -> Out:
        if command.startswith("sudo cat "):
            return Out(self.files.get(command.split()[2].strip("'"), ""))
        if command.startswith("sudo find "):
            folder = command.split()[2].strip("'")
            return Out("\n".join(p for p in self.files if p.startswith(folder + "/")))
        if command.startswith("pgrep"):
            return Out(self.answers.get("pgrep", ""))
        return Out(self.answers.get(command, ""))

    def file(self, path: str) -> Any:
        return type("F", (), {"exists": path in self.files})()


def test_a_clean_debian_clone_passes() -> None:
    net.test_renderer(FakeHost(), SPEC)


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        (
            FakeHost(
                files={
                    "/etc/network/interfaces": "auto lo\niface lo inet loopback\nallow-hotplug enp0s2\niface enp0s2 inet dhcp\n"
                }
            ),
            "ifupdown configures interfaces: /etc/network/interfaces: enp0s2",
        ),
        (
            FakeHost(
                files={
                    "/etc/network/interfaces.d/50-cloud-init": "auto eth0\niface eth0 inet dhcp\n"
                }
            ),
            "/etc/network/interfaces.d/50-cloud-init: eth0",
        ),
        (
            FakeHost(answers={"pgrep": "612 dhclient"}),
            "a DHCP client runs beside systemd-networkd: 612 dhclient",
        ),
        (
            FakeHost(answers={"systemctl is-active NetworkManager.service": "active\n"}),
            "NetworkManager runs",
        ),
        (
            FakeHost(
                answers={"networkctl status --no-pager enp0s2": "State: routable (unmanaged)"}
            ),
            "enp0s2 is not configured by systemd-networkd from netplan's file",
        ),
    ],
    ids=["ifupdown-stanza", "interfaces-d", "dhclient", "network-manager", "unmanaged"],
)
def test_each_defect_is_named(host: FakeHost, expected: str) -> None:
    with pytest.raises(AssertionError, match="debian policy \\(netplan\\)") as err:
        net.test_renderer(host, SPEC)
    assert expected in str(err.value)


def test_no_default_route_is_said_plainly() -> None:
    with pytest.raises(AssertionError, match="no default route"):
        net.test_renderer(FakeHost(answers={"ip -o route show default": ""}), SPEC)


def test_stanza_parser_ignores_loopback_and_comments() -> None:
    text = "# iface eth9 inet dhcp\nauto lo\niface lo inet loopback\nsource /etc/network/interfaces.d/*\n"
    assert net.ifupdown_stanzas(text) == []
    assert net.ifupdown_stanzas("mapping eth0\n  script x\nallow-hotplug ens3\n") == [
        "eth0",
        "ens3",
    ]
