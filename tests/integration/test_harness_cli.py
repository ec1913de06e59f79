"""What an operator sees: --list-os, usage errors, preflight, partial runs, progress."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.fake_project import builds_started, run_harness, write_project

TWO = {"debian12": ("debian", "12"), "rocky9": ("el", "9")}


def test_list_os_table_and_json(tmp_path: Path) -> None:
    root = write_project(tmp_path, TWO)
    table = run_harness(root, "--list-os")
    assert table.returncode == 0
    lines = table.stdout.splitlines()
    assert lines[0].split()[:3] == ["NAME", "FAMILY", "VERSION"]
    assert any(line.startswith("debian12") and "debian" in line for line in lines)
    assert builds_started(root) == []
    js = run_harness(root, "--list-os", "--list-os-format=json")
    rows = json.loads(js.stdout)
    assert [r["name"] for r in rows] == ["debian12", "rocky9"]
    assert rows[1]["family"] == "el" and rows[1]["version"] == "9"
    assert rows[0]["templates"]["any"].endswith("packer/debian12")


def test_unknown_os_is_one_line_listing_known(tmp_path: Path) -> None:
    root = write_project(tmp_path, TWO)
    proc = run_harness(root, "--os", "debian12,arch")
    assert proc.returncode == 4
    assert "ERROR: unknown OS arch in --os; known: debian12, rocky9 (or 'all')" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert builds_started(root) == []


def test_malformed_template_is_a_usage_error_before_anything_runs(tmp_path: Path) -> None:
    root = write_project(tmp_path, TWO)
    bad = root / "packer" / "rocky9" / "template.pkr.hcl"
    bad.write_text(bad.read_text().replace('source "file" "disk" {', 'source "file" "disk" {{'))
    proc = run_harness(root, "--os", "debian12")
    assert proc.returncode == 4
    assert f"{bad}:" in proc.stderr and "malformed HCL" in proc.stderr
    assert builds_started(root) == []


def test_preflight_lists_every_problem_and_builds_nothing(tmp_path: Path) -> None:
    root = write_project(tmp_path, TWO)
    proc = run_harness(
        root,
        "--os",
        "all",
        "--packer-bin=/nonexistent/packer",
        env={"SMOKE_PREFLIGHT_PROBLEMS": "pool unreachable|no SR named fast-ssd"},
    )
    assert proc.returncode == 4
    assert "preflight found problems; nothing was built" in proc.stderr
    assert "Packer not found ('/nonexistent/packer')" in proc.stderr
    assert builds_started(root) == []
    proc = run_harness(
        root, "--os", "all", env={"SMOKE_PREFLIGHT_PROBLEMS": "pool unreachable|no SR named x"}
    )
    assert proc.returncode == 4
    assert "platform local: pool unreachable" in proc.stderr
    assert "platform local: no SR named x" in proc.stderr


def test_missing_xcpng_settings_named_together(tmp_path: Path) -> None:
    root = write_project(tmp_path, TWO)
    proc = run_harness(root, "--os", "all", "--platform=xcpng", env={"XCPNG_URL": "https://p"})
    assert proc.returncode == 4
    for name in ("XCPNG_USERNAME", "XCPNG_PASSWORD", "XCPNG_NETWORK"):
        assert name in proc.stderr
    assert builds_started(root) == []


def test_validations_without_os_is_a_usage_error(tmp_path: Path) -> None:
    root = write_project(tmp_path, TWO)
    proc = run_harness(root)
    assert proc.returncode != 0
    assert "--os" in proc.stdout + proc.stderr


def test_narrowed_run_is_partial_and_fails_the_os(tmp_path: Path) -> None:
    root = write_project(tmp_path, TWO)
    proc = run_harness(root, "--os", "debian12", "-k", "artifact")
    r = json.loads((root / "reports" / "results.json").read_text())
    assert r["partial"] is True
    assert r["partial_reasons"] == ["-k 'artifact'"]
    deb = r["os"]["debian12"]
    assert deb["verdict"] == "failed" and deb["checks"]["missing"] == ["smoke-identity"]
    assert proc.returncode == 1
    assert "PARTIAL RUN" in proc.stdout


def test_progress_and_summary_are_shown(tmp_path: Path) -> None:
    root = write_project(tmp_path, TWO, sleep=3)
    summary = tmp_path / "step-summary.md"
    proc = run_harness(root, "--os", "all", "-n", "2", env={"GITHUB_STEP_SUMMARY": str(summary)})
    assert proc.returncode == 0, proc.stdout
    assert "[debian12] build" in proc.stdout and "[rocky9] build" in proc.stdout
    assert "template verdict" in proc.stdout
    md = summary.read_text()
    assert "| debian12 | built" in md and "| PASSED |" in md


def test_xva_option_validates_an_existing_artifact(tmp_path: Path) -> None:
    root = write_project(tmp_path, TWO)
    art = tmp_path / "given.raw"
    art.write_text("fake disk image of debian12 built as tpl-debian12-manual")
    proc = run_harness(root, "--os", "debian12", f"--xva={art}")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    r = json.loads((root / "reports" / "results.json").read_text())
    assert r["os"]["debian12"]["build"]["status"] == "provided"
    assert builds_started(root) == []
    two = run_harness(root, "--os", "all", f"--xva={art}")
    assert two.returncode == 4 and "exactly one OS" in two.stderr
