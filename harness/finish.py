"""The end of a session, on the controller: verdict, reports, publish, and what to tell people.

Each OS's build is read from this session's build-once record only (never from an earlier
run's build.json), so a build that aborted early is reported as not finished.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import Any

import pytest

from build.once import session_build
from core import __version__
from core.ci import ci_context
from core.files import display_path, write_json_atomic
from core.git import git_state
from core.model import TemplateSpec
from core.results_file import SCHEMA_ID, validate_results
from core.signals import deferred
from harness.inventory import inventory_packages, inventory_record
from harness.recorder import partial_reasons
from harness.session import Harness
from platforms.kept import kept_of_run
from platforms.local.basedisk import KERNEL_VAR, MIRROR, SUITE_VAR
from verdict.compute import CheckRecord, session_verdict
from verdict.junit import write_junit
from verdict.summary import summary_markdown, summary_text

_RESULTS_KEY = pytest.StashKey[dict[str, Any]]()
BUILD_FIELDS = (
    "status",
    "artifact",
    "artifact_format",
    "sha256",
    "size",
    "log_path",
    "duration_s",
    "packer_version",
    "plugins",
    "inputs_digest",
    "built_at",
    "guest_tools",
    "message",
    "failure_class",
    "template",
    "var_file",
    "platform",
)


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def build_record(h: Harness, name: str) -> dict[str, Any]:
    """This session's build of `name`, as results.json carries it."""
    state, result = session_build(h.run_dir / "once", name)
    if result is None:
        message = {
            None: "the build never ran",
            "running": "the build did not finish (the session was interrupted)",
            "aborted": "the build was interrupted",
        }.get(state, f"build state {state}")
        return {"status": "not-run", "duration_s": 0.0, "message": message}
    data = result.to_json()
    return {k: data.get(k) for k in BUILD_FIELDS if k in data}


def _packages(h: Harness, name: str, artifact_sha256: str | None) -> list[str] | None:
    """From the offline inventory of this artifact, else what the clone listed (fixtures.py)."""
    found = inventory_packages(h.settings.artifacts_dir, name, h.run_id, artifact_sha256)
    if found is not None:
        return found
    path = h.settings.artifacts_dir / name / "packages.txt"
    if not path.is_file() or path.stat().st_mtime < h.started_at:
        return None
    return path.read_text().split()


def resolved_inputs(spec: TemplateSpec, platform: str) -> dict[str, Any]:
    """What the build started from, for the provenance: the install media of the xcpng
    template (ISO URLs and checksum), or the local platform's base suite."""
    v = spec.variables
    if platform == "local":
        suite = v.get(SUITE_VAR)
        return (
            {
                "base_suite": suite,
                "kernel_package": v.get(KERNEL_VAR),
                "mirror": f"{MIRROR}/debian",
            }
            if suite
            else {}
        )
    urls = v.get("iso_urls") or ([v["iso_url"]] if v.get("iso_url") else [])
    return {"iso_urls": [str(u) for u in urls], "iso_checksum": v.get("iso_checksum")}


def security_updates(records: list[CheckRecord], name: str) -> list[str] | None:
    """The pending security updates a check recorded (system-security-updates offline,
    el-security-updates on the clone), None if unknown."""
    for rec in records:
        if rec.os == name and rec.data and isinstance(rec.data.get("security_updates"), list):
            return [str(x) for x in rec.data["security_updates"]]
    return None


def cloud_init_timing(records: list[CheckRecord], name: str) -> dict[str, Any] | None:
    """cloud-init's stage durations, datasource and ds-identify's choice on the clone
    (cloud-init-clean-boot), None if not measured."""
    for rec in records:
        if rec.os == name and rec.data and isinstance(rec.data.get("cloud_init_timing"), dict):
            return dict(rec.data["cloud_init_timing"])
    return None


def results_of(
    session: pytest.Session, h: Harness, records: list[CheckRecord], exitstatus: int
) -> dict[str, Any]:
    def expected_checks(family: str) -> tuple[str, ...]:
        return tuple(session.config.hook.pytest_harness_expected_checks(family=family) or ())

    specs = list(h.specs.values())
    builds = {s.name: build_record(h, s.name) for s in specs}
    per_os = session_verdict(specs, builds, records, expected_checks, h.platform_name)
    for name, r in per_os.items():
        spec = h.specs[name]
        tpl = spec.templates.get(h.platform_name) or spec.templates.get("any")
        r["template"] = display_path(tpl.path if tpl else None, h.repo_root)
        r["var_file"] = display_path(spec.var_file, h.repo_root)
        r["validated_platform"] = h.platform_name
        r["junit"] = f"junit-{name}.xml"
        r["packages"] = _packages(h, name, builds[name].get("sha256"))
        r["cloudstack_os_type"] = spec.variables.get("cloudstack_os_type") or None
        r["security_updates"] = security_updates(records, name)
        r["cloud_init"] = cloud_init_timing(records, name)
        r["timings"] = h.board.timings(name)
        r["inventory"] = inventory_record(
            h.settings.artifacts_dir, name, h.run_id, builds[name].get("sha256")
        )
        r["inputs"] = resolved_inputs(spec, builds[name].get("platform") or h.platform_name)
        for t in r["tests"]:
            t["message"] = h.redactor(t["message"]) if t.get("message") else t.get("message")
        r["reasons"] = [h.redactor(x) for x in r["reasons"]]
    partial = partial_reasons(session, exitstatus)
    return {
        "schema": SCHEMA_ID,
        "run_id": h.run_id,
        "started_at": _iso(h.started_at),
        "finished_at": _iso(time.time()),
        "harness_version": __version__,
        "git": git_state(h.repo_root),
        "platform": h.platform_name,
        "partial": bool(partial),
        "partial_reasons": partial,
        "selected_os": [s.name for s in specs],
        "builder": ci_context(),
        "os": per_os,
    }


