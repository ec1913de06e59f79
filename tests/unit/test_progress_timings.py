"""The status board keeps how long each phase of an OS took: results.json's `timings` and the
main-job benchmark read them."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.progress import StatusBoard


def test_each_phase_is_timed_and_the_current_one_counts_up_to_now(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = iter([100.0, 130.0, 131.0, 191.0, 200.0, 205.0])
    monkeypatch.setattr("harness.progress.time.time", lambda: next(clock))
    board = StatusBoard(tmp_path)
    board.set("debian12", "build", "waiting")  # 100
    board.set("debian12", "build", "packer")  # 130: same phase, more detail
    board.set("debian12", "boot", "local")  # 131: build took 31 s
    board.set("debian12", "validate", "ssh")  # 191: boot took 60 s
    board.set("debian12", "build", "again?")  # 200: validate 9 s; build adds up
    assert board.timings("debian12", now=210.0) == {
        "build": 41.0,
        "boot": 60.0,
        "validate": 9.0,
    }
    assert board.timings("nothing-here") == {}
