"""benchmarks/main_job.py reads each phase from the run's own records (its real runs take
minutes and are run by hand, see the docs)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.main_job import Run, phases_of, table


def test_phases_come_from_results_and_the_build_log(tmp_path: Path) -> None:
    log = tmp_path / "build.log"
    log.write_text("10:00:01 basedisk: mmdebstrap\n10:01:41 base disk ready in 100.4 s\n")
    results = {
        "finished_at": "2026-12-06T10:10:00Z",
        "os": {
            "debian12": {
                "build": {"duration_s": 400.4},
                "timings": {"build": 401.0, "boot": 61.5, "validate": 14.2, "teardown": 3.0},
            }
        },
    }
    ended = 1796551800.0 + 12.5  # 10:10:00 UTC of that day, plus the publish
    phases = phases_of(results, log, ended, "debian12")
    assert phases == {
        "base disk": 100.4,
        "build": 300.0,
        "boot": 61.5,
        "checks": 14.2,
        "teardown": 3.0,
        "publish": 12.5,
    }


def test_ratios_against_the_targets() -> None:
    warm = Run("warm", "debian12", 0, 2.0, 90.0, {"checks": 12.0}, "passed")
    cold = Run("cold", "debian12", 0, 2.0, 540.0, {}, "passed")
    assert warm.ratios() == {"total": 1.2, "checks": 0.8}
    assert cold.ratios() == {"total": 1.5}
    text = table([warm, cold])
    assert "warm total / target 75 s: 1.20" in text and "cold total / target 360 s: 1.50" in text
