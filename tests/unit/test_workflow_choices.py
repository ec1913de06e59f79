"""The catalog is the single list of OSes: the manual run's `os` choices in the templates
workflow must name exactly the catalog's OSes (plus `all`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from build.catalog import load_catalog

REPO = Path(__file__).resolve().parents[2]
WORKFLOW = REPO / ".github" / "workflows" / "templates.yml"


def os_choices(workflow: Path) -> list[str]:
    doc: dict[Any, Any] = yaml.safe_load(workflow.read_text())
    on: dict[str, Any] = doc["on"] if "on" in doc else doc[True]  # YAML 1.1: `on:` is True
    return list(on["workflow_dispatch"]["inputs"]["os"]["options"])


def test_dispatch_choices_are_the_catalog() -> None:
    choices = os_choices(WORKFLOW)
    catalog = load_catalog(REPO / "packer").names()
    assert choices[0] == "all", "the default choice comes first"
    assert sorted(choices[1:]) == catalog, (
        f"{WORKFLOW.relative_to(REPO)} offers {choices[1:]}, the catalog (--list-os) has "
        f"{catalog}: edit the `options:` list"
    )


def test_the_comparison_fails_when_they_differ(tmp_path: Path) -> None:
    stale = tmp_path / "templates.yml"
    stale.write_text(WORKFLOW.read_text().replace(", debian13", ", fedora41"))
    assert sorted(os_choices(stale)[1:]) != load_catalog(REPO / "packer").names()
