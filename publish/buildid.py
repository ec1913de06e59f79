"""Build ids: `YYYYMMDDTHHMMSSZ-<rev>`, sortable by build time, carrying the short git revision.

The same build record always gives the same id, so a re-run verifies instead of duplicating.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from core.git import git_output

SHORT_REV = 12
_ID = re.compile(r"^\d{8}T\d{6}Z-[0-9a-z]+(-dirty)?$")


def make_build_id(built_at: float, revision: str | None, dirty: bool | None) -> str:
    stamp = datetime.fromtimestamp(built_at, UTC).strftime("%Y%m%dT%H%M%SZ")
    rev = (revision or "norev")[:SHORT_REV].lower()
    return f"{stamp}-{rev}" + ("-dirty" if dirty else "")


def is_build_id(text: str) -> bool:
    return bool(_ID.match(text))


def order_key(commit_time: float | None, built_at: float) -> list[float]:
    """What `latest.json` may only move forward on: commit time first, then build time.

    A re-run of an old commit builds later but carries the old commit time, so it cannot win.
    Without a commit time (-1) the build time decides.
    """
    return [-1.0 if commit_time is None else float(commit_time), float(built_at)]


def commit_time(git: dict[str, object], cwd: str | None = None) -> float | None:
    """Commit time of the results' revision: `git.committed_at` if the harness wrote it, else
    asked from the checkout (read-only); None when neither knows."""
    value = git.get("committed_at")
    if isinstance(value, int | float):
        return float(value)
    rev = git.get("revision")
    if not isinstance(rev, str) or not re.fullmatch(r"[0-9a-fA-F]{4,64}", rev):
        return None
    out = git_output(cwd, "show", "-s", "--format=%ct", rev, timeout=10)
    return float(out) if out else None
