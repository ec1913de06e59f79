"""The harness as a pytest plugin: options, catalog, preflight, scheduling, progress, verdict.

Registered by the root conftest.py. Checks live in validations/; plain `pytest tests/` (the
harness's own tests) never needs --os, credentials or a hypervisor.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from build.catalog import describe, load_catalog
from harness import __version__
from harness.checks import skip_code
from harness.model import UsageError
from harness.options import Settings, add_options
from harness.preflight import ensure_dir_writable, run_preflight
from harness.progress import ProgressDisplay
from harness.redact import Redactor
from harness.reports import (
    SCHEMA_ID,
    summary_markdown,
    summary_text,
    validate_results,
    write_json_atomic,
    write_junit,
)
from harness.scheduling import OSScheduling, os_of_nodeid
from harness.signals import install_sigterm_as_interrupt
from harness.state import HARNESS_KEY, Harness, git_state, new_run_id
from harness.verdict import CheckRecord, session_verdict

pytest_plugins = ["harness.fixtures"]

REPO_ROOT = Path(__file__).resolve().parent.parent
MARKERS = (
    "check(id, rationale): a template check with a stable id",
    "slow: takes more than ~20 s",
    "e2e: end-to-end run with a real build and a real VM",
    "mutation: a broken image per concern, run by the test command",
    "mutation_full: the rest of the mutation table (see README)",
    "benchmark: runs a benchmark script at a tiny size",
)


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    from harness import hookspecs

    pluginmanager.add_hookspecs(hookspecs)


@pytest.hookimpl(trylast=True)
def pytest_harness_expected_checks(family: str) -> tuple[str, ...]:
    from validations.expected import expected_checks

    return tuple(expected_checks(family))


@pytest.hookimpl(trylast=True)
def pytest_harness_make_platform(name: str, settings: Settings, run_id: str) -> Any:
    from platforms.base import get_platform

    return get_platform(name, settings, run_id)


def _settings(config: pytest.Config) -> Settings:
    try:
        return Settings.from_config(config)
    except UsageError as exc:
        raise pytest.UsageError(str(exc)) from None


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> int | None:
    """--list-os: print the catalog and stop before anything is collected or run."""
    settings = _settings(config)
    if not settings.flag("list_os"):
        return None
    try:
        catalog = load_catalog(settings.path("packer_dir"))
    except UsageError as exc:
        sys.stderr.write(f"ERROR: {exc}\n")
        return 4
    rows = [describe(s, REPO_ROOT) for s in catalog.specs.values()]
    rows.sort(key=lambda r: r["name"])
    if settings.list_os_format == "json":
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return 0
    table = [["NAME", "FAMILY", "VERSION", "TEMPLATES", "VAR FILE"]]
    for r in rows:
        version = r["version"] + (" (inferred)" if "os_version" in r["inferred"] else "")
        name = r["name"] + (" (inferred)" if "os_name" in r["inferred"] else "")
        family = r["family"] + (" (inferred)" if "os_family" in r["inferred"] else "")
        tpls = ", ".join(f"{k}={v}" for k, v in r["templates"].items())
        table.append([name, family, version, tpls, r["var_file"] or "-"])
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    for row in table:
        sys.stdout.write("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        sys.stdout.write("\n")
    return 0


def _validations_requested(config: pytest.Config) -> bool:
    vdir = REPO_ROOT / "validations"
    for arg in config.args:
        path = Path(arg.split("::")[0]).absolute()
        if path == vdir or vdir in path.parents:
            return True
    return False


def pytest_configure(config: pytest.Config) -> None:
    for marker in MARKERS:
        config.addinivalue_line("markers", marker)
    settings = _settings(config)
    h = Harness(config=config, settings=settings, repo_root=REPO_ROOT)
    config.stash[HARNESS_KEY] = h
    h.redactor = Redactor(settings.secrets())
    if not settings.get("os"):
        if settings.get("xva"):
            raise pytest.UsageError("--xva needs --os NAME: the OS the artifact is")
        if _validations_requested(config):
            raise pytest.UsageError(
                "no OS selected: pass --os all, --os NAME[,NAME] or --list-os to see them"
            )
        return
    try:
        catalog = load_catalog(settings.path("packer_dir"))
        specs = catalog.select(settings.get("os"))
        if settings.get("xva") and len(specs) != 1:
            raise UsageError(
                f"--xva checks one artifact: pass exactly one OS with --os (got "
                f"{', '.join(s.name for s in specs)})"
            )
        if not settings.get("xva"):
            for s in specs:
                s.template_for(settings.platform)
    except UsageError as exc:
        raise pytest.UsageError(str(exc)) from None
    h.active = True
    h.catalog = catalog
    h.specs = {s.name: s for s in specs}
    if h.is_worker:
        h.run_id = config.workerinput["harness_run_id"]  # type: ignore[attr-defined]
    else:
        h.run_id = settings.get("run_id") or new_run_id()
    h.run_dir = settings.path("artifacts_dir") / ".runs" / h.run_id
    h.run_dir.mkdir(parents=True, exist_ok=True)
    install_sigterm_as_interrupt()
    if not h.is_worker:
        _controller_start(config, h)


def _controller_start(config: pytest.Config, h: Harness) -> None:
    for name in ("artifacts_dir", "reports_dir"):
        problems = ensure_dir_writable(h.settings.path(name))
        if problems:
            raise pytest.UsageError("; ".join(problems))
    for name in h.specs:
        h.board.set(name, "queued")
    hooks: list[tuple[str, Any]] = []
    try:
        platform = h.platform()
        hooks.append((f"platform {platform.name}", platform.preflight))
    except ImportError as exc:
        raise pytest.UsageError(f"platform {h.platform_name} unavailable: {exc}") from None
    if h.settings.flag("publish"):
        hooks.append(("publish", lambda: _publish_preflight(h)))
    started = time.monotonic()
    problems = run_preflight(
        h.settings,
        list(h.specs.values()),
        h.platform_name,
        building=not h.settings.get("xva"),
        hooks=hooks,
    )
    if problems:
        raise pytest.UsageError(
            "preflight found problems; nothing was built:\n  - "
            + "\n  - ".join(h.redactor(p) for p in problems)
        )
    tr = config.pluginmanager.get_plugin("terminalreporter")
    write = tr.write_line if tr else print
    write(
        f"harness: run {h.run_id}, platform {h.platform_name}, OS: {', '.join(h.specs)} "
        f"(preflight {time.monotonic() - started:.1f}s)"
    )
    display = ProgressDisplay(h.board, write)
    display.start()
    config.stash[_DISPLAY_KEY] = display
    recorder = _Recorder()
    config.stash[_RECORDS_KEY] = recorder
    config.pluginmanager.register(recorder, "harness-recorder")


def _publish_preflight(h: Harness) -> list[str]:
    from publish.api import preflight

    return preflight(str(h.settings.publish_to), h.settings)


_DISPLAY_KEY = pytest.StashKey[ProgressDisplay]()
_RECORDS_KEY = pytest.StashKey["_Recorder"]()
_RESULTS_KEY = pytest.StashKey[dict[str, Any]]()


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    h = node.config.stash.get(HARNESS_KEY, None)
    if h is not None and h.active:
        node.workerinput["harness_run_id"] = h.run_id


@pytest.hookimpl(optionalhook=True, tryfirst=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    h = config.stash.get(HARNESS_KEY, None)
    if h is None or not h.active or config.getvalue("dist") == "each":
        return None
    return OSScheduling(config, log, os_names=list(h.specs))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "os_name" not in metafunc.fixturenames:
        return
    h = metafunc.config.stash.get(HARNESS_KEY, None)
    names = list(h.specs) if h is not None and h.active else []
    if not names:
        raise pytest.UsageError("template checks need an OS: pass --os NAME (see --list-os)")
    metafunc.parametrize("os_name", names, ids=names, scope="session")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        callspec = getattr(item, "callspec", None)
        os_name = callspec.params.get("os_name") if callspec else None
        if os_name is None:
            continue
        item.user_properties.append(("os", os_name))
        mark = item.get_closest_marker("check")
        if mark is not None and mark.args:
            item.user_properties.append(("check_id", mark.args[0]))
            if len(mark.args) > 1:
                item.user_properties.append(("rationale", mark.args[1]))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.failed:
        h = item.config.stash.get(HARNESS_KEY, None)
        os_name = dict(item.user_properties).get("os")
        if h is not None and os_name:
            h.failed_os.add(str(os_name))
    return report


def _str_or_none(value: object) -> str | None:
    return None if value is None else str(value)


class _Recorder:
    """Registered on the controller (or the only process): sees every report of the session."""

    def __init__(self) -> None:
        self.records: list[CheckRecord] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        record = to_record(report)
        if record is not None:
            self.records.append(record)


def to_record(report: pytest.TestReport) -> CheckRecord | None:
    props = dict(report.user_properties)
    os_name = props.get("os")
    if os_name is None:
        return None
    if report.when == "call" or report.outcome != "passed":
        if report.failed:
            outcome = "failed" if report.when == "call" else "error"
        else:
            outcome = report.outcome
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
    return None


def _partial_reasons(session: pytest.Session, exitstatus: int) -> list[str]:
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


def _load_build(h: Harness, name: str) -> dict[str, Any] | None:
    path = h.settings.path("artifacts_dir") / name / "build.json"
    try:
        data = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return None
    if data.get("platform") not in (None, h.platform_name):
        return None
    return data


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    h = session.config.stash.get(HARNESS_KEY, None)
    if h is None or not h.active or h.is_worker:
        return
    display = session.config.stash.get(_DISPLAY_KEY, None)
    if display is not None:
        display.stop()

    def expected_checks(family: str) -> tuple[str, ...]:
        return tuple(session.config.hook.pytest_harness_expected_checks(family=family) or ())

    recorder = session.config.stash.get(_RECORDS_KEY, None)
    records = recorder.records if recorder is not None else []
    specs = list(h.specs.values())
    builds = {}
    for s in specs:
        b = _load_build(h, s.name)
        # a build.json from an earlier session must not count: only this run's records
        if b is not None and not _built_this_run(h, s.name):
            b = None
        builds[s.name] = b
    per_os = session_verdict(specs, builds, records, expected_checks, h.platform_name)
    reports_dir = h.settings.path("reports_dir")
    for name, r in per_os.items():
        spec = h.specs[name]
        tpl = spec.templates.get(h.platform_name) or spec.templates.get("any")
        r["template"] = _rel(tpl.path if tpl else None)
        r["var_file"] = _rel(spec.var_file)
        r["validated_platform"] = h.platform_name
        r["junit"] = f"junit-{name}.xml"
        r["build"] = _clean_build(r["build"])
        r["packages"] = _packages(h, name)
        for t in r["tests"]:
            t["message"] = h.redactor(t["message"]) if t.get("message") else t.get("message")
        r["reasons"] = [h.redactor(x) for x in r["reasons"]]
        write_junit(reports_dir / r["junit"], r, h.redactor)
    partial = _partial_reasons(session, exitstatus)
    results = {
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
        "os": per_os,
    }
    validate_results(results)
    write_json_atomic(reports_dir / "results.json", results)
    session.config.stash[_RESULTS_KEY] = results
    summary_file = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary_file:
        with open(summary_file, "a", encoding="utf-8") as fh:
            fh.write(summary_markdown(results))
    failed = [n for n, r in per_os.items() if r["verdict"] != "passed"]
    if failed and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    if h.settings.flag("publish"):
        _publish(session, h, reports_dir / "results.json")


def _packages(h: Harness, name: str) -> list[str] | None:
    path = h.settings.path("artifacts_dir") / name / "packages.txt"
    if not path.is_file() or path.stat().st_mtime < h.started_at:
        return None
    return path.read_text().split()


def _built_this_run(h: Harness, name: str) -> bool:
    record = h.run_dir / "once" / f"build-{name}.json"
    return record.is_file()


def _clean_build(b: dict[str, Any] | None) -> dict[str, Any]:
    if not b:
        return {"status": "not-run", "duration_s": 0.0}
    keep = (
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
    return {k: b.get(k) for k in keep if k in b}


def _rel(p: Path | None) -> str | None:
    if p is None:
        return None
    try:
        return str(p.relative_to(REPO_ROOT))
    except ValueError:
        return str(p)


def _publish(session: pytest.Session, h: Harness, results_path: Path) -> None:
    from publish.api import publish_results

    tr = session.config.pluginmanager.get_plugin("terminalreporter")
    write = tr.write_line if tr else print
    try:
        report = publish_results(
            [results_path], str(h.settings.publish_to), h.settings, dry_run=False, log=write
        )
    except Exception as exc:
        write(f"publish failed: {h.redactor(str(exc))}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        return
    if not getattr(report, "ok", True):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    results = config.stash.get(_RESULTS_KEY, None)
    if results is None:
        return
    terminalreporter.section("template verdict")
    for line in summary_text(results).splitlines():
        terminalreporter.write_line(line)
    terminalreporter.write_line(
        f"reports: {config.stash[HARNESS_KEY].settings.path('reports_dir')}/results.json"
    )


__all__ = ["os_of_nodeid"]