PENDING = (
    "the session has not finished: still running, or killed before it could record its verdict"
)


def write_pending(h: Harness) -> None:
    """results.json before anything runs: partial (never publishable) until the session ends,
    so a run killed outright leaves no earlier verdict in its place."""
    results = {
        "schema": SCHEMA_ID,
        "run_id": h.run_id,
        "started_at": _iso(h.started_at),
        "finished_at": _iso(h.started_at),
        "harness_version": __version__,
        "git": git_state(h.repo_root),
        "platform": h.platform_name,
        "partial": True,
        "partial_reasons": [PENDING],
        "selected_os": list(h.specs),
        "os": {},
    }
    validate_results(results)
    write_json_atomic(h.settings.reports_dir / "results.json", results)


def _record(
    session: pytest.Session, h: Harness, records: list[CheckRecord], exitstatus: int
) -> dict[str, Any]:
    """Write the JUnit files and results.json; a signal meanwhile waits until both are whole."""
    with deferred():
        results = results_of(session, h, records, exitstatus)
        validate_results(results)
        reports_dir = h.settings.reports_dir
        for r in results["os"].values():
            write_junit(reports_dir / r["junit"], r, h.redactor)
        write_json_atomic(reports_dir / "results.json", results)
        session.config.stash[_RESULTS_KEY] = results
    return results


def finish_session(
    session: pytest.Session, h: Harness, records: list[CheckRecord], exitstatus: int
) -> None:
    try:
        results = _record(session, h, records, exitstatus)
        if h.settings.publish:
            _publish(session, h, h.settings.reports_dir / "results.json")
    except KeyboardInterrupt:
        # Stopped while recording or publishing: the run is partial, whatever it had passed.
        # (The publisher writes latest.json only for a build whose every object is verified.)
        with contextlib.suppress(KeyboardInterrupt):
            _record(session, h, records, pytest.ExitCode.INTERRUPTED)
        session.exitstatus = pytest.ExitCode.INTERRUPTED
        _say(session)("interrupted: the run is recorded as partial; nothing more is published")
        return
    summary_file = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary_file:
        with open(summary_file, "a", encoding="utf-8") as fh:
            fh.write(summary_markdown(results))
    failed = [n for n, r in results["os"].items() if r["verdict"] != "passed"]
    if failed and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _say(session: pytest.Session) -> Any:
    tr = session.config.pluginmanager.get_plugin("terminalreporter")
    return tr.write_line if tr else print


def _publish(session: pytest.Session, h: Harness, results_path: Path) -> None:
    from publish.api import publish_results

    write = _say(session)
    store = session.config.hook.pytest_harness_open_store(
        to=h.settings.publish_to, settings=h.settings
    )
    try:
        report = publish_results(
            [results_path], h.settings.publish_to, h.settings, log=write, store=store
        )
    except Exception as exc:
        write(f"publish failed: {h.redactor(str(exc))}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        return
    if not report.ok:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def terminal_summary(terminalreporter: Any, h: Harness) -> None:
    results = h.config.stash.get(_RESULTS_KEY, None)
    if results is not None:
        terminalreporter.section("template verdict")
        for line in summary_text(results).splitlines():
            terminalreporter.write_line(line)
        terminalreporter.write_line(f"reports: {h.settings.reports_dir}/results.json")
    kept = kept_of_run(h.settings.artifacts_dir, h.run_id)
    if kept:
        terminalreporter.section("kept VMs (--keep-vm)")
        for k in kept:
            until = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(k.expires_at))
            terminalreporter.write_line(f"{k.name} ({k.os_name} on {k.platform}), until {until}")
            terminalreporter.write_line(f"  reach it: {k.ssh}")
            terminalreporter.write_line(f"  stop it:  {k.stop}")
        terminalreporter.write_line(
            "the janitor stops expired ones: xcpng-golden janitor "
            f"--artifacts-dir {h.settings.artifacts_dir}"
        )
