"""A XAPI connection: login with TLS verified by default, bounded retries of transient faults,
and redaction of the password and every session id from anything we print.

The `XenAPI` package is used unmodified: it sends `X.y(session, *args)` and re-logs in by itself
on `SESSION_INVALID`. Authentication failures are never retried.
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import logging
import socket
import ssl
import xmlrpc.client
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import tenacity
import XenAPI

from core.errors import InfrastructureError, UsageError
from core.redact import Redactor
from platforms.xcpng.tls import (
    FINGERPRINT_ON_HOST,
    CertificateMismatch,
    HTTPSConnection,
    TlsPolicy,
    Transport,
    mismatch_advice,
    presented_certificate,
)

log = logging.getLogger("platforms.xcpng")
T = TypeVar("T")

# XAPI codes that mean "try again shortly" (xen-api api_errors.ml)
TRANSIENT_CODES = frozenset(
    {
        "OTHER_OPERATION_IN_PROGRESS",
        "TOO_BUSY",
        "TOO_MANY_PENDING_TASKS",
        "HOST_STILL_BOOTING",
        "VDI_IN_USE",
    }
)
AUTH_CODES = frozenset(
    {"SESSION_AUTHENTICATION_FAILED", "SESSION_AUTHORIZATION_FAILED", "RBAC_PERMISSION_DENIED"}
)
ORIGINATOR = "xcpng-golden"


@dataclass(frozen=True)
class RetryPolicy:
    """Bounds of every retry loop; tests shrink the waits."""

    attempts: int = 5
    max_delay: float = 120.0
    wait_min: float = 1.0
    wait_max: float = 15.0

    def retrying(self, what: str, redact: Callable[[str], str]) -> tenacity.Retrying:
        def before_sleep(state: tenacity.RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            log.warning(
                "%s: transient fault (%s), retry %d of %d",
                what,
                redact(describe(exc)),
                state.attempt_number,
                self.attempts - 1,
            )

        return tenacity.Retrying(
            retry=tenacity.retry_if_exception(is_transient),
            stop=tenacity.stop_after_attempt(self.attempts)
            | tenacity.stop_after_delay(self.max_delay),
            wait=tenacity.wait_exponential(multiplier=self.wait_min, max=self.wait_max)
            + tenacity.wait_random(0, self.wait_min),
            before_sleep=before_sleep,
            reraise=True,
        )


class UploadInterrupted(ConnectionError):
    """The connection broke while a disk was being sent: the whole upload is retried."""


class SessionRejected(Exception):
    """An HTTP handler refused our session id (expired): log in again, then retry."""


def is_transient(exc: BaseException | None) -> bool:
    if isinstance(exc, XenAPI.Failure):
        return bool(exc.details) and str(exc.details[0]) in TRANSIENT_CODES
    if isinstance(exc, xmlrpc.client.ProtocolError):
        return exc.errcode >= 500 or exc.errcode in (408, 429)
    if isinstance(exc, xmlrpc.client.Fault):
        return exc.faultCode in (500, 503, 504)  # XenAPI's own: timed out, session retries
    if isinstance(exc, ssl.SSLCertVerificationError | socket.gaierror):
        return False
    return isinstance(
        exc,
        ConnectionError | TimeoutError | http.client.HTTPException | SessionRejected,
    )


def describe(exc: BaseException | None) -> str:
    if isinstance(exc, XenAPI.Failure):
        return " ".join(str(d) for d in exc.details)
    if isinstance(exc, xmlrpc.client.ProtocolError):
        return f"HTTP {exc.errcode} {exc.errmsg}"
    return f"{type(exc).__name__}: {exc}" if exc else "unknown error"


def failure_code(exc: BaseException) -> str:
    return str(exc.details[0]) if isinstance(exc, XenAPI.Failure) and exc.details else ""


class Xapi:
    """One logged-in session to a pool master."""

    def __init__(
        self,
        url: str,
        username: str,
        password: str,
        *,
        tls_verify: bool = True,
        ca_bundle: Path | str | None = None,
        tls_fingerprints: tuple[str, ...] = (),
        policy: RetryPolicy | None = None,
        redactor: Redactor | None = None,
    ):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise UsageError(
                f"XCPNG_URL={url!r} is not a pool URL; write https://<pool-master-address>"
            )
        self.url = f"{parts.scheme}://{parts.netloc}"
        self.username = username
        self._password = password
        self.policy = policy or RetryPolicy()
        # the session's redactor: the password and every session id XAPI hands out
        self.redactor = redactor or Redactor()
        self.redactor.add(password)
        self.tls = TlsPolicy(tls_verify, ca_bundle, tls_fingerprints)
        self.https = parts.scheme == "https"
        if self.https and not tls_verify:
            log.warning(
                "TLS verification of %s is OFF (XCPNG_TLS_VERIFY=0): anyone on the path "
                "can impersonate the pool and read its password; set XCPNG_CA_BUNDLE or "
                "XCPNG_TLS_FINGERPRINT instead",
                self.url,
            )
        self.session: Any = None

    def connection(self, host: str, port: int | None, timeout: float) -> http.client.HTTPConnection:
        """A connection to a host of the pool under this session's TLS policy (uploads)."""
        if self.https:
            return HTTPSConnection(host, port or 443, self.tls, timeout=timeout)
        return http.client.HTTPConnection(host, port or 80, timeout=timeout)

    @property
    def handle(self) -> str:
        """The current session id (changes when XenAPI re-logs in); never print it."""
        h = str(self.session.handle) if self.session is not None else ""
        self.redactor.add(h)
        return h

    # -- login ----------------------------------------------------------------------------
    def login(self) -> Xapi:
        transport = Transport(self.tls) if self.https else None
        self.session = XenAPI.Session(self.url, transport=transport)
        try:
            self._login_once()
        except BaseException:
            self.close()
            raise
        _ = self.handle
        return self

    def _login_once(self) -> None:
        try:
            self.policy.retrying("login", self.redactor)(
                self.session.xenapi.login_with_password,
                self.username,
                self._password,
                "2.21",
                ORIGINATOR,
            )
        except XenAPI.Failure as exc:
            code = failure_code(exc)
            if code in AUTH_CODES:
                raise InfrastructureError(
                    f"XCP-ng login to {self.url} as {self.username!r} was refused ({code}); "
                    "check XCPNG_USERNAME and XCPNG_PASSWORD"
                ) from None
            if code == "HOST_IS_SLAVE":
                raise InfrastructureError(
                    f"{self.url} is a pool member, not the master; set XCPNG_URL to "
                    f"https://{exc.details[1]}"
                ) from None
            raise InfrastructureError(
                f"XCP-ng login to {self.url} failed: {self.redactor(describe(exc))}"
            ) from None
        except CertificateMismatch as exc:
            raise InfrastructureError(str(exc)) from None
        except ssl.SSLCertVerificationError as exc:
            raise InfrastructureError(self._untrusted(exc)) from None
        except (OSError, http.client.HTTPException, xmlrpc.client.Error) as exc:
            raise InfrastructureError(
                f"cannot reach the XCP-ng pool at {self.url}: {self.redactor(describe(exc))}; "
                "check XCPNG_URL and the network"
            ) from None

    def _untrusted(self, exc: ssl.SSLCertVerificationError) -> str:
        """Why the certificate is refused, and what to set."""
        parts = urlsplit(self.url)
        host, port = parts.hostname or "", parts.port or 443
        why = f"the TLS certificate of {self.url} is not trusted ({exc.verify_message})"
        try:
            ipaddress.ip_address(host)
            by_ip = True
        except ValueError:
            by_ip = False
        if by_ip and "IP address mismatch" in str(exc.verify_message):
            return f"{why}: {mismatch_advice(host, port, presented_certificate(host, port))}"
        presented = presented_certificate(host, port)
        pin = f" (this host presents {presented.fingerprint})" if presented else ""
        return (
            f"{why}; set XCPNG_CA_BUNDLE to the CA file that signed it, or pin the pool's "
            f"certificate with XCPNG_TLS_FINGERPRINT, read on the host with "
            f"`{FINGERPRINT_ON_HOST}`{pin}"
        )

    def relogin(self) -> None:
        """Log in again after an HTTP handler refused our session."""
        self.session.xenapi.login_with_password(self.username, self._password, "2.21", ORIGINATOR)
        _ = self.handle

    def logout(self) -> None:
        if self.session is not None:
            try:
                self.session.xenapi.session.logout()
            except Exception as exc:  # the pool may be gone; nothing to undo
                log.debug("logout: %s", self.redactor(describe(exc)))
            self.close()

    def close(self) -> None:
        """Close the HTTP connection the XML-RPC transport keeps open."""
        if self.session is not None:
            with contextlib.suppress(Exception):
                self.session("close")()
            self.session = None

    # -- calls ----------------------------------------------------------------------------
    def call(self, method: str, *args: Any) -> Any:
        """`method` like "VM.get_record", retried when the fault is transient."""
        fn: Any = self.session.xenapi
        for part in method.split("."):
            fn = getattr(fn, part)
        result = self.policy.retrying(method, self.redactor)(fn, *args)
        _ = self.handle  # remember a session XenAPI may have renewed
        return result

    def attempt(self, what: str, fn: Callable[[], T]) -> T:
        """Run a multi-step operation under the retry policy."""
        return self.policy.retrying(what, self.redactor)(fn)
