"""Publishing to moto's S3 server over real HTTP, with SigV4 signature checking switched on."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ConnectionClosedError
from tenacity import wait_none

from core.errors import InfrastructureError, UsageError
from core.settings import Settings
from publish import api
from publish.prune import prune
from publish.stores.s3 import REQUEST_ATTEMPTS, S3Store
from publish.verify import verify_tree
from tests.support.publishing import MotoS3, fake_os, moto_s3, write_results

REPO = Path(__file__).resolve().parents[2]
MiB = 1 << 20


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoS3]:
    with moto_s3() as server:
        yield server


@pytest.fixture(autouse=True)
def no_ambient_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """boto3 also reads the process environment and ~/.aws: keep both out of the tests."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def quiet(_msg: str) -> None:
    pass


class Recorder:
    """Every request the client sends: (operation, key path, headers)."""

    def __init__(self, store: S3Store):
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        store.client.meta.events.register("before-send.s3", self.record)

    def record(self, request: Any, event_name: str, **kwargs: Any) -> None:
        op = event_name.rsplit(".", 1)[-1]
        headers = {
            k: v.decode() if isinstance(v, bytes) else str(v) for k, v in request.headers.items()
        }
        self.requests.append((op, request.url.split("?")[0], headers))

    def ops(self, op: str, key_part: str = "") -> list[dict[str, str]]:
        return [h for o, url, h in self.requests if o == op and key_part in url]


def s3_store(moto: MotoS3, bucket: str, **env: str) -> S3Store:
    s = S3Store(f"s3://{bucket}/golden", moto.settings(S3_MULTIPART_CHUNKSIZE="5M", **env).s3)
    s.chunksize = s.threshold = 5 * MiB  # multipart from 5 MiB, whatever the option table says
    s.retry_wait = wait_none()
    return s


def objects(moto: MotoS3, bucket: str) -> dict[str, bytes]:
    c = moto.client()
    keys = [o["Key"] for o in c.list_objects_v2(Bucket=bucket).get("Contents", [])]
    return {k: c.get_object(Bucket=bucket, Key=k)["Body"].read() for k in keys}


def latest(moto: MotoS3, bucket: str, os_name: str = "debian12") -> dict[str, Any] | None:
    got = objects(moto, bucket).get(f"golden/{os_name}/latest.json")
    return None if got is None else json.loads(got)


def test_publish_multipart_parts_signed_without_checksum_headers(
    moto: MotoS3, tmp_path: Path
) -> None:
    bucket = moto.bucket()
    path = write_results(tmp_path, [fake_os(tmp_path, "debian12", size=12 * MiB)])
    store = s3_store(moto, bucket)
    rec = Recorder(store)
    report = api.publish_results(
        [path], f"s3://{bucket}/golden", moto.settings(), log=quiet, store=store
    )
    assert report.ok
    assert len(rec.ops("UploadPart", ".xva")) == 3
    sent = [h for _, _, h in rec.requests]
    checksum_headers = {
        k.lower() for h in sent for k in h if k.lower().startswith("x-amz-checksum")
    }
    assert checksum_headers <= {"x-amz-checksum-mode"}  # only asks for checksums in responses
    # each part's SHA-256 is signed (SigV4), so the store checks it on receipt
    for part in rec.ops("UploadPart", ".xva"):
        assert len(part["X-Amz-Content-SHA256"]) == 64, part["X-Amz-Content-SHA256"]
    assert not rec.ops("GetObject", ".xva")  # nothing read back
    assert verify_tree(store, deep=True) == []
    keys = set(objects(moto, bucket))
    folder = latest(moto, bucket)["folder"]  # type: ignore[index]
    names = ["debian12.xva", "build.log", "junit.xml", "metadata.json", "SHA256SUMS"]
    names += ["sbom.cdx.json", "provenance.intoto.json"]  # unsigned: no key in these settings
    assert keys == {f"golden/{folder}/{n}" for n in names} | {
        "golden/debian12/latest.json",
        "golden/index.json",
        "golden/index.html",
    }


def test_when_supported_uploads_composite_crc32_never_full_object_sha(
    moto: MotoS3, tmp_path: Path
) -> None:
    bucket = moto.bucket()
    path = write_results(tmp_path, [fake_os(tmp_path, "debian12", size=11 * MiB)])
    store = s3_store(moto, bucket, S3_CHECKSUM_MODE="when_supported")
    rec = Recorder(store)
    assert api.publish_results(
        [path], f"s3://{bucket}/golden", moto.settings(), log=quiet, store=store
    ).ok
    create = rec.ops("CreateMultipartUpload", ".xva")[0]
    assert create["x-amz-checksum-algorithm"] == "CRC32"
    assert create.get("x-amz-checksum-type") != "FULL_OBJECT"  # AWS refuses FULL_OBJECT SHA
    assert all("x-amz-checksum-crc32" in h for h in rec.ops("UploadPart", ".xva"))
    assert not rec.ops("GetObject", ".xva")
    assert verify_tree(store, deep=True) == []


