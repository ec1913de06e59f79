"""An interrupted run that has cleaned up exits with its own status even when the cancelled
job's second signal lands in the interpreter's shutdown (core.signals.ignore_from_now)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LATE_SIGTERM = (
    "import atexit, os, signal\n"
    "from core.signals import ignore_from_now, install_sigterm_as_interrupt\n"
    "install_sigterm_as_interrupt()\n"
    "{ignore}\n"
    "atexit.register(lambda: os.kill(os.getpid(), signal.SIGTERM))\n"
    "raise SystemExit(2)\n"
)


# the default action (what finalization restores for a Python handler) dies by the signal
@pytest.mark.parametrize(
    ("ignore", "rc"),
    [("ignore_from_now()", 2), ("signal.signal(signal.SIGTERM, signal.SIG_DFL)", -15)],
)
def test_a_signal_at_shutdown(ignore: str, rc: int) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", LATE_SIGTERM.format(ignore=ignore)], cwd=REPO, check=False
    )
    assert proc.returncode == rc
