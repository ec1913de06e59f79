"""A cached image that security updates overtook is rebuilt, not booted (harness/freshness.py
decides, build/builder.py obeys): the decision, and what happens when it cannot be made."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.model import BuildResult, TemplateSpec
from harness import freshness
from pkgdb.security import SecurityReport

DEBIAN = TemplateSpec("debian12", "debian", "12", {})
EL = TemplateSpec("rocky9", "el", "9", {})


def _hit(tmp_path: Path) -> BuildResult:
    raw = tmp_path / "image.raw"
    raw.write_bytes(b"\0" * 4096)
    return BuildResult(
        os_name="debian12", status="cached", artifact=str(raw), artifact_format="raw",
        sha256=None, size=None, log_path=None, duration_s=0.0, packer_version=None, plugins={},
        inputs_digest=None, template=None, var_file=None, built_at=None, platform="local",
    )  # fmt: skip


def test_pending_updates_make_the_image_stale(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    report = SecurityReport(
        pending=["libssl3 3.0.1 -> 3.0.2 (bookworm-security)"], suites=[], notes=[]
    )
    monkeypatch.setattr(freshness, "security_updates", lambda *a: report)
    monkeypatch.setattr("validations.offline.open_image", _fake_open)
    monkeypatch.setattr("validations.packagedb.dpkg_database", lambda image: None)
    notes: list[str] = []
    reason = freshness.pending_updates_reason(archive=None)(DEBIAN, _hit(tmp_path), notes.append)  # type: ignore[arg-type]
    assert (
        reason
        == "1 security update(s) came out since it was built (libssl3 3.0.1 -> 3.0.2 (bookworm-security))"
    )
    # EL's are known only in the guest: never a reason to rebuild here
    assert freshness.pending_updates_reason(archive=None)(EL, _hit(tmp_path), notes.append) is None  # type: ignore[arg-type]


def test_an_image_that_cannot_be_read_is_reused_and_said(tmp_path: Path) -> None:
    notes: list[str] = []
    reason = freshness.pending_updates_reason(archive=None)(DEBIAN, _hit(tmp_path), notes.append)  # type: ignore[arg-type]
    assert reason is None
    assert notes and "could not compare the cached image" in notes[0]


@contextlib.contextmanager
def _fake_open(build: BuildResult, workdir: Path) -> Iterator[object]:
    yield object()
