"""Each checked image's package inventory, for the SBOM the publish step writes.

Read offline from the artifact the checks ran on (validations/offline.py's reader, the dpkg
database the package checks already read, pkgdb.inventory), once the image is open, and kept
as `<artifacts>/<os>/inventory.json` with the run id and the artifact's sha256, so the publish
step (a separate CI step, or --publish) can tell it belongs to the build it publishes. A
failure to read it is recorded in the same file, not raised: it is not a check of the image,
and the publisher refuses an OS without a good inventory with that very message.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.errors import ImageDefect, InfrastructureError
from core.files import read_json, sha256_file, write_json_atomic
from core.model import BuildResult
from pkgdb.archive import Archive
from pkgdb.dpkg import DpkgDatabase
from pkgdb.inventory import Inventory, read_inventory
from pkgdb.security import from_security_suite, security_indexes
from validations.packagedb import dpkg_database

FILE = "inventory.json"


def inventory_path(artifacts_dir: Path, os_name: str) -> Path:
    return artifacts_dir / os_name / FILE


def record_inventory(
    image: Any, build: BuildResult, artifacts_dir: Path, run_id: str, archive: Archive | None
) -> Path:
    """Write the image's inventory (or why it could not be read) beside the build's files."""

    def security(db: DpkgDatabase) -> set[tuple[str, str]]:
        assert archive is not None
        indexes, _report = security_indexes(image, db, archive)
        return from_security_suite(db.installed(), indexes)

    try:
        db = dpkg_database(image)
        inv = read_inventory(image, db, security if archive is not None else None)
    except (ImageDefect, InfrastructureError, OSError, ValueError) as e:
        return write_inventory(artifacts_dir, build, run_id, error=str(e))
    return write_inventory(artifacts_dir, build, run_id, inv)


def write_inventory(
    artifacts_dir: Path,
    build: BuildResult,
    run_id: str,
    inventory: Inventory | None = None,
    error: str | None = None,
) -> Path:
    """`<artifacts>/<os>/inventory.json`: the inventory of this build's artifact in this run,
    or why it could not be read."""
    doc: dict[str, Any] = {"os": build.os_name, "run_id": run_id, "artifact_sha256": build.sha256}
    if inventory is not None:
        doc["inventory"] = inventory.to_json()
    else:
        doc["error"] = f"the image's package database could not be read: {error}"
    path = inventory_path(artifacts_dir, build.os_name)
    write_json_atomic(path, doc)
    return path


def _this_run(
    artifacts_dir: Path, os_name: str, run_id: str, artifact_sha256: str | None
) -> dict[str, Any] | None:
    """The inventory document this session wrote for this very artifact, or None."""
    doc = read_json(inventory_path(artifacts_dir, os_name))
    if not isinstance(doc, dict) or doc.get("run_id") != run_id:
        return None
    if not artifact_sha256 or doc.get("artifact_sha256") != artifact_sha256:
        return None
    return doc


def inventory_packages(
    artifacts_dir: Path, os_name: str, run_id: str, artifact_sha256: str | None
) -> list[str] | None:
    """results.json's `packages` (`name=version`, sorted) from the inventory this session read
    offline for this very artifact; None when there is none (then the clone is asked)."""
    doc = _this_run(artifacts_dir, os_name, run_id, artifact_sha256)
    if doc is None or "inventory" not in doc:
        return None
    inv = Inventory.from_json(doc["inventory"])
    return sorted(f"{p.name}={p.version}" for p in inv.packages)


def inventory_record(
    artifacts_dir: Path, os_name: str, run_id: str, artifact_sha256: str | None
) -> dict[str, str] | None:
    """results.json's `inventory` of one OS: the file this session wrote for this very
    artifact (path and sha256), None when there is none."""
    if _this_run(artifacts_dir, os_name, run_id, artifact_sha256) is None:
        return None
    path = inventory_path(artifacts_dir, os_name)
    return {"path": str(path.resolve()), "sha256": sha256_file(path)}
