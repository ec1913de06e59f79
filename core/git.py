"""The checkout the templates come from: revision, dirty flag, commit time (read-only git)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any


def git_output(root: Path | str | None, *args: str, timeout: float = 20) -> str | None:
    """`git args` in `root`, stripped stdout; None when git fails or is missing."""
    try:
        out = subprocess.run(
            ["git", *args],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def git_state(root: Path) -> dict[str, Any]:
    """What results.json and metadata record of the checkout."""
    rev = git_output(root, "rev-parse", "HEAD")
    status = git_output(root, "status", "--porcelain", "--untracked-files=no")
    committed = git_output(root, "show", "-s", "--format=%ct", "HEAD") if rev else None
    return {
        "revision": rev,
        "dirty": None if status is None else bool(status),
        "committed_at": int(committed) if committed and committed.isdigit() else None,
    }
