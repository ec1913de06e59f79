"""A fixture for the small fake projects the integration tests run the harness on (the fan-out
project, the interrupt matrix): their disks hold no package database, and the publisher refuses
a build without the inventory the `image` fixture reads from one, so this writes a one-package
inventory in its place. Copied into each project beside its conftest, which imports it."""

from __future__ import annotations

import time

import pytest

from harness.inventory import write_inventory
from pkgdb.inventory import Inventory, Package


@pytest.fixture(autouse=True)
def _package_inventory(request: pytest.FixtureRequest) -> None:
    if "build" not in request.fixturenames:
        return
    build = request.getfixturevalue("build")
    harness = request.getfixturevalue("harness")
    pkg = Package("deb", "base-files", "12.4+deb12u8", "amd64", "base-files", "12.4+deb12u8")
    inv = Inventory("dpkg", {"ID": "debian", "VERSION_ID": "12"}, "12.8", [pkg], [], time.time())
    write_inventory(harness.settings.artifacts_dir, build, harness.run_id, inv)
