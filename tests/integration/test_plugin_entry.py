"""The harness is the installed project's pytest plugin: its options work from any folder, with
paths anywhere, in both `--opt value` and `--opt=value` forms; `--collect-only` only lists."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def pytest_in(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """pytest as an operator starts it: no PYTHONPATH, no repository on the path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "TEMPLATE_"))}
    env.pop("PYTHONPATH", None)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def everything_under(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


def test_space_separated_options_with_paths_outside_the_checkout(tmp_path: Path) -> None:
    cwd = tmp_path / "somewhere"
    cwd.mkdir()
    downloads = tmp_path / "Downloads"
    downloads.mkdir()
    image = downloads / "debian12.raw"
    image.write_bytes(b"\0" * 4096)
    shutil.copytree(REPO / "packer", tmp_path / "elsewhere" / "packer")
    proc = pytest_in(
        cwd,
        "--os",
        "debian12",
        "--platform",
        "local",
        "--xva",
        str(image),
        "--packer-dir",
        str(tmp_path / "elsewhere" / "packer"),
        "--collect-only",
        "-q",
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "unrecognized arguments" not in proc.stderr
    collected = [line for line in proc.stdout.splitlines() if "::" in line]
    # every check is parametrised by the OS only: the `host` fixture is the harness's (the
    # clone), not pytest-testinfra's, which would add a "local" host, i.e. the runner itself
    assert collected and all(line.endswith("[debian12]") for line in collected), collected
    assert any(
        line.startswith(("test_ssh.py::", "validations/test_ssh.py::")) for line in collected
    )
    assert everything_under(cwd) == []


def test_equals_form_and_a_missing_artifact_is_one_clear_line(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "debian12.raw"
    proc = pytest_in(tmp_path, "--os=debian12", "--platform=local", f"--xva={missing}")
    assert proc.returncode == 4
    assert f"--xva {missing}: no such file; pass an existing artifact" in proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert everything_under(tmp_path) == []


def test_collect_only_lists_what_would_run_and_does_nothing_else(tmp_path: Path) -> None:
    """No preflight (the pool settings are missing and nobody complains), no build, no boot,
    no verdict, no report, no run folder."""
    for platform in ("local", "xcpng"):
        proc = pytest_in(
            tmp_path,
            "--os",
            "debian12",
            "--platform",
            platform,
            "--artifacts-dir",
            str(tmp_path / "artifacts"),
            "--reports-dir",
            str(tmp_path / "reports"),
            "--collect-only",
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "<Function test_" in proc.stdout and "[debian12]>" in proc.stdout
        assert "preflight" not in proc.stdout + proc.stderr
        assert "template verdict" not in proc.stdout
        assert everything_under(tmp_path) == []


def test_list_os_from_anywhere_reads_the_installed_templates(tmp_path: Path) -> None:
    proc = pytest_in(tmp_path, "--list-os")
    assert proc.returncode == 0, proc.stderr
    rows = [line.split()[0] for line in proc.stdout.splitlines()[1:]]
    assert "debian12" in rows
    assert everything_under(tmp_path) == []
