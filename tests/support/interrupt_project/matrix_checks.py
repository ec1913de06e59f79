"""Checks of the interrupt matrix's harness project: each runs against the real build and the
clone the real boot_vm started; one holds the checks phase (MATRIX_CHECK_HOLD seconds)."""

from __future__ import annotations

import os
import time
from pathlib import Path

from core.checks import check
from core.model import BootedVM, BuildResult, TemplateSpec
from core.proc import argv_of


@check("matrix-artifact", "the build produced this OS's artifact")
def test_artifact(build: BuildResult, spec: TemplateSpec) -> None:
    head = Path(str(build.artifact)).read_bytes()[:64]
    assert head.startswith(f"fake disk image of {spec.name}".encode())


@check("matrix-clone", "the clone's QEMU runs from its own overlay")
def test_clone(vm: BootedVM) -> None:
    argv = argv_of(int(vm.facts["qemu_pid"]))
    assert any("overlay.qcow2" in a for a in argv), argv


@check("matrix-slow", "a check that takes a while")
def test_slow(vm: BootedVM) -> None:
    seconds = float(os.environ.get("MATRIX_CHECK_HOLD") or 0)
    if seconds:
        marks = Path(os.environ["MATRIX_MARKS"])
        (marks / "check").write_text(f"{os.getpid()}\n")
        time.sleep(seconds)
