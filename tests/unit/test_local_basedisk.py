"""Base disk cache: built once per recipe, atomically, reused while young, rebuilt when old."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from core.errors import InfrastructureError, UsageError
from core.model import TemplateSpec
from platforms.local import basedisk


@pytest.fixture
def fake_build(monkeypatch):
    """Replace the real recipe (minutes, network) by one that writes a small image."""
    runs: list[list[str]] = []

    def run(argv, log, env):
        runs.append(argv)
        time.sleep(0.2)  # long enough for a concurrent caller to hit the lock
        Path(argv[2]).write_bytes(b"QFI\xfb" + b"\0" * 1020)
        Path(argv[4]).mkdir(parents=True, exist_ok=True)  # the work dir, removed afterwards
        (Path(argv[4]) / "junk").write_text("x")
        log("built")

    monkeypatch.setattr(basedisk, "_run", run)
    return runs


BOOKWORM = basedisk.Recipe("bookworm", "linux-image-amd64", 4096)


def test_digest_depends_on_suite_kernel_size_and_script(tmp_path: Path, monkeypatch):
    a = BOOKWORM.digest()
    assert a == basedisk.Recipe("bookworm", "linux-image-amd64", 4096).digest()
    assert a != basedisk.Recipe("bookworm", "linux-image-amd64", 8192).digest()
    assert a != basedisk.Recipe("trixie", "linux-image-amd64", 4096).digest()
    assert a != basedisk.Recipe("bookworm", "linux-image-cloud-amd64", 4096).digest()
    script = tmp_path / "basedisk.sh"
    script.write_text(basedisk.SCRIPT.read_text() + "\n# changed\n")
    monkeypatch.setattr(basedisk, "SCRIPT", script)
    assert BOOKWORM.digest() != a


def test_size_comes_from_the_spec_with_a_floor():
    spec = TemplateSpec("debian12", "debian", "12", {}, disk_size_mb=8192)
    assert basedisk.size_for(spec) == 8192
    tiny = TemplateSpec("debian12", "debian", "12", {}, disk_size_mb=100)
    assert basedisk.size_for(tiny) == basedisk.MIN_SIZE_MB
    assert basedisk.size_for(TemplateSpec("x", "debian", "1", {})) == basedisk.DEFAULT_SIZE_MB


def test_recipe_comes_from_the_var_file_values():
    spec = TemplateSpec(
        "debian13",
        "debian",
        "13",
        {},
        variables={"local_base_suite": "trixie", "local_kernel_package": "linux-image-amd64"},
        disk_size_mb=8192,
    )
    recipe = basedisk.recipe_for(spec)
    assert recipe == basedisk.Recipe("trixie", "linux-image-amd64", 8192)
    assert recipe.packages[0] == "linux-image-amd64" and "cloud-init" in recipe.packages


@pytest.mark.parametrize(
    "variables",
    [
        {},
        {"local_base_suite": "trixie"},
        {"local_base_suite": "tri xie; rm", "local_kernel_package": "k"},
    ],
)
def test_a_missing_or_odd_suite_is_a_usage_error_naming_the_var_file(variables):
    spec = TemplateSpec(
        "odd", "debian", "1", {}, var_file=Path("packer/os/odd.pkrvars.hcl"), variables=variables
    )
    with pytest.raises(
        UsageError, match=r"odd: the local platform needs .*packer/os/odd\.pkrvars\.hcl"
    ):
        basedisk.recipe_for(spec)


def test_built_once_then_reused(tmp_path: Path, fake_build):
    lines: list[str] = []
    first = basedisk.ensure_base_disk(tmp_path, lines.append, BOOKWORM)
    second = basedisk.ensure_base_disk(tmp_path, lines.append, BOOKWORM)
    assert len(fake_build) == 1
    assert not first.cached and second.cached
    assert first.path == second.path and first.path.is_file()
    meta = json.loads((first.path.parent / basedisk.META).read_text())
    assert meta["sha256"] == first.sha256 and meta["size_mb"] == 4096
    assert not (first.path.parent / "work").exists(), "the unpacked root must not be kept"
    assert [p.name for p in (tmp_path / "base").iterdir() if p.name.startswith(".")] == []


def test_too_old_or_max_age_zero_means_rebuild(tmp_path: Path, fake_build):
    basedisk.ensure_base_disk(tmp_path, lambda _m: None, BOOKWORM)
    basedisk.ensure_base_disk(tmp_path, lambda _m: None, BOOKWORM, max_age_s=0)
    assert len(fake_build) == 2
    entry = next(p for p in (tmp_path / "base").iterdir() if p.is_dir())
    meta = json.loads((entry / basedisk.META).read_text())
    meta["built_at"] -= 3600
    (entry / basedisk.META).write_text(json.dumps(meta))
    basedisk.ensure_base_disk(tmp_path, lambda _m: None, BOOKWORM, max_age_s=60)
    assert len(fake_build) == 3
    assert len([p for p in (tmp_path / "base").iterdir() if p.is_dir()]) == 1


def test_parallel_callers_build_once(tmp_path: Path, fake_build):
    results = []
    threads = [
        threading.Thread(
            target=lambda: results.append(
                basedisk.ensure_base_disk(tmp_path, lambda _m: None, BOOKWORM)
            )
        )
        for _ in range(3)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(fake_build) == 1
    assert len({r.path for r in results}) == 1


def test_failure_leaves_nothing_half_written(tmp_path: Path, monkeypatch):
    def run(argv, log, env):
        Path(argv[2]).write_bytes(b"partial")
        raise InfrastructureError("mmdebstrap failed")

    monkeypatch.setattr(basedisk, "_run", run)
    with pytest.raises(InfrastructureError, match="mmdebstrap failed"):
        basedisk.ensure_base_disk(tmp_path, lambda _m: None, BOOKWORM)
    leftovers = [p.name for p in (tmp_path / "base").iterdir() if not p.name.endswith(".lock")]
    assert leftovers == []


def test_run_reports_the_tail_and_a_fix(tmp_path: Path):
    lines: list[str] = []
    with pytest.raises(InfrastructureError) as err:
        basedisk._run(["bash", "-c", "echo step one; echo boom >&2; exit 3"], lines.append, {})
    assert lines == ["step one", "boom"]
    assert "exit 3" in str(err.value) and "boom" in str(err.value)
    assert "fix:" in str(err.value)


def test_script_is_shellcheck_clean():
    import shutil
    import subprocess

    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck not installed")
    out = subprocess.run(["shellcheck", str(basedisk.SCRIPT)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout
