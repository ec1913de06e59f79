"""TLS to the pool: verified by default, a CA bundle to trust a private CA, and turning the check
off is explicit and warns. The twin serves HTTPS with a certificate made by openssl."""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core.errors import InfrastructureError, UsageError
from core.settings import Settings
from platforms.xcpng import XcpngPlatform
from platforms.xcpng.client import RetryPolicy
from platforms.xcpng.platform import connect
from platforms.xcpng.xva_import import import_xva
from tests.twins.xapi import XapiTwin
from tests.twins.xapi.helpers import (
    build_of,
    self_signed,
    small_xva,
    spec,
    ssh_banner_endpoint,
    twin_settings,
    xcpng82_certificate,
)

FAST = RetryPolicy(attempts=3, max_delay=5, wait_min=0.01, wait_max=0.05)


@pytest.fixture
def tls_twin(tmp_path: Path) -> Iterator[tuple[XapiTwin, Path]]:
    cert, key = self_signed(tmp_path)
    with XapiTwin(tls=(cert, key)) as t:
        yield t, cert


def test_untrusted_certificate_is_refused_with_the_fix(
    tls_twin: tuple[XapiTwin, Path], tmp_path: Path
) -> None:
    twin, _ = tls_twin
    assert twin.url.startswith("https://")
    with pytest.raises(InfrastructureError) as err:
        connect(twin_settings(twin, tmp_path).xcpng, FAST)
    msg = str(err.value)
    assert "TLS certificate" in msg and "not trusted" in msg and "XCPNG_CA_BUNDLE" in msg
    assert twin.calls == []  # nothing, not even the password, went to an untrusted peer


def test_ca_bundle_boots_over_https(tls_twin: tuple[XapiTwin, Path], tmp_path: Path) -> None:
    twin, cert = tls_twin
    s = twin_settings(twin, tmp_path / "a", xcpng_ca_bundle=str(cert))
    with ssh_banner_endpoint() as (_, port):
        ports = {"ssh": port, "https": int(twin.url.rsplit(":", 1)[1])}  # the host's stand-ins
        p = XcpngPlatform(
            s,
            "tls",
            policy=FAST,
            ip_poll=0.05,
            ssh_port=port,
            host_ports=ports,
            login_check=False,
        )
        assert p.preflight() == []
        with p.boot(spec(), build_of(small_xva(tmp_path / "d.xva")), tmp_path / "w") as vm:
            assert vm.facts["vm_ref"] in twin.inventory()["VM"]
    assert twin.empty()


def test_verification_off_is_explicit_and_warns(
    tls_twin: tuple[XapiTwin, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    twin, _ = tls_twin
    caplog.set_level(logging.WARNING, logger="platforms.xcpng")
    xapi = connect(twin_settings(twin, tmp_path, xcpng_tls_verify="0").xcpng, FAST)
    xapi.logout()
    assert "TLS verification of https://127.0.0.1" in caplog.text and "is OFF" in caplog.text
    assert twin.password not in caplog.text


def test_a_redirect_to_another_host_is_followed_over_verified_https(
    tls_twin: tuple[XapiTwin, Path], tmp_path: Path
) -> None:
    twin, cert = tls_twin
    _, sr = twin.add_member()
    s = twin_settings(
        twin, tmp_path / "a", xcpng_ca_bundle=str(cert), xcpng_sr="Local storage of xcp-twin-2"
    )
    with ssh_banner_endpoint() as (_, port):
        p = XcpngPlatform(s, "tls", policy=FAST, ip_poll=0.05, ssh_port=port, login_check=False)
        with p.boot(spec(), build_of(small_xva(tmp_path / "d.xva")), tmp_path / "w"):
            assert all(v["SR"] == sr for v in twin.inventory()["VDI"].values())
    assert [r.split("?")[0] for r in twin.requests if r.startswith("PUT ")].count(
        "PUT /import"
    ) == 2
    assert twin.empty()


# -- XCP-ng 8.2 addressed by IP (issue 23, finding 1) -------------------------------------


def sha256_fingerprint(cert: Path) -> str:
    out = subprocess.run(
        ["openssl", "x509", "-in", str(cert), "-noout", "-fingerprint", "-sha256"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return out.strip().split("=", 1)[1]  # AA:BB:..., as openssl prints it on the host


@pytest.fixture
def twin82(tmp_path: Path) -> Iterator[tuple[XapiTwin, Path]]:
    """A pool master with the certificate 8.2 generates: CN = its IP, DNS names only."""
    cert, key = xcpng82_certificate(tmp_path)
    with XapiTwin(tls=(cert, key)) as t:
        yield t, cert


def test_an_82_certificate_for_an_ip_url_names_the_mismatch_and_both_ways_out(
    twin82: tuple[XapiTwin, Path], tmp_path: Path
) -> None:
    """The host's own xapi-ssl.pem as CA bundle does not help: Python matches an IP only
    against IP entries of the subject alternative names, and 8.2 writes DNS names only."""
    twin, cert = twin82
    s = twin_settings(twin, tmp_path, xcpng_ca_bundle=str(cert))
    with pytest.raises(InfrastructureError) as err:
        connect(s.xcpng, FAST)
    msg = str(err.value)
    assert "\n" not in msg
    assert "https://127.0.0.1" in msg and "names no IP address" in msg
    assert "DNS:xcp-twin" in msg and "XCP-ng 8.2" in msg
    # the two ways out: the host's name, or the certificate pinned by its fingerprint
    assert "https://xcp-twin" in msg
    assert f"XCPNG_TLS_FINGERPRINT={sha256_fingerprint(cert)}" in msg
    assert "openssl x509 -in /etc/xensource/xapi-ssl.pem -noout -fingerprint -sha256" in msg
    assert "XCPNG_TLS_VERIFY=0" not in msg  # no silent way around the check is offered
    assert twin.calls == []  # the password never left


def test_the_82_certificate_pinned_by_fingerprint_boots_over_https(
    twin82: tuple[XapiTwin, Path], tmp_path: Path
) -> None:
    twin, cert = twin82
    s = twin_settings(twin, tmp_path / "a", xcpng_tls_fingerprint=sha256_fingerprint(cert))
    with ssh_banner_endpoint() as (_, port):
        ports = {"ssh": port, "https": int(twin.url.rsplit(":", 1)[1])}
        p = XcpngPlatform(
            s, "pin", policy=FAST, ip_poll=0.05, ssh_port=port, host_ports=ports, login_check=False
        )
        assert p.preflight() == []
        with p.boot(spec(), build_of(small_xva(tmp_path / "d.xva")), tmp_path / "w") as vm:
            assert vm.facts["vm_ref"] in twin.inventory()["VM"]
    assert twin.empty()


def test_a_changed_certificate_stops_every_connection_with_both_fingerprints(
    twin82: tuple[XapiTwin, Path], tmp_path: Path
) -> None:
    """Pinned at login, then the pool presents another certificate (regenerated, or someone in
    between): the next connection, here the upload of the XVA, stops with both fingerprints,
    and nothing is retried or sent."""
    twin, cert = twin82
    pinned = sha256_fingerprint(cert)
    other, other_key = xcpng82_certificate(tmp_path, name="impostor")
    s = twin_settings(twin, tmp_path / "a", xcpng_tls_fingerprint=pinned)
    xapi = connect(s.xcpng, FAST)
    try:
        twin.replace_certificate(other, other_key)
        puts_before = [r for r in twin.requests if r.startswith("PUT ")]
        with pytest.raises(InfrastructureError) as err:
            import_xva(xapi, small_xva(tmp_path / "d.xva"), _default_sr(xapi), name="x", what="x")
    finally:
        twin.replace_certificate(cert, tmp_path / "xapi-ssl.key")
        xapi.logout()
    msg = str(err.value)
    assert pinned in msg and sha256_fingerprint(other) in msg
    assert "changed" in msg and "XCPNG_TLS_FINGERPRINT" in msg
    assert [r for r in twin.requests if r.startswith("PUT ")] == puts_before
    assert msg.count("retry") == 0


def _default_sr(xapi: Any) -> str:
    return str(xapi.call("pool.get_default_SR", xapi.call("pool.get_all")[0]))


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        ({"xcpng_tls_verify": "0"}, "XCPNG_TLS_VERIFY=0"),
        ({"xcpng_ca_bundle": "/etc/ssl/certs/ca-certificates.crt"}, "XCPNG_CA_BUNDLE"),
    ],
)
def test_a_pin_with_another_tls_setting_is_a_usage_error(
    twin82: tuple[XapiTwin, Path], tmp_path: Path, extra: dict[str, str], words: str
) -> None:
    twin, cert = twin82
    s = twin_settings(twin, tmp_path, xcpng_tls_fingerprint=sha256_fingerprint(cert), **extra)
    with pytest.raises(UsageError) as err:
        connect(s.xcpng, FAST)
    assert words in str(err.value) and "XCPNG_TLS_FINGERPRINT" in str(err.value)
    assert twin.calls == []


@pytest.mark.parametrize("bad", ["AB:CD", "zz" * 32, "sha1:" + "ab" * 20])
def test_a_malformed_fingerprint_is_a_usage_error_naming_the_format(bad: str) -> None:
    with pytest.raises(UsageError) as err:
        Settings.from_env(env={"XCPNG_TLS_FINGERPRINT": bad})
    assert "XCPNG_TLS_FINGERPRINT" in str(err.value) and "64 hex digits" in str(err.value)
