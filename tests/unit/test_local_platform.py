"""LocalPlatform: preflight names apt packages; build_vars fits the template's variables."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from build.catalog import parse_hcl
from core.errors import ImageDefect
from core.model import BuildResult, TemplateSpec
from core.redact import Redactor
from core.settings import Settings
from platforms.local import LocalPlatform, accel, basedisk, boot
from platforms.registry import get_platform

REPO = Path(__file__).resolve().parents[2]
RUNNER_VARS = {"output_directory", "vm_name", "run_id"}
DEB12 = {"local_base_suite": "bookworm", "local_kernel_package": "linux-image-amd64"}


def _declared(folder: Path) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for f in sorted(folder.glob("*.pkr.hcl")):
        for block in parse_hcl(f).get("variable", []):
            out.update(block)
    return out


@pytest.fixture
def platform(tmp_path: Path) -> LocalPlatform:
    settings = Settings.from_env(
        {},
        cache_dir=str(tmp_path / "cache"),
        artifacts_dir=str(tmp_path / "artifacts"),
    )
    p = get_platform("local", settings, "run1", Redactor())
    assert isinstance(p, LocalPlatform)
    return p


def test_identity(platform: LocalPlatform):
    assert platform.name == "local" and platform.has_xen is False


def test_preflight_names_the_package_for_each_missing_tool(platform, monkeypatch):
    monkeypatch.setattr("shutil.which", lambda _tool: None)
    problems = platform.preflight()
    text = "\n".join(problems)
    for package in ("qemu-system-x86", "qemu-utils", "mtools", "dosfstools", "mmdebstrap"):
        assert f"apt-get install -y --no-install-recommends {package}" in text
    assert all("\n" not in p for p in problems), "one line per problem"


def test_preflight_passes_on_this_machine(platform):
    assert platform.preflight() == []


def test_build_vars_fill_every_required_variable_of_the_local_template(
    platform, tmp_path, monkeypatch
):
    image = tmp_path / "base.qcow2"
    image.write_bytes(b"QFI\xfb")
    monkeypatch.setattr(
        basedisk,
        "ensure_base_disk",
        lambda cache, log, recipe, age: basedisk.BaseDisk(
            image, "ab" * 32, 1.0, "d", recipe.size_mb, True
        ),
    )
    monkeypatch.setattr(accel, "choose", lambda cache: accel.Accel("tcg", "max", "test"))
    spec = TemplateSpec("debian12", "debian", "12", {}, variables=DEB12, disk_size_mb=4096)
    work = tmp_path / "work"
    work.mkdir()
    values = platform.build_vars(spec, work, lambda _m: None)

    declared = _declared(REPO / "packer" / "local")
    required = {n for n, body in declared.items() if "default" not in body}
    var_file = parse_hcl(REPO / "packer" / "os" / "debian12.pkrvars.hcl")
    missing = required - set(values) - RUNNER_VARS - set(var_file)
    assert missing == set(), f"required variables nobody sets: {missing}"
    assert set(values) <= set(declared)
    assert values["base_image_checksum"] == "sha256:" + "ab" * 32
    assert values["qemu_accelerator"] == "tcg" and values["qemu_cpu"] == "max"
    assert Path(values["ovmf_vars"]).parent == work, "a writable copy, not the system file"
    assert Path(values["build_seed_image"]).is_file()
    assert Path(values["ssh_private_key_file"]).is_file()
    assert values["guest_tools_source"] == "none"


def test_recipe_digest_follows_the_disk_size_and_suite(platform):
    a = platform.recipe_digest(
        TemplateSpec("d", "debian", "12", {}, variables=DEB12, disk_size_mb=4096)
    )
    b = platform.recipe_digest(
        TemplateSpec("d", "debian", "12", {}, variables=DEB12, disk_size_mb=8192)
    )
    trixie = {**DEB12, "local_base_suite": "trixie"}
    c = platform.recipe_digest(
        TemplateSpec("d", "debian", "13", {}, variables=trixie, disk_size_mb=4096)
    )
    assert len({a["local_base_disk"], b["local_base_disk"], c["local_base_disk"]}) == 3
    assert set(a) == {"local_base_disk"}


def _build(artifact: Path | None, fmt: str | None) -> BuildResult:
    return BuildResult(
        os_name="debian12",
        status="built",
        artifact=str(artifact) if artifact else None,
        artifact_format=fmt,
        sha256=None,
        size=None,
        log_path=None,
        duration_s=0,
        packer_version=None,
        plugins={},
        inputs_digest=None,
        template=None,
        var_file=None,
        built_at=None,
        platform="local",
    )


def test_missing_or_unknown_artifact_is_one_clear_error(tmp_path: Path):
    with pytest.raises(ImageDefect, match="does not exist"):
        boot.backing_image(_build(tmp_path / "nope.raw", "raw"), tmp_path)
    odd = tmp_path / "image.vmdk"
    odd.write_bytes(b"x")
    with pytest.raises(ImageDefect, match="unknown image format"):
        boot.backing_image(_build(odd, None), tmp_path)


def test_overlay_never_writes_the_artifact(tmp_path: Path):
    raw = tmp_path / "disk.raw"
    raw.write_bytes(b"\0" * 1024 * 1024)
    before = raw.stat().st_mtime_ns
    backing, fmt = boot.backing_image(_build(raw, "raw"), tmp_path)
    overlay = tmp_path / "overlay.qcow2"
    boot.make_overlay(backing, fmt, overlay)
    info = subprocess.run(
        ["qemu-img", "info", "--output=json", str(overlay)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert f'"backing-filename": "{raw}"' in info and '"backing-filename-format": "raw"' in info
    subprocess.run(
        ["qemu-io", "-c", "write -P 0x55 0 4k", str(overlay)], check=True, capture_output=True
    )
    assert raw.read_bytes()[:4096] == b"\0" * 4096
    assert raw.stat().st_mtime_ns == before


def test_an_xva_is_turned_into_a_raw_backing_disk(tmp_path: Path):
    from diskformats.xva.writer import raw_to_xva

    raw = tmp_path / "disk.raw"
    raw.write_bytes(b"\x01" * 4096 + b"\0" * (3 * 1024 * 1024))
    xva = tmp_path / "image.xva"
    raw_to_xva(raw, xva, "debian12", firmware="uefi")
    work = tmp_path / "work"
    work.mkdir()
    backing, fmt = boot.backing_image(_build(xva, "xva"), work)
    assert fmt == "raw" and backing.parent == work
    assert backing.read_bytes() == raw.read_bytes()
