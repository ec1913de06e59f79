"""Signed builds in moto's S3 server over real HTTP (SigV4 checked), keys made by ssh-keygen:
`store fetch` verifies SHA256SUMS's signature before it uses any checksum and refuses, in one
line and before downloading anything, a flipped byte in SHA256SUMS and a signature by a key the
allowed-signers file does not list; `store diff` reads both SBOMs from the bucket; a fault on
the SBOM or a signature leaves latest.json on the previous complete build."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core.errors import InfrastructureError
from core.settings import Settings
from publish import api
from publish.stores.s3 import S3Store
from publish.verify import verify_tree
from tests.support.publishing import PACKAGES, MotoS3, fake_os, moto_s3, write_results
from tests.support.sshkeys import Keypair, allowed_signers, make_key
from xcpng_golden import main as cli

PRINCIPAL = "builds@example.org"
NEWER = {**PACKAGES, "openssh-server": "1:9.2p1-2+deb12u4"}


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoS3]:
    with moto_s3() as server:
        yield server


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Keypair]:
    folder = tmp_path_factory.mktemp("keys")
    return {name: make_key(folder, name) for name in ("ci", "rogue")}


@pytest.fixture(autouse=True)
def s3_env(moto: MotoS3, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The moto key in the environment, as CI has it; nothing ambient from ~/.aws."""
    for name in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "TEMPLATE_SIGNING_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    for key, value in moto.env().items():
        monkeypatch.setenv(key, value)


def settings(moto: MotoS3, key: Keypair | None) -> Settings:
    return moto.settings(**({"TEMPLATE_SIGNING_KEY": key.private} if key else {}))


def publish(moto: MotoS3, to: str, root: Path, key: Keypair | None, **kw: Any) -> list[str]:
    lines: list[str] = []
    path = write_results(root, [fake_os(root, "debian12", **kw)])
    report = api.publish_results([path], to, settings(moto, key), log=lines.append)
    assert report.ok, report.lines()
    return lines


@pytest.fixture
def signed(
    moto: MotoS3, keys: dict[str, Keypair], tmp_path: Path
) -> tuple[str, str, dict[str, Any], Path]:
    """(bucket, store URL, latest.json, allowed-signers file) of two signed builds, the newer
    one with openssh-server upgraded."""
    bucket = moto.bucket()
    to = f"s3://{bucket}/golden"
    publish(moto, to, tmp_path / "one", keys["ci"], built_at=1_763_900_000.0)
    lines = publish(
        moto, to, tmp_path / "two", keys["ci"], built_at=1_764_000_000.0, packages=NEWER
    )
    assert any("SHA256SUMS signed by ED25519 key" in ln for ln in lines)
    latest = json.loads(get(moto, bucket, "debian12/latest.json"))
    allowed = allowed_signers(tmp_path / "allowed_signers", (PRINCIPAL, keys["ci"], ""))
    return bucket, to, latest, allowed


def get(moto: MotoS3, bucket: str, key: str) -> bytes:
    return bytes(moto.client().get_object(Bucket=bucket, Key=f"golden/{key}")["Body"].read())


def put(moto: MotoS3, bucket: str, key: str, data: bytes) -> None:
    moto.client().put_object(Bucket=bucket, Key=f"golden/{key}", Body=data)


def fetch(to: str, dest: Path, *extra: str) -> int:
    return cli.main(["store", "fetch", "--from", to, "--os", "debian12", "--to", str(dest), *extra])


def one_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1, err
    return err[0]


