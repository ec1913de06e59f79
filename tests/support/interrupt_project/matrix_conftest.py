"""conftest of the interrupt matrix's harness project (copied to <root>/conftest.py).

The parts that create something to clean up are the real ones: the base disk (basedisk.sh in
its namespaces, with the real mmdebstrap or a quick stand-in on PATH), Packer, QEMU started
and stopped by the real boot_vm (overlay, seed, QMP socket folder, slots), the publisher and
its stores. The slow parts are doubles: the guest that never boots (the disk is a file
builder's) is replaced by `wait_ready` waiting MATRIX_BOOT_HOLD seconds while QEMU runs; a
check sleeps MATRIX_CHECK_HOLD seconds; the folder store reads what it publishes at
MATRIX_PUBLISH_RATE bytes/s. Each held phase leaves a mark (MATRIX_MARKS/<phase>) so the test
knows when to send its signal.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest
from stand_in_inventory import _package_inventory  # noqa: F401  (a fixture)

from core.destination import Destination
from core.errors import InfrastructureError
from core.model import BootedVM, BuildResult, TemplateSpec
from core.platform import Platform, Starting, booted
from core.settings import Settings
from platforms.local import basedisk, boot
from platforms.local.accel import TCG

MARKS = Path(os.environ.get("MATRIX_MARKS", "/nonexistent"))
CHECKS = ("matrix-artifact", "matrix-clone", "matrix-slow")


def mark(phase: str) -> None:
    (MARKS / phase).write_text(f"{os.getpid()}\n")


def hold(phase: str) -> float:
    return float(os.environ.get(f"MATRIX_{phase.upper()}_HOLD") or 0)


def _wait_ready(
    vm: BootedVM,
    proc: subprocess.Popen[bytes],
    timeout_s: float,
    stderr: Path,
    console: Path | None = None,
) -> float:
    """Instead of a guest reaching SSH: QEMU runs for MATRIX_BOOT_HOLD seconds."""
    started = time.monotonic()
    if hold("boot"):
        mark("boot")
    while time.monotonic() - started < hold("boot"):
        if proc.poll() is not None:
            raise InfrastructureError(f"QEMU exited with code {proc.returncode}")
        time.sleep(0.2)
    return time.monotonic() - started


boot.wait_ready = _wait_ready


class MatrixPlatform:
    name = "local"
    has_xen = False

    def __init__(self, settings: Settings, run_id: str) -> None:
        self.settings, self.run_id = settings, run_id

    def preflight(self, specs: Sequence[TemplateSpec] = (), building: bool = True) -> list[str]:
        return []

    def recipe_digest(self, spec: TemplateSpec) -> dict[str, str]:
        return {}

    def build_vars(
        self, spec: TemplateSpec, workdir: Path, log: Callable[[str], None]
    ) -> dict[str, str]:
        if os.environ.get("MATRIX_BASEDISK"):
            recipe = basedisk.Recipe("bookworm", "linux-image-amd64", basedisk.MIN_SIZE_MB)
            disk = basedisk.ensure_base_disk(
                self.settings.cache_dir, log, recipe, self.settings.max_image_age
            )
            log(f"matrix: base disk {disk.path}")
        return {"marks": str(MARKS)}

    def boot(
        self, spec: TemplateSpec, build: BuildResult, workdir: Path
    ) -> AbstractContextManager[BootedVM]:
        return booted(self.start(spec, build, workdir))

    def start(
        self, spec: TemplateSpec, build: BuildResult, workdir: Path
    ) -> AbstractContextManager[Starting]:
        artifacts = self.settings.artifacts_dir
        plan = boot.BootPlan(
            workdir=workdir,
            run_id=self.run_id,
            accel=TCG,
            console_log=artifacts / spec.name / "console.log",
            slots_dir=self.settings.cache_dir / "qemu-slots",
            boot_timeout_s=120,
            may_keep=False,
            keep_ttl_s=60,
            janitor_artifacts=artifacts,
        )
        return boot.start_vm(spec, build, plan)


class _SlowReader:
    """A publish stream read at `rate` bytes/s (everything else is the stream's)."""

    def __init__(self, stream: Any, rate: float) -> None:
        self.stream, self.rate = stream, rate

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)

    def read(self, n: int = -1) -> bytes:
        data: bytes = self.stream.read(n)
        time.sleep(len(data) / self.rate)
        return data


class SlowSource:
    """The real folder store, fed at `rate` bytes/s: its copy into a temporary file (renamed
    into place at the end) lasts long enough to be interrupted."""

    def __init__(self, inner: Any, rate: float) -> None:
        self.inner, self.rate = inner, rate

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def put_stream(self, key: str, stream: Any, sha256: str | None = None, log: Any = print) -> Any:
        mark("publish")  # the artifact comes first; the logs and reports after it
        return self.inner.put_stream(key, _SlowReader(stream, self.rate), sha256=sha256, log=log)


@pytest.hookimpl(tryfirst=True)
def pytest_harness_open_store(to: Destination, settings: Settings) -> Any:
    rate = float(os.environ.get("MATRIX_PUBLISH_RATE") or 0)
    if not rate or to.path is None:
        return None
    from publish.stores.local import LocalStore

    return SlowSource(LocalStore(to.path), rate)


@pytest.hookimpl(tryfirst=True)
def pytest_harness_expected_checks(family: str) -> tuple[str, ...]:
    return CHECKS


@pytest.hookimpl(tryfirst=True)
def pytest_harness_make_platform(
    name: str, settings: Settings, run_id: str, redactor: Any
) -> Platform:
    return MatrixPlatform(settings, run_id)  # mypy holds it to the Platform protocol
