"""The inputs digest changes when, and only when, an input of the image changes."""

from __future__ import annotations

from pathlib import Path

import pytest

from build.catalog import load_catalog
from build.digest import inputs_digest


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    p = tmp_path / "packer"
    (p / "local").mkdir(parents=True)
    (p / "local" / "template.pkr.hcl").write_text(
        'variable "os_name" {}\nvariable "os_family" {}\nvariable "os_version" {}\n'
        'source "qemu" "vm" { disk_image = true }\nbuild { sources = ["source.qemu.vm"] }\n'
    )
    (p / "local" / "files").mkdir()
    (p / "local" / "files" / "grub.cfg").write_text("set timeout=0\n")
    (p / "xcpng").mkdir()
    (p / "xcpng" / "template.pkr.hcl").write_text(
        'variable "os_name" {}\nvariable "os_family" {}\nvariable "os_version" {}\n'
        'source "xenserver-iso" "vm" { vm_name = "x" }\nbuild { sources = ["source.xenserver-iso.vm"] }\n'
    )
    (p / "xcpng" / "plugins.pkr.hcl").write_text(
        'packer {\n  required_plugins {\n    xenserver = {\n      version = "= 0.9.0"\n'
        '      source = "github.com/vatesfr/xenserver"\n    }\n  }\n}\n'
    )
    (p / "os").mkdir()
    (p / "os" / "debian12.pkrvars.hcl").write_text(
        'os_name = "debian12"\nos_family = "debian"\nos_version = "12"\n'
    )
    (p / "os" / "rocky9.pkrvars.hcl").write_text(
        'os_name = "rocky9"\nos_family = "el"\nos_version = "9"\n'
    )
    (p / "scripts").mkdir()
    (p / "scripts" / "10-update.sh").write_text("apt-get update\n")
    (p / "http" / "debian12").mkdir(parents=True)
    (p / "http" / "debian12" / "preseed.cfg").write_text("d-i foo string bar\n")
    (p / "http" / "rocky9").mkdir(parents=True)
    (p / "http" / "rocky9" / "ks.cfg").write_text("rootpw --lock\n")
    return p


def digest(
    tree: Path,
    platform: str = "local",
    packer: str = "1.6.6",
    extra: dict[str, str] | None = None,
) -> str:
    spec = load_catalog(tree).specs["debian12"]
    return inputs_digest(spec, platform, tree, packer, extra)


@pytest.mark.parametrize(
    "edit",
    [
        "local/template.pkr.hcl",
        "local/files/grub.cfg",
        "os/debian12.pkrvars.hcl",
        "scripts/10-update.sh",
        "http/debian12/preseed.cfg",
    ],
)
def test_editing_any_input_changes_the_digest(tree: Path, edit: str) -> None:
    before = digest(tree)
    with (tree / edit).open("a") as fh:
        fh.write("\n# a one-line change\n")
    assert digest(tree) != before


def test_unrelated_files_do_not_change_it(tree: Path) -> None:
    before = digest(tree)
    (tree / "http" / "rocky9" / "ks.cfg").write_text("changed\n")
    (tree / "os" / "rocky9.pkrvars.hcl").write_text(
        'os_name = "rocky9"\nos_family = "el"\nos_version = "9.4"\n'
    )
    with (tree / "xcpng" / "template.pkr.hcl").open("a") as fh:
        fh.write("# other platform\n")
    assert digest(tree) == before


def test_packer_and_plugin_versions_count(tree: Path) -> None:
    assert digest(tree, packer="1.6.6") != digest(tree, packer="1.11.2")
    before = digest(tree, platform="xcpng")
    text = (tree / "xcpng" / "plugins.pkr.hcl").read_text().replace("0.9.0", "0.9.1")
    (tree / "xcpng" / "plugins.pkr.hcl").write_text(text)
    assert digest(tree, platform="xcpng") != before


def test_extra_facts_count(tree: Path) -> None:
    assert digest(tree, extra={"base": "a"}) != digest(tree, extra={"base": "b"})


def test_digest_is_stable(tree: Path) -> None:
    assert digest(tree) == digest(tree)
    assert len(digest(tree)) == 64
