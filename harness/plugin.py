"""The harness as a pytest plugin: options, catalog, preflight, scheduling, progress, verdict.

Registered through the `pytest11` entry point of the installed project (`xcpng_golden`), so its
options exist before pytest reads the command line, from any working directory. It sits on top
of the phases and nothing imports it. `pytest tests/` (the harness's own tests) never needs
--os, credentials or a hypervisor; `--collect-only` lists what would run and does nothing else.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from build.catalog import load_catalog
from core.checks import MARKERS
from core.errors import UsageError
from core.ownership import RUN_ENV, claim
from core.redact import Redactor
from core.settings import PACKAGE_ROOT, Settings
from core.trees import remove_trees
from harness.family_checks import split_by_family
from harness.finish import finish_session, terminal_summary, write_pending
from harness.listing import list_os
from harness.options import add_options, settings_from
from harness.preflight import ensure_dir_writable, report_leftovers, run_preflight
from harness.progress import ProgressDisplay
from harness.recorder import Recorder, annotate, redact_report
from harness.scheduling import OSScheduling
from harness.session import HARNESS_KEY, Harness, new_run_id
from platforms.leftovers import tidy

REPO_ROOT = PACKAGE_ROOT
VALIDATIONS = PACKAGE_ROOT / "validations"
_DISPLAY_KEY = pytest.StashKey[ProgressDisplay]()


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


# pytest-testinfra's own plugin defines a `host` fixture too (for its --hosts option). Which of
# two plugins' fixtures wins depends on the order of their entry points, which differs between
# virtual environments: with testinfra's, every check ran against this machine instead of the
# VM. So the harness keeps it out, whichever loads first; testinfra stays a library
# (harness/fixtures.py builds `host` with testinfra.get_host).
TESTINFRA_PLUGIN = "pytest11.testinfra"


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    from harness import hookspecs

    pluginmanager.add_hookspecs(hookspecs)
    loaded = pluginmanager.get_plugin(TESTINFRA_PLUGIN)
    if loaded is not None:
        pluginmanager.unregister(loaded)
    pluginmanager.set_blocked(TESTINFRA_PLUGIN)


@pytest.hookimpl(trylast=True)
def pytest_harness_expected_checks(family: str) -> tuple[str, ...]:
    from validations.expected import expected_checks

    return tuple(expected_checks(family))


@pytest.hookimpl(trylast=True)
def pytest_harness_make_platform(
    name: str, settings: Settings, run_id: str, redactor: Redactor
) -> Any:
    from platforms.registry import get_platform

    return get_platform(name, settings, run_id, redactor)


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(
    early_config: pytest.Config, parser: pytest.Parser, args: list[str]
) -> None:
    """`pytest --os NAME` from anywhere checks with this project's validations: when no test
    path is given, add them (pytest.ini's testpaths only count from the checkout itself)."""
    ns = early_config.known_args_namespace
    selected = (
        getattr(ns, "os", None)
        or getattr(ns, "xva", None)
        or os.environ.get("TEMPLATE_OS")
        or os.environ.get("TEMPLATE_XVA")
    )
    if selected and not getattr(ns, "file_or_dir", None):
        args.append(str(VALIDATIONS))


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> int | None:
    """--list-os: print the catalog and stop before anything is collected or run."""
    settings = settings_from(config)
    if not settings.list_os:
        return None
    return list_os(settings, REPO_ROOT, sys.stdout, sys.stderr)


def _validations_requested(config: pytest.Config) -> bool:
    for arg in config.args:
        path = Path(arg.split("::")[0]).absolute()
        if path == VALIDATIONS or VALIDATIONS in path.parents:
            return True
    return False


def _collect_only(config: pytest.Config) -> bool:
    return bool(config.getoption("collectonly", False))


def pytest_configure(config: pytest.Config) -> None:
    # Registered now, after every entry-point plugin: pytest-testinfra also defines `host`
    # (a connection to --hosts, "local" by default) and the last definition wins. The checks
    # must reach the clone, never the runner.
    from harness import fixtures

    if not config.pluginmanager.is_registered(fixtures):
        config.pluginmanager.register(fixtures, "harness.fixtures")
    for marker in MARKERS:
        config.addinivalue_line("markers", marker)
    settings = settings_from(config)
    h = Harness(
        config=config, settings=settings, repo_root=REPO_ROOT, redactor=Redactor(settings.secrets())
    )
    config.stash[HARNESS_KEY] = h
    if not settings.os:
        if settings.xva:
            raise pytest.UsageError("--xva needs --os NAME: the OS the artifact is")
        if _validations_requested(config):
            raise pytest.UsageError(
                "no OS selected: pass --os all, --os NAME[,NAME] or --list-os to see them"
            )
        return
    try:
        h.specs = {s.name: s for s in _select(settings)}
    except UsageError as exc:
        raise pytest.UsageError(str(exc)) from None
    h.active = True
    if h.is_worker:
        h.run_id = config.workerinput["harness_run_id"]  # type: ignore[attr-defined]
    else:
        h.run_id = settings.run_id or new_run_id()
    os.environ[RUN_ENV] = h.run_id  # inherited by every process the run starts
    if _collect_only(config):
        return  # list what would run: no preflight, no run folder, no reports
    from core.signals import install_sigterm_as_interrupt

    install_sigterm_as_interrupt()
    if not h.is_worker:
        _controller_start(config, h)


def _select(settings: Settings) -> list[Any]:
    catalog = load_catalog(settings.packer_dir)
    # `--os all` builds what the platform can build; `--xva` builds nothing, so any OS goes.
    specs = catalog.select(settings.os, None if settings.xva else settings.platform)
    if settings.xva:
        if len(specs) != 1:
            raise UsageError(
                f"--xva checks one artifact: pass exactly one OS with --os (got "
                f"{', '.join(s.name for s in specs)})"
            )
        if not settings.xva.is_file():
            raise UsageError(f"--xva {settings.xva}: no such file; pass an existing artifact")
    else:
        for s in specs:
            s.template_for(settings.platform)
    return specs


def _controller_start(config: pytest.Config, h: Harness) -> None:
    for path in (h.settings.artifacts_dir, h.settings.reports_dir):
        problems = ensure_dir_writable(path)
        if problems:
            raise pytest.UsageError("; ".join(problems))
    claim(h.run_dir)  # this run is alive while this process is: its records are not leftovers
    tr = config.pluginmanager.get_plugin("terminalreporter")
    write = tr.write_line if tr else print
    report_leftovers(tidy(h.settings, current_run=h.run_id), write)
    for name in h.specs:
        h.board.set(name, "queued")
    hooks: list[tuple[str, Any]] = []
    try:
        platform = h.platform()
        specs, building = list(h.specs.values()), not h.settings.xva
        hooks.append((f"platform {platform.name}", lambda: platform.preflight(specs, building)))
    except ImportError as exc:
        raise pytest.UsageError(f"platform {h.platform_name} unavailable: {exc}") from None
    if h.settings.publish:
        hooks.append(("publish", lambda: _publish_preflight(h)))
    started = time.monotonic()
    problems = run_preflight(
        h.settings,
        list(h.specs.values()),
        h.platform_name,
        building=not h.settings.xva,
        hooks=hooks,
    )
    if problems:
        raise pytest.UsageError(
            "preflight found problems; nothing was built:\n  - "
            + "\n  - ".join(h.redactor(p) for p in problems)
        )
    write_pending(h)
    write(
        f"harness: run {h.run_id}, platform {h.platform_name}, OS: {', '.join(h.specs)} "
        f"(preflight {time.monotonic() - started:.1f}s)"
    )
    display = ProgressDisplay(h.board, write)
    display.start()
    config.stash[_DISPLAY_KEY] = display
    config.pluginmanager.register(Recorder(), Recorder.NAME)
    _preload(publish=h.settings.publish)


def _preload(publish: bool) -> None:
    """Load in a thread, while the builds and boots wait, what the end of the run needs and
    takes 2-4 s to load: jsonschema (results.json is validated; its format checkers load
    rfc3987_syntax, which compiles a grammar) and, when publishing, the SBOM's validator."""

    def load() -> None:
        with contextlib.suppress(Exception):  # loaded again where used, with its own error
            import jsonschema  # noqa: F401

            if publish:
                from publish.sbom import warm

                warm()

    threading.Thread(target=load, name="preload", daemon=True).start()


def _publish_preflight(h: Harness) -> list[str]:
    from publish.api import preflight

    return preflight(h.settings.publish_to, h.settings)


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
    h = config.stash.get(HARNESS_KEY, None)
    if h is not None and h.active:
        keep, drop = split_by_family(
            items,
            {name: spec.family for name, spec in h.specs.items()},
            lambda f: tuple(config.hook.pytest_harness_expected_checks(family=f) or ()),
        )
        if drop:
            config.hook.pytest_deselected(items=drop)
            items[:] = keep


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    h = item.config.stash.get(HARNESS_KEY, None)
    if h is None or not h.active:
        return report
    redact_report(report, h.redactor)
    annotate(report, call)
    os_name = dict(item.user_properties).get("os")
    if report.failed and os_name:
        h.failed_os.add(str(os_name))
    return report


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    h = session.config.stash.get(HARNESS_KEY, None)
    if h is None or not h.active or h.is_worker or _collect_only(session.config):
        return
    display = session.config.stash.get(_DISPLAY_KEY, None)
    if display is not None:
        display.stop()
    recorder = session.config.pluginmanager.get_plugin(Recorder.NAME)
    h.interrupted = exitstatus == pytest.ExitCode.INTERRUPTED
    finish_session(session, h, recorder.records if recorder is not None else [], exitstatus)


def pytest_unconfigure(config: pytest.Config) -> None:
    """The controller removes its run's records (build-once, progress) once all is said."""
    h = config.stash.get(HARNESS_KEY, None)
    if h is not None and h.active and not h.is_worker and not _collect_only(config):
        remove_trees([h.run_dir])
        if h.interrupted:  # all is cleaned up and said: a late second signal changes nothing
            from core.signals import ignore_from_now

            ignore_from_now()


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    h = config.stash.get(HARNESS_KEY, None)
    if h is not None and h.active and not h.is_worker:
        terminal_summary(terminalreporter, h)
