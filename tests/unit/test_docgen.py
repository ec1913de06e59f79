"""The generated parts of the README and the site match the code they come from.

The README's OS x platform table (the catalog), the configuration reference (the settings
table) and the checks reference (validations/ and the mutation table) are written by
tools/docgen.py; each test here fails when a file was not regenerated after a change.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))

import docgen  # noqa: E402

from validations.expected import EXPECTED  # noqa: E402


def test_no_generated_part_is_stale() -> None:
    assert docgen.stale() == [], "run: .venv/bin/python tools/docgen.py"


def test_the_support_table_is_every_os_of_the_catalog() -> None:
    readme = (ROOT / "README.md").read_text()
    for name in (
        p.name.removesuffix(".pkrvars.hcl") for p in (ROOT / "packer/os").glob("*.pkrvars.hcl")
    ):
        assert f"| `{name}` |" in readme


def test_a_changed_row_is_found(tmp_path: Path) -> None:
    for part in docgen.PARTS:
        (tmp_path / part.path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / part.path, tmp_path / part.path)
    assert docgen.stale(tmp_path) == []
    readme = tmp_path / "README.md"
    readme.write_text(
        readme.read_text().replace(
            "| `debian13` | debian | 13 | yes | yes |", "| `debian13` | debian | 13 | yes | no |"
        )
    )
    config = tmp_path / "docs/configuration.md"
    config.write_text(
        config.read_text().replace(
            "`TEMPLATE_BOOT_TIMEOUT` | `15m`", "`TEMPLATE_BOOT_TIMEOUT` | `20m`"
        )
    )
    assert docgen.stale(tmp_path) == [
        "README.md (part 'support')",
        "docs/configuration.md (part 'settings')",
    ]
    docgen.write_all(tmp_path)
    assert docgen.stale(tmp_path) == []


def test_the_table_follows_the_catalog(tmp_path: Path) -> None:
    packer = tmp_path / "packer"
    shutil.copytree(ROOT / "packer", packer)
    assert "| `ubuntu2604` |" in docgen.support_table(packer)
    (packer / "os/ubuntu2604.pkrvars.hcl").unlink()
    assert "| `ubuntu2604` |" not in docgen.support_table(packer)


def test_missing_markers_are_an_error() -> None:
    with pytest.raises(ValueError, match="generated: support"):
        docgen.render("no markers here\n", "support", "table\n")


def test_every_expected_check_is_documented_with_its_rationale() -> None:
    page = (ROOT / "docs/checks/reference.md").read_text()
    declared = docgen.declared_checks()
    for cid in {c for ids in EXPECTED.values() for c in ids}:
        assert f"## `{cid}`" in page
        assert cid in declared, f"{cid}: no @check declares it"
    assert "no @check declares" not in page
