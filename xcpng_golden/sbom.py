"""`xcpng-golden sbom IMAGE`: the CycloneDX SBOM of an image file, read offline.

The same reader the checks and the session use (validations/offline.py, pkgdb.inventory) and
the same writer the publisher uses (publish/sbom.py), on any raw disk or XVA: to look at what
an image holds before it is published, or to scan one that never will be. The published
builds carry theirs (`sbom.cdx.json` in each build folder).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from core import __version__
from core.commands import Command
from core.errors import ImageDefect, InfrastructureError, UsageError
from core.model import BuildResult
from core.ownership import scratch
from core.settings import Settings
from pkgdb.archive import Archive
from pkgdb.dpkg import DpkgDatabase
from pkgdb.inventory import Inventory, read_inventory
from pkgdb.security import from_security_suite, security_indexes
from publish.sbom import Template, sbom_json


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("image", type=Path, help="a raw disk image or an XVA")
    p.add_argument(
        "--os", dest="os_name", help="catalog name for the top component [ID+VERSION_ID]"
    )
    p.add_argument("--out", type=Path, help="write the SBOM here [standard output]")
    p.add_argument(
        "--security",
        action="store_true",
        help="mark the packages the security suite published (Debian/Ubuntu; reads the "
        "archive through the harness's cache, TEMPLATE_CACHE_DIR)",
    )


def _format(path: Path) -> str:
    with path.open("rb") as fh:
        head = fh.read(512)
    if head[:4] == b"QFI\xfb":
        return "qcow2"
    return "xva" if path.suffix == ".xva" else "raw"


def _read(image_path: Path, security: Archive | None) -> Inventory:
    from validations.offline import open_image
    from validations.packagedb import dpkg_database

    fmt = _format(image_path)
    build = BuildResult(
        os_name=image_path.stem, status="provided", artifact=str(image_path),
        artifact_format=fmt, sha256=None, size=image_path.stat().st_size, log_path=None,
        duration_s=0.0, packer_version=None, plugins={}, inputs_digest=None, template=None,
        var_file=None, built_at=None, platform="local",
    )  # fmt: skip

    def marks(db: DpkgDatabase) -> set[tuple[str, str]]:
        assert security is not None
        indexes, _ = security_indexes(image, db, security)
        return from_security_suite(db.installed(), indexes)

    with scratch("xcpng-sbom") as tmp, open_image(build, tmp) as image:
        return read_inventory(image, dpkg_database(image), marks if security else None)


def run_sbom(args: argparse.Namespace) -> int:
    try:
        if not args.image.is_file():
            raise UsageError(f"{args.image}: no such file; pass a raw disk image or an XVA")
        settings = Settings.from_env()
        archive = (
            Archive(settings.cache_dir / "archive", settings.archive_max_age)
            if args.security
            else None
        )
        started = time.monotonic()
        inv = _read(args.image, archive)
        read_s = time.monotonic() - started
        rel = inv.os_release
        name = args.os_name or f"{rel['ID']}{rel.get('VERSION_ID', '').split('.')[0]}"
        template = Template(
            os_name=name,
            family="debian" if inv.database == "dpkg" else "el",
            os_version=rel.get("VERSION_ID", ""),
            build_id="unpublished",
            inputs_digest=None,
            artifact_name=args.image.name,
            artifact_sha256=None,
            harness_version=__version__,
        )
        started = time.monotonic()
        data = sbom_json(inv, template)  # validated against the CycloneDX 1.6 schema
        write_s = time.monotonic() - started
    except (UsageError, ImageDefect, InfrastructureError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2 if isinstance(e, UsageError) else 1
    if args.out:
        args.out.write_bytes(data)
    else:
        sys.stdout.write(data.decode())
    kernels = ", ".join(k.release for k in inv.kernels) or "none"
    notes = "".join(f"; {n}" for n in inv.notes)
    print(
        f"{args.image}: {len(inv.packages)} packages ({inv.database}), kernel {kernels}, "
        f"{len(json.loads(data)['components'])} components; valid CycloneDX 1.6"
        f"{' -> ' + str(args.out) if args.out else ''} (read {read_s:.1f}s, "
        f"written and validated {write_s:.1f}s){notes}",
        file=sys.stderr,
    )
    return 0


SBOM = Command(
    "sbom",
    "write the CycloneDX SBOM of an image file (read offline)",
    "artifacts/debian12/image.raw --os debian12 --out sbom.cdx.json",
    _arguments,
    run_sbom,
    description=__doc__.splitlines()[0] if __doc__ else "",
)