def test_rerun_same_build_verifies_and_does_not_duplicate(moto: MotoS3, tmp_path: Path) -> None:
    bucket = moto.bucket()
    path = write_results(tmp_path, [fake_os(tmp_path, "debian12", size=6 * MiB)])
    assert api.publish_results([path], f"s3://{bucket}/golden", moto.settings(), log=quiet).ok
    before = objects(moto, bucket)
    store = s3_store(moto, bucket)
    rec = Recorder(store)
    report = api.publish_results(
        [path], f"s3://{bucket}/golden", moto.settings(), log=quiet, store=store
    )
    assert report.ok and report.published[0].reused
    assert not rec.ops("PutObject", ".xva") and not rec.ops("UploadPart")
    assert rec.ops("HeadObject", ".xva")
    assert objects(moto, bucket).keys() == before.keys()


@pytest.mark.parametrize(
    "fault", ["before-artifact", "mid-multipart", "artifact-to-metadata", "before-latest"]
)
def test_fault_at_every_upload_boundary(moto: MotoS3, tmp_path: Path, fault: str) -> None:
    bucket = moto.bucket()
    to = f"s3://{bucket}/golden"
    old = write_results(tmp_path / "o", [fake_os(tmp_path / "o", "debian12", built_at=1e9)])
    assert api.publish_results([old], to, moto.settings(), log=quiet).ok
    before = latest(moto, bucket)
    new = write_results(tmp_path / "n", [fake_os(tmp_path / "n", "debian12", size=12 * MiB)])
    store = s3_store(moto, bucket)
    parts = PartFaults(store, fail_part=2, times=REQUEST_ATTEMPTS)

    def fail_key(method: str, key_part: str) -> None:
        real = getattr(store, method)

        def wrapper(key: str, *a: Any, **kw: Any) -> Any:
            if key_part in key:
                raise InfrastructureError(f"injected fault before {key}")
            return real(key, *a, **kw)

        setattr(store, method, wrapper)

    if fault != "mid-multipart":
        fail_key(
            *{
                "before-artifact": ("put_stream", ".xva"),
                "artifact-to-metadata": ("put_bytes", "metadata.json"),
                "before-latest": ("put_if", "latest.json"),
            }[fault]
        )
    report = api.publish_results([new], to, moto.settings(), log=quiet, store=store)
    assert not report.ok and report.failed
    assert "\n" not in report.failed[0][1]
    if fault == "mid-multipart":
        # botocore retried the part, then the transfer failed: the file was not sent again
        assert parts.sent.count(2) == REQUEST_ATTEMPTS and parts.sent.count(1) == 1
        uploads = moto.client().list_multipart_uploads(Bucket=bucket).get("Uploads", [])
        assert uploads == []  # s3transfer aborted every failed multipart upload
    # the reader's view: pointers only lead to the complete, verified old build
    assert latest(moto, bucket) == before
    reader = s3_store(moto, bucket)
    assert verify_tree(reader, deep=True) == []
    index = json.loads(objects(moto, bucket)["golden/index.json"])
    assert index["os"]["debian12"]["build_id"] == before["build_id"]  # type: ignore[index]
    # and the next clean run finishes the job
    assert api.publish_results([new], to, moto.settings(), log=quiet).ok
    assert latest(moto, bucket)["build_id"] != before["build_id"]  # type: ignore[index]
    assert verify_tree(reader, deep=True) == []


class PartFaults:
    """Drops the connection while one part is sent, `times` times; records every part sent.

    Raised at `before-send`, inside botocore's retry loop, like a real reset connection."""

    def __init__(self, store: S3Store, fail_part: int, times: int):
        self.sent: list[int] = []
        self.fail_part, self.left = fail_part, times
        store.client.meta.events.register("before-send.s3.UploadPart", self.send)

    def send(self, request: Any, **kwargs: Any) -> None:
        number = int(request.url.split("partNumber=")[1].split("&")[0])
        self.sent.append(number)
        if number == self.fail_part and self.left > 0:
            self.left -= 1
            raise ConnectionClosedError(endpoint_url="injected mid-multipart fault")


