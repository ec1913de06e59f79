"""`xcpng-golden pool import` against the XAPI twin (the unmodified XenAPI client, the
real `PUT /import`) with the artifact streamed from moto's S3 server over HTTP: imported once,
then a no-op; a signed build only with a good signature; --replace renames by build id; a wrong
artifact leaves nothing in the pool; the twin's faults retried or reported in one line; the
janitor never takes an imported template."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import zstandard

from core.errors import ImageDefect
from core.settings import Settings
from platforms.xcpng.cleanup import cleanup
from platforms.xcpng.client import RetryPolicy
from platforms.xcpng.ledger import KEY_RUN
from platforms.xcpng.platform import connect
from platforms.xcpng.template_import import (
    HOLD,
    KEY_BUILD,
    KEY_OS,
    KEY_REVISION,
    KEY_SHA,
    KEY_SOURCE,
    ChecksumMismatch,
    import_template,
)
from publish.source import resolve
from tests.support.catalog import publish_three, xva_of
from tests.support.publishing import MotoS3, moto_s3
from tests.support.sshkeys import Keypair, allowed_signers, make_key
from tests.twins.xapi import XapiTwin
from tests.twins.xapi.helpers import small_xva, tar_bytes, tar_members, twin_env
from xcpng_golden.main import main

FAST = RetryPolicy(attempts=4, max_delay=10, wait_min=0.01, wait_max=0.05)
MiB = 1 << 20


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoS3]:
    with moto_s3() as server:
        yield server


@pytest.fixture(scope="module")
def source(moto: MotoS3, tmp_path_factory: pytest.TempPathFactory) -> str:
    bucket = moto.bucket()
    publish_three(tmp_path_factory.mktemp("pub"), f"s3://{bucket}/golden", moto.settings())
    return f"s3://{bucket}/golden"


@pytest.fixture
def twin(moto: MotoS3, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[XapiTwin]:
    """A fresh pool, and the environment of an operator who has both the pool's and the
    store's settings; nothing ambient from ~/.aws, and empty scratch places to prove that
    nothing is copied locally."""
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    monkeypatch.chdir(scratch)
    with XapiTwin() as t:
        for key, value in {**moto.env(), **twin_env(t, tmp_path / "artifacts")}.items():
            monkeypatch.setenv(key, value)
        yield t
    assert list(scratch.iterdir()) == []


def templates(twin: XapiTwin) -> dict[str, dict[str, Any]]:
    return {v["name_label"]: v for v in twin.inventory()["VM"].values()}


def latest(moto: MotoS3, source: str, os_name: str) -> dict[str, Any]:
    bucket = source.split("/")[2]
    body = moto.client().get_object(Bucket=bucket, Key=f"golden/{os_name}/latest.json")["Body"]
    return dict(json.loads(body.read()))


def puts(twin: XapiTwin) -> int:
    return len([r for r in twin.requests if r.startswith("PUT /import?")])


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Keypair]:
    folder = tmp_path_factory.mktemp("keys")
    return {name: make_key(folder, name) for name in ("ci", "rogue")}


@pytest.fixture(scope="module")
def signed_source(
    moto: MotoS3, keys: dict[str, Keypair], tmp_path_factory: pytest.TempPathFactory
) -> str:
    bucket = moto.bucket()
    settings = moto.settings(TEMPLATE_SIGNING_KEY=keys["ci"].private)
    publish_three(tmp_path_factory.mktemp("signed"), f"s3://{bucket}/golden", settings)
    return f"s3://{bucket}/golden"


def test_a_signed_build_is_imported_only_with_a_good_signature(
    twin: XapiTwin,
    moto: MotoS3,
    keys: dict[str, Keypair],
    signed_source: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """As `store fetch`: SHA256SUMS's signature first, against the allowed signers."""
    folder = keys["ci"].path.parent
    allowed = allowed_signers(folder / "allowed", ("builds@example.org", keys["ci"], ""))
    args = ["pool", "import", "--from", signed_source, "--os", "alma9"]
    assert main(args) == 2  # signed, and no allowed-signers file to check it against
    assert "--allowed-signers" in capsys.readouterr().err and not templates(twin)
    # signed by a key the file does not list: refused in one line, nothing reaches the pool
    doc = latest(moto, signed_source, "alma9")
    bucket, key = signed_source.split("/")[2], f"golden/{doc['folder']}/SHA256SUMS"
    client = moto.client()
    sums = client.get_object(Bucket=bucket, Key=key)["Body"].read()
    good_sig = client.get_object(Bucket=bucket, Key=key + ".sig")["Body"].read()
    rogue = subprocess.run(
        ["ssh-keygen", "-Y", "sign", "-q", "-f", str(keys["rogue"].path), "-n", "file"],
        input=sums, capture_output=True, check=True,
    ).stdout  # fmt: skip
    client.put_object(Bucket=bucket, Key=key + ".sig", Body=rogue)
    assert main([*args, "--allowed-signers", str(allowed)]) == 1
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(err) == 1 and "does not list; nothing of this build is trusted" in err[0]
    assert not templates(twin) and puts(twin) == 0
    client.put_object(Bucket=bucket, Key=key + ".sig", Body=good_sig)
    assert main([*args, "--allowed-signers", str(allowed)]) == 0
    out = capsys.readouterr().out
    assert "signature good (builds@example.org, SHA256:" in out
    assert "imported as template 'golden-alma9'" in out and puts(twin) == 1


