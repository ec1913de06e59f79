"""A Debian/Ubuntu archive as apt sees it, read on the host: InRelease, Packages, .debs.

`InRelease` is fetched through the URL cache (refreshed when older than `max_age`), its
signature checked with `gpgv` against the keys the image itself trusts for that source
(pkgdb.keys), and its `Valid-Until` honoured. Each Packages index is fetched by its hash
(`by-hash`, as apt does where the archive offers it), compressed (.xz, else .gz, else plain),
and checked against the SHA256 list of that verified InRelease; a .deb against its index's
SHA256, and cached by that hash. Without gpgv on the host the hashes are still checked, the
signature is not (`Release.signature` says so, and pkgdb.security's report carries it).
"""

from __future__ import annotations

import gzip
import hashlib
import lzma
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path

from debian import deb822
from filelock import FileLock

from core.errors import ImageDefect, InfrastructureError
from core.files import write_atomic
from core.ownership import scratch
from pkgdb import http
from pkgdb.cache import LOCK_TIMEOUT_S, UrlCache
from pkgdb.sources import AptSource

PIN_FIELDS = ("Origin", "Label", "Suite", "Codename", "Version", "NotAutomatic",
              "ButAutomaticUpgrades")  # fmt: skip
COMPRESSIONS = ((".xz", lzma.decompress), (".gz", gzip.decompress), ("", bytes))
_PACKAGE_LINE = re.compile(rb"^Package: *(\S+) *$", re.M)


@dataclass(frozen=True)
class Release:
    """A verified InRelease: what it lists, and how far it was verified."""

    url: str
    suite: str
    codename: str
    by_hash: bool
    files: dict[str, tuple[str, int]]  # path below the suite -> (sha256, size)
    signature: str  # "good signature by <signer>", or why it was not checked
    fetched_at: float
    pin_fields: tuple[tuple[str, str], ...] = ()  # Origin, Label, ...: what apt pins match


@dataclass(frozen=True)
class IndexEntry:
    """One binary package of a Packages index."""

    name: str
    version: str
    arch: str
    filename: str  # below the archive's URI
    sha256: str
    size: int
    source: str


@dataclass
class PackageIndex:
    """One Packages index; a package's stanzas are found by a substring search for its
    `Package:` line and parsed with deb822 only then (a main index holds 60,000 stanzas, a
    check asks for a few)."""

    url: str
    suite: str
    text: bytes

    def names(self) -> list[str]:
        return [m.group(1).decode() for m in _PACKAGE_LINE.finditer(self.text)]

    def _stanzas(self, name: str) -> Iterator[bytes]:
        line = f"Package: {name}\n".encode()
        starts = [0] if self.text.startswith(line) else []
        at = self.text.find(b"\n" + line)
        while at >= 0:
            starts.append(at + 1)
            at = self.text.find(b"\n" + line, at + 1)
        for start in starts:
            end = self.text.find(b"\n\n", start)
            yield self.text[start : end if end >= 0 else len(self.text)]

    def entries(self, name: str) -> list[IndexEntry]:
        out = []
        for stanza in self._stanzas(name):
            para = deb822.Packages(stanza.decode("utf-8", "replace"))
            out.append(
                IndexEntry(
                    name=para["Package"],
                    version=para["Version"],
                    arch=para.get("Architecture", ""),
                    filename=para.get("Filename", ""),
                    sha256=para.get("SHA256", ""),
                    size=int(para.get("Size", "0") or 0),
                    source=para.get("Source", para["Package"]).split()[0],
                )
            )
        return out


def gpgv_verify(signed: bytes, keyrings: list[tuple[str, bytes]], gpgv: str) -> tuple[bool, str]:
    """Check a clear-signed file with gpgv against these keyrings: (good, the signer's user
    id when good, else gpgv's reason)."""
    with scratch("xcpng-gpgv") as tmp:
        args = [gpgv, "--homedir", str(tmp), "--status-fd", "1"]
        for i, (_where, ring) in enumerate(keyrings):
            path = tmp / f"ring{i}.gpg"
            path.write_bytes(ring)
            args += ["--keyring", str(path)]
        proc = subprocess.run([*args, "-"], input=signed, capture_output=True, check=False)
    status = [
        line[len("[GNUPG:] ") :]
        for line in proc.stdout.decode("utf-8", "replace").splitlines()
        if line.startswith("[GNUPG:] ")
    ]
    good = [s.split(" ", 2)[-1] for s in status if s.startswith("GOODSIG ")]
    if proc.returncode == 0 and good and any(s.startswith("VALIDSIG ") for s in status):
        return True, good[0]
    bad = [s for s in status if "SIG" in s.split(" ", 1)[0] and not s.startswith("NEWSIG")]
    return False, "; ".join(bad) or proc.stderr.decode("utf-8", "replace").strip()[-300:]


