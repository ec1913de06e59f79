"""Gating: only complete, passed, right-platform runs with an unchanged artifact get through."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.destination import Destination
from core.errors import UsageError
from core.results_file import load_results
from core.settings import Settings
from publish import api
from publish.gating import gate, required_platform
from tests.support.publishing import fake_os, write_results


def settings(**env: str) -> Settings:
    return Settings.from_env(env=env)


def test_passed_os_accepted_failed_refused(tmp_path: Path) -> None:
    path = write_results(
        tmp_path, [fake_os(tmp_path, "debian12"), fake_os(tmp_path, "rocky9", verdict="failed")]
    )
    g = gate(load_results(path), "xcpng")
    assert [c.os_name for c in g.accepted] == ["debian12"]
    assert g.refused[0][0] == "rocky9" and "ssh-01 failed" in g.refused[0][1]


def test_partial_run_refused_as_a_whole(tmp_path: Path) -> None:
    path = write_results(tmp_path, [fake_os(tmp_path, "debian12")], partial=True)
    with pytest.raises(UsageError, match=r"partial \(-k ssh\).*rerun without -k"):
        gate(load_results(path), "any")


@pytest.mark.parametrize(
    ("content", "expect"),
    [
        (None, "results file not found"),
        ("{not json", "not valid JSON"),
        (json.dumps({"schema": "someone-else/v3"}), "not a harness results file"),
        (json.dumps({"schema": "xcpng-templates/results/v1", "os": {}}), "do not match the schema"),
    ],
)
def test_missing_unreadable_foreign_results(
    tmp_path: Path, content: str | None, expect: str
) -> None:
    path = tmp_path / "results.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(UsageError, match=expect) as e:
        load_results(path)
    assert "\n" not in str(e.value)


def test_local_pass_cannot_reach_s3_by_default(tmp_path: Path) -> None:
    path = write_results(tmp_path, [fake_os(tmp_path, "debian12")], platform="local")
    s3, folder = Destination.parse("s3://bucket/prod"), Destination.parse(str(tmp_path))
    assert required_platform(s3, None) == "xcpng"
    assert required_platform(folder, None) == "any"
    assert required_platform(Destination.parse(f"file://{tmp_path}"), None) == "any"
    g = gate(load_results(path), required_platform(s3, None))
    assert not g.accepted and "requires 'xcpng'" in g.refused[0][1]
    assert gate(load_results(path), required_platform(s3, "local")).accepted


def test_bad_required_platform_is_usage_error() -> None:
    with pytest.raises(UsageError, match="choose one of xcpng, local, any"):
        required_platform(Destination.parse("s3://bucket/p"), "vmware")


def test_inconsistent_verdict_refused(tmp_path: Path) -> None:
    rec = fake_os(tmp_path, "debian12")
    rec["checks"]["missing"] = ["xen-01"]
    g = gate(load_results(write_results(tmp_path, [rec])), "any")
    assert not g.accepted and "missing ['xen-01']" in g.refused[0][1]


def test_missing_or_resized_artifact_refused(tmp_path: Path) -> None:
    a, b = fake_os(tmp_path, "debian12"), fake_os(tmp_path, "alma9")
    Path(a["build"]["artifact"]).unlink()
    Path(b["build"]["artifact"]).write_bytes(b"short")
    g = gate(load_results(write_results(tmp_path, [a, b])), "any")
    reasons = dict(g.refused)
    assert "is missing" in reasons["debian12"] and "5 bytes" in reasons["alma9"]


@pytest.mark.parametrize("fmt", ["xva", "raw"])
def test_tampered_artifact_never_published(tmp_path: Path, fmt: str) -> None:
    """Checked in the upload's own read pass: the upload fails and nothing of it remains."""
    rec = fake_os(tmp_path, "debian12", size=(64 << 20) if fmt == "raw" else 3 << 20, fmt=fmt)
    path = write_results(tmp_path, [rec])
    with Path(rec["build"]["artifact"]).open("r+b") as fh:  # same size, other bytes
        fh.seek(5 << 20 if fmt == "raw" else 2 << 20)
        fh.write(b"tampered")
    pub = tmp_path / "pub"
    report = api.publish_results([path], str(pub), settings(), log=lambda _m: None)
    assert not report.ok and "changed since the build (its sha256 differs" in report.failed[0][1]
    assert not any(p.is_file() and p.parent != pub for p in pub.rglob("*"))


def test_qcow2_artifact_refused_with_the_fix(tmp_path: Path) -> None:
    rec = fake_os(tmp_path, "debian12")
    rec["build"]["artifact_format"] = "qcow2"
    path = write_results(tmp_path, [rec])
    report = api.publish_results([path], str(tmp_path / "pub"), settings(), log=lambda _m: None)
    assert not report.ok and "qemu-img convert -O raw" in report.refused[0][1]


def test_same_os_in_two_results_with_different_artifacts(tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    r1 = write_results(one, [fake_os(one, "debian12", size=10)])
    r2 = write_results(two, [fake_os(two, "debian12", size=20)])
    with pytest.raises(UsageError, match="separate runs"):
        api.publish_results([r1, r2], str(tmp_path / "pub"), settings(), log=lambda _m: None)
    assert not (tmp_path / "pub").exists()
