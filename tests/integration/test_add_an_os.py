"""Adding an OS of a known family is one var file (docs/fleet/adding-an-os.md): in a copy of packer/,
a new var file alone makes the OS listed, digested, statically validated and checked, with no
edit to Python, the shared templates, the installer files or the tests."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from build.catalog import load_catalog
from build.inputs_digest import inputs_digest
from platforms.local import basedisk
from tests.support import template_lint as lint

REPO = Path(__file__).resolve().parents[2]
# A Debian after trixie and an Ubuntu LTS after 26.04, written the way an operator would: a
# copy of the newest var file of the family with its values changed.
NEW_OSES: dict[str, tuple[str, dict[str, str]]] = {
    "debian14": (
        "debian13",
        {
            '"debian13"': '"debian14"',
            'os_version   = "13"': 'os_version   = "14"',
            "13.7.0": "14.1.0",
            '"trixie"': '"forky"',
            '"Debian Trixie 13"': '"Generic Linux UEFI"',
            "a7ef94ac2fb9a7fec454552abd629b7cc9d5155c886165a45649f5ce6167e355": "1" * 64,
        },
    ),
    "ubuntu2804": (
        "ubuntu2604",
        {
            '"ubuntu2604"': '"ubuntu2804"',
            '"26.04"': '"28.04"',
            "26.04": "28.04",
            "dec49008a71f6098d0bcfc822021f4d042d5f2db279e4d75bdd981304f1ca5d9": "2" * 64,
        },
    ),
}


def _harness(packer: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "TEMPLATE_"))}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", f"--packer-dir={packer}", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _files(tree: Path) -> set[str]:
    return {str(p.relative_to(tree)) for p in tree.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def packer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of packer/ with both new OSes added, each as one var file and nothing else."""
    tree = Path(shutil.copytree(REPO / "packer", tmp_path_factory.mktemp("add-os") / "packer"))
    before = _files(tree)
    for name, (model, changes) in NEW_OSES.items():
        text = (tree / "os" / f"{model}.pkrvars.hcl").read_text()
        for old, new in changes.items():
            assert old in text, f"{old!r} not in {model}'s var file"
            text = text.replace(old, new)
        (tree / "os" / f"{name}.pkrvars.hcl").write_text(text)
    assert _files(tree) - before == {f"os/{n}.pkrvars.hcl" for n in NEW_OSES}
    assert before - _files(tree) == set()
    return tree


def test_listed_with_family_version_and_the_platforms_that_build_it(packer: Path) -> None:
    proc = _harness(packer, "--list-os", "--list-os-format=json")
    assert proc.returncode == 0, proc.stderr
    rows: dict[str, Any] = {r["name"]: r for r in json.loads(proc.stdout)}
    assert (rows["debian14"]["family"], rows["debian14"]["version"]) == ("debian", "14")
    assert set(rows["debian14"]["templates"]) == {"local", "xcpng"}
    assert (rows["ubuntu2804"]["family"], rows["ubuntu2804"]["version"]) == ("debian", "28.04")
    assert set(rows["ubuntu2804"]["templates"]) == {"xcpng"}
    assert "local_base_suite" in rows["ubuntu2804"]["refused"]["local"]
    table = _harness(packer, "--list-os").stdout
    assert any(line.split()[:3] == ["debian14", "debian", "14"] for line in table.splitlines())


def test_digested_as_its_own_image(packer: Path) -> None:
    catalog = load_catalog(packer)
    new, model = catalog.specs["debian14"], catalog.specs["debian13"]
    for platform in ("xcpng", "local"):
        assert inputs_digest(new, platform, packer, "1.11.2") != inputs_digest(
            model, platform, packer, "1.11.2"
        )
    assert basedisk.recipe_for(new) == basedisk.Recipe("forky", "linux-image-amd64", 8192)
    before = {
        n: inputs_digest(catalog.specs[n], "xcpng", packer, "1.11.2") for n in catalog.names()
    }
    with (packer / "os" / "debian14.pkrvars.hcl").open("a") as fh:
        fh.write("# a one-line change\n")
    after_catalog = load_catalog(packer)
    after = {n: inputs_digest(after_catalog.specs[n], "xcpng", packer, "1.11.2") for n in before}
    assert [n for n in before if before[n] != after[n]] == ["debian14"]


def test_statically_validated_by_the_same_checks(packer: Path) -> None:
    assert lint.all_problems(packer) == []
    for name in NEW_OSES:
        assert lint.installer_problems(packer, name) == []


@pytest.mark.skipif(shutil.which("packer") is None, reason="packer not installed")
def test_the_local_template_accepts_the_new_var_file(packer: Path, tmp_path: Path) -> None:
    from tests.integration.test_packer_templates import _local_env

    proc = subprocess.run(
        [
            "packer",
            "validate",
            f"-var-file={packer / 'os' / 'debian14.pkrvars.hcl'}",
            str(packer / "local"),
        ],
        env=_local_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("name", sorted(NEW_OSES))
def test_the_checks_are_collected_for_it(packer: Path, name: str) -> None:
    proc = _harness(packer, "--collect-only", "-q", "--os", name)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    collected = {
        line.split("::")[1].split("[")[0] for line in proc.stdout.splitlines() if "::" in line
    }
    assert len(collected) >= 30 and "test_renderer" in collected, sorted(collected)


def test_the_local_platform_refuses_the_new_ubuntu_naming_why(packer: Path) -> None:
    proc = _harness(packer, "--os", "ubuntu2804", "--platform", "local")
    assert proc.returncode == 4
    assert (
        "ubuntu2804 cannot be built on the local platform: its var file "
        f"{packer / 'os' / 'ubuntu2804.pkrvars.hcl'} sets no local_base_suite, "
        "local_kernel_package, which packer/local needs" in proc.stderr
    )
    assert "Traceback" not in proc.stdout + proc.stderr
