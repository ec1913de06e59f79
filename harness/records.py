"""From pytest's reports to the verdict's records, and what makes a run partial."""

from __future__ import annotations

import pytest

from core.checks import skip_code
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
