"""The checks' `host` is the harness's (an SSH connection to the booted VM), never
pytest-testinfra's own fixture, which would run every check against this machine: which
plugin's fixture wins otherwise depends on the order of entry points in the environment."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PYTEST = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider"]


def test_checks_are_parametrised_by_os_only() -> None:
    proc = subprocess.run(
        [*PYTEST, "--collect-only", "-q", "--os", "debian12,debian13", "--platform", "local"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    ids = [line for line in proc.stdout.splitlines() if "::" in line]
    assert ids, proc.stdout + proc.stderr
    # testinfra's fixture would add a "local" (its default --hosts) parameter and drop the OS
    assert [i for i in ids if not i.endswith(("[debian12]", "[debian13]"))] == []
    assert len(ids) == len(set(ids)) == 2 * len({i.split("[")[0] for i in ids})


def test_testinfra_plugin_is_blocked_whatever_the_load_order() -> None:
    code = (
        "import pytest\n"
        "class P:\n"
        "    def pytest_configure(self, config):\n"
        "        pm = config.pluginmanager\n"
        "        print('BLOCKED', pm.is_blocked('pytest11.testinfra'), pm.get_plugin('pytest11.testinfra'))\n"
        "pytest.main(['-p', 'no:cacheprovider', '--collect-only', '-q', 'tests/unit/test_readme.py'], plugins=[P()])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120
    ).stdout
    assert "BLOCKED True None" in out, out
