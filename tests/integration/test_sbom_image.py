"""The SBOM of the good Debian 12 image (the local platform's cached build, read-only): valid
CycloneDX 1.6, one component per package dpkg itself counts as installed in the image's own
database (`dpkg-query --admindir` on a copy of /var/lib/dpkg), the kernel the image boots.

    .venv/bin/pytest -p no:cacheprovider tests/integration/test_sbom_image.py -m slow
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from pkgdb.inventory import read_inventory
from publish.sbom import Template, sbom_json, validation_errors
from validations.offline import Ext4Image, find_root

pytestmark = pytest.mark.slow


def test_the_debian12_image_sbom_matches_its_dpkg_database(
    debian12_raw_disk: Path, tmp_path: Path
) -> None:
    image = Ext4Image(debian12_raw_disk, find_root(debian12_raw_disk))
    inv = read_inventory(image)
    template = Template("debian12", "debian", "12", "unpublished", None, "image.raw", None, "t")
    data = sbom_json(inv, template)
    assert validation_errors(data) == []
    doc = json.loads(data)
    debs = [c for c in doc["components"] if c.get("purl", "").startswith("pkg:deb/debian/")]
    # dpkg's own answer, from the image's database copied out
    admin = image.export("/var/lib/dpkg", tmp_path)
    out = subprocess.run(
        ["dpkg-query", f"--admindir={admin}", "-W", "-f", "${db:Status-Abbrev} ${binary:Package}\n"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    installed = sorted(
        line.split()[1].split(":")[0] for line in out.splitlines() if line[:2] == "ii"
    )
    assert sorted(c["name"] for c in debs) == installed
    assert len(doc["components"]) == len(installed) + len(inv.kernels) + 1  # + the OS
    release = image.listdir("/lib/modules")
    assert [c["version"] for c in doc["components"] if c["name"] == "linux-kernel"] == release
    assert all("distro=debian-12" in c["purl"] for c in debs)