def test_import_then_the_same_build_again_is_a_no_op(
    twin: XapiTwin, moto: MotoS3, source: str, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = latest(moto, source, "debian12")
    assert main(["pool", "import", "--from", source, "--os", "debian12"]) == 0
    out = capsys.readouterr().out
    assert f"debian12 build {doc['build_id']} imported as template 'golden-debian12'" in out
    (tpl,) = templates(twin).values()
    assert tpl["name_label"] == "golden-debian12" and tpl["is_a_template"] is True
    oc = tpl["other_config"]
    assert oc[KEY_OS] == "debian12" and oc[KEY_BUILD] == doc["build_id"]
    assert oc[KEY_SHA] == doc["sha256"]
    assert oc[KEY_SOURCE] == f"{source}/{doc['artifact']}"
    assert oc[KEY_REVISION] == "2222222222222222bbbb"
    vdi = next(iter(twin.inventory()["VDI"]))
    assert twin.vdi_data(vdi)[(5 << 20) + 100 : (5 << 20) + 107] == b"the end"  # whole disk
    assert main(["pool", "import", "--from", source, "--os", "debian12"]) == 0
    again = capsys.readouterr().out
    assert "is already in the pool as template 'golden-debian12'" in again
    assert "nothing imported" in again
    assert puts(twin) == 1 and len(twin.inventory()["VM"]) == 1


def test_replace_renames_the_previous_template_by_its_build_id(
    twin: XapiTwin, moto: MotoS3, source: str, capsys: pytest.CaptureFixture[str]
) -> None:
    new = latest(moto, source, "debian12")["build_id"]
    old = "20251123T121320Z-111111111111"
    assert main(["pool", "import", "--from", source, "--os", "debian12", "--build", old]) == 0
    assert main(["pool", "import", "--from", source, "--os", "debian12"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        f"error: template 'golden-debian12' holds debian12 build {old}; pass --replace to "
        f"rename it to golden-debian12-<its build id> and import build {new} as "
        "'golden-debian12', or choose another --name"
    )
    assert puts(twin) == 1
    assert main(["pool", "import", "--from", source, "--os", "debian12", "--replace"]) == 0
    assert f"'golden-debian12' renamed to 'golden-debian12-{old}'" in capsys.readouterr().out
    tpls = templates(twin)
    assert set(tpls) == {"golden-debian12", f"golden-debian12-{old}"}  # renamed, not deleted
    assert tpls["golden-debian12"]["other_config"][KEY_BUILD] == new
    assert tpls[f"golden-debian12-{old}"]["other_config"][KEY_BUILD] == old
    assert len(twin.inventory()["VDI"]) == 2


def test_a_name_that_is_not_ours_is_never_taken(
    twin: XapiTwin, source: str, capsys: pytest.CaptureFixture[str]
) -> None:
    twin.db.add(
        "VM", {"name_label": "golden-alma9", "is_a_template": True, "power_state": "Halted"}
    )
    assert main(["pool", "import", "--from", source, "--os", "alma9", "--replace"]) == 2
    assert "not a alma9 template imported by this command" in capsys.readouterr().err
    assert puts(twin) == 0


def test_a_damaged_object_is_stopped_and_nothing_stays(
    twin: XapiTwin,
    moto: MotoS3,
    tmp_path_factory: pytest.TempPathFactory,
    capsys: pytest.CaptureFixture[str],
) -> None:
    bucket = moto.bucket()
    # published as built (no zstd): the flip below must land in the tar's padding, which a
    # compressed stream would hide or move
    plain = moto.settings(TEMPLATE_PUBLISH_COMPRESSION="none")
    publish_three(tmp_path_factory.mktemp("bad"), f"s3://{bucket}/golden", plain)
    src = f"s3://{bucket}/golden"
    doc = latest(moto, src, "ubuntu2404")
    key = f"golden/{doc['artifact']}"
    data = bytearray(moto.client().get_object(Bucket=bucket, Key=key)["Body"].read())
    assert len(data) > HOLD + 2 * MiB  # most of it streams before the digest is known
    # a byte in the tar padding after chunk 0's checksum member: XVA readers skip it, so only
    # the sha256 of the whole can tell (the pool is well past it when the digest is known)
    at = data.index(b"Ref:3/00000000.xxhash") + 512 + 100
    data[at] ^= 1
    moto.client().put_object(Bucket=bucket, Key=key, Body=bytes(data))
    assert main(["pool", "import", "--from", src, "--os", "ubuntu2404"]) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith(f"error: {src}/{doc['artifact']} has sha256 ")
    assert "the import was stopped and nothing of it kept" in err
    assert puts(twin) == 1  # a checksum is not a transient fault: not retried
    assert twin.empty(), twin.inventory()
    assert "VM.destroy" not in twin.calls  # the pool never had the whole: it undid itself


@dataclass
class InMemory:
    """An artifact whose bytes the test chooses (the Artifact protocol)."""

    data: bytes
    sha256: str
    os_name: str = "debian12"
    build_id: str = "20251201T000000Z-abcdef123456"
    location: str = "memory://debian12.xva"
    git_revision: str | None = "abcdef1234567890"
    format: str | None = "xva"

    @property
    def size(self) -> int:
        return len(self.data)

    def token(self) -> str | None:
        return None

    def open(self, offset: int = 0, token: str | None = None) -> io.BytesIO:
        return io.BytesIO(self.data[offset:])


def padded_xva(tmp_path: Path) -> bytes:
    """A valid XVA larger than the importer holds back, then zeros to a MiB boundary and one
    MiB more: the pool has everything it needs before the last piece is sent."""
    xva = xva_of(tmp_path / "x.xva", "debian12", data_mib=6).read_bytes()
    assert len(xva) > HOLD
    return xva + bytes(-len(xva) % MiB) + bytes(MiB)


@pytest.mark.parametrize("hold", [0, HOLD])
def test_mismatch_known_only_at_the_end_leaves_nothing(
    twin: XapiTwin, tmp_path: Path, hold: int
) -> None:
    data = padded_xva(tmp_path)
    art = InMemory(data=data, sha256=hashlib.sha256(b"another artifact").hexdigest())
    xapi = connect(Settings.from_env().xcpng, FAST)
    try:
        with pytest.raises(ChecksumMismatch, match="has sha256"):
            import_template(xapi, art, label="golden-debian12", hold=hold)
    finally:
        xapi.logout()
    assert twin.empty(), twin.inventory()
    # hold 0: the pool finished the import before the digest was known, and we removed it;
    # the default hold: the pool never had the whole XVA, so there was nothing to remove
    assert ("VM.destroy" in twin.calls) is (hold == 0)


@pytest.mark.parametrize(
    ("fault", "value", "expect_puts"),
    [
        ("drop_import_after", MiB, 2),  # the connection breaks mid-upload: a new GET, a new PUT
        ("http_503", 2, 1),  # XML-RPC answers 503 twice
        ("expire_sessions_on_upload", 1, 2),  # the upload finds the session expired
    ],
)
def test_transient_faults_are_retried(
    twin: XapiTwin, source: str, fault: str, value: int, expect_puts: int
) -> None:
    setattr(twin.faults, fault, value)
    build = resolve(source, Settings.from_env().s3, "alma9")
    xapi = connect(Settings.from_env().xcpng, FAST)
    try:
        outcome = import_template(xapi, build, label="golden-alma9")
    finally:
        xapi.logout()
    assert outcome.status == "imported" and puts(twin) == expect_puts
    assert set(templates(twin)) == {"golden-alma9"} and len(twin.inventory()["VDI"]) == 1
    assert twin.inventory()["task"] == []


def test_a_failed_task_and_a_refused_login_are_one_line_and_leave_nothing(
    twin: XapiTwin, source: str, capsys: pytest.CaptureFixture[str]
) -> None:
    twin.faults.fail_tasks = 1
    assert main(["pool", "import", "--from", source, "--os", "alma9"]) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("error: golden-alma9: import of alma9 build ") and "SR_BACKEND" in err
    assert twin.empty()
    twin.faults.login_failures = 1
    assert main(["pool", "import", "--from", source, "--os", "alma9"]) == 1
    err = capsys.readouterr().err.strip()
    assert "refused" in err and "XCPNG_PASSWORD" in err and "\n" not in err
    assert twin.empty()


def test_the_upload_follows_the_redirect_to_the_host_that_sees_the_sr(
    twin: XapiTwin, source: str
) -> None:
    twin.add_member()
    argv = [
        "pool",
        "import",
        "--from",
        source,
        "--os",
        "alma9",
        "--sr",
        "Local storage of xcp-twin-2",
    ]
    assert main(argv) == 0
    assert puts(twin) == 2  # the master's 302, then the member's import
    (vdi,) = twin.inventory()["VDI"].values()
    assert vdi["SR"] == twin.db.refs("SR", name_label="Local storage of xcp-twin-2")[0]


def packer_like(tmp_path: Path) -> bytes:
    """An XVA as the Packer plugin exports it: the build VM's run tags in other_config (long
    expired) and in its disk's name."""
    members = tar_members(small_xva(tmp_path / "p.xva"))
    name, ova = members[0]
    tags = {KEY_RUN: "run-old", "xcpng-golden-created": "1000", "xcpng-golden-expires": "2000"}
    extra = "".join(f"<member><name>{k}</name><value>{v}</value></member>" for k, v in tags.items())
    text = ova.decode().replace(
        "<member><name>mac_seed</name>", extra + "<member><name>mac_seed</name>", 1
    )
    assert text.count(KEY_RUN) == 1
    text = text.replace(
        "<member><name>name_label</name><value>debian12 disk",
        "<member><name>name_label</name><value>debian12 disk?xcpng-golden-run-id=run-old&amp;"
        "xcpng-golden-expires=2000",
    )
    assert "disk?xcpng-golden-run-id" in text
    return tar_bytes([(name, text.encode()), *members[1:]])


def test_the_janitor_never_takes_an_imported_template(twin: XapiTwin, tmp_path: Path) -> None:
    data = packer_like(tmp_path)
    art = InMemory(data=data, sha256=hashlib.sha256(data).hexdigest())
    xapi = connect(Settings.from_env().xcpng, FAST)
    try:
        import_template(xapi, art, label="golden-debian12")
        (vdi,) = twin.inventory()["VDI"].values()
        assert "?" not in vdi["name_label"]
        (tpl,) = templates(twin).values()
        assert KEY_RUN not in tpl["other_config"]
        for older_than in (None, 0.0):
            report = cleanup(xapi, tmp_path / "ledger.jsonl", older_than=older_than)
            assert report.removed == [] and report.problems == []
    finally:
        xapi.logout()
    assert set(templates(twin)) == {"golden-debian12"} and len(twin.inventory()["VDI"]) == 1


def test_import_from_a_fetched_file(
    twin: XapiTwin, source: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dl = tmp_path / "dl"
    assert main(["store", "fetch", "--from", source, "--os", "alma9", "--to", str(dl)]) == 0
    assert main(["pool", "import", "--from", str(dl / "alma9.xva")]) == 0
    (tpl,) = templates(twin).values()
    assert tpl["other_config"][KEY_SOURCE] == str(dl / "alma9.xva")
    (dl / "alma9.xva.metadata.json").unlink()
    capsys.readouterr()
    assert main(["pool", "import", "--from", str(dl / "alma9.xva")]) == 2
    assert "no metadata for" in capsys.readouterr().err


def compressed(xva: bytes, how: str) -> bytes:
    if how == "zstd":
        return bytes(zstandard.ZstdCompressor(level=3).compress(xva))
    return gzip.compress(xva, compresslevel=1)


@pytest.mark.parametrize("how", ["zstd", "gzip"])
def test_a_compressed_xva_streams_as_it_is(twin: XapiTwin, tmp_path: Path, how: str) -> None:
    """The publisher may compress; XAPI detects zstd and gzip by content and decompresses."""
    data = compressed(xva_of(tmp_path / "c.xva", "debian12", data_mib=6).read_bytes(), how)
    assert len(data) > HOLD
    art = InMemory(data=data, sha256=hashlib.sha256(data).hexdigest())
    xapi = connect(Settings.from_env().xcpng, FAST)
    try:
        assert import_template(xapi, art, label="golden-debian12").status == "imported"
    finally:
        xapi.logout()
    vdi = next(iter(twin.inventory()["VDI"]))
    assert twin.vdi_data(vdi)[(5 << 20) + 100 : (5 << 20) + 107] == b"the end"


def test_a_corrupt_compressed_xva_is_refused_and_nothing_stays(
    twin: XapiTwin, tmp_path: Path
) -> None:
    """A damaged archive whose metadata matches it (published damaged): the pool refuses it."""
    data = bytearray(compressed(xva_of(tmp_path / "c.xva", "debian12").read_bytes(), "gzip"))
    data[len(data) // 2 : len(data) // 2 + 64] = bytes(64)
    art = InMemory(data=bytes(data), sha256=hashlib.sha256(data).hexdigest())
    xapi = connect(Settings.from_env().xcpng, FAST)
    try:
        with pytest.raises(ImageDefect, match="IMPORT_ERROR"):
            import_template(xapi, art, label="golden-debian12")
    finally:
        xapi.logout()
    assert twin.empty(), twin.inventory()


def test_ctrl_c_during_the_import_leaves_nothing(twin: XapiTwin, tmp_path: Path) -> None:
    data = xva_of(tmp_path / "x.xva", "debian12", data_mib=6).read_bytes()

    class Interrupted(InMemory):
        def open(self, offset: int = 0, token: str | None = None) -> io.BytesIO:
            return Stops(self.data)

    art = Interrupted(data=data, sha256=hashlib.sha256(data).hexdigest())
    xapi = connect(Settings.from_env().xcpng, FAST)
    try:
        with pytest.raises(KeyboardInterrupt):
            import_template(xapi, art, label="golden-debian12")
    finally:
        xapi.logout()
    assert twin.empty(), twin.inventory()


class Stops(io.BytesIO):
    """Ctrl-C once 3 MiB were read: the pool has created the VM and half its disk."""

    def read(self, n: int | None = -1) -> bytes:
        if self.tell() >= 3 * MiB:
            raise KeyboardInterrupt
        return super().read(n)
