"""The GitHub workflows, one test per rule they must keep (issue 12), read from the YAML
itself; zizmor and check-jsonschema run on them in scripts/test, and here on a workflow with
the old mistakes to show they would be caught."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
TEMPLATES = WORKFLOWS / "templates.yml"
HARNESS = WORKFLOWS / "harness-tests.yml"
FORK_GUARD = (
    "github.event_name != 'pull_request' || "
    "github.event.pull_request.head.repo.full_name == github.repository"
)
BIN = Path(sys.executable).parent


def load(path: Path) -> dict[Any, Any]:
    return yaml.safe_load(path.read_text())


def steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return list(job["steps"])


def step(job: dict[str, Any], name: str) -> dict[str, Any]:
    return next(s for s in steps(job) if s.get("name") == name)


def all_files() -> list[Path]:
    files = sorted(WORKFLOWS.glob("*.yml"))
    assert {f.name for f in files} == {"templates.yml", "harness-tests.yml"}
    return files


def test_publish_runs_when_another_os_failed() -> None:
    job = load(TEMPLATES)["jobs"]["templates"]
    names = [s.get("name") for s in steps(job)]
    publish = step(job, "Publish what passed")
    cond = str(publish["if"])
    # a status function is present, so success() is not implied: one failed OS (the pytest
    # step fails) does not block the others; a cancelled run publishes nothing
    assert "!cancelled()" in cond and "success()" not in cond
    assert "github.ref == 'refs/heads/main'" in cond and "pull_request" in cond
    assert "hashFiles('reports/results.json')" in cond
    assert names.index("Build, boot and check") < names.index("Publish what passed")
    assert "--results reports/results.json" in publish["run"]


def test_harness_tests_never_run_fork_code_on_the_pool_runner() -> None:
    pool = load(TEMPLATES)["jobs"]
    harness = load(HARNESS)["jobs"]["test"]
    pool_labels = {tuple(j["runs-on"]) for j in pool.values()}
    assert pool_labels == {("self-hosted", "linux", "x64", "xcpng")}
    labels = set(harness["runs-on"])
    # a runner takes a job when it has every label the job asks for: the pool runner lacks
    # `harness`, so it can never take this job
    assert not labels <= {"self-hosted", "linux", "x64", "xcpng"}
    assert "harness" in labels and "xcpng" not in labels
    assert harness["if"] == FORK_GUARD  # and fork PRs never reach a self-hosted runner
    # the plan job decides whether anything runs: the shards need it, the index needs both
    assert pool["plan"]["if"] == FORK_GUARD
    assert pool["templates"]["needs"] == "plan" and "if" not in pool["templates"]
    assert set(pool["index"]["needs"]) == {"plan", "templates"}
    assert "pull_request" in pool["index"]["if"]


def _secret_places(node: Any, path: str = "") -> list[str]:
    out = []
    if isinstance(node, dict):
        for k, v in node.items():
            out += _secret_places(v, f"{path}/{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _secret_places(v, f"{path}/{i}")
    elif isinstance(node, str) and "secrets." in node:
        out.append(path)
    return out


def test_secrets_only_in_the_env_of_the_steps_that_use_them() -> None:
    for f in all_files():
        wf = load(f)
        assert "env" not in wf or not _secret_places(wf["env"]), f.name
        for job_id, job in wf["jobs"].items():
            assert not _secret_places(job.get("env", {})), f"{f.name} {job_id}: job-level env"
            for place in _secret_places(job):
                assert re.fullmatch(r"/steps/\d+/env/\w+", place), f"{f.name} {job_id}{place}"
    job = load(TEMPLATES)["jobs"]["templates"]
    build = step(job, "Build, boot and check")
    assert set(build["env"]) >= {"XCPNG_URL", "XCPNG_USERNAME", "XCPNG_PASSWORD"}
    assert not any("AWS" in k for k in build["env"])  # the store keys only where it publishes
    assert "AWS_SECRET_ACCESS_KEY" in step(job, "Publish what passed")["env"]
    assert "TEMPLATE_BUILD_PASSWORD" not in TEMPLATES.read_text()  # made per build now


def test_actions_are_pinned_by_commit_sha_with_the_release_named() -> None:
    uses = []
    for f in all_files():
        for line in f.read_text().splitlines():
            m = re.search(r"uses:\s*(\S+)(.*)$", line)
            if m:
                uses.append((f.name, m.group(1), m.group(2)))
    assert len(uses) == 9
    for name, ref, comment in uses:
        assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", ref), f"{name}: {ref}"
        assert re.fullmatch(r"\s*# v\d+\.\d+\.\d+", comment), f"{name}: {ref} needs # vX.Y.Z"


def test_checkout_keeps_no_credentials() -> None:
    checkouts = [
        s
        for f in all_files()
        for job in load(f)["jobs"].values()
        for s in steps(job)
        if str(s.get("uses", "")).startswith("actions/checkout@")
    ]
    assert len(checkouts) == 5
    assert all(s["with"]["persist-credentials"] is False for s in checkouts)


def test_least_privilege_permissions() -> None:
    for f in all_files():
        wf = load(f)
        assert wf["permissions"] == {}, f.name
        for job in wf["jobs"].values():
            assert job["permissions"].get("contents") == "read"
            assert set(job["permissions"].values()) <= {"read", "write"}
    assert load(TEMPLATES)["jobs"]["templates"]["permissions"] == {
        "contents": "read",
        "checks": "write",
    }


def test_no_expression_is_expanded_inside_a_shell_script() -> None:
    for f in all_files():
        for job in load(f)["jobs"].values():
            for s in steps(job):
                assert "${{" not in str(s.get("run", "")), f"{f.name}: {s.get('name')}"


def test_packer_for_the_pool_is_pinned_and_init_gets_a_token() -> None:
    job = load(TEMPLATES)["jobs"]["templates"]
    names = [s.get("name") or s.get("uses") or s.get("run") for s in steps(job)]
    setup = next(s for s in steps(job) if str(s.get("uses", "")).startswith("hashicorp/setup-"))
    assert re.fullmatch(r"1\.(\d+)\.\d+", setup["with"]["version"])
    assert int(setup["with"]["version"].split(".")[1]) >= 7
    init = step(job, "Packer plugins")
    assert init["run"] == "packer init packer/xcpng"
    assert init["env"] == {"PACKER_GITHUB_API_TOKEN": "${{ secrets.GITHUB_TOKEN }}"}
    assert names.index(setup["uses"]) < names.index("Packer plugins")


def test_runs_carry_their_id_and_clean_only_their_own() -> None:
    job = load(TEMPLATES)["jobs"]["templates"]
    assert job["env"]["TEMPLATE_RUN_ID"] == (
        "gh-${{ github.run_id }}-${{ github.run_attempt }}-${{ matrix.index }}"
    )  # one per shard: a shard's cleanup never removes another shard's VMs
    cleanup = step(job, "Remove VMs and disks this run left on the pool")
    assert cleanup["if"] == "always()"
    assert cleanup["run"].endswith('cleanup --run-id "$TEMPLATE_RUN_ID"')
    janitor = load(TEMPLATES)["jobs"]["janitor"]
    (sweep,) = [s for s in steps(janitor) if "cleanup" in str(s.get("run", ""))]
    assert "--older-than" in sweep["run"]  # by tags and names, whatever the ledger holds
    assert load(TEMPLATES)["concurrency"]["cancel-in-progress"] is False


OLD_MISTAKES = """\
name: old
on: [push, pull_request]
permissions:
  contents: read
  checks: write