def parse_release(payload: str) -> tuple[deb822.Release, dict[str, tuple[str, int]]]:
    release = deb822.Release(payload)
    files = {f["name"]: (f["sha256"], int(f["size"])) for f in release.get("SHA256", [])}
    return release, files


class Archive:
    """Archive files on the host's cache (Settings.cache_dir / "archive")."""

    def __init__(
        self,
        cache_dir: Path,
        max_age: float,
        fetch: Callable[[str], bytes] = http.get,
        gpgv: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.cache_dir = cache_dir
        self.max_age = max_age
        self.urls = UrlCache(cache_dir / "urls", fetch, clock)
        self.fetch = fetch
        self.gpgv = gpgv if gpgv is not None else shutil.which("gpgv")
        self.clock = clock
        self._indexes: dict[str, PackageIndex] = {}
        self._releases: dict[tuple[str, str, str], Release] = {}

    def _get(self, url: str, source: AptSource, accept: Callable[[bytes], bool]) -> bytes:
        """`url` through the URL cache (kept until `accept` refuses it)."""
        try:
            return self.urls.get(url, None, accept).data
        except http.NotFound:
            raise _missing(source, url) from None

    def _fetch(self, url: str, source: AptSource) -> bytes:
        """`url` fetched now, not kept by URL (its caller keeps what it makes of it)."""
        try:
            return self.fetch(url)
        except http.NotFound:
            raise _missing(source, url) from None

    def release(self, source: AptSource, keyrings: list[tuple[str, bytes]]) -> Release:
        """The source's InRelease, verified with these keyrings and not expired."""
        url = source.base + "InRelease"
        try:
            cached = self.urls.get(url, self.max_age, lambda d: not _expired(d, self.clock()))
        except http.NotFound:
            raise _missing(source, url) from None
        memo = (url, _sha(cached.data), _sha(b"".join(ring for _, ring in keyrings)))
        if memo in self._releases:
            return self._releases[memo]
        signature = self._signature(cached.data, keyrings, source, url)
        release, files = parse_release(_signed_payload(cached.data))
        until = _valid_until(release)
        if until is not None and until < self.clock():
            raise InfrastructureError(
                f"{url}: expired (Valid-Until {release['Valid-Until']}): a stale mirror?"
            )
        self._releases[memo] = Release(
            url=url,
            suite=release.get("Suite", source.suite),
            codename=release.get("Codename", ""),
            by_hash=release.get("Acquire-By-Hash", "no").strip().lower() == "yes",
            files=files,
            signature=signature,
            fetched_at=cached.fetched_at,
            pin_fields=tuple((k, str(v)) for k, v in release.items() if k in PIN_FIELDS),
        )
        return self._releases[memo]

    def _signature(
        self, data: bytes, keyrings: list[tuple[str, bytes]], source: AptSource, url: str
    ) -> str:
        if self.gpgv is None:
            return "not checked: no gpgv on this host (index hashes checked only)"
        if not keyrings:
            raise ImageDefect(f"{source.origin}: the image trusts no key that could sign {url}")
        good, detail = gpgv_verify(data, keyrings, self.gpgv)
        if not good:
            where = ", ".join(w for w, _ in keyrings)
            raise ImageDefect(
                f"{url}: its signature does not verify with the keys the image trusts for "
                f"{source.origin} ({where}): {detail}"
            )
        return f"good signature by {detail}"

    def index(
        self, source: AptSource, component: str, arch: str, keyrings: list[tuple[str, bytes]]
    ) -> PackageIndex:
        """The Packages index of one component and architecture, verified against InRelease."""
        release = self.release(source, keyrings)
        name = index_name(release, component, arch)
        if name is None:
            raise ImageDefect(
                f"{source.origin}: {source.base} has no Packages index for component "
                f"{component!r}, architecture {arch}"
            )
        sha, size = release.files[name]
        url = source.base + (_by_hash(name, sha) if release.by_hash else name)
        if url in self._indexes:
            return self._indexes[url]

        def download(_key: str, cache: bool = False) -> bytes:
            data = self._get(url, source, _hash_is(sha)) if cache else self._fetch(url, source)
            if _sha(data) != sha or len(data) != size:
                raise InfrastructureError(f"{url}: does not match the sha256 its InRelease lists")
            return next(f for suffix, f in COMPRESSIONS if name.endswith(suffix))(data)

        plain = release.files.get(name.rsplit(".", 1)[0] if name.endswith((".xz", ".gz")) else "")
        if plain is None:  # keep the compressed index, decompress it each session
            text = download(url, cache=True)
        else:  # InRelease lists the uncompressed index too: keep it decompressed, checked
            text = self.urls.get(url + "#decompressed", None, _hash_is(plain[0]), download).data
            if _sha(text) != plain[0]:
                raise InfrastructureError(f"{url}: decompressed, it does not match its InRelease")
        self._indexes[url] = PackageIndex(url, source.suite, text)
        return self._indexes[url]

    def deb(self, source: AptSource, entry: IndexEntry) -> Path:
        """The .deb of an index entry, downloaded once (under a lock) and kept by its sha256."""
        path = self.cache_dir / "debs" / f"{entry.sha256}.deb"
        path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(path.with_suffix(".lock")), timeout=LOCK_TIMEOUT_S):
            if path.is_file() and _sha(path.read_bytes()) == entry.sha256:
                return path
            url = f"{source.uri.rstrip('/')}/{entry.filename}"
            data = self._fetch(url, source)
            if _sha(data) != entry.sha256:
                raise InfrastructureError(f"{url}: does not match the sha256 its index lists")
            return write_atomic(path, data)


