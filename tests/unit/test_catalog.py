"""The catalog on real-world template shapes, and its usage errors."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from build.catalog import load_catalog
from core.errors import UsageError


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


IDENTITY_VARS = """
variable "os_name" { type = string }
variable "os_family" { type = string }
variable "os_version" { type = string }
variable "iso_url" { default = "" }
variable "disk_size_mb" { default = 8192 }
"""


def test_shared_template_with_var_files_per_os(tmp_path: Path) -> None:
    packer = tmp_path / "packer"
    write(
        packer / "xcpng" / "template.pkr.hcl",
        IDENTITY_VARS
        + """
        source "xenserver-iso" "vm" { iso_url = var.iso_url }
        build { sources = ["source.xenserver-iso.vm"] }
    """,
    )
    write(
        packer / "xcpng" / "plugins.pkr.hcl",
        """
        packer {
          required_version = ">= 1.9.0"
          required_plugins {
            xenserver = {
              version = "= 0.9.0"
              source  = "github.com/vatesfr/xenserver"
            }
          }
        }
    """,
    )
    write(
        packer / "local" / "template.pkr.hcl",
        IDENTITY_VARS
        + """
        variable "supported_families" { default = ["debian"] }
        source "qemu" "vm" { disk_image = true }
        build { sources = ["source.qemu.vm"] }
    """,
    )
    write(
        packer / "os" / "debian12.pkrvars.hcl",
        """
        os_name    = "debian12"
        os_family  = "debian"
        os_version = "12"
        iso_url    = "https://cdimage.debian.org/debian-cd/12.8.0/amd64/iso-cd/debian-12.8.0-amd64-netinst.iso"
        disk_size_mb = 10240
    """,
    )
    write(
        packer / "os" / "rocky9.pkrvars.hcl",
        """
        os_name    = "rocky9"
        os_family  = "el"
        os_version = "9"
    """,
    )
    cat = load_catalog(packer)
    assert cat.names() == ["debian12", "rocky9"]
    deb = cat.specs["debian12"]
    assert (deb.family, deb.version, deb.disk_size_mb) == ("debian", "12", 10240)
    assert set(deb.templates) == {"xcpng", "local"}
    assert deb.templates["xcpng"].plugins == {"xenserver": "= 0.9.0"}
    assert deb.templates["xcpng"].required_version == ">= 1.9.0"
    assert "os_name" in deb.templates["local"].declared
    # the local template only serves the debian family
    assert set(cat.specs["rocky9"].templates) == {"xcpng"}
    assert deb.inferred == ()


def test_defaults_locals_and_several_sources(tmp_path: Path) -> None:
    packer = tmp_path / "packer"
    write(
        packer / "ubuntu2404" / "main.pkr.hcl",
        """
        variable "os_name" {
          type    = string
          default = "ubuntu2404"
        }
        locals {
          os_family  = "debian"
          os_version = "24.04"
          vm_name    = "${var.os_name}-tpl"
        }
        source "null" "a" { communicator = "none" }
        source "file" "b" {
          content = "x"
          target  = "out.txt"
        }
        build { sources = ["source.null.a", "source.file.b"] }
    """,
    )
    spec = load_catalog(packer).specs["ubuntu2404"]
    assert (spec.family, spec.version) == ("debian", "24.04")
    assert spec.templates["any"].sources == ("null.a", "file.b")
    assert spec.inferred == ()


def test_version_only_in_iso_url_is_inferred(tmp_path: Path) -> None:
    packer = tmp_path / "packer"
    write(
        packer / "almalinux9" / "t.pkr.hcl",
        """
        variable "os_name" { default = "almalinux9" }
        variable "os_family" { default = "el" }
        source "null" "a" {
          communicator = "none"
        }
        variable "iso_url" { default = "https://repo.almalinux.org/almalinux/9.4/isos/x86_64/AlmaLinux-9.4-x86_64-boot.iso" }
        build { sources = ["source.null.a"] }
    """,
    )
    spec = load_catalog(packer).specs["almalinux9"]
    assert spec.version == "9.4"
    assert spec.inferred == ("os_version",)


def test_name_and_family_inferred_from_folder(tmp_path: Path) -> None:
    packer = tmp_path / "packer"
    write(
        packer / "rocky9" / "t.pkr.hcl",
        """
        variable "os_version" { default = "9" }
        source "null" "a" { communicator = "none" }
        build { sources = ["source.null.a"] }
    """,
    )
    spec = load_catalog(packer).specs["rocky9"]
    assert (spec.name, spec.family, spec.version) == ("rocky9", "el", "9")
    assert set(spec.inferred) == {"os_name", "os_family"}


def test_auto_var_file_is_merged(tmp_path: Path) -> None:
    packer = tmp_path / "packer"
    write(
        packer / "fedora41" / "t.pkr.hcl",
        IDENTITY_VARS
        + """
        source "null" "a" { communicator = "none" }
        build { sources = ["source.null.a"] }
    """,
    )
    write(
        packer / "fedora41" / "identity.auto.pkrvars.hcl",
        """
        os_name = "fedora41"
        os_family = "el"
        os_version = "41"
    """,
    )
    assert load_catalog(packer).specs["fedora41"].version == "41"


@pytest.mark.parametrize(
    ("var_file", "message"),
    [
        ('os_family = "debian"\nos_version = "12"\n', "no os_name"),
        ('os_name = "debian12"\nos_family = "debian"\n', "no os_version"),
        ('os_name = "debian12"\nos_family = "el"\nos_version = "12"\n', "contradictory identity"),
        ('os_name = "debian12"\nos_family = "bsd"\nos_version = "12"\n', "is not one of"),
        (
            'os_name = "debian12"\nos_family = "debian"\nos_version = "11"\n'
            'iso_url = "https://x/debian-12.8.0-amd64-netinst.iso"\n',
            "ISO URL says '12.8.0'",
        ),
        ('os_name = var.x\nos_family = "debian"\nos_version = "12"\n', "literal string"),
    ],
)
def test_bad_identity_is_a_usage_error(tmp_path: Path, var_file: str, message: str) -> None:
    packer = tmp_path / "packer"
    write(
        packer / "tpl" / "t.pkr.hcl",
        IDENTITY_VARS
        + """
        source "null" "a" { communicator = "none" }
        build { sources = ["source.null.a"] }
    """,
    )
    vf = write(packer / "os" / "x.pkrvars.hcl", var_file)
    with pytest.raises(UsageError, match=message) as err:
        load_catalog(packer)
    assert str(vf) in str(err.value)


def test_malformed_hcl_names_file_and_line(tmp_path: Path) -> None:
    packer = tmp_path / "packer"
    bad = write(packer / "debian12" / "t.pkr.hcl", 'variable "os_name" {\n  default = \n}\n')
    with pytest.raises(UsageError) as err:
        load_catalog(packer)
    assert f"{bad}:2:" in str(err.value)
    assert "malformed HCL" in str(err.value)


def test_unknown_os_lists_known_ones(tmp_path: Path) -> None:
    packer = tmp_path / "packer"
    for name, fam in (("debian12", "debian"), ("rocky9", "el")):
        write(
            packer / name / "t.pkr.hcl",
            f"""
            variable "os_name" {{ default = "{name}" }}
            variable "os_family" {{ default = "{fam}" }}
            variable "os_version" {{ default = "1" }}
            source "null" "a" {{ communicator = "none" }}
            build {{ sources = ["source.null.a"] }}
        """,
        )
    cat = load_catalog(packer)
    with pytest.raises(UsageError, match=r"unknown OS centos7 in --os; known: debian12, rocky9"):
        cat.select("debian12,centos7")
    assert [s.name for s in cat.select("all")] == ["debian12", "rocky9"]
    assert [s.name for s in cat.select("rocky9, debian12")] == ["rocky9", "debian12"]


def test_duplicate_os_for_one_platform_is_refused(tmp_path: Path) -> None:
    packer = tmp_path / "packer"
    for folder in ("a", "b"):
        write(
            packer / folder / "t.pkr.hcl",
            """
            variable "os_name" { default = "debian12" }
            variable "os_family" { default = "debian" }
            variable "os_version" { default = "12" }
            source "null" "a" { communicator = "none" }
            build { sources = ["source.null.a"] }
        """,
        )
    with pytest.raises(UsageError, match="two templates for platform any"):
        load_catalog(packer)


def test_missing_packer_dir(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="does not exist"):
        load_catalog(tmp_path / "nope")


def test_repository_catalog_loads() -> None:
    """The project's own packer/ tree must always parse."""
    root = Path(__file__).resolve().parents[2]
    cat = load_catalog(root / "packer")
    assert "debian12" in cat.names()
    spec = cat.specs["debian12"]
    assert spec.family == "debian"
    assert {"xcpng", "local"} <= set(spec.templates)


