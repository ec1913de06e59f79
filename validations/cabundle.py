"""The system's CA store against what the distribution's ca-certificates package would generate.

A clone trusts for TLS every certificate its TLS libraries load: on Debian, OpenSSL's default
CAfile and CApath (/usr/lib/ssl/cert.pem and /usr/lib/ssl/certs, links to
/etc/ssl/certs/ca-certificates.crt and /etc/ssl/certs) and whatever else sits in /etc/ssl/certs,
which GnuTLS, Java's and Python's stores read too. `update-ca-certificates` builds both from the
certificates /etc/ca-certificates.conf enables among the package's files in
/usr/share/ca-certificates (every line neither blank, `#` nor `!`), plus every
/usr/local/share/ca-certificates/**/*.crt. So the expected set is the enabled certificates of
files the package shipped untouched (dpkg's md5sums); anything else the clone would trust is a
finding naming the certificate's subject: a local CA, a certificate appended to the bundle, a
planted hash link or PEM file, a changed package file. Certificates are compared by their DER
bytes (SHA-256 fingerprints), never by file names.

Dormant trust counts too: a file dropped in /usr/share/ca-certificates is added to the
configuration by the package's next upgrade (debconf `ca-certificates/trust_new_crts`, on by
default) and a /usr/local one by the next `update-ca-certificates`, so both are findings while
not yet in the bundle.

EL (ca-certificates with p11-kit): the extracted bundles (/etc/pki/ca-trust/extracted, and
OpenSSL's /etc/pki/tls/cert.pem and /etc/pki/tls/certs) must hold only certificates of the
package's /usr/share/pki/ca-trust-source/ca-bundle.trust.p11-kit, and the
anchor folders (/etc/pki/ca-trust/source{,/anchors}, /usr/share/pki/ca-trust-source{,/anchors})
must hold nothing else. Whether that .p11-kit file itself is the package's untouched one needs
the rpm database, which is not read offline: not covered.

Pure: the check passes file contents in (validations/test_trust.py).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import posixpath
import re
from collections.abc import Iterable
from dataclasses import dataclass

_PEM = re.compile(
    rb"-----BEGIN ((?:X509 |TRUSTED )?CERTIFICATE)-----\r?\n(.*?)-----END \1-----", re.S
)
SHARE = "/usr/share/ca-certificates"
LOCAL = "/usr/local/share/ca-certificates"
CONF = "/etc/ca-certificates.conf"
# What Debian's TLS libraries load: OpenSSL's default CAfile and CApath (OPENSSLDIR
# /usr/lib/ssl), and the folder every other library and application reads.
DEBIAN_FILES = ("/etc/ssl/certs/ca-certificates.crt", "/usr/lib/ssl/cert.pem")
DEBIAN_DIRS = ("/etc/ssl/certs", "/usr/lib/ssl/certs")

EL_P11KIT = "/usr/share/pki/ca-trust-source/ca-bundle.trust.p11-kit"
EL_SOURCE_DIRS = (
    "/etc/pki/ca-trust/source",
    "/etc/pki/ca-trust/source/anchors",
    "/usr/share/pki/ca-trust-source",
    "/usr/share/pki/ca-trust-source/anchors",
)
EL_FILES = (
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/pki/ca-trust/extracted/openssl/ca-bundle.trust.crt",
    "/etc/pki/tls/cert.pem",
)
EL_DIRS = ("/etc/pki/tls/certs", "/etc/pki/ca-trust/extracted/pem/directory-hash")


def _first_der(der: bytes) -> bytes:
    """The first DER element (a TRUSTED CERTIFICATE is the certificate, then OpenSSL's aux)."""
    if len(der) < 2 or der[0] != 0x30:
        return der
    size = der[1]
    if size < 0x80:
        return der[: 2 + size]
    n = size & 0x7F
    length = int.from_bytes(der[2 : 2 + n], "big")
    return der[: 2 + n + length]


def pem_certificates(data: bytes) -> list[bytes]:
    """The certificates (DER) of every PEM block OpenSSL's loader accepts as one."""
    out = []
    for kind, body in _PEM.findall(data):
        try:
            der = base64.b64decode(b"".join(body.split()), validate=True)
        except (binascii.Error, ValueError):
            continue
        out.append(_first_der(der) if kind == b"TRUSTED CERTIFICATE" else der)
    return out


def fingerprint(der: bytes) -> str:
    return hashlib.sha256(der).hexdigest()


def subject(der: bytes) -> str:
    """The certificate's subject as RFC 4514 text, for the message."""
    try:
        from cryptography import x509

        return x509.load_der_x509_certificate(der).subject.rfc4514_string() or "(empty subject)"
    except Exception:  # a malformed certificate still gets named by its fingerprint
        return "(unparseable certificate)"


def named(der: bytes) -> str:
    return f"{subject(der)} [sha256 {fingerprint(der)[:16]}]"


def enabled(conf: str) -> list[str]:
    """The certificate files (relative to /usr/share/ca-certificates) that
    /etc/ca-certificates.conf enables, as update-ca-certificates reads it."""
    out = []
    for raw in conf.splitlines():
        line = raw.strip()
        if line and not line.startswith(("#", "!")):
            out.append(line)
    return out


@dataclass(frozen=True)
class DebianStore:
    """What one Debian image holds (paths are the image's)."""

    conf: str  # /etc/ca-certificates.conf
    shipped: dict[str, bytes]  # every file under /usr/share/ca-certificates, by relative path
    owned: dict[str, str]  # md5 of the files dpkg installed there, by relative path
    local: dict[str, bytes]  # every *.crt under /usr/local/share/ca-certificates
    trusted: dict[str, list[bytes]]  # each file the TLS libraries load -> its certificates


def untouched(store: DebianStore, rel: str) -> bool:
    data = store.shipped.get(rel)
    return data is not None and hashlib.md5(data).hexdigest() == store.owned.get(rel)


def debian_expected(store: DebianStore) -> dict[str, str]:
    """fingerprint -> the package file it comes from, for the enabled, untouched certificates."""
    out: dict[str, str] = {}
    for rel in enabled(store.conf):
        if untouched(store, rel):
            for der in pem_certificates(store.shipped[rel]):
                out.setdefault(fingerprint(der), f"{SHARE}/{rel}")
    return out


def _subjects(data: bytes) -> str:
    certs = pem_certificates(data)
    return "; ".join(named(d) for d in certs) if certs else "no PEM certificate"


def debian_findings(store: DebianStore) -> list[str]:
    """Every certificate the image trusts, or will trust, beyond ca-certificates' own."""
    expected = debian_expected(store)
    found = []
    conf = set(enabled(store.conf))
    for rel, data in sorted(store.shipped.items()):
        if untouched(store, rel):
            continue
        why = "changed since dpkg installed it" if rel in store.owned else "no package shipped it"
        when = (
            "enabled in ca-certificates.conf"
            if rel in conf
            else "the package's next upgrade enables it (trust_new_crts)"
        )
        found.append(f"{SHARE}/{rel}: {why}; {when}: {_subjects(data)}")
    for path, data in sorted(store.local.items()):
        found.append(
            f"{path}: a local CA, added to the store by every update-ca-certificates: "
            f"{_subjects(data)}"
        )
    found += extra_certificates(store.trusted, expected, "ca-certificates.conf enables")
    return found


def extra_certificates(
    trusted: dict[str, list[bytes]], expected: Iterable[str], source: str
) -> list[str]:
    """One line per trusted certificate not in `expected`, naming where the clone finds it."""
    want = set(expected)
    where: dict[str, list[str]] = {}
    ders: dict[str, bytes] = {}
    for path, certs in trusted.items():
        for der in certs:
            fp = fingerprint(der)
            if fp not in want:
                where.setdefault(fp, []).append(path)
                ders[fp] = der
    lines = []
    for fp, paths in sorted(where.items(), key=lambda kv: sorted(kv[1])[0]):
        shown = sorted(set(paths))
        more = f" (+{len(shown) - 3} more)" if len(shown) > 3 else ""
        lines.append(
            f"{named(ders[fp])}: trusted through {', '.join(shown[:3])}{more}, "
            f"which no certificate {source} accounts for"
        )
    return lines


# -- EL: p11-kit's trust store -------------------------------------------------------------------


def p11kit_certificates(text: bytes) -> set[str]:
    """Fingerprints of every certificate a .p11-kit file holds. Distrusted ones count too:
    the OpenSSL trust bundle carries them with their rejection, and they come from the
    package either way."""
    return {fingerprint(d) for d in pem_certificates(text)}


@dataclass(frozen=True)
class ElStore:
    p11kit: bytes | None  # the package's ca-bundle.trust.p11-kit
    sources: dict[str, bytes]  # every file in the anchor and source folders but the package's
    trusted: dict[str, list[bytes]]  # each extracted file OpenSSL and the rest load


def el_findings(store: ElStore) -> list[str]:
    found = []
    if store.p11kit is None:
        found.append(f"{EL_P11KIT} is missing: the extracted bundles cannot be vouched for")
        expected: set[str] = set()
    else:
        expected = p11kit_certificates(store.p11kit)
    for path, data in sorted(store.sources.items()):
        what = _subjects(data) if pem_certificates(data) else "(not PEM: p11-kit reads DER too)"
        found.append(
            f"{path}: an extra trust source, extracted into every bundle by update-ca-trust: {what}"
        )
    found += extra_certificates(store.trusted, expected, "of the package's p11-kit source")
    return found


def is_source_file(path: str, data: bytes) -> bool:
    """A file p11-kit reads as a trust source: anything in an `anchors` folder (it reads DER
    too), a certificate or .p11-kit file elsewhere; not the package's own bundle, its READMEs,
    nor the blocklist folders (which only remove trust)."""
    folder, name = posixpath.split(path)
    if path == EL_P11KIT or name == "README" or posixpath.basename(folder) in _BLOCKLISTS:
        return False
    return (
        posixpath.basename(folder) == "anchors"
        or name.endswith((".p11-kit", ".der", ".cer", ".crt", ".pem"))
        or bool(pem_certificates(data))
    )


_BLOCKLISTS = ("blocklist", "blacklist")