def test_fetch_verifies_then_refuses_a_flipped_byte_and_another_key(
    moto: MotoS3,
    keys: dict[str, Keypair],
    signed: tuple[str, str, dict[str, Any], Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    bucket, to, latest, allowed = signed
    folder = latest["folder"]
    good = tmp_path / "good"
    assert fetch(to, good, "--allowed-signers", str(allowed)) == 0
    out = capsys.readouterr().out
    assert f"signature good ({PRINCIPAL}, SHA256:" in out
    assert (good / "debian12.xva.sbom.cdx.json").read_bytes() == get(
        moto, bucket, f"{folder}/sbom.cdx.json"
    )
    # OpenSSH and coreutils alone agree, on the files as fetched
    sums = (good / "debian12.xva.SHA256SUMS").read_bytes()
    check = subprocess.run(
        ["ssh-keygen", "-Y", "verify", "-f", str(allowed), "-I", PRINCIPAL, "-n", "file",
         "-s", str(good / "debian12.xva.SHA256SUMS.sig")],
        input=sums, capture_output=True, check=False,
    )  # fmt: skip
    assert check.returncode == 0, check.stderr

    # one byte of SHA256SUMS flipped in the bucket: refused before anything is downloaded
    original = get(moto, bucket, f"{folder}/SHA256SUMS")
    flipped = bytearray(original)
    flipped[5] = ord("0") if flipped[5] != ord("0") else ord("1")
    put(moto, bucket, f"{folder}/SHA256SUMS", bytes(flipped))
    dest = tmp_path / "flipped"
    assert fetch(to, dest, "--allowed-signers", str(allowed)) == 1
    err = one_error(capsys)
    assert err.startswith("error: SHA256SUMS of debian12 build " + latest["build_id"])
    assert "does not match its signature" in err and "nothing of this build is trusted" in err
    assert not dest.exists() or not list(dest.iterdir())
    put(moto, bucket, f"{folder}/SHA256SUMS", original)

    # a signature by a key the allowed-signers file does not list
    rogue = subprocess.run(
        ["ssh-keygen", "-Y", "sign", "-q", "-f", str(keys["rogue"].path), "-n", "file"],
        input=original, capture_output=True, check=True,
    ).stdout  # fmt: skip
    put(moto, bucket, f"{folder}/SHA256SUMS.sig", rogue)
    dest = tmp_path / "rogue"
    assert fetch(to, dest, "--allowed-signers", str(allowed)) == 1
    assert f"which {allowed} does not list; nothing of this build is trusted" in one_error(capsys)
    assert not dest.exists() or not list(dest.iterdir())


def test_diff_reads_both_sboms_from_the_bucket(
    signed: tuple[str, str, dict[str, Any], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    _, to, latest, allowed = signed
    args = ["store", "diff", "--from", to, "--os", "debian12", "--allowed-signers", str(allowed)]
    assert cli.main(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].endswith(f" -> {latest['build_id']}")
    assert lines[1:] == [
        "  upgraded   openssh-server:amd64 1:9.2p1-2+deb12u3 -> 1:9.2p1-2+deb12u4",
        "  1 upgraded, 3 unchanged",
    ]


def test_the_signing_key_is_in_no_object(
    moto: MotoS3, keys: dict[str, Keypair], signed: tuple[str, str, dict[str, Any], Path]
) -> None:
    bucket = signed[0]
    c = moto.client()
    listed = c.list_objects_v2(Bucket=bucket)["Contents"]
    assert len(listed) == 2 * 9 + 3  # two build folders of nine, latest, index, page
    for obj in listed:
        body = c.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
        assert not any(line.encode() in body for line in keys["ci"].body_lines()), obj["Key"]


@pytest.mark.parametrize("key_part", ["sbom.cdx.json", "SHA256SUMS.sig"])
def test_a_fault_on_the_sbom_or_the_signature_leaves_latest_alone(
    moto: MotoS3, keys: dict[str, Keypair], tmp_path: Path, key_part: str
) -> None:
    bucket = moto.bucket()
    to = f"s3://{bucket}/golden"
    publish(moto, to, tmp_path / "old", keys["ci"], built_at=1e9)
    before = get(moto, bucket, "debian12/latest.json")
    store = S3Store(to, settings(moto, keys["ci"]).s3)
    real = store.put_bytes

    def failing(key: str, *a: Any, **kw: Any) -> Any:
        if key.endswith("/" + key_part):
            raise InfrastructureError(f"injected fault before {key}")
        return real(key, *a, **kw)

    store.put_bytes = failing  # type: ignore[method-assign]
    new = write_results(tmp_path / "new", [fake_os(tmp_path / "new", "debian12", size=999)])
    report = api.publish_results([new], to, settings(moto, keys["ci"]), log=print, store=store)
    assert not report.ok and "injected fault" in report.failed[0][1]
    assert get(moto, bucket, "debian12/latest.json") == before
    assert verify_tree(S3Store(to, settings(moto, None).s3), deep=True) == []
    keys_now = {o["Key"] for o in moto.client().list_objects_v2(Bucket=bucket)["Contents"]}
    metadata = [k for k in keys_now if k.endswith("/metadata.json")]
    assert len(metadata) == 1  # only the old build is complete
