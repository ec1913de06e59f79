"""A cached image with security updates published since its build is rebuilt, not booted.

The cache reuses an image whose inputs are unchanged for --max-image-age (a week by default).
A Debian security advisory published in that week would make the image fail
system-security-updates after a boot of minutes; the same comparison (the image's dpkg
database read offline against the archive's security suite on the host, pkgdb.security) takes
seconds before the boot, and a rebuild picks the updates up. --reuse-with-pending-updates keeps
the image as it is, for re-checking a given artifact.
"""

from __future__ import annotations

from collections.abc import Callable

from core.errors import ImageDefect, InfrastructureError
from core.model import BuildResult, TemplateSpec
from core.ownership import scratch
from pkgdb.archive import Archive
from pkgdb.security import security_updates


def pending_updates_reason(
    archive: Archive,
) -> Callable[[TemplateSpec, BuildResult, Callable[[str], None]], str | None]:
    """The build's `stale_reason`: why a cached Debian-family image must be rebuilt."""

    def reason(spec: TemplateSpec, hit: BuildResult, note: Callable[[str], None]) -> str | None:
        if spec.family != "debian":  # EL's updates are known only in the guest (dnf)
            return None
        from validations.offline import open_image
        from validations.packagedb import dpkg_database

        try:
            with scratch("xcpng-fresh") as tmp, open_image(hit, tmp) as image:
                report = security_updates(image, dpkg_database(image), archive)
        except (InfrastructureError, ImageDefect, OSError) as exc:
            # the archive is unreachable, or the image cannot be read offline: reuse it, and
            # let the checks, which read the same, report it with its class
            note(f"{spec.name}: could not compare the cached image with the archive: {exc}")
            return None
        if not report.pending:
            return None
        shown = ", ".join(report.pending[:3]) + (" ..." if len(report.pending) > 3 else "")
        return f"{len(report.pending)} security update(s) came out since it was built ({shown})"

    return reason