jobs:
  t:
    runs-on: [self-hosted, linux, x64]
    steps:
      - uses: actions/checkout@v4
      - uses: actions/upload-artifact@v4
        with:
          name: x
          path: reports/
  u:
    runs-on: [self-hosted, linux, x64]
    steps:
      - uses: actions/checkout@v4
"""


@pytest.mark.skipif(not (BIN / "zizmor").exists(), reason="pip install -e .[dev]")
def test_zizmor_catches_the_old_mistakes_and_passes_ours(tmp_path: Path) -> None:
    bad = tmp_path / ".github" / "workflows"
    bad.mkdir(parents=True)
    (bad / "old.yml").write_text(OLD_MISTAKES)
    out = subprocess.run(
        [str(BIN / "zizmor"), "--offline", "--format", "plain", str(bad)],
        capture_output=True,
        text=True,
    )
    assert out.returncode != 0
    for audit in ("unpinned-uses", "artipacked", "excessive-permissions"):
        assert f"[{audit}]" in out.stdout, out.stdout
    ours = subprocess.run(
        [str(BIN / "zizmor"), "--offline", str(WORKFLOWS)], capture_output=True, text=True
    )
    assert ours.returncode == 0, ours.stdout + ours.stderr


@pytest.mark.skipif(not (BIN / "check-jsonschema").exists(), reason="pip install -e .[dev]")
def test_check_jsonschema_validates_the_workflows(tmp_path: Path) -> None:
    cmd = [str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.github-workflows"]
    ok = subprocess.run([*cmd, *map(str, all_files())], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    broken = tmp_path / "broken.yml"
    broken.write_text(OLD_MISTAKES.replace("runs-on:", "run-on:"))
    bad = subprocess.run([*cmd, str(broken)], capture_output=True, text=True)
    assert bad.returncode != 0 and "runs-on" in bad.stdout + bad.stderr


# -- each step's prerequisites come before it (issue 23, finding 2) ------------------------

APT_LISTS = {
    "scripts/setup --tests": ("apt-packages.txt", "apt-packages-test.txt"),
    "scripts/setup": ("apt-packages.txt",),
    "scripts/test": ("apt-packages.txt", "apt-packages-test.txt"),  # it runs setup --tests
}
# What a step needs on the runner that a bare Debian 12 machine with the runner agent lacks.
ACTION_NEEDS = {
    # @actions/tool-cache's extractZip runs the `unzip` binary on Linux (setup-packer v3.1.0)
    "hashicorp/setup-packer": {"unzip"},
}
ACTION_GIVES = {"hashicorp/setup-packer": {"packer>=1.7"}}
COMMAND_NEEDS = {".venv/bin/": {"the harness's .venv"}, "packer init": {"packer>=1.7"}}


def apt_packages(*lists: str) -> set[str]:
    names: set[str] = set()
    for name in lists:
        for line in (ROOT / "scripts" / name).read_text().splitlines():
            if line.strip() and not line.startswith("#"):
                names.add(line.strip())
    return names


def needs(s: dict[str, Any]) -> set[str]:
    action = str(s.get("uses", "")).split("@")[0]
    out = set(ACTION_NEEDS.get(action, set()))
    run = str(s.get("run", ""))
    for marker, wanted in COMMAND_NEEDS.items():
        if marker in run:
            out |= wanted
    return out


def gives(s: dict[str, Any]) -> set[str]:
    action = str(s.get("uses", "")).split("@")[0]
    out = set(ACTION_GIVES.get(action, set()))
    run = str(s.get("run", ""))
    for command, lists in APT_LISTS.items():  # the longest first: --tests before plain setup
        if command in run:
            return out | apt_packages(*lists) | {"the harness's .venv"}
    return out


def order_problems(workflow: dict[str, Any]) -> list[str]:
    """One line per step whose prerequisite comes later in its job, or never."""
    problems = []
    for job_id, job in workflow["jobs"].items():
        have: set[str] = set()
        later = steps(job)
        for i, s in enumerate(later):
            label = s.get("name") or s.get("uses") or s.get("run")
            for need in sorted(needs(s) - have):
                after = [t.get("name") or t.get("uses") for t in later[i + 1 :] if need in gives(t)]
                where = f"only a later step gives it ({after[0]})" if after else "no step gives it"
                problems.append(f"{job_id}: {label!r} needs {need}: {where}")
            have |= gives(s)
    return problems


def test_every_step_finds_what_it_needs_installed_by_an_earlier_step() -> None:
    for f in all_files():
        assert order_problems(load(f)) == [], f.name


def test_a_step_before_its_prerequisite_is_caught() -> None:
    """The templates job as it was: setup-packer (which unzips) before scripts/setup."""
    wf = load(TEMPLATES)
    for job in wf["jobs"].values():
        job["steps"].sort(key=lambda s: 0 if "setup-packer" in str(s.get("uses", "")) else 1)
    problems = order_problems(wf)
    assert any(
        "'hashicorp/setup-packer" in p and "needs unzip: only a later step gives it" in p
        for p in problems
    ), problems
    assert "unzip" in apt_packages("apt-packages.txt")


# -- the fleet fanned out over runners (issue 23) ----------------------------------------------


def test_shards_come_from_the_plan_and_the_index_job_writes_the_shared_objects() -> None:
    wf = load(TEMPLATES)
    jobs = wf["jobs"]
    plan = step(jobs["plan"], "Plan")
    assert plan["id"] == "plan"
    assert plan["run"].startswith('.venv/bin/xcpng-golden plan --runners "$TEMPLATE_RUNNERS"')
    assert '--workers "$TEMPLATE_WORKERS"' in plan["run"]
    assert '--github-output "$GITHUB_OUTPUT"' in plan["run"]
    assert plan["env"]["TEMPLATE_RUNNERS"] == "${{ vars.TEMPLATE_RUNNERS || '1' }}"
    assert jobs["plan"]["outputs"] == {
        "matrix": "${{ steps.plan.outputs.matrix }}",
        "timeout": "${{ steps.plan.outputs.timeout }}",
    }
    shard = jobs["templates"]
    assert shard["strategy"] == {
        "fail-fast": False,
        "matrix": "${{ fromJSON(needs.plan.outputs.matrix) }}",
    }
    # the time limit follows from the fleet: the plan computes it (xcpng_golden/plan.py)
    assert shard["timeout-minutes"] == "${{ fromJSON(needs.plan.outputs.timeout) }}"
    build = step(shard, "Build, boot and check")
    assert build["run"] == (
        'exec .venv/bin/pytest -n "$TEMPLATE_WORKERS" --os "$SHARD_OS" --platform xcpng'
    )
    assert shard["env"]["SHARD_OS"] == "${{ matrix.os }}"
    assert wf["env"]["TEMPLATE_WORKERS"] == "5"
    publish = step(shard, "Publish what passed")
    assert "--builds-only" in publish["run"]  # no latest.json, no index from a shard
    (index,) = [s for s in steps(jobs["index"]) if "xcpng-golden store index" in str(s.get("run"))]
    assert (
        index["run"] == 'exec .venv/bin/xcpng-golden store index --to "s3://$S3_BUCKET/$S3_PREFIX"'
    )
    assert "!cancelled()" in jobs["index"]["if"]  # after a shard failed too
    assert "github.ref == 'refs/heads/main'" in jobs["index"]["if"]
    assert set(index["env"]) >= {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "S3_BUCKET"}
    upload = next(s for s in steps(shard) if "upload-artifact" in str(s.get("uses")))
    assert "${{ matrix.index }}" in upload["with"]["name"]  # v4 artifact names are unique


def test_the_plan_writes_the_outputs_the_workflow_reads(tmp_path: Path) -> None:
    out = tmp_path / "github-output"
    done = subprocess.run(
        [str(BIN / "xcpng-golden"), "plan", "--runners", "3", "--os", "all", "--github-output",
         str(out)],
        capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"}, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    outputs = dict(line.split("=", 1) for line in out.read_text().splitlines())
    assert set(outputs) == {"matrix", "timeout", "arithmetic"}
    matrix = json.loads(outputs["matrix"])
    assert [row["shard"] for row in matrix["include"]] == ["1/3", "2/3", "3/3"]
    assert all(set(row) == {"index", "shard", "os"} for row in matrix["include"])
    assert int(outputs["timeout"]) == 155  # 12 OSes: 4 per shard, one wave of -n 5
