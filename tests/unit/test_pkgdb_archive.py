"""pkgdb's archive client against a real HTTP server on 127.0.0.1 serving an archive signed
with a key made here (gpg), verified by the real gpgv: InRelease, by-hash indexes, .debs,
the cache shared by workers, its age, and each way it can fail."""

from __future__ import annotations

import functools
import hashlib
import http.server
import lzma
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tenacity import Retrying, stop_after_attempt, wait_none

from core.errors import ImageDefect, InfrastructureError
from pkgdb import http as pkg_http
from pkgdb.archive import Archive, PackageIndex
from pkgdb.cache import UrlCache
from pkgdb.dpkg import parse_status
from pkgdb.security import pending_updates
from pkgdb.sources import AptSource

pytestmark = pytest.mark.skipif(not shutil.which("gpg"), reason="gpg makes the test archive key")

PACKAGES = """\
Package: libssl3
Source: openssl
Version: 3.0.17-1~deb12u3
Architecture: amd64
Filename: pool/main/o/openssl/libssl3_3.0.17-1~deb12u3_amd64.deb
Size: {size}
SHA256: {sha}

Package: tzdata
Version: 2025b-0+deb12u1
Architecture: all
Filename: pool/main/t/tzdata/tzdata_2025b-0+deb12u1_all.deb
Size: 1
SHA256: 00

Package: zlib1g
Version: 1:1.2.13.dfsg-1+deb12u1
Architecture: amd64
Filename: pool/main/z/zlib/zlib1g.deb
Size: 1
SHA256: 00

Package: openssh-client
Version: 1:9.2p1-2+deb12u9
Architecture: amd64
Filename: pool/main/o/openssh/openssh-client.deb
Size: 1
SHA256: 00
"""
DEB = b"!<arch>\nnot really a deb, but bytes with a known sha256"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def gpg(home: Path, *args: str, data: bytes | None = None) -> bytes:
    return subprocess.run(
        ["gpg", "--batch", "--homedir", str(home), "--pinentry-mode", "loopback",
         "--passphrase", "", *args],
        input=data, capture_output=True, check=True,
    ).stdout  # fmt: skip


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path | bytes]:
    """A signing key, and another one (an attacker's, or a key the image does not trust)."""
    out: dict[str, Path | bytes] = {}
    for name in ("archive", "other"):
        home = tmp_path_factory.mktemp(f"gpg-{name}")
        home.chmod(0o700)
        gpg(
            home,
            "--quick-gen-key",
            f"Test {name} <{name}@example.invalid>",
            "ed25519",
            "sign",
            "never",
        )
        out[name] = home
        out[f"{name}.pub"] = gpg(home, "--export")
    return out


def build_archive(
    root: Path, home: Path, valid_until: str = "Sat, 01 Jan 2100 00:00:00 UTC"
) -> None:
    """dists/bookworm-security with a by-hash Packages.xz, and a .deb in the pool."""
    pool = root / "pool/main/o/openssl"
    pool.mkdir(parents=True)
    (pool / "libssl3_3.0.17-1~deb12u3_amd64.deb").write_bytes(DEB)
    text = PACKAGES.format(size=len(DEB), sha=sha(DEB)).encode()
    xz = lzma.compress(text)
    folder = root / "dists/bookworm-security/main/binary-amd64"
    (folder / "by-hash/SHA256").mkdir(parents=True)
    (folder / "by-hash/SHA256" / sha(xz)).write_bytes(xz)
    release = (
        "Origin: Test\nSuite: oldstable-security\nCodename: bookworm-security\n"
        f"Valid-Until: {valid_until}\nAcquire-By-Hash: yes\nSHA256:\n"
        f" {sha(text)} {len(text)} main/binary-amd64/Packages\n"
        f" {sha(xz)} {len(xz)} main/binary-amd64/Packages.xz\n"
    )
    signed = gpg(home, "--clearsign", "--digest-algo", "SHA256", data=release.encode())
    (root / "dists/bookworm-security/InRelease").write_bytes(signed)


