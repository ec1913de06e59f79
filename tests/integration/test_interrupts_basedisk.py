"""Interrupt matrix, base-disk row: the real basedisk.sh in its own mount and pid namespaces.

mmdebstrap is the real one (network to the Debian registry), stopped once its mounts exist
(proc, sysfs, devpts, dev/shm in the new root, about 7 s in: the state in which the report
found them left inside the cache). The disk assembly (ESP, mkfs.ext4 -d, GPT, qcow2) is
real too, after a stand-in mmdebstrap that makes a tiny root in a second; a stand-in sfdisk
holds it. Every next run uses the stand-in mmdebstrap: it proves the same cache is usable
without the minutes a full Debian root takes.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.support.interrupts import (
    PATTERNS,
    PROJECT,
    Matrix,
    Run,
    assert_left_as_found,
    assert_next_run_succeeds,
    wait_for,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        os.geteuid() != 0 or not all(shutil.which(t) for t in ("packer", "mmdebstrap", "unshare")),
        reason="the base disk needs root, mmdebstrap and unshare (and Debian's packer)",
    ),
]
STAND_INS = {"MATRIX_BASEDISK": "1", "PATH": f"{PROJECT / 'bin'}:{os.environ['PATH']}"}
REAL = {"MATRIX_BASEDISK": "1"}


def mmdebstrap_pids(matrix: Matrix) -> list[int]:
    return [int(line.split()[0]) for line in matrix.processes() if "/mmdebstrap " in line]


def namespace_mounts(matrix: Matrix) -> list[str]:
    """Mount points below the cache as mmdebstrap's own mount namespace sees them."""
    for pid in mmdebstrap_pids(matrix):
        try:
            table = (Path("/proc") / str(pid) / "mountinfo").read_text().splitlines()
        except OSError:
            continue
        found = [line.split()[4] for line in table if str(matrix.cache) in line.split()[4]]
        if found:
            return found
    return []


def start_mmdebstrap(matrix: Matrix) -> tuple[Run, list[str]]:
    """A run whose mmdebstrap has mounted proc, sysfs, devpts and dev/shm in its new root
    (about 7 s in): the state the report found left inside the cache."""
    run = matrix.start(env=REAL)

    def has_proc() -> list[str] | None:
        """The mounts, once /proc is among them (devpts may come first)."""
        if run.proc.poll() is not None:
            return ["ended"]
        found = namespace_mounts(matrix)
        return found if any(p.endswith("/proc") for p in found) else None

    mounted = wait_for(has_proc, 300, "mmdebstrap's mounts")
    assert run.proc.poll() is None, run.text()[-3000:]
    assert any(p.endswith("/proc") for p in mounted), mounted
    assert matrix.mounts() == [], "mmdebstrap's mounts must not be visible outside its namespace"
    return run, mounted


@pytest.mark.parametrize("pattern", list(PATTERNS))
def test_stopped_while_mmdebstrap_runs(matrix: Matrix, pattern: str) -> None:
    run, _ = start_mmdebstrap(matrix)
    run.stop(pattern)
    rc = run.wait(timeout=120)
    assert_left_as_found(matrix, run, rc)
    assert (
        "base disk: interrupted: SIGINT to mmdebstrap"
        in (matrix.artifacts / "debian12" / "build.log").read_text()
    )
    assert_next_run_succeeds(matrix, env=STAND_INS)


def test_killed_while_mmdebstrap_has_mounts(matrix: Matrix) -> None:
    """SIGKILL of the harness: unshare dies with it (parent-death signal), the namespace's
    first process with unshare, every other process with the namespace, its mounts with its
    last process. Only files stay, and the next run removes them."""
    run, _ = start_mmdebstrap(matrix)
    run.kill()
    assert matrix.wait_no_processes(timeout=15) == [], "the namespace dies with the harness"
    assert matrix.mounts() == []
    left = matrix.temporary()
    assert any("/cache/base/.tmp-" in p for p in left), left
    out = assert_next_run_succeeds(matrix, env=STAND_INS)
    assert "removed unfinished cache entry" in out


@pytest.mark.parametrize("pattern", list(PATTERNS))
def test_stopped_during_the_disk_assembly(matrix: Matrix, pattern: str) -> None:
    run = matrix.start(env={**STAND_INS, "MATRIX_ASSEMBLY_HOLD": "120"})
    matrix.wait_mark("assembly", run)
    work = list(matrix.cache.glob("base/.tmp-*/work"))
    assert work and (work[0] / "disk.raw").exists(), "the assembly is under way"
    run.stop(pattern)
    rc = run.wait(timeout=120)
    assert_left_as_found(matrix, run, rc)
    assert_next_run_succeeds(matrix, env=STAND_INS)


def test_killed_during_the_disk_assembly(matrix: Matrix) -> None:
    run = matrix.start(env={**STAND_INS, "MATRIX_ASSEMBLY_HOLD": "120"})
    matrix.wait_mark("assembly", run)
    assert matrix.processes(), "the base-disk build runs when the signal comes"
    run.kill()
    assert matrix.wait_no_processes(timeout=15) == []
    assert matrix.mounts() == []
    out = assert_next_run_succeeds(matrix, env=STAND_INS)
    assert "removed unfinished cache entry" in out
