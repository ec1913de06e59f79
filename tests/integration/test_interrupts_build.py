"""Interrupt matrix, Packer build row: Debian's real packer building a file-builder project,
stopped while its provisioner runs (docs/operator/stopping.md).

Packer's "cleanup" here is the provisioner's trap (it sleeps, as Packer removing its VM does,
then leaves a mark): long enough in the SIGINT-then-SIGTERM case for the SIGTERM to land
while it runs, so the test shows that the second signal does not cut it short.
"""

from __future__ import annotations

import shutil

import pytest

from tests.support.interrupts import (
    PATTERNS,
    Matrix,
    assert_left_as_found,
    assert_next_run_succeeds,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("packer") is None, reason="needs Debian's packer"),
]


@pytest.mark.parametrize("pattern", list(PATTERNS))
def test_stopped_during_the_packer_build(matrix: Matrix, pattern: str) -> None:
    slow_cleanup = pattern == "sigint-then-sigterm"
    run = matrix.start(
        env={"MATRIX_BUILD_HOLD": "120", "MATRIX_BUILD_CLEANUP": "10" if slow_cleanup else "1"}
    )
    matrix.wait_mark("build", run)
    run.stop(pattern)
    rc = run.wait(timeout=120)
    assert_left_as_found(matrix, run, rc)
    assert (matrix.marks / "build-cleanup").read_text() == "done\n", (
        "Packer's cleanup was cut short"
    )
    if slow_cleanup:
        assert run.delivered == ["SIGINT", "SIGTERM"], "the SIGTERM must land during cleanup"
    log = (matrix.artifacts / "debian12" / "build.log").read_text()
    assert "interrupted: sending SIGINT to Packer" in log
    build = matrix.results()["os"]["debian12"]["build"]
    assert build["status"] == "not-run" and "interrupted" in build["message"]
    assert_next_run_succeeds(matrix)


def test_killed_during_the_packer_build(matrix: Matrix) -> None:
    """SIGKILL: nothing runs the harness's cleanup. The next run finds what is left (Packer's
    children, the cache's build folder, the build scratch, the run record) and removes it."""
    run = matrix.start(env={"MATRIX_BUILD_HOLD": "120"})
    matrix.wait_mark("build", run)
    run.kill()
    assert matrix.mounts() == []
    assert matrix.results()["partial"] is True  # the verdict written at the start, never replaced
    assert matrix.temporary(), "a killed build leaves its folders behind (else this test is moot)"
    out = assert_next_run_succeeds(matrix)
    assert "removed what runs killed earlier left" in out
    assert "unfinished cache entry" in out and "record of a dead run" in out


def test_stopped_under_xdist(matrix: Matrix) -> None:
    """With -n, a cancelled job's SIGINT reaches the controller only (a terminal's Ctrl-C
    reaches the workers too). xdist interrupts its workers and kills those still running
    after 10 s; Packer, told by its parent-death signal, then cancels itself; whatever a
    killed worker could not remove, the next run removes."""
    run = matrix.start("-n", "2", env={"MATRIX_BUILD_HOLD": "120", "MATRIX_BUILD_CLEANUP": "1"})
    matrix.wait_mark("build", run)
    run.stop("sigint")
    assert run.wait(timeout=120) == 2, run.text()[-3000:]
    assert matrix.wait_no_processes() == [] and matrix.mounts() == []
    assert matrix.results()["partial"] is True
    assert_next_run_succeeds(matrix)