class Server:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.hits: list[str] = []
        hits = self.hits

        class Handler(http.server.SimpleHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def __init__(self, *a: object, **kw: object) -> None:
                super().__init__(*a, directory=str(root), **kw)  # type: ignore[arg-type]

            def do_GET(self) -> None:
                hits.append(self.path)
                super().do_GET()

            def log_message(self, *_a: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server(tmp_path: Path, keys: dict[str, Path | bytes]) -> Iterator[Server]:
    root = tmp_path / "www"
    build_archive(root, keys["archive"])  # type: ignore[arg-type]
    srv = Server(root)
    yield srv
    srv.close()


def source(srv: Server) -> AptSource:
    return AptSource(srv.url, "bookworm-security", ("main",), origin="/etc/apt/sources.list:3")


def trusted(keys: dict[str, Path | bytes], name: str = "archive") -> list[tuple[str, bytes]]:
    return [(f"/etc/apt/trusted.gpg.d/{name}.gpg", keys[f"{name}.pub"])]  # type: ignore[list-item]


def test_index_verified_by_signature_and_hash_then_served_from_the_cache(
    server: Server, keys: dict[str, Path | bytes], tmp_path: Path
) -> None:
    archive = Archive(tmp_path / "cache", max_age=3600)
    release = archive.release(source(server), trusted(keys))
    assert release.by_hash and release.suite == "oldstable-security"
    assert release.signature == "good signature by Test archive <archive@example.invalid>"
    index = archive.index(source(server), "main", "amd64", trusted(keys))
    (entry,) = index.entries("libssl3")
    assert (entry.version, entry.source, entry.sha256) == ("3.0.17-1~deb12u3", "openssl", sha(DEB))
    assert index.suite == "bookworm-security" and "zlib1g" in index.names()
    assert any("/by-hash/SHA256/" in h for h in server.hits)
    deb = archive.deb(source(server), entry)
    assert deb.read_bytes() == DEB and deb.name == f"{sha(DEB)}.deb"
    # a second session (another worker) reads everything from the cache
    server.hits.clear()
    again = Archive(tmp_path / "cache", max_age=3600)
    assert again.index(source(server), "main", "amd64", trusted(keys)).entries("libssl3")
    assert again.deb(source(server), entry) == deb
    assert server.hits == []


def test_inrelease_older_than_the_max_age_is_fetched_again(
    server: Server, keys: dict[str, Path | bytes], tmp_path: Path
) -> None:
    now = [1_000_000.0]
    archive = Archive(tmp_path / "c", max_age=600, clock=lambda: now[0])
    archive.release(source(server), trusted(keys))
    server.hits.clear()
    now[0] += 599
    Archive(tmp_path / "c", max_age=600, clock=lambda: now[0]).release(
        source(server), trusted(keys)
    )
    assert server.hits == []
    now[0] += 2
    Archive(tmp_path / "c", max_age=600, clock=lambda: now[0]).release(
        source(server), trusted(keys)
    )
    assert server.hits == ["/dists/bookworm-security/InRelease"]


def test_a_key_the_image_does_not_trust_is_an_image_defect(
    server: Server, keys: dict[str, Path | bytes], tmp_path: Path
) -> None:
    with pytest.raises(
        ImageDefect,
        match=r"does not verify with the keys the image trusts for /etc/apt/sources.list:3 \(/etc/apt/trusted.gpg.d/other.gpg\)",
    ):
        Archive(tmp_path / "c", 3600).release(source(server), trusted(keys, "other"))
    with pytest.raises(ImageDefect, match="trusts no key"):
        Archive(tmp_path / "c", 3600).release(source(server), [])


def test_without_gpgv_the_hashes_are_still_checked(
    server: Server, keys: dict[str, Path | bytes], tmp_path: Path
) -> None:
    archive = Archive(tmp_path / "c", 3600, gpgv="")
    archive.gpgv = None
    assert "not checked: no gpgv" in archive.release(source(server), []).signature


def test_a_tampered_index_is_refused(
    server: Server, keys: dict[str, Path | bytes], tmp_path: Path
) -> None:
    folder = server.root / "dists/bookworm-security/main/binary-amd64/by-hash/SHA256"
    (victim,) = folder.iterdir()
    victim.write_bytes(lzma.compress(b"Package: libssl3\nVersion: 99\n"))
    with pytest.raises(InfrastructureError, match="does not match the sha256 its InRelease lists"):
        Archive(tmp_path / "c", 3600).index(source(server), "main", "amd64", trusted(keys))


def test_text_before_the_signed_message_is_refused(
    server: Server, keys: dict[str, Path | bytes], tmp_path: Path
) -> None:
    path = server.root / "dists/bookworm-security/InRelease"
    path.write_bytes(b"SHA256:\n 00 1 main/binary-amd64/Packages.xz\n\n" + path.read_bytes())
    with pytest.raises((InfrastructureError, ImageDefect)):
        Archive(tmp_path / "c", 3600).release(source(server), trusted(keys))


def test_an_expired_inrelease_is_refused(keys: dict[str, Path | bytes], tmp_path: Path) -> None:
    build_archive(tmp_path / "www", keys["archive"], valid_until="Mon, 01 Jan 2001 00:00:00 UTC")  # type: ignore[arg-type]
    srv = Server(tmp_path / "www")
    try:
        with pytest.raises(InfrastructureError, match="expired"):
            Archive(tmp_path / "c", 3600).release(source(srv), trusted(keys))
    finally:
        srv.close()


def test_missing_suite_and_missing_component(
    server: Server, keys: dict[str, Path | bytes], tmp_path: Path
) -> None:
    archive = Archive(tmp_path / "c", 3600)
    gone = AptSource(server.url, "bookworm-nothing", ("main",), origin="/etc/apt/sources.list:9")
    with pytest.raises(
        ImageDefect, match=r"sources.list:9: .*bookworm-nothing/InRelease does not exist"
    ):
        archive.release(gone, trusted(keys))
    derived = AptSource(server.url, "bookworm-nothing", ("main",), origin="the harness's own")
    with pytest.raises(InfrastructureError, match="does not exist"):
        archive.release(derived, trusted(keys))
    with pytest.raises(ImageDefect, match="no Packages index for component 'contrib'"):
        archive.index(source(server), "contrib", "amd64", trusted(keys))


def test_an_unreachable_archive_is_infrastructure_naming_the_url(tmp_path: Path) -> None:
    fetch = functools.partial(
        pkg_http.get, retrying=Retrying(stop=stop_after_attempt(2), wait=wait_none(), reraise=True)
    )
    archive = Archive(tmp_path / "c", 3600, fetch=fetch)
    dead = AptSource("http://127.0.0.1:9", "bookworm-security", ("main",), origin="o")
    with pytest.raises(
        InfrastructureError,
        match=r"http://127.0.0.1:9/dists/bookworm-security/InRelease: unreachable",
    ):
        archive.release(dead, [])


def test_transient_errors_are_retried_then_given_up(tmp_path: Path) -> None:
    calls = []

    def flaky(url: str, timeout: float) -> bytes:
        calls.append(url)
        if len(calls) < 3:
            raise ConnectionResetError("reset by peer")
        return b"body"

    retry = Retrying(stop=stop_after_attempt(4), wait=wait_none(), reraise=True)
    assert pkg_http.get("http://x/y", opener=flaky, retrying=retry) == b"body" and len(calls) == 3
    with pytest.raises(InfrastructureError, match="only http and https"):
        pkg_http.get("file:///etc/passwd")


def test_one_fetch_for_concurrent_workers(tmp_path: Path) -> None:
    fetched = []

    def slow(url: str) -> bytes:
        fetched.append(url)
        time.sleep(0.3)
        return b"data"

    cache = [UrlCache(tmp_path, slow) for _ in range(4)]
    threads = [threading.Thread(target=c.get, args=("http://a/InRelease", 60)) for c in cache]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert fetched == ["http://a/InRelease"]
    # a damaged entry is fetched again, not served
    (damaged,) = tmp_path.glob("*.data")
    damaged.write_bytes(b"dat")
    assert cache[0].get("http://a/InRelease", 60).data == b"data" and len(fetched) == 2


def test_pending_updates_by_dpkg_version_order() -> None:
    index = PackageIndex("u", "bookworm-security", PACKAGES.format(size=1, sha="00").encode())
    installed = parse_status(
        "Package: libssl3\nStatus: install ok installed\nArchitecture: amd64\n"
        "Version: 3.0.17-1~deb12u2\n\n"
        "Package: tzdata\nStatus: install ok installed\nArchitecture: all\n"
        "Version: 2025b-0+deb12u1\n\n"
        "Package: zlib1g\nStatus: install ok installed\nArchitecture: amd64\n"
        "Version: 1.2.13.dfsg-1+deb12u1\n\n"  # no epoch: older than 1:...
        "Package: openssh-client\nStatus: install ok installed\nArchitecture: amd64\n"
        "Version: 1:9.2p1-2+deb12u10\n\n"  # u10 > u9 for dpkg, not for string order
        "Package: libssl3\nStatus: install ok installed\nArchitecture: i386\n"
        "Version: 3.0.17-1~deb12u1\n"  # the index has no i386 build
    )
    assert pending_updates(installed, [index]) == [
        "libssl3 3.0.17-1~deb12u2 -> 3.0.17-1~deb12u3 (bookworm-security)",
        "zlib1g 1.2.13.dfsg-1+deb12u1 -> 1:1.2.13.dfsg-1+deb12u1 (bookworm-security)",
    ]
