"""cloud-init: present and enabled in the image, looking for NoCloud and ConfigDrive, a clean
first boot, and this VM's seed applied (which also proves the checks reached the right VM)."""

from __future__ import annotations

import json
import re
from typing import Any

from core.checks import check
from core.model import BootedVM
from validations import cloudcfg
from validations.offline import OfflineImage

REQUIRED_DATASOURCES = ("NoCloud", "ConfigDrive")
# The units that start cloud-init: 22.x-23.x (first) and 24.x (second).
UNITS = (("cloud-init.service", "cloud-init-local.service"), ("cloud-init-main.service",))
WANTS_DIRS = (
    "/etc/systemd/system/cloud-init.target.wants",
    "/etc/systemd/system/multi-user.target.wants",
)
LOG_PROBLEM = re.compile(
    r"Traceback \(most recent call last\)|\[(ERROR|CRITICAL)\]| - (ERROR|CRITICAL)\b"
)
ALLOWED_LOG_LINES: tuple[re.Pattern[str], ...] = ()  # none yet: add with a reason


@check(
    "cloud-init-installed", "cloud-init present and enabled in the image: clones get their identity"
)
def test_installed(image: OfflineImage) -> None:
    assert image.exists("/usr/bin/cloud-init"), "/usr/bin/cloud-init is missing from the image"
    assert not image.exists("/etc/cloud/cloud-init.disabled"), (
        "/etc/cloud/cloud-init.disabled exists"
    )
    wanted = {n for d in WANTS_DIRS if image.exists(d) for n in image.listdir(d)}
    assert any(all(u in wanted for u in group) for group in UNITS), (
        f"cloud-init units are not enabled (wants: {sorted(n for n in wanted if 'cloud' in n)})"
    )


@check(
    "cloud-init-datasources", "datasource_list has NoCloud and ConfigDrive (XCP-ng and local seeds)"
)
def test_datasources(image: OfflineImage) -> None:
    cfg = cloudcfg.merged(image.read_text, image.listdir)
    sources = cfg.get("datasource_list")
    assert isinstance(sources, list) and sources, f"datasource_list is not set: {sources!r}"
    missing = [d for d in REQUIRED_DATASOURCES if d not in sources]
    assert not missing, f"datasource_list {sources} lacks {', '.join(missing)}"


@check("cloud-init-clean-boot", "cloud-init finished the first boot without errors or tracebacks")
def test_clean_boot(host: Any) -> None:
    status = host.run("sudo cloud-init status --wait --long")
    assert "status: done" in status.stdout, (
        f"cloud-init status: {status.stdout.strip()} {status.stderr.strip()}"
    )
    assert status.rc == 0, (
        f"cloud-init status exit {status.rc} (2: recoverable errors): {status.stdout}"
    )
    result = json.loads(host.file("/run/cloud-init/result.json").content_string)
    assert result["v1"]["errors"] == [], f"result.json errors: {result['v1']['errors']}"
    stages = json.loads(host.file("/run/cloud-init/status.json").content_string)["v1"]
    stage_errors = {
        name: stage.get("errors") or stage.get("recoverable_errors")
        for name, stage in stages.items()
        if isinstance(stage, dict) and (stage.get("errors") or stage.get("recoverable_errors"))
    }
    assert not stage_errors, f"status.json stage errors: {stage_errors}"
    log = host.run("sudo cat /var/log/cloud-init.log")
    assert log.rc == 0 and log.stdout.strip(), "/var/log/cloud-init.log is missing or empty"
    problems = [
        line
        for line in log.stdout.splitlines()
        if LOG_PROBLEM.search(line) and not any(p.search(line) for p in ALLOWED_LOG_LINES)
    ]
    assert not problems, "cloud-init.log:\n" + "\n".join(problems[:20])


@check(
    "cloud-init-seed-applied",
    "this VM's seed took effect: its instance id, hostname and user-data marker",
)
def test_seed_applied(host: Any, vm: BootedVM) -> None:
    instance = host.file("/var/lib/cloud/data/instance-id").content_string.strip()
    assert instance == vm.instance_id, f"instance id {instance!r}, seed says {vm.instance_id!r}"
    hostname = host.run("hostname").stdout.strip()
    assert hostname == vm.hostname, f"hostname {hostname!r}, seed says {vm.hostname!r}"
    marker = host.run("sudo cat /var/lib/template-checks/marker")
    assert marker.stdout.strip() == vm.marker, (
        f"user-data marker {marker.stdout.strip()!r}, seed says {vm.marker!r}"
    )
