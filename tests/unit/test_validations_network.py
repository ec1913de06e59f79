"""The network-renderer check on canned command output: what passes, and each defect it names
(the booted proof is the mutation table's `ifupdown-stanza`)."""

from __future__ import annotations

import pytest

from validations import test_network as net

NETWORKCTL = """\
● 2: enp0s2
                   Link File: /usr/lib/systemd/network/99-default.link
                Network File: /run/systemd/network/10-netplan-enp0s2.network
                       State: routable (configured)
"""


CLEAN = {
    "link": "enp0s2\n",
    "networkctl": NETWORKCTL,
    "netplan": "/etc/netplan/50-cloud-init.yaml\n",
    "ifupdown": "/etc/network/interfaces\0# ifupdown is not used\nsource /etc/network/interfaces.d/*\n\0",
    "networking": "not-found\n",
    "nm": "inactive\n",
    "dhclients": "",
}


def _answers(**over: str) -> dict[str, str]:
    return {**CLEAN, **over}


def test_a_clean_debian_clone_passes() -> None:
    assert net.FAMILY_CHECKS["debian"](_answers()) == []
    assert set(CLEAN) == set(net.QUESTIONS["debian"]), "the test answers every question"


@pytest.mark.parametrize(
    ("answers", "expected"),
    [
        (
            _answers(ifupdown="/etc/network/interfaces\0auto lo\niface lo inet loopback\n"
                     "allow-hotplug enp0s2\niface enp0s2 inet dhcp\n\0"),
            "ifupdown configures interfaces: /etc/network/interfaces: enp0s2",
        ),
        (
            _answers(ifupdown="/etc/network/interfaces.d/50-cloud-init\0auto eth0\n"
                     "iface eth0 inet dhcp\n\0"),
            "/etc/network/interfaces.d/50-cloud-init: eth0",
        ),
        (_answers(dhclients="612 dhclient"), "a DHCP client runs beside systemd-networkd: 612 dhclient"),
        (_answers(nm="active\n"), "NetworkManager runs"),
        (
            _answers(networkctl="State: routable (unmanaged)"),
            "enp0s2 is not configured by systemd-networkd from netplan's file",
        ),
        (_answers(netplan=""), "cloud-init rendered no /etc/netplan/50-cloud-init.yaml"),
        (_answers(networking="enabled\n"), "ifupdown's networking.service is enabled"),
    ],
    ids=["ifupdown-stanza", "interfaces-d", "dhclient", "network-manager", "unmanaged",
         "no-netplan", "networking-service"],
)  # fmt: skip
def test_each_defect_is_named(answers: dict[str, str], expected: str) -> None:
    problems = net.FAMILY_CHECKS["debian"](answers)
    assert any(expected in p for p in problems), problems


def test_el_clone_must_be_up_through_cloud_init() -> None:
    el = {"link": "eth0\n", "nm": "active\n", "active": "cloud-init eth0:eth0\nlo:lo\n"}
    assert net.FAMILY_CHECKS["el"](el) == []
    assert net.FAMILY_CHECKS["el"]({**el, "active": "Wired connection 1:eth0\n"})
    assert net.FAMILY_CHECKS["el"]({**el, "nm": "inactive\n"}) == ["NetworkManager is not running"]


def test_stanza_parser_ignores_loopback_and_comments() -> None:
    text = "# iface eth9 inet dhcp\nauto lo\niface lo inet loopback\nsource /etc/network/interfaces.d/*\n"
    assert net.ifupdown_stanzas(text) == []
    assert net.ifupdown_stanzas("mapping eth0\n  script x\nallow-hotplug ens3\n") == [
        "eth0",
        "ens3",
    ]
