"""The fleet fanned out over runners, as `.github/workflows/templates.yml` runs it (issue 23):
`xcpng-golden plan` splits the OSes into shards; three harness processes, one per shard, each
with its own work tree (artifacts, reports, image cache, run id), build, boot and check their
OSes on one pool (the XAPI twin) and publish their build folders (`publish --builds-only`) to
one store (a moto S3 server checking signatures); then the index job (`store index`) points
each `latest.json` at its build and writes `index.json` and `index.html`.

What each OS is, cheaply: a test-only template (Debian's packer, a file builder that "exports"
a small XVA) and two checks against the booted clone, declared as the family's expected checks
(the harness's `pytest_harness_expected_checks` hook). Everything else is the product: the
catalog, preflight against the twin (templates, tools ISO, CPUs, SR, network, host ports),
build-once, the import, boot and teardown on the twin, the verdict, the gate, the publisher.
One OS is broken on purpose: its check fails, it is not published, and it is absent from the
index.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.interrupts import STAND_IN_INVENTORY
from tests.support.publishing import MotoS3, moto_s3
from tests.twins.xapi import XapiTwin, host_ports
from tests.twins.xapi.helpers import small_xva, ssh_banner_endpoint, twin_env

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow
FLEET = {
    "alpha12": ("debian", "12"),
    "bravo12": ("debian", "12"),
    "charlie9": ("el", "9"),
    "delta9": ("el", "9"),
    "echo12": ("debian", "12"),
    "foxtrot9": ("el", "9"),
}
BROKEN = "delta9"
RUNNERS = 3
TIMEOUT = 600

TEMPLATE = """
# A stand-in for packer/xcpng: the file builder "exports" a prepared XVA as the xenserver-iso
# plugin would (<output_directory>/<vm_name>.xva); the variables preflight reads are declared.
variable "os_name" { type = string }
variable "os_family" { type = string }
variable "os_version" { type = string }
variable "disk_size_mb" { default = 8 }
variable "xen_clone_template" { default = "Debian Bookworm 12" }
variable "tools_iso_name" { default = "guest-tools.iso" }
variable "x86_64_level" { default = 1 }
variable "xva_source" { type = string }
variable "output_directory" { default = "out" }
variable "vm_name" { default = "unnamed" }
variable "run_id" { default = "" }
source "file" "xva" {
  source = var.xva_source
  target = "${var.output_directory}/${var.vm_name}.xva"
}
build { sources = ["source.file.xva"] }
"""

CONFTEST = """
import pytest

from stand_in_inventory import _package_inventory  # noqa: F401  (a fixture)


@pytest.hookimpl(tryfirst=True)
def pytest_harness_expected_checks(family):
    return ("fanout-booted", "fanout-image")
"""

CHECKS = """
import os

from core.checks import check


@check("fanout-booted", "the clone booted on the pool and its guest agent reported")
def test_booted(vm, spec):
    assert vm.platform == "xcpng" and vm.facts["vm_ref"].startswith("OpaqueRef:")
    assert vm.facts["guest_metrics"]["PV_drivers_version"], "no PV drivers reported"


@check("fanout-image", "the image is the one this OS's build exported")
def test_image(vm, spec, build):
    assert build.artifact_format == "xva" and build.status == "built"
    assert spec.name not in os.environ.get("FANOUT_BROKEN", "").split(","), "broken on purpose"
