"""Shared fixtures of the slow tests (end to end, mutation): the Debian 12 image the local
platform builds.

The image comes from the operator's cache (~/.cache/xcpng-templates, keyed by inputs digest)
through the harness's own build code, so a cache hit costs a checksum and a cold cache costs
one real Packer build, exactly as `pytest --os debian12 --platform local` would.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from build.builder import BuildContext, build_os
from build.cache import ImageCache
from build.catalog import load_catalog
from core.model import BuildResult
from core.redact import Redactor
from core.settings import Settings
from harness.session import new_run_id
from platforms.local import LocalPlatform

REPO = Path(__file__).resolve().parents[1]

# A shell starts a background job (`cmd &`, nohup, some CI wrappers) with SIGINT ignored, and an
# ignored signal stays ignored through exec: Python then never raises KeyboardInterrupt, and the
# tests that interrupt the harness (in this process or in the ones they start) would test
# nothing but that. A handled signal is reset to its default in every child, so restoring
# Python's handler here restores Ctrl-C for the whole tree: controller, xdist workers, harness.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def operator_settings(artifacts: Path) -> Settings:
    """Settings as an operator's plain run has them: default cache, this repo's templates."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "TEMPLATE_"))}
    return Settings.from_env(env=env, artifacts_dir=str(artifacts), packer_dir=str(REPO / "packer"))


@pytest.fixture(scope="session")
def operator_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The image cache a plain operator run uses; also home of the accelerator and QEMU slots."""
    return operator_settings(tmp_path_factory.getbasetemp() / "unused").cache_dir


@pytest.fixture(scope="session")
def debian12_local_image(tmp_path_factory: pytest.TempPathFactory) -> BuildResult:
    """The local platform's Debian 12 build (a cache hit, or a real build on a cold cache)."""
    artifacts = tmp_path_factory.mktemp("e2e-build") / "artifacts"
    settings = operator_settings(artifacts)
    run_id = new_run_id()
    platform = LocalPlatform(settings, run_id)
    (spec,) = load_catalog(settings.packer_dir).select("debian12")
    ctx = BuildContext(
        platform_name="local",
        platform=platform,
        run_id=run_id,
        packer_bin=settings.packer_bin,
        packer_dir=settings.packer_dir,
        repo_root=REPO,
        artifacts_dir=artifacts,
        cache=ImageCache(settings.cache_dir),
        timeout_s=settings.build_timeout,
        max_age_s=settings.max_image_age,
        rebuild=False,
        redactor=Redactor(settings.secrets()),
    )
    result = build_os(ctx, spec, lambda _pid: None)
    assert result.ok, f"debian12 local build failed: {result.message} (log: {result.log_path})"
    assert result.artifact and Path(result.artifact).is_file()
    return result


@pytest.fixture(scope="session")
def debian12_raw_disk(
    debian12_local_image: BuildResult, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """That build's disk as a raw file: the cache holds raw; a qcow2 is converted once."""
    artifact = Path(str(debian12_local_image.artifact))
    if debian12_local_image.artifact_format == "raw":
        return artifact
    assert debian12_local_image.artifact_format == "qcow2", f"no raw disk in {artifact}"
    raw = tmp_path_factory.mktemp("e2e-raw") / "debian12.raw"
    subprocess.run(
        ["qemu-img", "convert", "-O", "raw", str(artifact), str(raw)],
        check=True,
        capture_output=True,
    )
    return raw


# The test command runs a file per worker at a time (--dist loadfile) in collection order
# (--no-loadscope-reorder): the longest files first, so that no worker is left alone with one
# at the end while the other idles (longest processing time first; xdist's own order, by test
# count, started the mutation boots last). Ranked by a warm run's time per file
# (docs/benchmarks.md); the rest keep their order after these. The mutation boots come third,
# once the fleet's two boots have their QEMU slots.
LONGEST_FIRST = (
    "tests/e2e/test_local_pipeline.py",
    "tests/integration/test_interrupts_basedisk.py",
    "tests/mutation/test_mutation.py",
    "tests/mutation/test_package_defects.py",
    "tests/e2e/test_xcpng_twin_pipeline.py",
    "tests/integration/test_interrupts_publish.py",
    "tests/integration/test_harness_packer.py",
    "tests/mutation/test_trust_on_image.py",
    "tests/integration/test_interrupts_vm.py",
    "tests/mutation/test_defects_offline.py",
    "tests/integration/test_interrupts_build.py",
    "tests/mutation/test_persistence_rows.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {path: i for i, path in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))  # stable
