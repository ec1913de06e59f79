"""The session's side of the SBOM: the inventory read from the opened image and kept beside the
build's files, recorded in results.json only for this run and this very artifact; a failure to
read it is recorded for the publisher to name, never raised into the checks."""

from __future__ import annotations

import json
from pathlib import Path

from core.model import BuildResult, TemplateSpec
from harness.finish import resolved_inputs
from harness.inventory import inventory_packages, inventory_record, record_inventory
from pkgdb.inventory import Inventory
from tests.support.pkgtrees import debian_tree
from validations.offline_tree import TreeImage


def build(sha: str = "ab" * 32) -> BuildResult:
    return BuildResult(
        os_name="debian12", status="built", artifact="/x/image.raw", artifact_format="raw",
        sha256=sha, size=1, log_path=None, duration_s=1.0, packer_version="1.6.6", plugins={},
        inputs_digest="cd" * 32, template="packer/local", var_file=None, built_at=1.0,
        platform="local",
    )  # fmt: skip


def test_the_inventory_is_recorded_for_this_run_and_artifact(tmp_path: Path) -> None:
    image = TreeImage(debian_tree(tmp_path / "root"))
    arts = tmp_path / "artifacts"
    path = record_inventory(image, build(), arts, "run-1", None)
    doc = json.loads(path.read_text())
    assert (doc["os"], doc["run_id"], doc["artifact_sha256"]) == ("debian12", "run-1", "ab" * 32)
    inv = Inventory.from_json(doc["inventory"])
    assert len(inv.packages) == 4 and inv.kernels[0].release == "6.1.0-28-amd64"
    record = inventory_record(arts, "debian12", "run-1", "ab" * 32)
    assert record is not None and record["path"] == str(path.resolve())
    assert inventory_record(arts, "debian12", "run-2", "ab" * 32) is None  # an earlier run's
    assert inventory_record(arts, "debian12", "run-1", "ef" * 32) is None  # another artifact
    assert inventory_record(arts, "debian13", "run-1", "ab" * 32) is None
    # results.json's package list comes from it, so the clone is not asked again (2 s, TCG)
    listed = inventory_packages(arts, "debian12", "run-1", "ab" * 32)
    assert listed == sorted(f"{p.name}={p.version}" for p in inv.packages) and len(listed) == 4
    assert inventory_packages(arts, "debian12", "run-2", "ab" * 32) is None
    assert inventory_packages(arts, "debian12", "run-1", "ef" * 32) is None


def test_a_failure_to_read_it_is_recorded_not_raised(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc/os-release").write_text("ID=debian\n")
    path = record_inventory(TreeImage(root), build(), tmp_path / "a", "run-1", None)
    doc = json.loads(path.read_text())
    assert doc["error"] == (
        "the image's package database could not be read: the image has neither an installed "
        "dpkg package nor an rpm database"
    )
    assert inventory_record(tmp_path / "a", "debian12", "run-1", "ab" * 32) is not None
    assert inventory_packages(tmp_path / "a", "debian12", "run-1", "ab" * 32) is None


def test_resolved_inputs_name_the_media_of_the_platform() -> None:
    spec = TemplateSpec(
        name="debian12", family="debian", version="12", templates={},
        variables={
            "iso_urls": ["https://cdimage.debian.org/x.iso"],
            "iso_checksum": "file:https://cdimage.debian.org/SHA256SUMS",
            "local_base_suite": "bookworm",
            "local_kernel_package": "linux-image-amd64",
        },
    )  # fmt: skip
    assert resolved_inputs(spec, "xcpng") == {
        "iso_urls": ["https://cdimage.debian.org/x.iso"],
        "iso_checksum": "file:https://cdimage.debian.org/SHA256SUMS",
    }
    assert resolved_inputs(spec, "local") == {
        "base_suite": "bookworm",
        "kernel_package": "linux-image-amd64",
        "mirror": "http://deb.debian.org/debian",
    }
