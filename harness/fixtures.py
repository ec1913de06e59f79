"""The fixture chain of a template: spec -> build -> clone (started) -> vm (reached) -> host,
and image, read offline while the clone boots.

All are session-scoped and parametrised by OS (the plugin parametrises `os_name`), so pytest
keeps one OS's instance at a time and the scheduler keeps each OS on one worker: every OS is
built once and booted once per session.
"""

from __future__ import annotations

import contextlib
import shlex
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from build.builder import build_os
from build.once import run_once
from core.errors import failure_class
from core.model import BootedVM, BuildResult, TemplateSpec
from core.ownership import socket_dir
from core.platform import Platform, Starting
from core.settings import keep_decision
from core.ssh import client_options
from core.trees import remove_trees
from harness.image_loader import ImageLoader
from harness.inventory import inventory_packages, record_inventory
from harness.scheduling import (
    background_fixtures,
    needs_clone,
    offline_checks_first,
    os_of_item,
)
from harness.session import HARNESS_KEY, Harness
from harness.shell_session import ShellBackend, transport_argv
from pkgdb.archive import Archive
from platforms.kept import vm_folder
from validations.persistence_answers import CloneAnswers


class BuildFailed(Exception):
    """The build of this OS failed; every test of it errors with this one message."""


class BootFailed(Exception):
    """The image could not be booted or reached; the checks cannot run. Its class is its
    cause's: a clone unreachable because of what the image contains is an image defect."""

    def __init__(self, message: str, failure_class: str) -> None:
        super().__init__(message)
        self.failure_class = failure_class


