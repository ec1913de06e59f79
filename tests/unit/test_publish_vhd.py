"""The VHD beside the XVA (TEMPLATE_PUBLISH_VHD): the same build folder, its size and sha256 in
metadata.json, the tested disk back byte for byte, from a raw build and from an XVA build; a later
run that asks for a VHD adds it to a build published without one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.files import sha256_file
from core.settings import Settings
from diskformats.vhd.reader import verify, vhd_to_raw
from diskformats.xva.reader import xva_to_raw
from publish import api
from publish.stores.local import LocalStore
from publish.verify import verify_tree
from tests.support.publishing import FAKE_SECRET, fake_os, write_results


def settings(vhd: str) -> Settings:
    return Settings.from_env(
        env={"AWS_SECRET_ACCESS_KEY": FAKE_SECRET, "TEMPLATE_PUBLISH_VHD": vhd}
    )


def folder_of(pub: Path, os_name: str) -> Path:
    return pub / json.loads((pub / os_name / "latest.json").read_text())["folder"]


@pytest.mark.parametrize(("choice", "suffix", "compression"),
                         [("bzip2", ".vhd.bz2", "bzip2"), ("vhd", ".vhd", "none")])  # fmt: skip
def test_raw_build_gets_a_vhd_beside_its_xva(
    tmp_path: Path, choice: str, suffix: str, compression: str
) -> None:
    rec = fake_os(tmp_path, "debian12", size=64 << 20, fmt="raw")
    raw = Path(rec["build"]["artifact"])
    results = write_results(tmp_path, [rec], platform="local")
    pub = tmp_path / "pub"
    report = api.publish_results([results], str(pub), settings(choice), log=lambda _m: None)
    assert report.ok, report.failed
    folder = folder_of(pub, "debian12")
    vhd = folder / f"debian12{suffix}"
    meta = json.loads((folder / "metadata.json").read_text())
    assert meta["vhd"] == {
        "name": vhd.name,
        "format": "vhd",
        "compression": compression,
        "size": vhd.stat().st_size,
        "sha256": sha256_file(vhd),
        "disk_size": 64 << 20,
    }
    assert meta["boot_modes"] == ["uefi"]  # the fake disk has an ESP, no BIOS boot partition
    assert verify(vhd).compression == compression
    back = tmp_path / "back.raw"
    vhd_to_raw(vhd, back)
    assert back.read_bytes() == raw.read_bytes()
    assert (folder / "debian12.xva").is_file()
    assert verify_tree(LocalStore(pub), deep=True) == []
    assert report.published[0].metadata["vhd"]["sha256"] == meta["vhd"]["sha256"]


def test_xva_build_is_unpacked_for_its_vhd(tmp_path: Path) -> None:
    rec = fake_os(tmp_path, "debian12", size=3 << 20)
    results = write_results(tmp_path, [rec])
    pub = tmp_path / "pub"
    report = api.publish_results([results], str(pub), settings("bzip2"), log=lambda _m: None)
    assert report.ok, report.failed
    folder = folder_of(pub, "debian12")
    expected, got = tmp_path / "xva.raw", tmp_path / "vhd.raw"
    xva_to_raw(Path(rec["build"]["artifact"]), expected)
    vhd_to_raw(folder / "debian12.vhd.bz2", got)
    assert got.read_bytes() == expected.read_bytes()


def test_a_later_run_adds_the_vhd_to_a_published_build(tmp_path: Path) -> None:
    rec = fake_os(tmp_path, "debian12", size=32 << 20, fmt="raw")
    results = write_results(tmp_path, [rec], platform="local")
    pub = tmp_path / "pub"
    assert api.publish_results([results], str(pub), settings("none"), log=lambda _m: None).ok
    folder = folder_of(pub, "debian12")
    first = json.loads((folder / "metadata.json").read_text())
    assert "vhd" not in first and first["boot_modes"] == ["uefi"]  # read from the raw disk
    again = api.publish_results([results], str(pub), settings("bzip2"), log=lambda _m: None)
    assert again.ok and again.published[0].reused
    meta = json.loads((folder / "metadata.json").read_text())
    assert meta["vhd"]["sha256"] == sha256_file(folder / "debian12.vhd.bz2")
    third = api.publish_results([results], str(pub), settings("bzip2"), log=lambda _m: None)
    assert third.ok and json.loads((folder / "metadata.json").read_text()) == meta
