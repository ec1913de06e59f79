"""Packages: what the package manager knows about the image, judged against the archive.

Pending security updates are read in the guest for now (apt-get update, dnf updateinfo).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from core.checks import check
from core.errors import InfrastructureError
from core.model import TemplateSpec

_APT_INST = re.compile(r"^Inst (\S+) \[([^\]]+)\] \((\S+) ([^\[]+?) \[", re.M)


def _security_updates_debian(host: Any) -> list[str]:
    with host.sudo():
        update = host.run("apt-get update -q")
        if update.rc != 0 or re.search(
            r"^(Err:|W: Failed to fetch|E: )", update.stdout + update.stderr, re.M
        ):
            raise InfrastructureError(
                f"apt-get update failed on the clone, so pending updates cannot be known: "
                f"{(update.stderr or update.stdout).strip()[-400:]}"
            )
        plan = host.check_output("apt-get -s -o Debug::NoLocking=1 dist-upgrade")
    # Inst libssl3 [3.0.19-1~deb12u2] (3.0.22-1~deb12u2 Debian-Security:12/... [amd64])
    return [
        f"{m.group(1)} {m.group(2)} -> {m.group(3)}"
        for m in _APT_INST.finditer(plan)
        if "-security" in m.group(4).lower() or "debian-security" in m.group(4).lower()
    ]


def _security_updates_el(host: Any) -> list[str]:
    with host.sudo():
        out = host.run("dnf -q --refresh updateinfo list --security --available")
    if out.rc != 0:
        raise InfrastructureError(
            f"dnf updateinfo failed on the clone: {out.stderr.strip()[-400:]}"
        )
    # RLSA-2024:1234 Important/Sec. openssl-1:3.0.7-27.el9.x86_64
    return [" ".join(line.split()[:3]) for line in out.stdout.splitlines() if "/Sec." in line]


@check(
    "system-security-updates",
    "no security update pending when the template is validated (listed in the report and the "
    "published metadata)",
)
def test_security_updates(
    host: Any, spec: TemplateSpec, record_property: Callable[[str, object], None]
) -> None:
    pending = (_security_updates_el if spec.family == "el" else _security_updates_debian)(host)
    record_property("security_updates", json.dumps(pending))
    assert not pending, f"{len(pending)} security update(s) pending:\n" + "\n".join(pending)