def test_a_template_refuses_an_os_whose_var_file_lacks_what_it_requires(tmp_path: Path) -> None:
    packer = tmp_path / "packer"
    write(
        packer / "local" / "template.pkr.hcl",
        IDENTITY_VARS
        + """
        variable "supported_families" { default = ["debian"] }
        variable "required_os_variables" { default = ["local_base_suite"] }
        variable "local_base_suite" { default = "" }
        source "qemu" "vm" { disk_image = true }
        build { sources = ["source.qemu.vm"] }
    """,
    )
    write(
        packer / "xcpng" / "template.pkr.hcl",
        IDENTITY_VARS
        + """
        source "xenserver-iso" "vm" { http_directory = "../http" }
        build { sources = ["source.xenserver-iso.vm"] }
    """,
    )
    write(
        packer / "os" / "debian13.pkrvars.hcl",
        'os_name = "debian13"\nos_family = "debian"\nos_version = "13"\n'
        'local_base_suite = "trixie"\n',
    )
    write(
        packer / "os" / "ubuntu2404.pkrvars.hcl",
        'os_name = "ubuntu2404"\nos_family = "debian"\nos_version = "24.04"\n',
    )
    write(
        packer / "os" / "rocky9.pkrvars.hcl",
        'os_name = "rocky9"\nos_family = "el"\nos_version = "9"\n',
    )
    cat = load_catalog(packer)
    # another family: the template's supported_families is the rule the message names
    rocky = cat.specs["rocky9"]
    assert set(rocky.templates) == {"xcpng"}
    with pytest.raises(UsageError, match=r"rocky9 cannot be built on the local platform: "):
        rocky.template_for("local")
    assert rocky.refused == {
        "local": "names family el, which packer/local does not build "
        "(its supported_families: debian)"
    }
    ubuntu = cat.specs["ubuntu2404"]
    assert set(ubuntu.templates) == {"xcpng"}
    assert ubuntu.refused == {"local": "sets no local_base_suite, which packer/local needs"}
    with pytest.raises(UsageError) as err:
        ubuntu.template_for("local")
    assert str(err.value) == (
        f"ubuntu2404 cannot be built on the local platform: its var file "
        f"{packer / 'os' / 'ubuntu2404.pkrvars.hcl'} sets no local_base_suite, which "
        "packer/local needs; choose another --platform, or check an existing artifact with --xva"
    )
    assert ubuntu.template_for("xcpng").serves_installer is True
    assert cat.specs["debian13"].template_for("local").serves_installer is False
    # `all` means what the platform can build; without a platform, everything
    assert [s.name for s in cat.select("all", "local")] == ["debian13"]
    assert [s.name for s in cat.select("all", "xcpng")] == ["debian13", "rocky9", "ubuntu2404"]
    assert [s.name for s in cat.select("all")] == ["debian13", "rocky9", "ubuntu2404"]
    assert [s.name for s in cat.select("ubuntu2404", "local")] == ["ubuntu2404"]  # refused later