@pytest.hookimpl(trylast=True)  # after pytest grouped the tests by OS and -k/-m deselected
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Offline checks first, while the clone boots; then the checks that need it, those that
    read background answers last. Only an OS with a selected check that needs the clone starts
    one."""
    h = config.stash.get(HARNESS_KEY, None)
    if h is not None and h.active:
        items[:] = offline_checks_first(items)
        h.clone_wanted = {name for i in items if needs_clone(i) and (name := os_of_item(i))}
        h.background_wanted = {}
        for item in items:
            if (os_name := os_of_item(item)) is not None:
                h.background_wanted.setdefault(os_name, set()).update(background_fixtures(item))


def _harness(request: pytest.FixtureRequest) -> Harness:
    h = request.config.stash.get(HARNESS_KEY, None)
    if h is None or not h.active:
        raise pytest.UsageError("template checks need an OS: pass --os NAME (see --list-os)")
    return h


@pytest.fixture(scope="session")
def harness(request: pytest.FixtureRequest) -> Harness:
    return _harness(request)


@pytest.fixture(scope="session")
def spec(os_name: str, harness: Harness) -> TemplateSpec:
    return harness.specs[os_name]


@pytest.fixture(scope="session")
def build(spec: TemplateSpec, harness: Harness) -> BuildResult:
    harness.board.set(spec.name, "build", "waiting for the build lock")
    result = run_once(
        harness.run_dir / "once",
        spec.name,
        lambda on_start: build_os(harness.build_context(), spec, on_start),
        log=lambda m: harness.board.set(spec.name, "build", m),
    )
    if not result.ok:
        harness.board.set(spec.name, "done", "build failed")
        raise BuildFailed(f"{spec.name}: {result.message} (log: {result.log_path})")
    harness.board.set(spec.name, "build", f"{result.status} in {result.duration_s:.0f}s")
    return result


@pytest.fixture(scope="session")
def platform(harness: Harness) -> Platform:
    return harness.platform()


@contextlib.contextmanager
def _boot_failure(spec: TemplateSpec, harness: Harness) -> Iterator[None]:
    """A clone that cannot be started or reached: BootFailed, classed as its cause is (an
    interrupt is not an Exception and passes through)."""
    try:
        yield
    except Exception as exc:
        harness.board.set(spec.name, "done", "boot failed")
        raise BootFailed(f"{spec.name}: boot failed: {exc}", failure_class(exc)) from exc


@pytest.fixture(scope="session")
def clone(
    spec: TemplateSpec, build: BuildResult, platform: Platform, harness: Harness
) -> Iterator[Starting]:
    """The clone started and left to boot on its own (QEMU running, the VM powered on): the
    `image` fixture asks for it before the offline read, so the offline checks run while it
    boots, and `vm` waits for it. Its folder lives beside the artifacts (a kept clone's key
    must outlive pytest's temporary folders). A failure to start is raised to `vm`'s checks
    only: pytest keeps it and raises it again there."""
    workdir = vm_folder(harness.settings.artifacts_dir, f"{spec.name}-{harness.run_id}")
    harness.board.set(spec.name, "boot", f"on {platform.name}")
    with _boot_failure(spec, harness):
        cm = platform.start(spec, build, workdir)
        starting = cm.__enter__()
    try:
        yield starting
    finally:
        failed = spec.name in harness.failed_os
        cm.__exit__(None, None, None)
        harness.board.set(spec.name, "done", "failed" if failed else "")


@pytest.fixture(scope="session")
def vm(spec: TemplateSpec, clone: Starting, harness: Harness) -> Iterator[BootedVM]:
    """The booted clone, once it answers SSH; --keep-vm is decided here, once."""
    with _boot_failure(spec, harness):
        booted = clone.ready()
    harness.board.set(spec.name, "validate", f"{booted.address}:{booted.port}")
    try:
        yield booted
    finally:
        booted.keep = keep_decision(harness.settings.keep_vm, spec.name in harness.failed_os)
        harness.board.set(spec.name, "teardown", "keeping the VM" if booted.keep else "")


@pytest.fixture(scope="session")
def clone_answers(host: Any) -> CloneAnswers:
    """What runs as root later, as the clone resolves it: asked once, in the clone's background
    (`_background_questions`), for both persistence checks."""
    return CloneAnswers(host)


@pytest.fixture(autouse=True)
def _background_questions(request: pytest.FixtureRequest) -> None:
    """At a booted check, start the background questions its OS's checks will read: the first
    booted check starts them, `start()` is a no-op after that."""
    h = request.config.stash.get(HARNESS_KEY, None)
    if h is None or not h.active or not needs_clone(request.node):
        return
    for name in h.background_wanted.get(os_of_item(request.node) or "", ()):
        request.getfixturevalue(name).start()


PACKAGE_QUERY = {
    "debian": "dpkg-query -W -f='${Package}=${Version}\\n'",
    "el": "rpm -qa --qf '%{NAME}=%{VERSION}-%{RELEASE}\\n'",
}


def record_packages(host: Any, spec: TemplateSpec, build: BuildResult, harness: Harness) -> None:
    """The installed package list, for the published metadata (best effort, never a check),
    asked of the clone only when the offline inventory could not be read (harness/finish.py
    takes it from there): 2 s of the clone's time under TCG."""
    if inventory_packages(harness.settings.artifacts_dir, spec.name, harness.run_id, build.sha256):
        return
    query = PACKAGE_QUERY.get(spec.family)
    if query is None:
        return
    out = host.run(query)
    if out.rc == 0 and out.stdout.strip():
        path = harness.settings.artifacts_dir / spec.name / "packages.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(sorted(out.stdout.split())) + "\n")


@pytest.fixture(scope="session")
def host(vm: BootedVM, spec: TemplateSpec, build: BuildResult, harness: Harness) -> Iterator[Any]:
    """testinfra over OpenSSH: the client agrees with the hardened server's algorithms, trusts
    only the host key the seed installed, and sends every command to one long-lived shell per
    privilege over one connection (harness/shell_session.py)."""
    from testinfra.host import Host

    control = socket_dir("xcpng-ssh")
    options = client_options(vm.key_path, vm.known_hosts, control_dir=control)
    backend = ShellBackend(
        f"ssh://{vm.user}@{vm.address}:{vm.port}",
        transport_argv(options, vm.user, vm.address, vm.port),
        ssh_extra_args=shlex.join(options),
        controlpersist=600,
        timeout=30,
    )
    connection = Host(backend)
    with contextlib.suppress(Exception):
        record_packages(connection, spec, build, harness)
    try:
        yield connection
    finally:
        backend.close()
        # stop the shared master connection before the VM goes away, then drop its folder
        with contextlib.suppress(Exception):
            subprocess.run(
                ["ssh", *options, "-p", str(vm.port), "-O", "exit", f"{vm.user}@{vm.address}"],
                capture_output=True, timeout=20, check=False,
            )  # fmt: skip
        remove_trees([control])


@pytest.fixture(scope="session")
def image_loader(
    build: BuildResult, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ImageLoader]:
    """The artifact read offline in a thread (harness/image_loader.py), beside the clone's
    start."""
    workdir = tmp_path_factory.mktemp(f"image-{build.os_name}")
    loader = ImageLoader(build, workdir)
    try:
        yield loader
    finally:
        loader.close()
        remove_trees([Path(workdir)])


@pytest.fixture(scope="session")
def image(
    request: pytest.FixtureRequest,
    image_loader: ImageLoader,
    build: BuildResult,
    harness: Harness,
    archive: Archive,
) -> Any:
    """The built artifact opened read-only, offline, for hygiene checks that a boot would hide.
    The clone, if a selected check needs one, is started first and boots while the image is
    read. Its package inventory, the SBOM's input, is recorded from it once
    (harness/inventory.py)."""
    image_loader.start()
    if build.os_name in harness.clone_wanted:
        with contextlib.suppress(BootFailed):  # raised again to the checks that need the clone
            request.getfixturevalue("clone")
    opened = image_loader.get()
    record_inventory(opened, build, harness.settings.artifacts_dir, harness.run_id, archive)
    return opened


@pytest.fixture(scope="session")
def archive(harness: Harness) -> Archive:
    """The distributions' package archives as this host sees them, cached under the cache dir
    (shared by workers and sessions, refreshed after --archive-max-age): what the offline
    package checks compare an image's package database with."""
    return Archive(harness.settings.cache_dir / "archive", harness.settings.archive_max_age)
