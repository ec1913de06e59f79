"""Xen guest tools: exactly one agent enabled; on XCP-ng, also seen reporting from outside."""

from __future__ import annotations

import re
from functools import partial
from typing import Any

import pytest

from core.checks import check, skip
from core.model import BootedVM, BuildResult, TemplateSpec
from validations import console, systemd, xendrivers
from validations.offline import OfflineImage, file_text, folder_names

AGENTS = ("xe-linux-distribution.service", "xe-daemon.service", "xen-guest-agent.service")


def enabled_agents(host: Any) -> tuple[list[str], list[str]]:
    """(installed, installed and enabled) agent units, as systemd sees them."""
    known = systemd.units(host, list(AGENTS))
    installed = [n for n, u in known.items() if u.exists]  # masked ones too, as before
    enabled = [
        n for n in installed if known[n].file_state in ("enabled", "enabled-runtime", "alias")
    ]
    return installed, enabled


@check(
    "guest-agent-single", "exactly one Xen guest agent installed and enabled: XCP-ng sees IP and OS"
)
def test_single_agent(host: Any, platform: Any, build: BuildResult) -> None:
    installed, enabled = enabled_agents(host)
    assert len(enabled) <= 1, (
        f"{len(enabled)} guest agents enabled, they fight: {', '.join(enabled)}"
    )
    if not enabled:
        if platform.name == "local" and build.guest_tools in (None, "none"):
            skip(
                "build-has-no-guest-tools",
                f"local build, guest_tools={build.guest_tools!r}; installed: {installed or 'none'}",
            )
        raise AssertionError(
            f"no guest agent enabled (installed: {installed or 'none'}, build guest_tools="
            f"{build.guest_tools!r}); set GUEST_TOOLS_SOURCE for this template"
        )


def _distro_of(spec: TemplateSpec) -> str:
    explicit = spec.variables.get("os_id") or spec.variables.get("os_distro")
    if explicit:
        return str(explicit).lower()
    match = re.match(r"[a-z]+", spec.name.lower())
    return match.group(0) if match else spec.name.lower()


@check(
    "guest-agent-reporting",
    "XCP-ng sees the agent from outside: PV drivers version and the right OS",
)
def test_agent_reporting(platform: Any, spec: TemplateSpec, request: pytest.FixtureRequest) -> None:
    if not platform.has_xen:  # decided before the VM is needed: a failed boot does not change it
        skip("platform-has-no-xen", f"platform {platform.name} has no guest metrics")
    vm: BootedVM = request.getfixturevalue("vm")
    metrics = vm.facts.get("guest_metrics") or {}
    pv = metrics.get("PV_drivers_version") or {}
    assert pv, f"guest metrics report no PV_drivers_version (agent not running?): {metrics!r}"
    os_version = metrics.get("os_version") or {}
    distro = str(os_version.get("distro", "")).lower()
    want = _distro_of(spec)
    assert distro and (distro.startswith(want) or want.startswith(distro)), (
        f"os_version.distro {distro!r} does not match {spec.name} (want {want!r})"
    )
    major = str(os_version.get("major", "")).strip()
    if major:
        assert major == spec.version.split(".")[0], (
            f"os_version.major {major} does not match {spec.name} version {spec.version}"
        )


@check(
    "guest-xen-drivers",
    "every kernel the image can boot has the Xen front-end drivers for network and disks "
    "(xen-netfront, xen-blkfront), and no modprobe.d rule or boot switch keeps them from "
    "loading: the clone works on XCP-ng, not only under QEMU (read offline)",
)
def test_xen_drivers(image: OfflineImage) -> None:
    read, listdir = partial(file_text, image), partial(folder_names, image)

    found = xendrivers.kernel_findings(read, listdir)
    assert found or any(listdir(top) for top in xendrivers.MODULE_DIRS), (
        "no kernel modules folder (/lib/modules, /usr/lib/modules): is this the root filesystem?"
    )
    found += xendrivers.config_findings(read, listdir)
    found += console.boot_config_findings(
        image, lambda text, where, _recovery: xendrivers.cmdline_findings(text, where)
    )
    assert not found, "the clone would miss Xen's PV devices:\n" + "\n".join(found)
