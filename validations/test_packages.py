"""Packages: what the image's package database says, judged against the distribution's archive.

Debian and Ubuntu are read offline: the image's dpkg database against the archive's indexes,
fetched on the host into the harness's cache (pkgdb.archive), so no `apt-get update` runs in
the guest. EL's pending updates still come from `dnf` in the booted clone (its repository
metadata is not read offline yet): that is a check of its own, `el-security-updates`, so each
check reads one thing, known from its fixtures before it runs (Debian's runs during the boot).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from core.checks import check
from core.errors import InfrastructureError
from pkgdb.archive import Archive
from pkgdb.security import security_updates
from validations import setuid
from validations.offline import OfflineImage
from validations.packagedb import dpkg_database, package_files, verify


@check(
    "system-security-updates",
    "no security update pending for the image's packages, and none that apt would refuse to "
    "install (dpkg holds, apt pins: apt's own policy over the image's configuration); "
    "Debian/Ubuntu, read offline against the security suite, listed in the report and the "
    "published metadata",
)
def test_security_updates(
    image: OfflineImage, archive: Archive, record_property: Callable[[str, object], None]
) -> None:
    report = security_updates(image, dpkg_database(image), archive)
    record_property("security_updates", json.dumps(report.pending))
    problems = report.notes + report.pending + report.held
    assert not problems, (
        f"{len(report.pending)} security update(s) pending (against {', '.join(report.suites)})"
        + ("; and the image keeps apt from installing security updates" if report.held else "")
        + ":\n"
        + "\n".join(problems)
    )


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
    "el-security-updates",
    "no security update pending when the template is validated (EL: dnf updateinfo in the "
    "clone; listed in the report and the published metadata)",
)
def test_security_updates_el(host: Any, record_property: Callable[[str, object], None]) -> None:
    pending = _security_updates_el(host)
    record_property("security_updates", json.dumps(pending))
    assert not pending, f"{len(pending)} security update(s) pending:\n" + "\n".join(pending)


@check(
    "system-setuid",
    "every setuid/setgid file and every file with capabilities is one an installed package "
    "ships that way, unchanged (or that dpkg-statoverride grants)",
)
def test_setuid(image: OfflineImage, archive: Archive) -> None:
    assert image.exists("/etc/passwd"), "no /etc/passwd: is this the root filesystem?"
    files = setuid.special_files(image)
    capped, found = setuid.capability_files(image)
    owned = package_files(image)
    if owned.kind == "rpm":
        found += setuid.rpm_findings(image, files, owned)
        found += setuid.rpm_cap_findings(image, capped, owned)
    else:
        db = dpkg_database(image)
        found += setuid.dpkg_findings(image, files, db, owned, archive)
        found += setuid.dpkg_cap_findings(image, capped, db, owned, archive)
    assert not found, "privilege on disk no package grants:\n" + "\n".join(found)


def integrity_findings(image: OfflineImage) -> list[str]:
    """Package files (conffiles aside: they are the administrator's) whose content is not
    what the package installed. Files whose database records no digest cannot be judged."""
    owned = package_files(image)
    found = []
    for path in verify(image).changed:
        owners = [o for o in owned.owners(path) if o.digest is not None and not o.conffile]
        if owners and not any(o.conffile for o in owned.owners(path)):
            found.append(f"{path}: not the content {owners[0].package} installed")
    return found


@check(
    "system-package-integrity",
    "every file an installed package ships, conffiles aside, holds the content the package "
    "database records (dpkg's md5sums, rpm's digests): no replaced program, library, module, "
    "unit or script (read offline)",
)
def test_package_integrity(image: OfflineImage) -> None:
    assert image.exists("/etc/passwd"), "no /etc/passwd: is this the root filesystem?"
    assert package_files(image).by_path, "no package database in the image: nothing to verify"
    found = integrity_findings(image)
    assert not found, (
        f"{len(found)} package file(s) changed since installed:\n"
        + "\n".join(found[:40])
        + (f"\n... and {len(found) - 40} more" if len(found) > 40 else "")
    )
