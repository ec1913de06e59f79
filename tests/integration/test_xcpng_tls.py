"""TLS to the pool: verified by default, a CA bundle to trust a private CA, and turning the check
off is explicit and warns. The twin serves HTTPS with a certificate made by openssl."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.errors import InfrastructureError
from platforms.xcpng import XcpngPlatform
from platforms.xcpng.client import RetryPolicy
from platforms.xcpng.platform import connect
from tests.twins.xapi import XapiTwin
from tests.twins.xapi.helpers import (
    build_of,
    self_signed,
    small_xva,
    spec,
    ssh_banner_endpoint,
    twin_settings,
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
