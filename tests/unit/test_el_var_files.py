"""The EL var files: what they pin, what they type at the boot prompt, what the template
accepts, and that one more var file is all an OS of the family needs.

None of this can be built here (anaconda and the xenserver-iso plugin need a pool); what can be
held statically is: every value is a variable packer/xcpng declares, the source's attributes
are the plugin's, the ISO and its checksum file come from one pinned release folder (or, for
CentOS Stream, its rolling `latest` with its own checksum), the boot command points anaconda at
the one EL kickstart and a package repository and carries no secret.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from build.catalog import load_catalog, parse_hcl
from validations.expected import EL_SECURITY, EXPECTED, expected_checks

REPO = Path(__file__).resolve().parents[2]
PACKER = REPO / "packer"
EL_NAMES = (
    "almalinux9",
    "almalinux10",
    "rocky9",
    "rocky10",
    "centos-stream9",
    "centos-stream10",
    "fedora44",
)


def _declared(folder: Path) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for f in sorted(folder.glob("*.pkr.hcl")):
        for block in parse_hcl(f).get("variable", []):
            for name, body in block.items():
                out[name.strip('"')] = body
    return out


def _var_file(name: str) -> dict[str, Any]:
    return parse_hcl(PACKER / "os" / f"{name}.pkrvars.hcl")


def test_the_catalog_lists_the_el_fleet() -> None:
    catalog = load_catalog(PACKER)
    el = sorted(n for n, s in catalog.specs.items() if s.family == "el")
    assert el == sorted(EL_NAMES)
    for name in EL_NAMES:
        spec = catalog.specs[name]
        assert set(spec.templates) == {"xcpng"}, "packer/local builds Debian only"
        assert not spec.inferred, f"{name}: identity only inferred ({spec.inferred})"


def test_list_os_shows_the_el_releases() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--list-os", "-p", "no:cacheprovider"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
        env={k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    rows = {line.split()[0]: line.split() for line in done.stdout.splitlines() if line.strip()}
    for name in EL_NAMES:
        assert rows[name][1] == "el", rows[name]
        assert "xcpng=packer/xcpng" in " ".join(rows[name]), rows[name]


@pytest.mark.parametrize("name", EL_NAMES)
def test_every_value_is_declared_by_the_production_template(name: str) -> None:
    values = _var_file(name)
    declared = _declared(PACKER / "xcpng")
    assert not set(values) - set(declared), (
        f"undeclared in packer/xcpng: {set(values) - set(declared)}"
    )
    required = {n for n, body in declared.items() if "default" not in body}
    set_by_platform = {
        "remote_host", "remote_username", "remote_password", "network_name",
        "build_password", "vm_name", "output_directory", "run_id",
    }  # fmt: skip
    assert required - set_by_platform <= set(values), required - set_by_platform - set(values)


@pytest.mark.parametrize("name", EL_NAMES)
def test_iso_and_checksum_are_pinned_together(name: str) -> None:
    v = _var_file(name)
    (url,), checksum = v["iso_urls"], v["iso_checksum"]
    assert url.startswith("https://") and url.endswith(".iso")
    assert checksum.startswith("file:https://"), "the release's published checksum file"
    folder = url.rsplit("/", 1)[0]
    assert checksum.removeprefix("file:").rsplit("/", 1)[0] == folder, "checksum beside the ISO"
    filename = url.rsplit("/", 1)[1]
    major = v["os_version"]
    if name.startswith("centos-stream"):  # rolling: its own `latest` and that file's checksum
        assert "-latest-" in filename and checksum.endswith(filename + ".SHA256SUM")
    elif name.startswith("fedora"):  # release folders never change; the compose id is pinned
        assert f"/releases/{major}/" in url and re.search(rf"-{major}-1\.\d+\.iso$", filename)
    else:  # the minor release's folder, not the moving major one
        minor = re.search(rf"-({major}\.\d+)-x86_64-boot\.iso$", filename)
        assert minor, filename
        assert f"/{minor.group(1)}/isos/" in url, f"{name}: pin the {minor.group(1)} folder"
    assert v["os_family"] == "el" and name.startswith(re.sub(r"\d+$", "", name))


@pytest.mark.parametrize("name", EL_NAMES)
def test_boot_command_points_anaconda_at_the_el_kickstart(name: str) -> None:
    v = _var_file(name)
    assert v["install_config_path"] == "el/ks.cfg"
    assert (PACKER / "http" / v["install_config_path"]).is_file()
    typed = "".join(v["boot_command"])
    assert "inst.ks=" not in typed, "the template types the kickstart's address (installer_args)"
    template = (PACKER / "xcpng" / "xenserver.pkr.hcl").read_text()
    assert '"inst.ks=${local.http_base}/${var.install_config_path} "' in template
    repo = re.search(r"inst\.repo=(\S+)", typed)
    assert repo and repo.group(1).startswith("https://") and repo.group(1).endswith("/os/")
    assert v["firmware"] == "uefi" and typed.startswith("<wait><up>") and "e<wait><down>" in typed
    suffix = "".join(v["boot_command_suffix"])
    assert "x<wait><leftCtrlOff>" in suffix or "x<leftCtrlOff>" in suffix or "<F10>" in suffix
    assert "password" not in typed.lower() and "template_build" not in typed
    assert v["guest_tools_source"] == "package"


def test_an_el_os_is_one_more_var_file(tmp_path: Path) -> None:
    """Fedora 43 (names verified in chef/bento) added to a copy of packer/ with one file."""
    copy = tmp_path / "packer"
    shutil.copytree(PACKER, copy)
    text = (PACKER / "os" / "fedora44.pkrvars.hcl").read_text()
    text = text.replace('"fedora44"', '"fedora43"').replace(
        'os_version   = "44"', 'os_version   = "43"'
    )
    text = text.replace("/releases/44/", "/releases/43/").replace("-44-1.7", "-43-1.6")
    (copy / "os" / "fedora43.pkrvars.hcl").write_text(text)
    changed = sorted(
        str(p.relative_to(copy))
        for p in copy.rglob("*")
        if p.is_file() and not (PACKER / p.relative_to(copy)).exists()
    )
    assert changed == ["os/fedora43.pkrvars.hcl"]
    spec = load_catalog(copy).specs["fedora43"]
    assert (spec.family, spec.version, set(spec.templates)) == ("el", "43", {"xcpng"})
    assert set(EL_SECURITY) <= set(expected_checks(spec.family))
    ks = copy / "http" / spec.variables["install_config_path"]
    ksvalidator = Path(sys.executable).with_name("ksvalidator")
    done = subprocess.run([str(ksvalidator), "-v", "F43", str(ks)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout
    assert "Fedora-Server-netinst-x86_64-43-1.6.iso" in spec.variables["iso_urls"][0]


def test_el_checks_are_collected_for_el_templates_only() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--os", "debian12,rocky9", "--platform", "xcpng",
         "--collect-only", "-q", "-p", "no:cacheprovider"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
        env={k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    el_items = [line for line in done.stdout.splitlines() if "test_el_security.py::" in line]
    assert len(el_items) == len(EL_SECURITY) and all("[rocky9]" in i for i in el_items)
    # each OS drops the checks only the other family expects (EL's, and Debian's offline updates)
    only = set(EXPECTED["el"]) ^ set(EXPECTED["debian"])
    assert f"({len(only)} deselected)" in done.stdout
    assert "test_trust.py::test_apt[debian12]" in done.stdout
    assert "test_trust.py::test_dnf[rocky9]" in done.stdout
    assert "test_trust.py::test_apt[rocky9]" not in done.stdout
    assert "test_ssh.py::test_crypto[debian12]" in done.stdout
