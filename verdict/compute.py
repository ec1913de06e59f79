"""The verdict per OS, computed on the xdist controller from every test report of the session.

An OS passes only if its build passed and every check its family expects ran and passed (or
skipped with a reason code this platform allows). Anything else fails it, with one line per
reason and a class: `infrastructure` (rerun) or `image-defect` (fix the template).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from core.checks import ALLOWED_SKIPS
from core.model import TemplateSpec


@dataclass
class CheckRecord:
    nodeid: str
    os: str | None
    check_id: str | None
    rationale: str | None
    outcome: str  # passed, failed, error, skipped
    phase: str  # setup, call, teardown
    duration_s: float
    message: str | None
    skip_code: str | None


def merge_reports(records: Iterable[CheckRecord]) -> list[CheckRecord]:
    """One record per test: the worst of its phases (error in setup beats a pass in call)."""
    rank = {"error": 3, "failed": 2, "skipped": 1, "passed": 0}
    by_id: dict[str, CheckRecord] = {}
    for r in records:
        cur = by_id.get(r.nodeid)
        if cur is None or rank[r.outcome] > rank[cur.outcome]:
            if cur is not None:
                r.duration_s += cur.duration_s
            by_id[r.nodeid] = r
        else:
            cur.duration_s += r.duration_s
    return list(by_id.values())


def _first_line(text: str | None) -> str:
    for raw in (text or "").splitlines():
        line = raw.strip()
        if line.startswith("E "):
            return line[2:].strip()[:300]
    lines = [ln.strip() for ln in (text or "").splitlines() if ln.strip()]
    return (lines[-1] if lines else "no message")[:300]


def os_verdict(
    spec: TemplateSpec,
    build: dict[str, Any] | None,
    tests: list[CheckRecord],
    expected: tuple[str, ...],
    platform: str,
) -> dict[str, Any]:
    allowed = ALLOWED_SKIPS.get(platform, frozenset())
    reasons: list[tuple[str, str]] = []  # (class, line)
    build = build or {"status": "not-run", "duration_s": 0.0}
    by_check: dict[str, list[CheckRecord]] = defaultdict(list)
    for t in tests:
        if t.check_id:
            by_check[t.check_id].append(t)

    passed: list[str] = []
    failed: list[str] = []
    skipped: list[dict[str, Any]] = []
    for cid, recs in sorted(by_check.items()):
        outcomes = {r.outcome for r in recs}
        if outcomes & {"failed", "error"}:
            failed.append(cid)
        elif "passed" in outcomes:
            passed.append(cid)
        else:
            codes = sorted({r.skip_code or "" for r in recs})
            skipped.append({"id": cid, "code": codes[0] if len(codes) == 1 and codes[0] else None})
    missing = [c for c in expected if c not in by_check]

    if build.get("status") == "failed":
        klass = build.get("failure_class") or "infrastructure"
        reasons.append((klass, f"build failed: {build.get('message')}"))
    else:
        if build.get("status") == "not-run" and not tests:
            reasons.append(("infrastructure", "the build never ran (session interrupted?)"))
        setup_errors: dict[str, list[str]] = defaultdict(list)
        for t in tests:
            if t.outcome == "error" and t.phase == "setup":
                setup_errors[_first_line(t.message)].append(t.check_id or t.nodeid)
            elif t.outcome == "error":
                reasons.append(
                    (
                        "infrastructure",
                        f"{t.check_id or t.nodeid}: teardown error: {_first_line(t.message)}",
                    )
                )
            elif t.outcome == "failed":
                reasons.append(
                    ("image-defect", f"{t.check_id or t.nodeid} failed: {_first_line(t.message)}")
                )
            elif t.outcome == "skipped" and t.skip_code not in allowed:
                why = (
                    f"code {t.skip_code!r} is not allowed on platform {platform}"
                    if t.skip_code
                    else "no reason code"
                )
                reasons.append(
                    (
                        "infrastructure",
                        f"{t.check_id or t.nodeid} skipped ({why}): {_first_line(t.message)}",
                    )
                )
        for msg, who in setup_errors.items():
            names = ", ".join(sorted(set(who)))[:200]
            reasons.append(
                ("infrastructure", f"{len(who)} check(s) could not run ({names}): {msg}")
            )
        for cid in missing:
            reasons.append(("infrastructure", f"expected check {cid} did not run"))

    klass = None
    if reasons:
        klass = "image-defect" if any(k == "image-defect" for k, _ in reasons) else "infrastructure"
    return {
        "name": spec.name,
        "family": spec.family,
        "version": spec.version,
        "build": build,
        "expected_checks": list(expected),
        "checks": {"passed": passed, "failed": failed, "skipped": skipped, "missing": missing},
        "tests": [
            {k: v for k, v in asdict(t).items() if k not in ("os",)}
            for t in sorted(tests, key=lambda t: t.nodeid)
        ],
        "verdict": "failed" if reasons else "passed",
        "failure_class": klass,
        "reasons": [line for _, line in reasons],
    }


def session_verdict(
    specs: list[TemplateSpec],
    builds: Mapping[str, dict[str, Any] | None],
    records: Iterable[CheckRecord],
    expected_for: Callable[[str], tuple[str, ...]],
    platform: str,
) -> dict[str, dict[str, Any]]:
    tests = merge_reports(records)
    per_os: dict[str, list[CheckRecord]] = defaultdict(list)
    for t in tests:
        if t.os:
            per_os[t.os].append(t)
    return {
        s.name: os_verdict(
            s, builds.get(s.name), per_os.get(s.name, []), expected_for(s.family), platform
        )
        for s in specs
    }
