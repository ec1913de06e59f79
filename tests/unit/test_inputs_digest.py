"""The inputs digest changes when, and only when, an input of the image changes."""

from __future__ import annotations

from pathlib import Path

import pytest

from build.catalog import load_catalog
from build.inputs_digest import inputs_digest


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
        'source "xenserver-iso" "vm" {\n  vm_name = "x"\n  http_directory = "../http"\n}\n'
        'build { sources = ["source.xenserver-iso.vm"] }\n'
    )
    (p / "xcpng" / "plugins.pkr.hcl").write_text(
        'packer {\n  required_plugins {\n    xenserver = {\n      version = "= 0.9.0"\n'
        '      source = "github.com/vatesfr/xenserver"\n    }\n  }\n}\n'
    )
    (p / "os").mkdir()
    (p / "os" / "debian12.pkrvars.hcl").write_text(
        'os_name = "debian12"\nos_family = "debian"\nos_version = "12"\n'
        'install_config_path = "debian/preseed.cfg"\n'
    )
    (p / "os" / "rocky9.pkrvars.hcl").write_text(
        'os_name = "rocky9"\nos_family = "el"\nos_version = "9"\n'
        'install_config_path = "rhel/ks.cfg"\n'
    )
    (p / "scripts").mkdir()
    (p / "scripts" / "10-update.sh").write_text("apt-get update\n")
    (p / "http" / "debian").mkdir(parents=True)
    (p / "http" / "debian" / "preseed.cfg").write_text("d-i foo string bar\n")
    (p / "http" / "rhel").mkdir(parents=True)
    (p / "http" / "rhel" / "ks.cfg").write_text("rootpw --lock\n")
    (p / "http" / "guest-tools.sh").write_text("apt-get install -y xe-guest-utilities\n")
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
    ("edit", "platform"),
    [
        ("local/template.pkr.hcl", "local"),
        ("local/files/grub.cfg", "local"),
        ("os/debian12.pkrvars.hcl", "local"),
        ("scripts/10-update.sh", "local"),
        ("os/debian12.pkrvars.hcl", "xcpng"),
        ("http/debian/preseed.cfg", "xcpng"),
        ("http/guest-tools.sh", "xcpng"),  # fetched by every family's installer
    ],
)
def test_editing_any_input_changes_the_digest(tree: Path, edit: str, platform: str) -> None:
    before = digest(tree, platform)
    with (tree / edit).open("a") as fh:
        fh.write("\n# a one-line change\n")
    assert digest(tree, platform) != before


def test_installer_files_count_only_where_the_template_serves_them(tree: Path) -> None:
    """packer/local serves no installer file (it starts from a base disk): a preseed edit
    must not rebuild local images; its family's folder counts for xcpng, another's does not."""
    local, xcpng = digest(tree, "local"), digest(tree, "xcpng")
    (tree / "http" / "rhel" / "ks.cfg").write_text("changed\n")
    assert digest(tree, "xcpng") == xcpng
    (tree / "http" / "debian" / "preseed.cfg").write_text("d-i foo string baz\n")
    (tree / "http" / "guest-tools.sh").write_text("changed\n")
    assert digest(tree, "local") == local
    assert digest(tree, "xcpng") != xcpng


def test_unrelated_files_do_not_change_it(tree: Path) -> None:
    before = digest(tree)
    (tree / "http" / "rhel" / "ks.cfg").write_text("changed\n")
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
