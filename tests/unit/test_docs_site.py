"""The site builds with `mkdocs build --strict` (scripts/test runs it too): a broken link, a
missing anchor or a page left out of the navigation fails."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def build(root: Path, site: Path) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)]
    return subprocess.run(argv, cwd=root, capture_output=True, text=True, timeout=300)


def test_the_site_builds_strict(tmp_path: Path) -> None:
    run = build(ROOT, tmp_path / "site")
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "site" / "checks" / "reference" / "index.html").exists()


@pytest.mark.parametrize(
    ("page", "added", "said"),
    [
        ("using.md", "[gone](nowhere.md)\n", "nowhere.md"),
        ("using.md", "[gone](operator/pool.md#no-such-heading)\n", "no-such-heading"),
        ("orphan.md", "# Not in the nav\n", 'not included in the "nav"'),
    ],
)
def test_a_broken_site_fails(tmp_path: Path, page: str, added: str, said: str) -> None:
    copy = tmp_path / "repo"
    copy.mkdir()
    shutil.copy(ROOT / "mkdocs.yml", copy / "mkdocs.yml")
    shutil.copytree(ROOT / "docs", copy / "docs")
    target = copy / "docs" / page
    target.write_text((target.read_text() if target.exists() else "") + "\n" + added)
    run = build(copy, tmp_path / "site")
    assert run.returncode != 0 and said in run.stderr


def test_the_readmes_links_lead_somewhere() -> None:
    readme = (ROOT / "README.md").read_text()
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", readme)
    assert len(links) > 20
    missing = [link for link in links if "://" not in link and not (ROOT / link).exists()]
    assert missing == []