"""


def write_fleet(root: Path) -> Path:
    packer = root / "packer"
    (packer / "tiny").mkdir(parents=True)
    (packer / "os").mkdir()
    (root / "exports").mkdir()
    (packer / "tiny" / "tiny.pkr.hcl").write_text(textwrap.dedent(TEMPLATE))
    for name, (family, version) in FLEET.items():
        xva = small_xva(root / "exports" / f"{name}.xva", name)
        (packer / "os" / f"{name}.pkrvars.hcl").write_text(
            f'os_name = "{name}"\nos_family = "{family}"\nos_version = "{version}"\n'
            f'xva_source = "{xva}"\n'
        )
    (root / "conftest.py").write_text(CONFTEST)
    shutil.copy(STAND_IN_INVENTORY, root / STAND_IN_INVENTORY.name)
    (root / "test_checks.py").write_text(CHECKS)
    return packer


def base_env(extra: dict[str, str]) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYTEST_", "TEMPLATE_", "XCPNG_", "S3_", "AWS_", "PKR_VAR_"))
    }
    env["PYTHONPATH"] = str(REPO)
    env.update(extra)
    return env


@dataclass
class Fanout:
    plan: str
    shards: list[dict[str, str]]
    runners: list[subprocess.CompletedProcess[str]]
    publishes: list[subprocess.CompletedProcess[str]]
    index_run: subprocess.CompletedProcess[str]
    keys_before_index: list[str]
    keys_after_index: list[str]
    index: dict[str, Any]
    results: list[dict[str, Any]]
    twin_empty: bool
    secrets: list[str]

    def output(self) -> str:
        procs = [*self.runners, *self.publishes, self.index_run]
        return "\n".join(p.stdout[-3000:] + p.stderr[-2000:] for p in procs)


def run_fanout(tmp: Path, s3: MotoS3) -> Fanout:
    packer = write_fleet(tmp / "project")
    bucket = s3.bucket()
    store = f"s3://{bucket}/templates"
    out = tmp / "github-output"
    plan = subprocess.run(
        [sys.executable, "-m", "xcpng_golden", "plan", "--runners", str(RUNNERS), "--os", "all",
         "--packer-dir", str(packer), "--github-output", str(out)],
        cwd=REPO, env=base_env({}), capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    lines = dict(line.split("=", 1) for line in out.read_text().splitlines())
    shards = json.loads(lines["matrix"])["include"]
    with (
        XapiTwin(password="fanout-twin-password-0123") as twin,
        ssh_banner_endpoint() as (
            _,
            banner,
        ),
    ):
        twin.guest.tools = True
        twin.guest.ip = "127.0.0.1"
        procs = []
        for shard in shards:
            k = shard["shard"].split("/")[0]
            work = tmp / f"runner{k}"  # each runner its own work tree, as a job's checkout
            env = base_env(
                {
                    **twin_env(twin, work / "artifacts"),
                    "XCPNG_SSH_PORT": str(banner),
                    host_ports.VARIABLE: host_ports.value(banner, int(twin.url.rsplit(":", 1)[1])),
                    host_ports.LOGIN_CHECK: "0",
                    "TEMPLATE_RUN_ID": f"gh-1-1-{k}",
                    "FANOUT_BROKEN": BROKEN,
                }
            )
            cmd = [
                sys.executable, "-m", "pytest", "-c", "/dev/null",
                f"--rootdir={tmp / 'project'}", "-p", "no:cacheprovider",
                "-p", "tests.twins.xapi.host_ports",
                "--os", shard["os"], "--platform", "xcpng", f"--packer-dir={packer}",
                f"--artifacts-dir={work / 'artifacts'}", f"--reports-dir={work / 'reports'}",
                f"--cache-dir={work / 'cache'}", "--min-free-disk=1M", "--boot-timeout=2m",
                str(tmp / "project" / "test_checks.py"),
            ]  # fmt: skip
            procs.append(
                subprocess.Popen(
                    cmd,
                    cwd=tmp / "project",
                    env=env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
            )
        runners = [_finish(p) for p in procs]
        twin_empty = twin.empty()
    publish_env = base_env(s3.env())
    publishes = [
        _publish(tmp / f"runner{k}", store, publish_env) for k in range(1, len(shards) + 1)
    ]
    published = [_finish(p) for p in publishes]
    client = s3.client()
    before = _keys(client, bucket)
    index_run = subprocess.run(
        [sys.executable, "-m", "xcpng_golden", "store", "index", "--to", store],
        cwd=REPO, env=publish_env, capture_output=True, text=True, timeout=TIMEOUT,
    )  # fmt: skip
    after = _keys(client, bucket)
    raw = client.get_object(Bucket=bucket, Key="templates/index.json")["Body"].read()
    results = [
        json.loads((tmp / f"runner{k}" / "reports" / "results.json").read_text())
        for k in range(1, len(shards) + 1)
    ]
    return Fanout(
        plan=plan.stdout,
        shards=shards,
        runners=runners,
        publishes=published,
        index_run=index_run,
        keys_before_index=before,
        keys_after_index=after,
        index=json.loads(raw),
        results=results,
        twin_empty=twin_empty,
        secrets=[twin.password, s3.secret],
    )


def _publish(work: Path, store: str, env: dict[str, str]) -> subprocess.Popen[str]:
    """A shard's publishing step, as the workflow runs it (started at once: jobs overlap)."""
    results = str(work / "reports" / "results.json")
    cmd = [sys.executable, "-m", "xcpng_golden", "publish", "--builds-only"]
    cmd += ["--results", results, "--to", store]
    return subprocess.Popen(
        cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _finish(proc: subprocess.Popen[str]) -> subprocess.CompletedProcess[str]:
    stdout, stderr = proc.communicate(timeout=TIMEOUT)
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


def _keys(client: Any, bucket: str) -> list[str]:
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return sorted(o["Key"] for page in pages for o in page.get("Contents", []))


@pytest.fixture(scope="module")
def fanout(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fanout]:
    with moto_s3() as s3:
        run = run_fanout(tmp_path_factory.mktemp("fanout"), s3)
        sys.stderr.write(run.plan + json.dumps(run.index, indent=2, sort_keys=True) + "\n")
        yield run


def test_the_plan_splits_the_fleet_over_three_runners(fanout: Fanout) -> None:
    names = [set(s["os"].split(",")) for s in fanout.shards]
    assert len(names) == RUNNERS and set().union(*names) == set(FLEET)
    assert sum(len(n) for n in names) == len(FLEET)  # each OS in exactly one shard
    assert "job time limit: 15 + ceil(2/5) x 120 + 2 x 5" in fanout.plan


def test_each_runner_checks_its_own_oses_on_the_one_pool(fanout: Fanout) -> None:
    for shard, proc, results in zip(fanout.shards, fanout.runners, fanout.results, strict=True):
        mine = set(shard["os"].split(","))
        assert set(results["os"]) == mine, fanout.output()
        assert results["platform"] == "xcpng" and results["partial"] is False
        for name, rec in results["os"].items():
            if name == BROKEN:
                assert rec["verdict"] == "failed" and rec["failure_class"] == "image-defect"
                assert proc.returncode == 1
            else:
                assert rec["verdict"] == "passed", rec["reasons"]
                assert rec["validated_platform"] == "xcpng"
    assert fanout.twin_empty  # every clone and disk of every runner removed


def test_no_two_jobs_write_the_same_object(fanout: Fanout) -> None:
    """Before the index job the store holds build folders only, each under an OS of the shard
    that published it; the shared objects (latest.json, index.json, index.html) come from the
    index job alone."""
    assert [p.returncode for p in fanout.publishes] == [0] * RUNNERS, fanout.output()
    for key in fanout.keys_before_index:
        parts = key.split("/")
        assert len(parts) == 5 and parts[0] == "templates", key  # templates/<os>/<v>/<id>/<f>
    by_os = {k.split("/")[1] for k in fanout.keys_before_index}
    assert by_os == set(FLEET) - {BROKEN}
    shared = sorted(set(fanout.keys_after_index) - set(fanout.keys_before_index))
    passing = sorted(set(FLEET) - {BROKEN})
    assert shared == sorted(
        ["templates/index.html", "templates/index.json"]
        + [f"templates/{name}/latest.json" for name in passing]
    )


def test_the_index_lists_exactly_the_passing_oses(fanout: Fanout) -> None:
    assert fanout.index_run.returncode == 0, fanout.output()
    assert sorted(fanout.index["os"]) == sorted(set(FLEET) - {BROKEN})
    for name, doc in fanout.index["os"].items():
        assert doc["platform"] == "xcpng" and doc["compression"] == "zstd"
        assert doc["folder"].startswith(f"{name}/{FLEET[name][1]}/")
    assert f"index.json lists {len(FLEET) - 1} OS(es)" in fanout.index_run.stdout


def test_no_secret_in_any_output(fanout: Fanout) -> None:
    text = fanout.output() + fanout.index_run.stdout
    for secret in fanout.secrets:
        assert secret not in text
