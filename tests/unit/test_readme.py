"""The README names both set-up commands; the configuration reference documents every setting."""

from __future__ import annotations

from pathlib import Path

import yaml

from core.settings import OPTIONS

ROOT = Path(__file__).resolve().parents[2]


def test_configuration_reference_lists_every_setting() -> None:
    page = (ROOT / "docs" / "configuration.md").read_text()
    missing = [o.env for o in OPTIONS if f"`{o.env}`" not in page]
    assert missing == []


def test_readme_names_the_two_commands_and_ci_runs_the_test_one() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "    scripts/main-job\n" in readme
    assert "    scripts/test\n" in readme
    assert "exec scripts/test" in (ROOT / ".ci" / "run").read_text()


def test_workflow_cleans_up_and_keeps_forks_out() -> None:
    wf = yaml.safe_load((ROOT / ".github" / "workflows" / "templates.yml").read_text())
    job = wf["jobs"]["templates"]
    # the shards need the plan job, which keeps forks out
    assert job["needs"] == "plan"
    assert "head.repo.full_name == github.repository" in wf["jobs"]["plan"]["if"]
    steps = {s.get("name"): s for s in job["steps"]}
    cleanup = steps["Remove VMs and disks this run left on the pool"]
    assert cleanup["if"] == "always()" and "cleanup --run-id" in cleanup["run"]
    assert "secrets." not in str(steps["Build, boot and check"]["run"])
