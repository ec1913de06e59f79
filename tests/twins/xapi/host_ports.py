"""A pytest plugin for harness runs against the twin (`-p tests.twins.xapi.host_ports`).

Preflight probes SSH (22) and HTTPS (443) on every pool host, as the Packer plugin needs them;
the twin's host stands on 127.0.0.1, where nothing of the kind listens. `TWIN_HOST_PORTS`
("ssh=2222,https=8443") points the probes at stand-ins for the run: test code only, the
harness itself has no such setting.
"""

from __future__ import annotations

import os

import pytest

from platforms.xcpng import reach

VARIABLE = "TWIN_HOST_PORTS"


def pytest_configure(config: pytest.Config) -> None:
    spec = os.environ.get(VARIABLE, "")
    if spec:
        pairs = (item.split("=", 1) for item in spec.split(","))
        reach.HOST_PORTS = {kind: int(port) for kind, port in pairs}


def value(ssh: int, https: int) -> str:
    return f"ssh={ssh},https={https}"
