"""One version: pyproject.toml's. The harness's results, the published metadata and
`xcpng-golden version` all carry it."""

from __future__ import annotations

import json
import time
import tomllib
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import core
from core.settings import Settings
from harness.finish import write_pending
from publish import api
from tests.support.publishing import FAKE_SECRET, fake_os, write_results
from xcpng_golden.main import main

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT_VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


def test_core_version_is_pyprojects() -> None:
    assert core.__version__ == PYPROJECT_VERSION


def test_the_changelog_has_an_entry_for_it() -> None:
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert f"\n## [{PYPROJECT_VERSION}] - " in changelog


def test_an_uninstalled_tree_reads_pyproject(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(_name: str) -> str:
        raise core.metadata.PackageNotFoundError(_name)

    monkeypatch.setattr(core.metadata, "version", missing)
    assert core._version() == PYPROJECT_VERSION


def test_the_command_prints_it(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["version"]) == 0
    assert capsys.readouterr().out == f"xcpng-golden {PYPROJECT_VERSION}\n"


def test_published_metadata_carries_pyprojects_version(tmp_path: Path) -> None:
    # results.json as the harness writes it at the start of a session
    reports = tmp_path / "reports"
    reports.mkdir()
    h: Any = SimpleNamespace(
        run_id="run-1",
        started_at=time.time(),
        repo_root=ROOT,
        platform_name="xcpng",
        specs={},
        settings=SimpleNamespace(reports_dir=reports),
    )
    write_pending(h)
    harness_version = json.loads((reports / "results.json").read_text())["harness_version"]
    # that version through the publisher
    path = write_results(
        tmp_path / "run", [fake_os(tmp_path / "run", "debian12")], harness_version=harness_version
    )
    pub = tmp_path / "pub"
    settings = Settings.from_env(env={"AWS_SECRET_ACCESS_KEY": FAKE_SECRET})
    assert api.publish_results([path], str(pub), settings, log=lambda _m: None).ok
    latest = json.loads((pub / "debian12" / "latest.json").read_text())
    meta = json.loads((pub / latest["folder"] / "metadata.json").read_text())
    assert meta["harness_version"] == PYPROJECT_VERSION
    assert meta["publisher_version"] == PYPROJECT_VERSION
