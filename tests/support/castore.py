"""CA stores laid out as Debian's ca-certificates and EL's ca-certificates/p11-kit lay them out,
with certificates made here (self-signed, EC keys: fast), for the offline trust checks.

Debian: /usr/share/ca-certificates/mozilla/*.crt with the package's md5sums, a
/etc/ca-certificates.conf enabling them, /etc/ssl/certs/<name>.pem links and <hash>.0 links,
the bundle, and OpenSSL's /usr/lib/ssl/{cert.pem,certs} links. EL: the package's
ca-bundle.trust.p11-kit, the extracted PEM and OpenSSL trust bundles and OpenSSL's
/etc/pki/tls links. Hash link names are made up (the check never relies on them).
"""

from __future__ import annotations

import datetime
import hashlib
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

DEBIAN_CAS = ("Test_Root_CA_One", "Test_Root_CA_Two", "Test_Root_CA_Three")
_CACHE: dict[str, bytes] = {}


def certificate(name: str) -> bytes:
    """A self-signed CA certificate (PEM) with CN=name, the same bytes for the same name."""
    if name not in _CACHE:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name.replace("_", " "))])
        start = datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(int(hashlib.sha1(name.encode()).hexdigest()[:15], 16))
            .not_valid_before(start)
            .not_valid_after(start + datetime.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256())
        )
        _CACHE[name] = cert.public_bytes(serialization.Encoding.PEM)
    return _CACHE[name]


def fake_hash(name: str) -> str:
    return hashlib.sha1(name.encode()).hexdigest()[:8]


def _link(path: Path, target: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_symlink() or path.exists():
        path.unlink()
    path.symlink_to(target)


def debian_store(root: Path, names: tuple[str, ...] = DEBIAN_CAS) -> None:
    """Lay out ca-certificates under `root` as update-ca-certificates leaves it."""
    share = root / "usr/share/ca-certificates/mozilla"
    share.mkdir(parents=True, exist_ok=True)
    certs = root / "etc/ssl/certs"
    certs.mkdir(parents=True, exist_ok=True)
    md5sums = ["0123456789abcdef0123456789abcdef  usr/sbin/update-ca-certificates"]
    bundle = b""
    for name in names:
        pem = certificate(name)
        (share / f"{name}.crt").write_bytes(pem)
        md5sums.append(
            f"{hashlib.md5(pem).hexdigest()}  usr/share/ca-certificates/mozilla/{name}.crt"
        )
        _link(certs / f"{name}.pem", f"/usr/share/ca-certificates/mozilla/{name}.crt")
        _link(certs / f"{fake_hash(name)}.0", f"{name}.pem")
        bundle += pem
    (certs / "ca-certificates.crt").write_bytes(bundle)
    conf = "# This file lists certificates that you wish to use or to ignore\n"
    conf += "".join(f"mozilla/{n}.crt\n" for n in names)
    (root / "etc/ca-certificates.conf").write_text(conf)
    info = root / "var/lib/dpkg/info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "ca-certificates.md5sums").write_text("\n".join(md5sums) + "\n")
    (root / "usr/local/share/ca-certificates").mkdir(parents=True, exist_ok=True)
    _link(root / "usr/lib/ssl/certs", "/etc/ssl/certs")
    _link(root / "usr/lib/ssl/cert.pem", "/etc/ssl/certs/ca-certificates.crt")


P11KIT_BLOCK = """[p11-kit-object-v1]
label: "{label}"
trusted: true
nss-mozilla-ca-policy: true
modifiable: false
{pem}"""
SERVER_AUTH_AUX = bytes.fromhex("300c300a06082b06010505070301")  # OpenSSL's X509_CERT_AUX


def trusted_certificate(pem: bytes) -> bytes:
    """The OpenSSL `TRUSTED CERTIFICATE` form of `pem` (the certificate, then aux data)."""
    from base64 import encodebytes

    der = x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)
    body = encodebytes(der + SERVER_AUTH_AUX).decode()
    return (
        f"-----BEGIN TRUSTED CERTIFICATE-----\n{body}-----END TRUSTED CERTIFICATE-----\n".encode()
    )


def el_store(root: Path, names: tuple[str, ...] = DEBIAN_CAS) -> None:
    """Lay out EL's ca-certificates under `root` as update-ca-trust leaves it."""
    source = root / "usr/share/pki/ca-trust-source"
    (source / "anchors").mkdir(parents=True, exist_ok=True)
    (source / "README").write_text("This directory contains CA certificates and trust settings.\n")
    blocks = "".join(
        P11KIT_BLOCK.format(label=n, pem=certificate(n).decode()) + "\n" for n in names
    )
    (source / "ca-bundle.trust.p11-kit").write_text(blocks)
    etc = root / "etc/pki/ca-trust"
    for folder in ("source/anchors", "source/blocklist", "extracted/pem", "extracted/openssl"):
        (etc / folder).mkdir(parents=True, exist_ok=True)
    (etc / "source/README").write_text(
        "This directory /etc/pki/ca-trust/source/ contains CA certificates.\n"
    )
    (etc / "extracted/pem/tls-ca-bundle.pem").write_bytes(b"".join(certificate(n) for n in names))
    (etc / "extracted/openssl/ca-bundle.trust.crt").write_bytes(
        b"".join(trusted_certificate(certificate(n)) for n in names)
    )
    tls = root / "etc/pki/tls"
    (tls / "certs").mkdir(parents=True, exist_ok=True)
    _link(tls / "certs/ca-bundle.crt", "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem")
    _link(
        tls / "certs/ca-bundle.trust.crt", "/etc/pki/ca-trust/extracted/openssl/ca-bundle.trust.crt"
    )
    _link(tls / "cert.pem", "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem")
    _link(root / "etc/ssl/certs", "/etc/pki/tls/certs")
