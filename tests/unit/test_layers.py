"""Dependencies point one way: harness (plugin) and xcpng_golden (commands) -> validations ->
phases -> disk formats -> core, with no ignored import.

import-linter's contracts live in pyproject.toml; these tests run them on the project and
prove, on a planted copy, that they fail when a dependency points the wrong way or a cycle
comes back.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
PACKAGES = (
    "core",
    "diskformats",
    "pkgdb",
    "build",
    "platforms",
    "validations",
    "verdict",
    "publish",
    "harness",
    "xcpng_golden",
)


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(root / "pyproject.toml"), "--no-cache"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def copy_project(dst: Path) -> Path:
    for pkg in PACKAGES:
        shutil.copytree(REPO / pkg, dst / pkg, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", dst / "pyproject.toml")
    return dst


def test_the_project_keeps_its_contracts() -> None:
    proc = lint_imports(REPO)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Contracts: 2 kept, 0 broken" in proc.stdout


def test_the_contracts_ignore_no_import_and_cover_every_package() -> None:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]
    assert all("ignore_imports" not in c for c in config["contracts"])
    assert sorted(config["root_packages"]) == sorted(PACKAGES)


def test_a_platform_importing_publish_breaks_the_layers(tmp_path: Path) -> None:
    """The arrow the contract once excused: the pool's import command reading the store."""
    root = copy_project(tmp_path)
    with (root / "platforms" / "xcpng" / "__main__.py").open("a") as fh:
        fh.write("\nfrom publish import source  # planted\n")
    proc = lint_imports(root)
    assert proc.returncode != 0
    assert "platforms.xcpng.__main__ -> publish.source" in proc.stdout


def test_a_disk_format_importing_a_platform_breaks_the_layers(tmp_path: Path) -> None:
    root = copy_project(tmp_path)
    with (root / "diskformats" / "xva" / "reader.py").open("a") as fh:
        fh.write("\nfrom platforms import reach  # planted: formats sit below the platforms\n")
    proc = lint_imports(root)
    assert proc.returncode != 0
    assert "diskformats.xva.reader -> platforms.reach" in proc.stdout


def test_core_importing_a_phase_breaks_the_layers(tmp_path: Path) -> None:
    root = copy_project(tmp_path)
    with (root / "core" / "files.py").open("a") as fh:
        fh.write("\nfrom build import cache  # planted: the core must not know the phases\n")
    proc = lint_imports(root)
    assert proc.returncode != 0
    assert "plugin on top, phases in the middle, core at the bottom BROKEN" in proc.stdout
    assert "core.files -> build.cache" in proc.stdout


def test_a_phase_importing_the_plugin_breaks_the_layers(tmp_path: Path) -> None:
    root = copy_project(tmp_path)
    with (root / "publish" / "api.py").open("a") as fh:
        fh.write("\nfrom harness import session  # planted\n")
    proc = lint_imports(root)
    assert proc.returncode != 0
    assert "publish.api -> harness.session" in proc.stdout


def test_a_cycle_inside_a_package_is_found(tmp_path: Path) -> None:
    root = copy_project(tmp_path)
    with (root / "build" / "inputs_digest.py").open("a") as fh:
        fh.write("\nfrom build import builder  # planted: builder imports inputs_digest already\n")
    proc = lint_imports(root)
    assert proc.returncode != 0
    assert "no cycle between the modules of any package BROKEN" in proc.stdout
    assert "No cycles are allowed in build" in proc.stdout


def test_benchmarks_never_import_the_tests() -> None:
    offenders = []
    for path in sorted((REPO / "benchmarks").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] == "tests"]
    assert offenders == []