def test_a_failed_part_is_retried_alone(moto: MotoS3, tmp_path: Path) -> None:
    bucket = moto.bucket()
    path = write_results(tmp_path, [fake_os(tmp_path, "debian12", size=12 * MiB)])
    store = s3_store(moto, bucket)
    parts = PartFaults(store, fail_part=2, times=2)
    report = api.publish_results(
        [path], f"s3://{bucket}/golden", moto.settings(), log=quiet, store=store
    )
    assert report.ok, report.failed
    assert sorted(parts.sent) == [1, 2, 2, 2, 3]  # part 2 three times, the others once
    assert verify_tree(store, deep=True) == []


def test_older_build_never_replaces_newer_latest(moto: MotoS3, tmp_path: Path) -> None:
    bucket = moto.bucket()
    to = f"s3://{bucket}/golden"
    newer = write_results(
        tmp_path / "n", [fake_os(tmp_path / "n", "debian12", size=10)], committed_at=2e9
    )
    older = write_results(
        tmp_path / "o",
        [fake_os(tmp_path / "o", "debian12", size=20, built_at=1.9e9)],
        committed_at=1e9,
        revision="aaaaaaaaaaaaaaaa",
    )
    assert api.publish_results([newer], to, moto.settings(), log=quiet).ok
    winner = latest(moto, bucket)["build_id"]  # type: ignore[index]
    report = api.publish_results([older], to, moto.settings(), log=quiet)
    assert report.ok and not report.published[0].latest_changed
    assert latest(moto, bucket)["build_id"] == winner  # type: ignore[index]
    assert verify_tree(s3_store(moto, bucket)) == []


def test_failed_or_partial_runs_upload_nothing(moto: MotoS3, tmp_path: Path) -> None:
    bucket = moto.bucket()
    failed = write_results(tmp_path / "f", [fake_os(tmp_path / "f", "debian12", verdict="failed")])
    report = api.publish_results([failed], f"s3://{bucket}/golden", moto.settings(), log=quiet)
    assert not report.ok and not report.published
    partial = write_results(tmp_path / "p", [fake_os(tmp_path / "p", "debian12")], partial=True)
    with pytest.raises(UsageError, match="partial"):
        api.publish_results([partial], f"s3://{bucket}/golden", moto.settings(), log=quiet)
    local = write_results(tmp_path / "l", [fake_os(tmp_path / "l", "debian12")], platform="local")
    report = api.publish_results([local], f"s3://{bucket}/golden", moto.settings(), log=quiet)
    assert "requires 'xcpng'" in report.refused[0][1]
    assert objects(moto, bucket) == {}


def test_preflight_ok_and_leaves_nothing(moto: MotoS3) -> None:
    bucket = moto.bucket()
    assert api.preflight(f"s3://{bucket}/golden", moto.settings()) == []
    assert objects(moto, bucket) == {}


def test_preflight_failures_are_one_line_and_fast(moto: MotoS3) -> None:
    bucket = moto.bucket()
    to = f"s3://{bucket}/golden"
    no_keys = moto.env()
    del no_keys["AWS_ACCESS_KEY_ID"], no_keys["AWS_SECRET_ACCESS_KEY"]
    cases = {
        "SignatureDoesNotMatch": (to, moto.settings(AWS_SECRET_ACCESS_KEY="wrong-secret-key-1")),
        "does not exist": ("s3://no-such-bucket-x/golden", moto.settings()),
        "cannot reach the S3 endpoint": (to, moto.settings(S3_ENDPOINT_URL="http://127.0.0.1:9")),
        "no S3 credentials": (to, Settings.from_env(env=no_keys)),
        "is unknown to": (to, moto.settings(AWS_ACCESS_KEY_ID="AKIANOTAKEY")),
    }
    for expect, (dest, settings) in cases.items():
        start = time.monotonic()
        problems = api.preflight(dest, settings)
        assert time.monotonic() - start < 30
        assert len(problems) == 1 and expect in problems[0], problems
        assert "\n" not in problems[0] and moto.secret not in problems[0]
        assert "wrong-secret-key-1" not in problems[0]


def test_wrong_secret_at_publish_is_a_clear_failure(moto: MotoS3, tmp_path: Path) -> None:
    bucket = moto.bucket()
    path = write_results(tmp_path, [fake_os(tmp_path, "debian12")])
    settings = moto.settings(AWS_SECRET_ACCESS_KEY="wrong-secret-key-1")
    report = api.publish_results([path], f"s3://{bucket}/golden", settings, log=quiet)
    assert not report.ok and "SignatureDoesNotMatch" in report.failed[0][1]
    assert objects(moto, bucket) == {}


