"""What the xenserver Packer plugin needs from the network and the pool user, checked from the
runner in preflight (vatesfr/packer-plugin-xenserver 0.11.4):

- SSH (22) to the host the build VM runs on, as XCPNG_USERNAME with its password: the plugin
  reads the runner's own address from `$SSH_CLIENT` there ("Error detecting local IP" when it
  cannot), and tunnels the build VM's SSH through it;
- HTTPS (443) to that host: the VM's console (the boot command is typed over VNC through XAPI's
  `/console`, on the VM's resident host, not the master);
- any host may run the VM, so every host of the pool is checked;
- a pool user that can SSH to the hosts: the pool's local root. An RBAC or AD subject logs in to
  XAPI but not to dom0.

Both ports are probed in parallel with a short timeout; each failure is one line.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from core.ssh import ssh_banner
from platforms.xcpng.client import Xapi

HOST_PORTS: Mapping[str, int] = {"ssh": 22, "https": 443}
WHY = {
    "ssh": "the plugin logs in there to find the runner's address and to reach the build VM",
    "https": "the plugin types the boot command on the VM's console through it",
}
TIMEOUT = 5.0


def pool_hosts(xapi: Xapi) -> dict[str, str]:
    """Every host of the pool: name -> management address."""
    records: dict[str, Any] = xapi.call("host.get_all_records")
    return {
        str(r.get("name_label") or ref): str(r.get("address", "")) for ref, r in records.items()
    }


def _probe(kind: str, address: str, port: int, timeout: float) -> str | None:
    try:
        if kind == "ssh":
            ssh_banner(address, port, timeout=timeout)
        else:
            socket.create_connection((address, port), timeout=timeout).close()
    except OSError as exc:
        return exc.strerror or str(exc) or type(exc).__name__
    return None


def unreachable(
    hosts: Mapping[str, str],
    ports: Mapping[str, int] = HOST_PORTS,
    timeout: float = TIMEOUT,
) -> list[str]:
    """One line per host port the runner cannot reach."""
    jobs = [
        (name, addr, kind, port) for name, addr in hosts.items() for kind, port in ports.items()
    ]
    with ThreadPoolExecutor(max_workers=min(16, max(len(jobs), 1))) as pool:
        results = list(pool.map(lambda j: _probe(j[2], j[1], j[3], timeout), jobs))
    return [
        f"host {name} ({addr}): {kind.upper()} port {port} unreachable from this runner "
        f"({why}); {WHY[kind]}: open it from the runner to every host of the pool"
        for (name, addr, kind, port), why in zip(jobs, results, strict=True)
        if why is not None
    ]


def user_problem(xapi: Xapi) -> str | None:
    """None when XCPNG_USERNAME is the pool's local superuser (root), who can SSH to dom0."""
    if xapi.call("session.get_is_local_superuser", xapi.handle):
        return None
    return (
        f"XCPNG_USERNAME {xapi.username!r} is an RBAC or AD subject, not the pool's local root: "
        "the Packer plugin logs in to each host over SSH as this user and fails with "
        "'Error detecting local IP'; use root"
    )
