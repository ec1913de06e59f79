"""TLS to the pool: the certificate checked against CAs (the default), or pinned by its SHA-256
fingerprint (XCPNG_TLS_FINGERPRINT), on every connection: XML-RPC and each upload.

Why a pin: XCP-ng 8.2 generates its own certificate with the management IP as CN and DNS names
only in the subject alternative names (xapi 1.249 `scripts/generate_ssl_cert`), and Python
matches an IP address only against IP entries there. So `https://<IP>` fails even with the
host's own `xapi-ssl.pem` as CA bundle. 8.3's `gencert` adds the IP. The ways out are the
host's name in XCPNG_URL, or the certificate pinned by its fingerprint, which the operator
reads on the host. A pinned connection skips the CA and name checks and checks the fingerprint
instead, before anything is sent on it; a certificate that does not match stops it, naming both
fingerprints. There is no silent "verify nothing" mode (XCPNG_TLS_VERIFY=0 warns loudly).
"""

from __future__ import annotations

import hashlib
import http.client
import socket
import ssl
import xmlrpc.client
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.errors import UsageError

FINGERPRINT_ON_HOST = "openssl x509 -in /etc/xensource/xapi-ssl.pem -noout -fingerprint -sha256"


class CertificateMismatch(ssl.SSLCertVerificationError):
    """The pool presented a certificate whose fingerprint is not pinned. Never retried."""

    def __init__(self, where: str, pinned: tuple[str, ...], presented: str):
        self.where, self.pinned, self.presented = where, pinned, presented
        self.verify_message = (
            f"the TLS certificate of {where} changed: XCPNG_TLS_FINGERPRINT pins "
            f"{', '.join(pinned)}, the host presented {presented}; nothing was sent. Either "
            "someone between this runner and the pool presents their own certificate, or the "
            "host's certificate was regenerated: read it on the host "
            f"({FINGERPRINT_ON_HOST}) and only then set XCPNG_TLS_FINGERPRINT to it"
        )
        super().__init__(self.verify_message)

    def __str__(self) -> str:
        return self.verify_message


def fingerprint(der: bytes) -> str:
    """SHA-256 of a DER certificate, as `openssl x509 -fingerprint -sha256` prints it."""
    digest = hashlib.sha256(der).hexdigest().upper()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


@dataclass(frozen=True)
class TlsPolicy:
    """How connections to the pool are checked."""

    verify: bool = True
    ca_bundle: Path | str | None = None
    fingerprints: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.fingerprints and not self.verify:
            raise UsageError(
                "XCPNG_TLS_VERIFY=0 and XCPNG_TLS_FINGERPRINT contradict each other: a pinned "
                "certificate is checked on every connection; unset XCPNG_TLS_VERIFY"
            )
        if self.fingerprints and self.ca_bundle:
            raise UsageError(
                "XCPNG_CA_BUNDLE and XCPNG_TLS_FINGERPRINT are two ways to trust the pool: "
                "set one (the pin for a certificate that does not name the address in XCPNG_URL)"
            )

    def context(self) -> ssl.SSLContext:
        if self.fingerprints:
            # the CA chain and the name are replaced by the fingerprint, checked in connect()
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            return ctx
        if self.verify:
            cafile = str(self.ca_bundle) if self.ca_bundle else None
            return ssl.create_default_context(cafile=cafile)
        return ssl._create_unverified_context()  # noqa: S323  # XCPNG_TLS_VERIFY=0, warned

    def check(self, sock: ssl.SSLSocket, where: str) -> None:
        """Raise CertificateMismatch unless the peer's certificate is pinned (when pinning)."""
        if not self.fingerprints:
            return
        presented = fingerprint(sock.getpeercert(binary_form=True) or b"")
        if presented not in self.fingerprints:
            sock.close()
            raise CertificateMismatch(where, self.fingerprints, presented)


class HTTPSConnection(http.client.HTTPSConnection):
    """An HTTPS connection that checks the pin right after the handshake, before a byte of the
    request (with its session id or password) is sent."""

    def __init__(self, host: str, port: int | None, policy: TlsPolicy, **kw: Any):
        super().__init__(host, port, context=policy.context(), **kw)
        self.policy = policy

    def connect(self) -> None:
        super().connect()
        assert isinstance(self.sock, ssl.SSLSocket)
        self.policy.check(self.sock, f"https://{self.host}:{self.port}")


class Transport(xmlrpc.client.SafeTransport):
    """XML-RPC over `HTTPSConnection` (the XenAPI client takes any transport)."""

    def __init__(self, policy: TlsPolicy):
        super().__init__(context=policy.context())
        self.policy = policy

    def make_connection(self, host: Any) -> http.client.HTTPSConnection:
        cached = self._connection[1]
        if cached is not None and host == self._connection[0]:
            assert isinstance(cached, http.client.HTTPSConnection)
            return cached
        chost, self._extra_headers, x509 = self.get_host_info(host)
        conn = HTTPSConnection(chost, None, self.policy, **(x509 or {}))
        self._connection = host, conn
        return conn


@dataclass(frozen=True)
class Presented:
    """What a host's certificate says, read without trusting it (nothing is sent)."""

    fingerprint: str
    common_name: str
    dns_names: tuple[str, ...]
    ip_addresses: tuple[str, ...]


def presented_certificate(host: str, port: int, timeout: float = 10.0) -> Presented | None:
    """The certificate `host` presents, parsed; None when it cannot be read."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as raw:
            ctx = ssl._create_unverified_context()  # noqa: S323  # read only, nothing sent
            with ctx.wrap_socket(raw, server_hostname=host) as tls:
                der = tls.getpeercert(binary_form=True) or b""
    except OSError:
        return None
    return _parse(der)


def _parse(der: bytes) -> Presented:
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    cert = x509.load_der_x509_certificate(der)
    cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns = tuple(san.get_values_for_type(x509.DNSName))
        ips = tuple(str(ip) for ip in san.get_values_for_type(x509.IPAddress))
    except x509.ExtensionNotFound:
        dns, ips = (), ()
    return Presented(fingerprint(der), str(cns[0].value) if cns else "", dns, ips)


def mismatch_advice(url_host: str, port: int, presented: Presented | None) -> str:
    """Why a certificate does not fit `https://<IP>`, and the two ways out."""
    if presented is None:
        return (
            f"use the host's name in XCPNG_URL, or pin its certificate: XCPNG_TLS_FINGERPRINT="
            f"<its SHA-256, read on the host with `{FINGERPRINT_ON_HOST}`>"
        )
    names = ", ".join(f"DNS:{n}" for n in presented.dns_names) or "none"
    name = presented.dns_names[0] if presented.dns_names else "<the host's name>"
    where = f"{port}" if port != 443 else ""
    url = f"https://{name}" + (f":{where}" if where else "")
    return (
        f"its certificate (CN {presented.common_name}, subject alternative names {names}) "
        "names no IP address, which Python requires for an https://<IP> URL: XCP-ng 8.2 "
        "generates such certificates (8.3 adds the IP). Two ways out: the host's name, "
        f"XCPNG_URL={url} (resolvable from this runner); or pin this certificate, after "
        f"checking on the host with `{FINGERPRINT_ON_HOST}` that it is the same: "
        f"XCPNG_TLS_FINGERPRINT={presented.fingerprint}"
    )
