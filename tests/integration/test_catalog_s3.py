"""The reader's side against moto's S3 server over real HTTP (SigV4 checked): the public page
holds no presigned parameter, a presigned page and link only where asked, fetch resumes with
a ranged GET pinned to the object's ETag, and a mismatching object is refused."""

from __future__ import annotations

import hashlib
import io
import json
import re
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest
from botocore.exceptions import ResponseStreamingError

from publish.catalog_page import PRESIGNED, publish_page
from publish.fetch import fetch
from publish.source import find_build
from publish.stores.base import IntegrityError
from publish.stores.s3 import S3Store
from publish.stores.s3read import S3Reader
from tests.support.catalog import publish_three
from tests.support.publishing import MotoS3, _reset_auth, moto_s3
from xcpng_golden import main as cli

HREF = re.compile(r'href="([^"]*)"')


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoS3]:
    with moto_s3() as server:
        yield server


@pytest.fixture(autouse=True)
def s3_env(moto: MotoS3, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The moto key in the environment, as CI has it; nothing ambient from ~/.aws."""
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    for key, value in moto.env().items():
        monkeypatch.setenv(key, value)


@pytest.fixture(scope="module")
def bucket(moto: MotoS3, tmp_path_factory: pytest.TempPathFactory) -> str:
    name = moto.bucket()
    publish_three(tmp_path_factory.mktemp("s3cat"), f"s3://{name}/golden", moto.settings())
    return name


def get(moto: MotoS3, bucket: str, key: str) -> bytes:
    return bytes(moto.client().get_object(Bucket=bucket, Key=f"golden/{key}")["Body"].read())


def latest(moto: MotoS3, bucket: str, os_name: str) -> dict[str, Any]:
    return dict(json.loads(get(moto, bucket, f"{os_name}/latest.json")))


def store(moto: MotoS3, bucket: str) -> S3Store:
    return S3Store(f"s3://{bucket}/golden", moto.settings().s3)


@pytest.fixture
def anonymous_reads(moto: MotoS3) -> Iterator[None]:
    """moto's server cannot check a presigned (query-string) signature when authentication is
    on (it reads only the Authorization header): let unsigned reads through meanwhile."""
    _reset_auth(moto.endpoint, "inf")
    try:
        yield
    finally:
        _reset_auth(moto.endpoint, "0")


def test_public_page_in_the_bucket_holds_no_presigned_parameter(moto: MotoS3, bucket: str) -> None:
    head = moto.client().head_object(Bucket=bucket, Key="golden/index.html")
    assert head["ContentType"] == "text/html; charset=utf-8"
    page = get(moto, bucket, "index.html").decode()
    assert not PRESIGNED.search(page)
    assert "X-Amz" not in page and "Signature" not in page and moto.key_id not in page
    hrefs = HREF.findall(page)
    assert len(hrefs) > 20
    keys = {o["Key"] for o in moto.client().list_objects_v2(Bucket=bucket)["Contents"]}
    for href in hrefs:  # relative links, each to an object of the bucket (or an anchor)
        assert "://" not in href and "?" not in href
        if not href.startswith("#"):
            assert urljoin("golden/", href) in keys, href


def test_presigned_page_only_to_a_file_and_its_links_work(
    moto: MotoS3, bucket: str, tmp_path: Path, anonymous_reads: None
) -> None:
    before = get(moto, bucket, "index.html")
    out = tmp_path / "catalog.html"
    assert cli.main(["store", "page", "--from", f"s3://{bucket}/golden", "--presign", "2h"]) == 2
    assert (
        cli.main(
            [
                "store",
                "page",
                "--from",
                f"s3://{bucket}/golden",
                "--presign",
                "8d",
                "--out",
                str(out),
            ]
        )
        == 2
    )
    assert not out.exists()
    assert (
        cli.main(
            [
                "store",
                "page",
                "--from",
                f"s3://{bucket}/golden",
                "--presign",
                "2h",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert get(moto, bucket, "index.html") == before  # the bucket's page is untouched
    assert out.stat().st_mode & 0o077 == 0  # links that open private objects: owner only
    doc = latest(moto, bucket, "debian12")
    links = [h.replace("&amp;", "&") for h in HREF.findall(out.read_text())]
    art = [h for h in links if urlsplit(h).path.endswith(f"golden/{doc['artifact']}")]
    assert art
    query = parse_qs(urlsplit(art[0]).query)
    assert query["X-Amz-Expires"] == ["7200"] and query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    with urllib.request.urlopen(art[0], timeout=30) as r:  # a moto URL
        assert hashlib.sha256(r.read()).hexdigest() == doc["sha256"]


def test_the_store_refuses_a_page_with_signatures(moto: MotoS3, bucket: str) -> None:
    s = store(moto, bucket)
    signed = '<a href="x.xva?X-Amz-Signature=abc">x</a>'
    with pytest.raises(IntegrityError, match="refusing to write a catalog page with presigned"):
        publish_page(s, signed)
    assert b"X-Amz-Signature" not in get(moto, bucket, "index.html")


def test_link_prints_a_presigned_url_for_import_from_url(
    moto: MotoS3, bucket: str, capsys: pytest.CaptureFixture[str], anonymous_reads: None
) -> None:
    argv = ["store", "link", "--from", f"s3://{bucket}/golden", "--os", "alma9", "--expires", "30m"]
    assert cli.main(argv) == 0
    url = capsys.readouterr().out.strip()
    assert parse_qs(urlsplit(url).query)["X-Amz-Expires"] == ["1800"]
    with urllib.request.urlopen(url, timeout=30) as r:  # a moto URL
        assert hashlib.sha256(r.read()).hexdigest() == latest(moto, bucket, "alma9")["sha256"]


class Recorder:
    """The Range and If-Match of every GetObject of an artifact the store's client sends."""

    def __init__(self, s3: S3Store):
        self.gets: list[tuple[str | None, str | None]] = []
        s3.client.meta.events.register("before-send.s3.GetObject", self.record)

    def record(self, request: Any, **kwargs: Any) -> None:
        if request.url.split("?")[0].endswith(".xva"):
            self.gets.append(
                (_text(request.headers.get("Range")), _text(request.headers.get("If-Match")))
            )


def _text(value: bytes | str | None) -> str | None:
    return value.decode() if isinstance(value, bytes) else value


def test_fetch_interrupted_then_resumed_with_a_ranged_get(
    moto: MotoS3, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    doc = latest(moto, bucket, "debian12")
    real_read = S3Reader.read

    def interrupted(self: S3Reader, n: int = -1) -> bytes:
        if self.pos >= 1 << 20:
            raise KeyboardInterrupt  # Ctrl-C after the first MiB
        return real_read(self, min(n, (1 << 20) - self.pos))

    monkeypatch.setattr(S3Reader, "read", interrupted)
    argv = [
        "store",
        "fetch",
        "--from",
        f"s3://{bucket}/golden",
        "--os",
        "debian12",
        "--to",
        str(tmp_path),
    ]
    assert cli.main(argv) == 130
    assert (tmp_path / "debian12.xva.part").stat().st_size == 1 << 20
    assert not (tmp_path / "debian12.xva").exists()
    monkeypatch.setattr(S3Reader, "read", real_read)
    s3 = store(moto, bucket)
    rec = Recorder(s3)
    got = fetch(find_build(s3, "debian12"), tmp_path, lambda _m: None, io.StringIO())
    assert got.resumed_from == 1 << 20
    assert rec.gets == [("bytes=1048576-", s3.head(doc["artifact"]).token)]  # type: ignore[union-attr]
    assert hashlib.sha256(got.artifact.read_bytes()).hexdigest() == doc["sha256"]


def test_a_body_that_breaks_is_resumed_in_the_same_run(
    moto: MotoS3, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_open = S3Reader._open
    broken = {"left": 1}

    class Flaky:
        def __init__(self, body: Any):
            self.body, self.sent = body, 0

        def read(self, n: int | None = None) -> bytes:
            if self.sent >= 300_000 and broken["left"]:
                broken["left"] -= 1
                raise ResponseStreamingError(error="Connection broken: reset by peer")
            data = bytes(self.body.read(n))
            self.sent += len(data)
            return data

        def close(self) -> None:
            self.body.close()

    def flaky_open(self: S3Reader) -> None:
        real_open(self)
        if self.body is not None:
            self.body = Flaky(self.body)

    monkeypatch.setattr(S3Reader, "_open", flaky_open)
    s3 = store(moto, bucket)
    rec = Recorder(s3)
    got = fetch(find_build(s3, "alma9"), tmp_path, lambda _m: None, io.StringIO())
    assert broken["left"] == 0 and got.resumed_from == 0
    ranges = [r for r, _ in rec.gets]
    assert ranges[0] is None and ranges[1] is not None and ranges[1].startswith("bytes=")
    assert (
        hashlib.sha256(got.artifact.read_bytes()).hexdigest()
        == latest(moto, bucket, "alma9")["sha256"]
    )


def test_an_object_replaced_under_a_resumed_download_is_refused(moto: MotoS3, bucket: str) -> None:
    s3 = store(moto, bucket)
    doc = latest(moto, bucket, "ubuntu2404")
    with pytest.raises(IntegrityError, match="changed since it was first read"):
        s3.open_read(doc["artifact"], 1 << 20, '"0123456789abcdef0123456789abcdef"')


def test_fetch_of_a_damaged_object_is_a_checksum_mismatch(
    moto: MotoS3, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name = moto.bucket()
    publish_three(tmp_path / "src", f"s3://{name}/golden", moto.settings())
    doc = latest(moto, name, "alma9")
    data = bytearray(get(moto, name, doc["artifact"]))
    data[100] ^= 1
    moto.client().put_object(Bucket=name, Key=f"golden/{doc['artifact']}", Body=bytes(data))
    to = tmp_path / "dl"
    argv = ["store", "fetch", "--from", f"s3://{name}/golden", "--os", "alma9", "--to", str(to)]
    assert cli.main(argv) == 1
    assert "error: checksum mismatch:" in capsys.readouterr().err
    assert list(to.iterdir()) == []


def test_unreachable_store_is_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("S3_ENDPOINT_URL", "http://127.0.0.1:9")
    argv = [
        "store",
        "fetch",
        "--from",
        "s3://nowhere/golden",
        "--os",
        "alma9",
        "--to",
        str(tmp_path),
    ]
    assert cli.main(argv) == 3
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "S3_ENDPOINT_URL" in err
