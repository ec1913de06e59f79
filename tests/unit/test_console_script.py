"""`xcpng-golden`, the one console script: its help lists every command, each command's help
has an example, `version` is pyproject's, a usage error is one line and exit 2, and the old
`python -m` forms still run the same code."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from xcpng_golden.main import TABLE, main

REPO = Path(__file__).resolve().parents[2]
SCRIPT = Path(sys.executable).parent / "xcpng-golden"  # installed by scripts/setup
COMMANDS = [
    "janitor",
    "cleanup",
    "pool import",
    "pool cleanup",
    "xva info",
    "xva verify",
    "xva to-raw",
    "xva from-raw",
    "vhd info",
    "vhd verify",
    "vhd to-raw",
    "vhd from-raw",
    "sbom",
    "publish",
    "plan",
    "store fetch",
    "store diff",
    "store list",
    "store prune",
    "store index",
    "store page",
    "store link",
    "store verify",
    "store preflight",
    "cloudstack preflight",
    "cloudstack register",
    "cloudstack rollback",
    "cloudstack list",
    "version",
]


def script(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), *args], cwd="/", capture_output=True, text=True, timeout=60, check=False
    )


def test_the_table_is_every_command() -> None:
    names = [" ".join(filter(None, (g, c.name))) for g, _, commands in TABLE for c in commands]
    assert names == COMMANDS


def test_help_lists_every_command_and_the_exit_codes() -> None:
    r = script("--help")
    assert r.returncode == 0, r.stderr
    for name in COMMANDS:
        assert f"\n  xcpng-golden {name} " in r.stdout, name
    for code in ("0 ", "1 ", "2 ", "3 ", "130 "):
        assert f"\n  {code}" in r.stdout.split("exit codes:")[1]


@pytest.mark.parametrize("name", COMMANDS)
def test_each_command_has_help_with_an_example(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as e:
        main([*name.split(), "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: xcpng-golden {name} ")
    assert f"\nexample:\n  xcpng-golden {name}" in out


def test_version_is_pyproject_s() -> None:
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    r = script("version")
    assert (r.returncode, r.stdout, r.stderr) == (0, f"xcpng-golden {version}\n", "")


@pytest.mark.parametrize("argv", [["bogus"], [], ["store", "bogus"], ["xva", "info"]])
def test_a_usage_error_is_one_line_and_exit_2(argv: list[str]) -> None:
    r = script(*argv)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.count("\n") == 1 and "error:" in r.stderr and "--help" in r.stderr


@pytest.mark.parametrize(
    ("module", "listed"),
    [
        ("platforms", "janitor"),
        ("platforms.xcpng", "cleanup"),
        ("diskformats.xva", "from-raw"),
        ("publish", "preflight"),
        ("xcpng_golden", "store fetch"),
    ],
)
def test_the_python_m_aliases_run_the_same_commands(module: str, listed: str) -> None:
    r = subprocess.run(
        [sys.executable, "-m", module, "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert r.returncode == 0 and listed in r.stdout, r.stderr


def test_python_m_publish_without_a_command_still_publishes(tmp_path: Path) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "publish", "--results", str(tmp_path / "results.json")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert r.returncode == 2 and "results file not found" in r.stderr
