"""The SBOM: the CycloneDX 1.6 document written from an inventory (tests/unit/
test_pkgdb_inventory.py's trees) and checked against CycloneDX's own schema, the purls and
licences scanners read, and the diff of two SBOMs."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from pkgdb.inventory import Inventory, Package, read_inventory
from publish.diff import diff_packages
from publish.sbom import (
    SbomError,
    Template,
    build_bom,
    listed_packages,
    purl_of,
    sbom_json,
    validation_errors,
)
from tests.support.pkgtrees import debian_tree, el_tree
from validations.offline_tree import TreeImage
from xcpng_golden import main as cli

TEMPLATE = Template(
    os_name="debian12",
    family="debian",
    os_version="12",
    build_id="20261206T101010Z-0123456789ab",
    inputs_digest="ab" * 32,
    artifact_name="debian12.xva",
    artifact_sha256="cd" * 32,
    harness_version="0.1.0",
)


def inventory(tmp_path: Path) -> Inventory:
    return read_inventory(
        TreeImage(debian_tree(tmp_path)), security=lambda db: {("libssl3", "amd64")}
    )


def test_the_sbom_validates_against_cyclonedx_1_6(tmp_path: Path) -> None:
    inv = inventory(tmp_path)
    data = sbom_json(inv, TEMPLATE)
    assert validation_errors(data) == []
    doc = json.loads(data)
    assert (doc["bomFormat"], doc["specVersion"]) == ("CycloneDX", "1.6")
    root = doc["metadata"]["component"]
    assert (root["type"], root["name"], root["version"]) == (
        "platform", "debian12", TEMPLATE.build_id,
    )  # fmt: skip
    assert root["hashes"] == [{"alg": "SHA-256", "content": TEMPLATE.artifact_sha256}]
    props = {p["name"]: p["value"] for p in root["properties"]}
    assert props["xcpng-golden:inputs-digest"] == TEMPLATE.inputs_digest
    components = doc["components"]
    # one per package, one per kernel, the operating system
    assert len(components) == len(inv.packages) + len(inv.kernels) + 1
    (system,) = [c for c in components if c["type"] == "operating-system"]
    assert (system["name"], system["version"]) == ("debian", "12")
    deps = {d["ref"]: d.get("dependsOn", []) for d in doc["dependencies"]}
    assert deps[root["bom-ref"]] == [system["bom-ref"]]
    assert len(deps[system["bom-ref"]]) == len(inv.packages) + len(inv.kernels)
    by_name = {c["name"]: c for c in components}
    ssl = by_name["libssl3"]
    assert ssl["purl"] == (
        "pkg:deb/debian/libssl3@3.0.15-1~deb12u1?arch=amd64&distro=debian-12&upstream=openssl"
    )
    assert ssl["bom-ref"] == ssl["purl"]
    ssl_props = {p["name"]: p["value"] for p in ssl["properties"]}
    assert ssl_props["xcpng-golden:security-update"] == "true"
    assert ssl_props["aquasecurity:trivy:SrcName"] == "openssl"
    ssh = by_name["openssh-server"]
    assert ssh["version"] == "1:9.2p1-2+deb12u3"
    assert ssh["purl"].startswith("pkg:deb/debian/openssh-server@1:9.2p1-2%2Bdeb12u3?")
    ssh_props = {p["name"]: p["value"] for p in ssh["properties"]}
    assert (ssh_props["aquasecurity:trivy:SrcVersion"], ssh_props["aquasecurity:trivy:SrcEpoch"]) == (
        "9.2p1-2+deb12u3", "1",
    )  # fmt: skip
    assert ssh["licenses"] == [
        {"license": {"id": "BSD-3-Clause", "acknowledgement": "declared"}},
        {"license": {"name": "GPL-2+ with OpenSSL exception", "acknowledgement": "declared"}},
    ]
    assert "licenses" not in by_name["tzdata"]
    assert by_name["linux-kernel"]["version"] == "6.1.0-28-amd64"
    assert by_name["linux-kernel"]["purl"] == "pkg:generic/linux-kernel@6.1.0-28-amd64"


def test_an_rpm_sbom_validates_with_epochs_and_expressions(tmp_path: Path) -> None:
    inv = read_inventory(TreeImage(el_tree(tmp_path)))
    data = sbom_json(inv, TEMPLATE)
    assert validation_errors(data) == []
    by_name = {c["name"]: c for c in json.loads(data)["components"]}
    shadow = by_name["shadow-utils"]
    assert shadow["purl"] == (
        "pkg:rpm/almalinux/shadow-utils@4.9-12.el9?arch=x86_64&distro=almalinux-9&epoch=2"
    )
    assert shadow["version"] == "2:4.9-12.el9"
    assert shadow["licenses"] == [
        {"license": {"name": "BSD and GPLv2+", "acknowledgement": "declared"}}
    ]
    kernel = by_name["kernel-core"]
    assert kernel["licenses"] == [
        {"license": {"id": "GPL-2.0-only", "acknowledgement": "declared"}}
    ]
    assert "upstream=kernel%405.14.0-427.13.1.el9_4" not in kernel["purl"]  # same version
    assert "upstream=kernel" in kernel["purl"]


def test_the_validator_catches_a_broken_document(tmp_path: Path) -> None:
    """The schema check is real: a document CycloneDX refuses is reported (and never
    published: sbom_json raises)."""
    doc = json.loads(sbom_json(inventory(tmp_path), TEMPLATE))
    doc["components"][0]["type"] = "virtual-machine"
    assert validation_errors(json.dumps(doc))
    doc = json.loads(sbom_json(inventory(tmp_path / "b"), TEMPLATE))
    doc["specVersion"] = "1.6"
    doc["components"][1]["unknownField"] = 1
    assert validation_errors(json.dumps(doc))


def test_a_bom_the_library_cannot_validate_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("publish.sbom.validation_errors", lambda _text: ["components: bad"])
    with pytest.raises(SbomError, match="does not validate: components: bad"):
        sbom_json(inventory(tmp_path), TEMPLATE)


def test_purl_of_a_package_whose_source_version_differs() -> None:
    inv = Inventory("dpkg", {"ID": "debian", "VERSION_ID": "12"}, "12.8", [], [], 0.0)
    pkg = Package("deb", "libgcc-s1", "12.2.0-14", "amd64", "gcc-12", "12.2.0-14+b1")
    assert purl_of(pkg, inv).to_string() == (
        "pkg:deb/debian/libgcc-s1@12.2.0-14?arch=amd64&distro=debian-12"
        "&upstream=gcc-12%4012.2.0-14%2Bb1"
    )


def test_listed_packages_and_their_diff(tmp_path: Path) -> None:
    old = Inventory.from_json(inventory(tmp_path / "old").to_json())
    new_packages = [
        Package("deb", "libssl3", "3.0.16-1~deb12u1", "amd64", "openssl", "3.0.16-1~deb12u1",
                security=True),
        Package("deb", "openssh-server", "1:9.2p1-2+deb12u2", "amd64", "openssh",
                "1:9.2p1-2+deb12u2", security=False),
        Package("deb", "tzdata", "2024a-0+deb12u1", "all", "tzdata", "2024a-0+deb12u1"),
        Package("deb", "curl", "7.88.1-10+deb12u8", "amd64", "curl", "7.88.1-10+deb12u8"),
    ]  # fmt: skip
    new = Inventory("dpkg", old.os_release, "12.9", new_packages, old.kernels, 0.0)
    before = listed_packages(sbom_json(old, TEMPLATE))
    after = listed_packages(sbom_json(new, TEMPLATE))
    assert set(before) == {(p.name, p.arch) for p in old.packages}
    changes, unchanged = diff_packages(before, after)
    assert [(c.kind, c.name, c.old, c.new, c.security) for c in changes] == [
        ("upgraded", "libssl3", "3.0.15-1~deb12u1", "3.0.16-1~deb12u1", True),
        ("downgraded", "openssh-server", "1:9.2p1-2+deb12u3", "1:9.2p1-2+deb12u2", None),
        ("added", "curl", None, "7.88.1-10+deb12u8", None),
        ("removed", "linux-image-6.1.0-28-amd64", "6.1.119-1", None, None),
    ]
    assert unchanged == 1
    with pytest.raises(SbomError):
        listed_packages(b"{}")


def test_build_bom_without_an_artifact_digest(tmp_path: Path) -> None:
    """The `sbom` command describes an image not yet published: no XVA digest to give."""
    template = Template("debian12", "debian", "12", "unpublished", None, "image.raw", None, "0.1")
    bom = build_bom(inventory(tmp_path), template)
    assert bom.metadata.component is not None and not bom.metadata.component.hashes


def ext4_image(tree: Path, path: Path) -> Path:
    """The tree as an ext4 filesystem image (mkfs.ext4 -d): what the offline reader reads."""
    subprocess.run(
        ["mkfs.ext4", "-q", "-F", "-L", "rootfs", "-d", str(tree), str(path), "32M"],
        check=True,
        capture_output=True,
    )
    return path


def test_the_sbom_command_reads_an_image_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    image = ext4_image(debian_tree(tmp_path / "root"), tmp_path / "disk.raw")
    out = tmp_path / "sbom.cdx.json"
    assert cli.main(["sbom", str(image), "--os", "debian12", "--out", str(out)]) == 0
    assert validation_errors(out.read_bytes()) == []
    doc = json.loads(out.read_bytes())
    assert doc["metadata"]["component"]["name"] == "debian12"
    assert len([c for c in doc["components"] if c.get("purl", "").startswith("pkg:deb/")]) == 4
    err = capsys.readouterr().err
    assert "4 packages (dpkg), kernel 6.1.0-28-amd64, 6 components; valid CycloneDX 1.6" in err
    assert cli.main(["sbom", str(tmp_path / "nope.raw")]) == 2
    assert capsys.readouterr().err.strip().endswith("no such file; pass a raw disk image or an XVA")
    junk = tmp_path / "junk.raw"
    junk.write_bytes(b"\0" * 65536)
    assert cli.main(["sbom", str(junk)]) == 1
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error: ") and "no partition table and no ext4 filesystem" in line


def test_the_sbom_command_reads_an_xva_as_published(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same reader on the format the store holds (a zstd XVA made from the disk)."""
    from diskformats.xva.writer import raw_to_xva

    image = ext4_image(debian_tree(tmp_path / "root"), tmp_path / "disk.raw")
    xva = tmp_path / "debian12.xva"
    raw_to_xva(image, xva, "debian12-golden", template=True, compression="zstd")
    out = tmp_path / "sbom.cdx.json"
    assert cli.main(["sbom", str(xva), "--out", str(out)]) == 0
    doc = json.loads(out.read_bytes())
    assert validation_errors(out.read_bytes()) == []
    assert doc["metadata"]["component"]["name"] == "debian12"  # ID + VERSION_ID's major
    assert "4 packages (dpkg)" in capsys.readouterr().err
