"""Interrupt matrix, boot and checks rows: a real QEMU started by the real boot_vm (overlay,
seed, firmware variables, QMP socket folder, QEMU slot), stopped while the harness waits for
the guest and while a check runs. The guest itself is the double: the disk is a file
builder's, so instead of waiting for SSH the harness waits a set time while QEMU runs.
"""

from __future__ import annotations

import pytest

from core.proc import find_processes
from tests.support.interrupts import (
    NEEDS_PACKER_AND_QEMU,
    PATTERNS,
    Matrix,
    assert_left_as_found,
    assert_next_run_succeeds,
)

pytestmark = [
    pytest.mark.slow,
    NEEDS_PACKER_AND_QEMU,
]
HOLDS = {"boot": "MATRIX_BOOT_HOLD", "check": "MATRIX_CHECK_HOLD"}


def qemu_of(matrix: Matrix) -> list[int]:
    return find_processes("qemu-system", str(matrix.artifacts))


@pytest.mark.parametrize("phase", list(HOLDS))
@pytest.mark.parametrize("pattern", list(PATTERNS))
def test_stopped_while_the_clone_runs(matrix: Matrix, phase: str, pattern: str) -> None:
    run = matrix.start(env={HOLDS[phase]: "120"})
    matrix.wait_mark(phase, run)
    assert qemu_of(matrix), "the clone's QEMU runs when the signal comes"
    run.stop(pattern)
    rc = run.wait(timeout=120)
    assert_left_as_found(matrix, run, rc)
    assert qemu_of(matrix) == []
    assert_next_run_succeeds(matrix)


@pytest.mark.parametrize("phase", list(HOLDS))
def test_killed_while_the_clone_runs(matrix: Matrix, phase: str) -> None:
    """SIGKILL: QEMU dies with the harness (parent-death signal); its folder, overlay, seed
    and socket folder stay until the next run removes them."""
    run = matrix.start(env={HOLDS[phase]: "120"})
    matrix.wait_mark(phase, run)
    run.kill()
    assert matrix.wait_no_processes() == [], "QEMU must not outlive a harness killed outright"
    assert matrix.mounts() == []
    left = matrix.temporary()
    assert any("/vms/debian12-" in p for p in left), left
    assert any("xcpng-qmp.pid" in p for p in left), left
    out = assert_next_run_succeeds(matrix)
    assert "removed clone folder" in out and "removed temporary folder" in out
