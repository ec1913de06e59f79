"""How a validation declares its check id and rationale, and how it may skip.

A check is a test marked `@check("ssh-password-auth", "why it matters")`. The verdict maps
every report to its check id; each family lists the ids it expects in validations/expected.py.
A skip must carry one of SKIP_CODES, or the OS fails.
"""

from __future__ import annotations

import re
from typing import NoReturn

import pytest

SKIP_CODES: dict[str, str] = {
    "platform-has-no-xen": "the platform is not Xen (QEMU): Xen-side checks cannot run there",
    "build-has-no-guest-tools": (
        "the local build had no guest-tools source (Debian ships none); only allowed off XCP-ng"
    ),
}

# Which skip codes each platform accepts; anything else fails the OS.
ALLOWED_SKIPS: dict[str, frozenset[str]] = {
    "local": frozenset({"platform-has-no-xen", "build-has-no-guest-tools"}),
    "xcpng": frozenset(),
}

# Every marker the project uses, registered once by the plugin (pytest runs --strict-markers).
MARKERS = (
    "check(id, rationale): a template check with a stable id",
    "slow: takes more than ~20 s",
    "e2e: end-to-end run with a real build and a real VM",
    "mutation: a broken image per concern, run by the test command",
    "mutation_full: the rest of the mutation table (see docs/checks/index.md)",
    "benchmark: runs a benchmark script at a tiny size",
)

_CODE = re.compile(r"\[skip-code:([a-z0-9-]+)\]")


def check(check_id: str, rationale: str) -> pytest.MarkDecorator:
    """Mark a validation with its stable id and a one-line rationale."""
    return pytest.mark.check(check_id, rationale)


def skip(code: str, detail: str) -> NoReturn:
    """Skip with a reason code from the fixed list; any other skip fails the OS."""
    if code not in SKIP_CODES:
        raise ValueError(f"unknown skip code {code!r}; known: {', '.join(SKIP_CODES)}")
    pytest.skip(f"[skip-code:{code}] {detail}")


def skip_code(message: str) -> str | None:
    m = _CODE.search(message or "")
    return m.group(1) if m else None
