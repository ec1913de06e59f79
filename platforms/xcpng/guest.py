"""Waiting for a started VM: an IP from its guest metrics, then an SSH banner on that IP.

Guest metrics are published by the guest tools (xe-guest-utilities or xen-guest-agent) through
xenstore; a VM without them never reports, so that is what a timeout blames. Link-local
addresses (169.254.*) are ignored: they mean DHCP has not answered yet.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from typing import Any

from core.errors import ImageDefect, InfrastructureError
from core.ssh import ssh_banner
from core.waiting import WaitTimeout, wait_for
from platforms.reach import OK, SETTLED_LOGIN, SETTLED_LOGIN_TIMEOUT_S, Diagnosis, Target, observe
from platforms.xcpng.client import Xapi

log = logging.getLogger("platforms.xcpng")
NULL = "OpaqueRef:NULL"


def usable_ip(networks: dict[str, str]) -> str | None:
    """The first non-link-local address, IPv4 keys first (`0/ip`, `0/ipv4/0`, then IPv6)."""
    keys = sorted(networks, key=lambda k: ("ipv6" in k, k))
    for key in keys:
        try:
            addr = ipaddress.ip_address(str(networks[key]).strip())
        except ValueError:
            continue
        if not addr.is_link_local and not addr.is_unspecified:
            return str(addr)
    return None


def guest_facts(xapi: Xapi, vm: str) -> dict[str, Any]:
    gm = xapi.call("VM.get_guest_metrics", vm)
    if gm == NULL:
        return {"PV_drivers_version": {}, "os_version": {}, "networks": {}}
    rec = xapi.call("VM_guest_metrics.get_record", gm)
    return {k: dict(rec.get(k) or {}) for k in ("PV_drivers_version", "os_version", "networks")}


def wait_for_ip(xapi: Xapi, vm: str, name: str, timeout: float, poll: float = 2.0) -> str:
    """The VM's first usable address from its guest metrics; a timeout blames the guest tools
    (no metrics at all) or DHCP (only link-local addresses)."""
    reported: list[dict[str, str]] = []  # the latest networks, once guest metrics exist

    def address() -> str | None:
        gm = xapi.call("VM.get_guest_metrics", vm)
        if gm == NULL:
            return None
        reported[:] = [dict(xapi.call("VM_guest_metrics.get_networks", gm) or {})]
        return usable_ip(reported[0])

    try:
        return wait_for(address, what=f"{name}'s IP", timeout=timeout, interval=poll)
    except WaitTimeout:
        pass
    if not reported:
        raise ImageDefect(
            f"{name}: no guest metrics after {timeout:.0f}s, so no IP: the guest tools "
            "(xe-guest-utilities or xen-guest-agent) are not running in the image, or it did "
            "not boot; check the template's Xen tools step and the VM console"
        )
    addresses = sorted(reported[0].values()) or "no addresses"
    raise InfrastructureError(
        f"{name}: the guest tools report only {addresses} after "
        f"{timeout:.0f}s (169.254.* is link-local): DHCP did not answer on the VM's network; "
        "check XCPNG_NETWORK"
    )


def wait_for_ssh(address: str, port: int, name: str, timeout: float, poll: float = 2.0) -> str:
    """sshd's banner on the address: a wait for the VM, not a retry of a flaky call."""
    failure: OSError | None = None

    def banner() -> str | None:
        nonlocal failure
        try:
            return ssh_banner(address, port)
        except OSError as exc:
            failure = exc
            return None

    try:
        return wait_for(banner, what=f"SSH on {address}:{port}", timeout=timeout, interval=poll)
    except WaitTimeout:
        raise ImageDefect(
            f"{name}: SSH on {address}:{port} not up after {timeout:.0f}s ({failure}); the image's "
            "sshd did not start or its firewall blocks port 22"
        ) from None


def wait_for_login(
    target: Target, name: str, timeout: float, address_since: float, poll: float = 2.0
) -> None:
    """A login with the seed's key once cloud-init has finished the first boot, as on the local
    platform, or the certain reason there will be none (reach.py): on a pool there is no serial
    console to read, so the SSH side alone is judged."""
    diagnosis = Diagnosis(f"{name} on {target.address}:{target.port}")

    def logged_in() -> bool:
        obs = observe(target, SETTLED_LOGIN, SETTLED_LOGIN_TIMEOUT_S)
        if obs.login == OK:
            return True
        cause = diagnosis.cause(time.monotonic(), obs, None, address_since=address_since)
        if cause:
            raise ImageDefect(cause)
        return False

    try:
        wait_for(logged_in, what=f"a login on {target.address}", timeout=timeout, interval=poll)
    except WaitTimeout:
        raise ImageDefect(
            f"{name}: no SSH login on {target.address}:{target.port} within {timeout:.0f} s "
            f"({diagnosis.summary()})"
        ) from None
