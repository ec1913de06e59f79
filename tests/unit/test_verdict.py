"""The verdict per OS: what passes, what fails, and why."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import pytest

from core.model import TemplateRef, TemplateSpec
from core.results_file import results_schema
from verdict.compute import CheckRecord, merge_reports, os_verdict, session_verdict
from verdict.summary import summary_text

SPEC = TemplateSpec(
    name="debian12",
    family="debian",
    version="12",
    templates={"local": TemplateRef(Path("packer/local"), "local", ("qemu.vm",))},
)
EXPECTED = ("ssh-a", "ssh-b", "xen-outside")
BUILT = {"status": "built", "duration_s": 10.0}


def rec(
    check: str | None, outcome: str = "passed", phase: str = "call", **kw: object
) -> CheckRecord:
    return CheckRecord(
        nodeid=f"validations/test_x.py::test_{check}[debian12]",
        os="debian12",
        check_id=check,
        rationale="why",
        outcome=outcome,
        phase=phase,
        duration_s=0.1,
        message=kw.get("message"),  # type: ignore[arg-type]
        skip_code=kw.get("skip_code"),  # type: ignore[arg-type]
    )


def test_all_expected_passed_or_allowed_skip_passes() -> None:
    tests = [
        rec("ssh-a"),
        rec("ssh-b"),
        rec("xen-outside", "skipped", skip_code="platform-has-no-xen"),
    ]
    v = os_verdict(SPEC, BUILT, tests, EXPECTED, "local")
    assert v["verdict"] == "passed", v["reasons"]
    assert v["checks"]["skipped"] == [{"id": "xen-outside", "code": "platform-has-no-xen"}]


def test_allowed_skip_on_local_is_a_failure_on_xcpng() -> None:
    tests = [
        rec("ssh-a"),
        rec("ssh-b"),
        rec("xen-outside", "skipped", skip_code="platform-has-no-xen"),
    ]
    v = os_verdict(SPEC, BUILT, tests, EXPECTED, "xcpng")
    assert v["verdict"] == "failed"
    assert "not allowed on platform xcpng" in v["reasons"][0]


def test_skip_without_code_fails() -> None:
    tests = [rec("ssh-a"), rec("ssh-b"), rec("xen-outside", "skipped", message="meh")]
    v = os_verdict(SPEC, BUILT, tests, EXPECTED, "local")
    assert v["verdict"] == "failed"
    assert v["failure_class"] == "infrastructure"
    assert "no reason code" in v["reasons"][0]


def test_missing_expected_check_fails() -> None:
    v = os_verdict(SPEC, BUILT, [rec("ssh-a"), rec("ssh-b")], EXPECTED, "local")
    assert v["verdict"] == "failed"
    assert v["checks"]["missing"] == ["xen-outside"]
    assert v["reasons"] == ["expected check xen-outside did not run"]


def test_failed_check_is_an_image_defect() -> None:
    msg = "def test():\n>   assert x\nE   AssertionError: PasswordAuthentication is yes\n"
    tests = [rec("ssh-a", "failed", message=msg), rec("ssh-b"), rec("xen-outside")]
    v = os_verdict(SPEC, BUILT, tests, EXPECTED, "local")
    assert (v["verdict"], v["failure_class"]) == ("failed", "image-defect")
    assert v["reasons"] == ["ssh-a failed: AssertionError: PasswordAuthentication is yes"]
    assert v["checks"]["failed"] == ["ssh-a"]


def test_setup_errors_collapse_into_one_infrastructure_reason() -> None:
    msg = "E   BootFailed: debian12: boot failed: no SSH after 900s"
    tests = [rec(c, "error", phase="setup", message=msg) for c in EXPECTED]
    v = os_verdict(SPEC, BUILT, tests, EXPECTED, "local")
    assert v["failure_class"] == "infrastructure"
    assert len(v["reasons"]) == 1
    assert v["reasons"][0].startswith("3 check(s) could not run")


def test_failed_build_is_the_only_reason() -> None:
    build = {
        "status": "failed",
        "duration_s": 3.0,
        "message": "Packer build failed (exit 1): x",
        "failure_class": "image-defect",
    }
    tests = [rec(c, "error", phase="setup", message="E   BuildFailed: x") for c in EXPECTED]
    v = os_verdict(SPEC, build, tests, EXPECTED, "local")
    assert v["reasons"] == ["build failed: Packer build failed (exit 1): x"]
    assert v["failure_class"] == "image-defect"


def test_merge_keeps_the_worst_phase() -> None:
    merged = merge_reports([rec("ssh-a", "passed"), rec("ssh-a", "error", phase="teardown")])
    assert len(merged) == 1
    assert merged[0].outcome == "error"


def test_unchecked_failure_still_fails_the_os() -> None:
    tests = [rec("ssh-a"), rec("ssh-b"), rec("xen-outside"), rec(None, "failed", message="E  boom")]
    v = os_verdict(SPEC, BUILT, tests, EXPECTED, "local")
    assert v["verdict"] == "failed"


@pytest.mark.parametrize("platform", ["local", "xcpng"])
def test_session_results_validate_against_schema(platform: str) -> None:
    per_os = session_verdict([SPEC], {"debian12": None}, [], lambda fam: EXPECTED, platform)
    r = per_os["debian12"]
    r.update(
        template="packer/local",
        var_file=None,
        junit="junit-debian12.xml",
        validated_platform=platform,
    )
    results = {
        "schema": "xcpng-templates/results/v1",
        "run_id": "r",
        "started_at": "2026-01-01T00:00:00Z",
        "finished_at": "2026-01-01T00:00:01Z",
        "harness_version": "0",
        "git": {"revision": None, "dirty": None},
        "platform": platform,
        "partial": True,
        "partial_reasons": ["-k 'ssh'"],
        "selected_os": ["debian12"],
        "os": per_os,
    }
    jsonschema.validate(results, results_schema())
    assert r["build"]["status"] == "not-run"
    text = summary_text(results)
    assert "PARTIAL RUN" in text and "debian12" in text and "FAILED" in text
