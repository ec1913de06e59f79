"""Small, real Packer projects (file builder + shell-local), for the harness's own tests and the
parallel-build benchmark.

They run Debian's packer 1.6.6 for real in a second or two, so the runner, the cache, the
build-once coordination and the verdict are tested against a real `packer` process.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from core.proc import find_processes

REPO = Path(__file__).resolve().parents[1]

TEMPLATE = """
variable "os_name" {{ default = "{name}" }}
variable "os_family" {{ default = "{family}" }}
variable "os_version" {{ default = "{version}" }}
variable "output_directory" {{ default = "out" }}
variable "vm_name" {{ default = "unnamed" }}
variable "run_id" {{ default = "" }}
variable "count_file" {{ default = "/dev/null" }}
variable "sleep" {{ default = "{sleep}" }}
variable "fail" {{ default = "{fail}" }}
variable "secret_password" {{
  default   = ""
  sensitive = true
}}
source "file" "disk" {{
  # padded to a sector: a disk is whole 512-byte blocks (the XVA writer refuses anything else)
  content = format("%-512s", "fake disk image of ${{var.os_name}} built as ${{var.vm_name}}")
  target  = "${{var.output_directory}}/disk.raw"
}}
build {{
  sources = ["source.file.disk"]
  provisioner "shell-local" {{
    inline = [
      "echo building ${{var.vm_name}} pid $$ >> ${{var.count_file}}",
      "echo using password ${{var.secret_password}}",
      "sleep ${{var.sleep}}",
      "if [ '${{var.fail}}' = yes ]; then echo 'provisioner script failed on purpose' >&2; exit 3; fi",
    ]
  }}
}}
"""

CONFTEST = '''
import os
from pathlib import Path

from core.proc import find_processes
from harness.inventory import write_inventory
from pkgdb.inventory import Inventory, Package

import pytest

EXPECTED = tuple(os.environ.get("SMOKE_EXPECTED", "smoke-artifact,smoke-identity").split(","))


class StubPlatform:
    """A platform that boots nothing: these tests exercise build, scheduling and verdict."""

    name = "local"
    has_xen = False

    def __init__(self, settings, run_id):
        self.run_id = run_id

    def preflight(self, specs=(), building=True):
        return [p for p in os.environ.get("SMOKE_PREFLIGHT_PROBLEMS", "").split("|") if p]

    def recipe_digest(self, spec):
        return {}

    def build_vars(self, spec, workdir, log):
        log("stub platform: nothing to prepare")
        return {
            "count_file": os.environ.get("SMOKE_COUNT_FILE", "/dev/null"),
            "secret_password": os.environ.get("SMOKE_SECRET", ""),
        }


@pytest.fixture(autouse=True)
def _package_inventory(request):
    """Stands for the inventory the harness reads from a real image's package database: this
    artifact is a text file; the publisher refuses a build without one."""
    if "build" not in request.fixturenames:
        return
    build, harness = request.getfixturevalue("build"), request.getfixturevalue("harness")
    pkg = Package("deb", "base-files", "12.4+deb12u8", "amd64", "base-files", "12.4+deb12u8")
    inv = Inventory("dpkg", {"ID": "debian", "VERSION_ID": "12"}, "12.8", [pkg], [], 0.0)
    write_inventory(harness.settings.artifacts_dir, build, harness.run_id, inv)


@pytest.hookimpl(tryfirst=True)
def pytest_harness_expected_checks(family):
    return EXPECTED


@pytest.hookimpl(tryfirst=True)
def pytest_harness_make_platform(name, settings, run_id, redactor):
    return StubPlatform(settings, run_id)
'''

CHECKS = """
import os
from pathlib import Path

from core.proc import find_processes

from core.checks import check


def _trace(os_name):
    path = os.environ.get("SMOKE_TRACE")
    if path:
        with open(path, "a") as fh:
            fh.write(f"{os_name} {os.environ.get('PYTEST_XDIST_WORKER', 'main')} {os.getpid()}\\n")


@check("smoke-artifact", "the build produced its artifact")
def test_artifact(build, spec):
    _trace(spec.name)
    assert Path(build.artifact).read_text().startswith(f"fake disk image of {spec.name}")


@check("smoke-identity", "the artifact is the one of this OS")
def test_identity(build, spec):
    _trace(spec.name)
    assert f"tpl-{spec.name}-" in Path(build.artifact).read_text()
    failure = os.environ.get("SMOKE_FAIL_WITH")
    assert not failure, failure
"""


def write_project(
    root: Path,
    oses: dict[str, tuple[str, str]],
    sleep: float = 0,
    fail: tuple[str, ...] = (),
) -> Path:
    """Write packer/<os>/template.pkr.hcl per OS, a conftest and a checks module under root."""
    for name, (family, version) in oses.items():
        d = root / "packer" / name
        d.mkdir(parents=True, exist_ok=True)
        (d / "template.pkr.hcl").write_text(
            textwrap.dedent(
                TEMPLATE.format(
                    name=name,
                    family=family,
                    version=version,
                    sleep=sleep,
                    fail="yes" if name in fail else "no",
                )
            )
        )
    (root / "packer" / "scripts").mkdir(parents=True, exist_ok=True)
    (root / "packer" / "scripts" / "10-update.sh").write_text("#!/bin/bash\necho update\n")
    (root / "conftest.py").write_text(CONFTEST)
    (root / "test_checks.py").write_text(CHECKS)
    return root


def harness_args(root: Path, *extra: str) -> list[str]:
    return [
        f"--packer-dir={root / 'packer'}",
        f"--artifacts-dir={root / 'artifacts'}",
        f"--reports-dir={root / 'reports'}",
        f"--cache-dir={root / 'cache'}",
        "--platform=local",
        "--min-free-disk=1M",
        *extra,
    ]


def run_harness(
    root: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run pytest with the harness plugin on a project made by write_project, in a subprocess."""
    return subprocess.run(
        harness_command(root, *args),
        cwd=root,
        env=harness_env(root, env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def harness_command(root: Path, *args: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "pytest",
        "-c",
        "/dev/null",
        f"--rootdir={root}",
        "-p",
        "no:cacheprovider",
        *harness_args(root, *args),
        "test_checks.py",
    ]


def harness_env(root: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "TEMPLATE_"))}
    env["PYTHONPATH"] = str(REPO)
    env["SMOKE_COUNT_FILE"] = str(root / "builds.log")
    env["SMOKE_TRACE"] = str(root / "trace.log")
    env.update(extra or {})
    return env


def builds_started(root: Path) -> list[str]:
    path = root / "builds.log"
    return path.read_text().splitlines() if path.exists() else []


def packer_processes(marker: str) -> list[int]:
    return find_processes("packer", marker)


def qemu_processes(marker: str) -> list[int]:
    return find_processes("qemu-system", marker)
