"""From pytest's reports to the verdict's records, and what makes a run partial."""

from __future__ import annotations

import json

import pytest

from core.checks import skip_code
from core.errors import InfrastructureError, failure_class
from core.redact import Redactor
from verdict.compute import CheckRecord


class Recorder:
    """Registered on the controller (or the only process): sees every report of the session."""

    NAME = "harness-recorder"

    def __init__(self) -> None:
        self.records: list[CheckRecord] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        record = to_record(report)
        if record is not None:
            self.records.append(record)


def redact_report(report: pytest.TestReport, redactor: Redactor) -> None:
    """Mask secrets in what pytest prints and xdist ships: the failure text, captured output."""
    if isinstance(report.longrepr, tuple):
        path, lineno, message = report.longrepr
        report.longrepr = (path, lineno, redactor(message))
    elif report.longrepr is not None:
        report.longrepr = redactor(str(report.longrepr))
    report.sections = [(title, redactor(text)) for title, text in report.sections]


RESERVED = frozenset({"os", "check_id", "rationale", "failure_class"})


def _call_class(exc: BaseException) -> str:
    """A check that failed: the image is at fault unless its cause is outside the image (the
    package mirror or the SSH connection gone: InfrastructureError)."""
    klass = failure_class(exc)
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, InfrastructureError) or getattr(seen, "failure_class", None):
            return klass
        seen = seen.__cause__
    return "image-defect"


def annotate(report: pytest.TestReport, call: pytest.CallInfo[None]) -> None:
    """Give a failed report the class of its cause, so it crosses xdist with the report: a
    setup error from a boot that failed because of the image is an image defect."""
    if not report.failed or call.excinfo is None:
        return
    exc = call.excinfo.value
    klass = _call_class(exc) if report.when == "call" else failure_class(exc)
    report.user_properties = [*report.user_properties, ("failure_class", klass)]


def _data(props: dict[str, object]) -> dict[str, object] | None:
    data: dict[str, object] = {}
    for key, value in props.items():
        if key in RESERVED:
            continue
        try:
            data[key] = json.loads(value) if isinstance(value, str) else value
        except ValueError:
            data[key] = value
    return data or None


def _str_or_none(value: object) -> str | None:
    return None if value is None else str(value)


def to_record(report: pytest.TestReport) -> CheckRecord | None:
    props = dict(report.user_properties)
    os_name = props.get("os")
    if os_name is None:
        return None
    if report.when != "call" and report.outcome == "passed":
        return None
    outcome: str = report.outcome
    if report.failed and report.when != "call":
        outcome = "error"
    message = report.longreprtext if report.outcome != "passed" else None
    if report.skipped and isinstance(report.longrepr, tuple):
        message = str(report.longrepr[2])
    return CheckRecord(
        nodeid=report.nodeid,
        os=str(os_name),
        check_id=_str_or_none(props.get("check_id")),
        rationale=_str_or_none(props.get("rationale")),
        outcome=outcome,
        phase=report.when or "call",
        duration_s=float(report.duration),
        message=message,
        skip_code=skip_code(message or "") if report.skipped else None,
        failure_class=_str_or_none(props.get("failure_class")),
        data=_data(props),
    )


def partial_reasons(session: pytest.Session, exitstatus: int) -> list[str]:
    """Why this run did not run every check it selected; any reason makes it unpublishable."""
    opt = session.config.option
    reasons = []
    if getattr(opt, "keyword", ""):
        reasons.append(f"-k {opt.keyword!r}")
    if getattr(opt, "markexpr", ""):
        reasons.append(f"-m {opt.markexpr!r}")
    if getattr(opt, "deselect", None):
        reasons.append("--deselect")
    if getattr(opt, "lf", False) or getattr(opt, "last_failed", False):
        reasons.append("--lf")
    if getattr(opt, "stepwise", False):
        reasons.append("--sw")
    if any("::" in a for a in session.config.args):
        reasons.append("test ids selected on the command line")
    if session.shouldstop or session.shouldfail:
        reasons.append(f"stopped early ({session.shouldstop or session.shouldfail})")
    if exitstatus == pytest.ExitCode.INTERRUPTED:
        reasons.append("interrupted")
    return reasons
