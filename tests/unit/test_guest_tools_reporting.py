"""guest-agent-reporting on the guest metrics a pool reports (no boot needed: the end-to-end
twin run proves the metrics reach the check, tests/integration/test_xcpng_boot.py that the
platform reads them from XAPI)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from core.model import TemplateSpec
from validations.test_guest_tools import test_agent_reporting as agent_reporting

SPEC = TemplateSpec("debian12", "debian", "12", {})
XEN = SimpleNamespace(name="xcpng", has_xen=True)
TOOLS_ON = {
    "PV_drivers_version": {"major": "8", "minor": "3"},
    "os_version": {"distro": "debian", "major": "12"},
}


class Request:
    def __init__(self, metrics: dict[str, Any]) -> None:
        self.vm = SimpleNamespace(facts={"guest_metrics": metrics})

    def getfixturevalue(self, name: str) -> Any:
        assert name == "vm"
        return self.vm


def test_a_pool_that_sees_the_agent_passes() -> None:
    agent_reporting(XEN, SPEC, Request(TOOLS_ON))


@pytest.mark.parametrize(
    ("metrics", "said"),
    [
        ({}, "no PV_drivers_version"),
        ({**TOOLS_ON, "PV_drivers_version": {}}, "no PV_drivers_version"),
        ({**TOOLS_ON, "os_version": {"distro": "centos", "major": "9"}}, "does not match"),
        ({**TOOLS_ON, "os_version": {"distro": "debian", "major": "11"}}, "does not match"),
    ],
    ids=["no-metrics", "no-pv-drivers", "wrong-distro", "wrong-major"],
)
def test_what_the_pool_does_not_see_fails(metrics: dict[str, Any], said: str) -> None:
    with pytest.raises(AssertionError, match=said):
        agent_reporting(XEN, SPEC, Request(metrics))
