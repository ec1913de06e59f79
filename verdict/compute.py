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
    # The class its cause gave the failure (core.errors.failure_class), None when not failed:
    # a boot that failed because of the image makes every booted check an image defect.
    failure_class: str | None = None
    data: dict[str, Any] | None = None  # what a check recorded for the report (record_property)


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


def _check_outcomes(tests: list[CheckRecord], expected: tuple[str, ...]) -> dict[str, list[Any]]:
    """Each check id's outcome across its tests (the worst wins), and the expected ids that
    never ran."""
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
    return {"passed": passed, "failed": failed, "skipped": skipped, "missing": missing}


def _test_reasons(
    tests: list[CheckRecord], allowed: frozenset[str], platform: str
) -> list[tuple[str, str]]:
    """(class, line) for every test that did not pass; setup errors shared by many checks
    (a boot that failed) are reported once."""
    reasons: list[tuple[str, str]] = []
    setup_errors: dict[tuple[str, str], list[str]] = defaultdict(list)
    for t in tests:
        who = t.check_id or t.nodeid
        if t.outcome == "error" and t.phase == "setup":
            setup_errors[(t.failure_class or "infrastructure", _first_line(t.message))].append(who)
        elif t.outcome == "error":
            klass = t.failure_class or "infrastructure"
            reasons.append((klass, f"{who}: teardown error: {_first_line(t.message)}"))
        elif t.outcome == "failed":
            reasons.append(
                (t.failure_class or "image-defect", f"{who} failed: {_first_line(t.message)}")
            )
        elif t.outcome == "skipped" and t.skip_code not in allowed:
            why = (
                f"code {t.skip_code!r} is not allowed on platform {platform}"
                if t.skip_code
                else "no reason code"
            )
            reasons.append(("infrastructure", f"{who} skipped ({why}): {_first_line(t.message)}"))
    for (klass, msg), names in setup_errors.items():
        listed = ", ".join(sorted(set(names)))[:200]
        reasons.append((klass, f"{len(names)} check(s) could not run ({listed}): {msg}"))
    return reasons


def os_verdict(
    spec: TemplateSpec,
    build: dict[str, Any] | None,
    tests: list[CheckRecord],
    expected: tuple[str, ...],
    platform: str,
) -> dict[str, Any]:
    """One OS passes only if its build passed and every expected check ran and passed (or
    skipped with a code this platform allows)."""
    build = build or {"status": "not-run", "duration_s": 0.0}
    checks = _check_outcomes(tests, expected)
    reasons: list[tuple[str, str]] = []
    if build.get("status") == "failed":
        klass = build.get("failure_class") or "infrastructure"
        reasons.append((klass, f"build failed: {build.get('message')}"))
    else:
        if build.get("status") == "not-run" and not tests:
            why = build.get("message") or "the build never ran (session interrupted?)"
            reasons.append(("infrastructure", why))
        reasons += _test_reasons(tests, ALLOWED_SKIPS.get(platform, frozenset()), platform)
        reasons += [
            ("infrastructure", f"expected check {c} did not run") for c in checks["missing"]
        ]
    klass = None
    if reasons:
        klass = "image-defect" if any(k == "image-defect" for k, _ in reasons) else "infrastructure"
    return {
        "name": spec.name,
        "family": spec.family,
        "version": spec.version,
        "build": build,
        "expected_checks": list(expected),
        "checks": checks,
        "tests": [
            {k: v for k, v in asdict(t).items() if k not in ("os", "data")}
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