def index_name(release: Release, component: str, arch: str) -> str | None:
    """The Packages file of a component and architecture that InRelease lists, best
    compression first (None: the suite has none)."""
    stem = f"{component}/binary-{arch}/Packages" if component else "Packages"
    return next((stem + s for s, _ in COMPRESSIONS if stem + s in release.files), None)


def _by_hash(name: str, sha: str) -> str:
    folder = name.rsplit("/", 1)[0] + "/" if "/" in name else ""
    return f"{folder}by-hash/SHA256/{sha}"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _hash_is(sha: str) -> Callable[[bytes], bool]:
    return lambda data: _sha(data) == sha


def _missing(source: AptSource, url: str) -> Exception:
    """A 404: the image's own sources name what the archive lacks (an image defect); a
    source the harness added itself is the harness's problem."""
    if source.in_image:
        return ImageDefect(f"{source.origin}: {url} does not exist: apt on a clone would fail too")
    return InfrastructureError(f"{url} does not exist ({source.origin})")


def _signed_payload(data: bytes) -> str:
    """The signed text of a clear-signed InRelease. Like apt, nothing may stand before the
    signed message or after its signature: text there would be read but not signed."""
    text = data.strip()
    if not text.startswith(b"-----BEGIN PGP SIGNED MESSAGE-----") or not text.endswith(
        b"-----END PGP SIGNATURE-----"
    ):
        raise InfrastructureError("InRelease is not one clear-signed message")
    _pre, payload, _post = deb822.Deb822.split_gpg_and_payload(iter(text.splitlines()))
    return "\n".join(line.decode("utf-8", "replace") for line in payload) + "\n"


def _valid_until(release: deb822.Release) -> float | None:
    value = release.get("Valid-Until")
    if not value:
        return None
    try:
        return parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None


def _expired(data: bytes, now: float) -> bool:
    """A cached InRelease past its Valid-Until is not served (the archive has a newer one)."""
    m = re.search(rb"^Valid-Until: *(.+)$", data, re.M)
    if not m:
        return False
    try:
        return parsedate_to_datetime(m.group(1).decode().strip()).timestamp() < now
    except (TypeError, ValueError):
        return False