def test_secret_absent_from_every_object_and_output(
    moto: MotoS3, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bucket = moto.bucket()
    leak = f"AWS_SECRET_ACCESS_KEY={moto.secret}\n"
    rec = fake_os(tmp_path, "debian12", log_text="packer log\n" + leak)
    path = write_results(tmp_path, [rec])
    Path(tmp_path / "reports" / rec["junit"]).write_text(
        f"<testsuite><system-out>{leak}</system-out></testsuite>"
    )
    assert api.publish_results([path], f"s3://{bucket}/golden", moto.settings()).ok
    out = capsys.readouterr()
    assert moto.secret not in out.out + out.err
    stored = objects(moto, bucket)
    # the build folder's seven (XVA, build.log, junit.xml, SBOM, provenance, SHA256SUMS,
    # metadata.json), latest.json, index.json, index.html
    assert len(stored) == 10
    for key, body in stored.items():
        assert moto.secret.encode() not in body, key
    assert any(
        b"AWS_SECRET_ACCESS_KEY=***" in b for k, b in stored.items() if k.endswith("build.log")
    )


def test_prune_on_s3(moto: MotoS3, tmp_path: Path) -> None:
    bucket = moto.bucket()
    to = f"s3://{bucket}/golden"
    for i in range(3):
        d = tmp_path / str(i)
        r = write_results(d, [fake_os(d, "debian12", size=100 + i, built_at=1e9 + i)])
        assert api.publish_results([r], to, moto.settings(), log=quiet).ok
    store = s3_store(moto, bucket)
    report = prune(store, keep=1, log=quiet)
    assert len(report.deleted) == 2
    folders = {k.split("/")[3] for k in objects(moto, bucket) if k.count("/") == 4}
    assert folders == {latest(moto, bucket)["build_id"]}  # type: ignore[index]
    assert verify_tree(store, deep=True) == []


def run_cli(moto: MotoS3, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "xcpng_golden", *args],
        cwd=REPO,
        env={
            "PATH": os.environ["PATH"],
            "PYTHONPATH": str(REPO),
            "HOME": str(REPO / ".no-home"),
            **moto.env(**env),
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_cli_against_moto(moto: MotoS3, tmp_path: Path) -> None:
    bucket = moto.bucket()
    to = f"s3://{bucket}/golden"
    path = write_results(tmp_path, [fake_os(tmp_path, "debian12", log_text=f"k={moto.secret}\n")])
    ok = run_cli(moto, "publish", "--results", str(path), "--to", to)
    assert ok.returncode == 0, ok.stderr
    assert "published debian12" in ok.stdout and moto.secret not in ok.stdout + ok.stderr
    assert run_cli(moto, "store", "verify", "--to", to, "--deep").returncode == 0
    bad = run_cli(
        moto, "store", "preflight", "--to", to, AWS_SECRET_ACCESS_KEY="wrong-secret-key-1"
    )
    assert bad.returncode == 3 and "SignatureDoesNotMatch" in bad.stdout
    assert len(bad.stdout.strip().splitlines()) == 1 and "Traceback" not in bad.stdout + bad.stderr


@pytest.mark.parametrize("mode", ["when_required", "when_supported"])
def test_raw_disk_written_as_xva_while_it_uploads(moto: MotoS3, tmp_path: Path, mode: str) -> None:
    """A local build (sparse raw): the XVA is produced in the upload's read pass, multipart, and
    what lands is exactly what metadata.json says, holding the tested disk."""
    import hashlib

    from diskformats.xva.reader import scan

    bucket = moto.bucket()
    rec = fake_os(tmp_path, "debian12", size=512 * MiB, fmt="raw")
    path = write_results(tmp_path, [rec], platform="local")
    store = s3_store(moto, bucket, S3_CHECKSUM_MODE=mode)
    calls = Recorder(store)
    settings = moto.settings(TEMPLATE_PUBLISH_REQUIRE_PLATFORM="local")
    report = api.publish_results([path], f"s3://{bucket}/golden", settings, log=quiet, store=store)
    assert report.ok, report.failed
    assert len(calls.ops("UploadPart", ".xva")) >= 2
    assert not calls.ops("GetObject", ".xva")  # checked on receipt, nothing read back
    stored = objects(moto, bucket)
    folder = latest(moto, bucket)["folder"]  # type: ignore[index]
    meta = json.loads(stored[f"golden/{folder}/metadata.json"])
    xva = stored[f"golden/{folder}/debian12.xva"]
    assert meta["artifact"]["sha256"] == hashlib.sha256(xva).hexdigest()
    assert meta["artifact"]["size"] == len(xva) and meta["source"]["firmware"] == "uefi"
    disk = bytearray(512 * MiB)

    def put(_disk: Any, offset: int, data: bytes) -> None:
        disk[offset : offset + len(data)] = data

    import io

    scan(io.BytesIO(xva), put)
    assert hashlib.sha256(disk).hexdigest() == rec["build"]["sha256"]
    assert verify_tree(store, deep=True) == []
