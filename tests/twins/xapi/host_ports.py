"""A pytest plugin for harness runs against the twin (`-p tests.twins.xapi.host_ports`).

Preflight probes SSH (22) and HTTPS (443) on every pool host, as the Packer plugin needs them;
the twin's host stands on 127.0.0.1, where nothing of the kind listens. With `TWIN_HOST_PORTS`
("ssh=2222,https=8443") this plugin makes the harness's XCP-ng platform probe stand-ins
instead, through the harness's `pytest_harness_make_platform` hook: test code only, the
harness itself has no such setting. `TWIN_LOGIN_CHECK=0` ends the boot wait at the guest's
SSH banner, for a guest that is a banner-only stand-in (no login with the seed's key).
"""

from __future__ import annotations

import os
from typing import Any

from core.redact import Redactor
from core.settings import Settings

VARIABLE = "TWIN_HOST_PORTS"
LOGIN_CHECK = "TWIN_LOGIN_CHECK"


def value(ssh: int, https: int) -> str:
    return f"ssh={ssh},https={https}"


def pytest_harness_make_platform(
    name: str, settings: Settings, run_id: str, redactor: Redactor
) -> Any:
    spec = os.environ.get(VARIABLE, "")
    if name != "xcpng" or not spec:
        return None  # the harness's own choice
    from platforms.xcpng import XcpngPlatform

    ports = {kind: int(port) for kind, port in (item.split("=", 1) for item in spec.split(","))}
    login_check = os.environ.get(LOGIN_CHECK, "1") != "0"
    return XcpngPlatform(
        settings, run_id, redactor=redactor, host_ports=ports, login_check=login_check
    )
