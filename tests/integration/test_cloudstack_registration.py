"""Registration in CloudStack, end to end against the CloudStack twin: the real `cs` client signs
each request, the twin verifies it as CloudStack does, and every zone's secondary storage really
downloads the published VHD from a web server serving the store and checks its checksum.

A good registration, a second run that registers nothing, a newer build taking the featured flag
and the retention, a rollback, and each failure with its one line (nothing half-registered)."""

from __future__ import annotations

import functools
import http.server
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core.errors import UsageError
from core.redact import Redactor
from core.settings import Settings
from publish import api
from publish.cloudstack import api as cs_api
from publish.cloudstack import register as cs_register
from publish.cloudstack.api import CloudStackApi
from publish.cloudstack.register import TAG_BOOT, TAG_BUILD, TAG_OS, Registrar
from tests.support.publishing import FAKE_SECRET, fake_os, write_results
from tests.twins.cloudstack.server import CloudStackTwin

OS_TYPE = "Debian GNU/Linux 12 (64-bit)"


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def web(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """The published folder, served over HTTP as a web server in front of the store would."""
    pub = tmp_path / "pub"
    pub.mkdir()
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(pub))
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield pub, f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


@pytest.fixture
def twin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[CloudStackTwin]:
    monkeypatch.setattr(cs_register, "POLL_INTERVAL_S", 0.2)
    monkeypatch.setattr(cs_api, "JOB_POLL_S", 0.1)
    with CloudStackTwin(tmp_path / "secondary") as t:
        yield t


def env_for(twin: CloudStackTwin, url_base: str, **extra: str) -> dict[str, str]:
    return {
        "AWS_SECRET_ACCESS_KEY": FAKE_SECRET,
        "TEMPLATE_PUBLISH_VHD": "bzip2",
        "TEMPLATE_CLOUDSTACK": "1",
        "CLOUDSTACK_URL_BASE": url_base,
        "CLOUDSTACK_TIMEOUT": "60s",
        **twin.env(),
        **extra,
    }


def build(tmp_path: Path, built_at: float, name: str = "debian12") -> Path:
    rec = fake_os(tmp_path / str(int(built_at)), name, size=24 << 20, fmt="raw", built_at=built_at)
    rec["cloudstack_os_type"] = OS_TYPE
    return write_results(tmp_path / str(int(built_at)), [rec], platform="local")


def publish(results: Path, pub: Path, env: dict[str, str], lines: list[str]) -> api.PublishReport:
    return api.publish_results([results], str(pub), Settings.from_env(env=env), log=lines.append)


def test_good_registration_then_a_second_run_registers_nothing(
    tmp_path: Path, web: tuple[Path, str], twin: CloudStackTwin
) -> None:
    pub, base = web
    env = env_for(twin, base)
    lines: list[str] = []
    results = build(tmp_path, 1_790_000_000)
    report = publish(results, pub, env, lines)
    assert report.ok, report.failed
    (template,) = twin.live()
    meta_vhd = report.published[0].metadata["vhd"]
    assert template.checksum == "{SHA-256}" + meta_vhd["sha256"]
    assert template.format == "VHD" and template.hypervisor == "XenServer"
    assert template.ostype.description == OS_TYPE
    assert (template.passwordenabled, template.sshkeyenabled) == (False, True)
    assert template.isfeatured and template.url.endswith(".vhd.bz2")
    assert {z.zone.name: z.status() for z in template.zones.values()} == {
        "zone1": "Download Complete",
        "zone2": "Download Complete",
    }
    assert all(z.size == 24 << 20 for z in template.zones.values())  # the VHD footer's size
    tags = dict(template.tags)
    assert tags[TAG_OS] == "debian12" and tags[TAG_BUILD] == report.published[0].build_id
    assert tags[TAG_BOOT] == "uefi"
    assert any("zone2: Download Complete" in line for line in lines)
    assert any("registered as golden-debian12-" in line for line in report.lines())

    calls = len(twin.calls)
    again = publish(results, pub, env, lines)
    assert again.ok, again.failed
    assert "registerTemplate" not in twin.calls[calls:]
    assert any("nothing registered" in line for line in again.lines())
    assert len(twin.live()) == 1
    everything = "\n".join(lines + report.lines() + again.lines())
    assert twin.secret_key not in everything and twin.api_key not in everything


def test_newer_build_takes_the_flag_retention_and_rollback(
    tmp_path: Path, web: tuple[Path, str], twin: CloudStackTwin
) -> None:
    pub, base = web
    env = env_for(twin, base, CLOUDSTACK_RETENTION="2")
    lines: list[str] = []
    ids, results = [], []
    for when in (1_790_000_000, 1_790_100_000, 1_790_200_000):
        results.append(build(tmp_path, when))
        report = publish(results[-1], pub, env, lines)
        assert report.ok, report.failed
        ids.append(report.published[0].build_id)
    live = {dict(t.tags)[TAG_BUILD]: t for t in twin.live()}
    assert sorted(live) == ids[1:], "the oldest beyond the retention of 2 was deleted"
    assert live[ids[2]].isfeatured and not live[ids[1]].isfeatured

    settings = Settings.from_env(env=env)
    registrar = Registrar(CloudStackApi(settings.cloudstack, Redactor(settings.secrets())),
                          settings.cloudstack, lines.append, poll_interval=0.1)  # fmt: skip
    assert registrar.rollback("debian12") == [
        f"debian12: {ids[1]} is now the featured template",
        f"debian12: {ids[2]} is no longer featured",
    ]
    assert live[ids[1]].isfeatured and not live[ids[2]].isfeatured
    # the same (bad) build published again does not undo the rollback
    again = publish(results[-1], pub, env, lines)
    assert again.ok and live[ids[1]].isfeatured
    with pytest.raises(UsageError, match="nothing to roll back to"):
        registrar.rollback("debian12")


def test_rollback_command_and_list(tmp_path: Path, web: tuple[Path, str], twin: CloudStackTwin):
    pub, base = web
    env = env_for(twin, base)
    for when in (1_790_000_000, 1_790_100_000):
        assert publish(build(tmp_path, when), pub, env, []).ok
    script = Path(sys.executable).parent / "xcpng-golden"
    full = {**os.environ, **env}
    out = subprocess.run([str(script), "cloudstack", "rollback", "--os", "debian12"], env=full,
                         capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "is now the featured template" in out.stdout
    listed = subprocess.run([str(script), "cloudstack", "list", "--os", "debian12"], env=full,
                            capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert listed.stdout.count("zone1: Download Complete") == 2 and "(featured)" in listed.stdout
    for text in (out.stdout, out.stderr, listed.stdout):
        assert twin.secret_key not in text and twin.api_key not in text


FAILURES: dict[str, tuple[dict[str, Any], dict[str, str], str]] = {
    # name: (twin faults, env overrides, the one line's words)
    "wrong key": ({"wrong_key": True}, {}, "401: unable to verify user credentials and/or request"),
    "expired signature": ({"clock_skew_s": 3600}, {}, "signed requests expire"),
    "download failure": ({"download_failure": True}, {},
                         "zone zone1: Connection refused (Connection refused)"),
    "checksum mismatch": ({"checksum_mismatch": True}, {},
                          "Failed post download script: checksum \"{SHA-256}"),
    "slow zone": ({"slow_zones": {"zone2": 64 << 10}}, {"CLOUDSTACK_TIMEOUT": "3s"},
                  "not ready in every zone after 3 s (zone1: Download Complete, zone2: "),
    "unknown zone": ({}, {"CLOUDSTACK_ZONES": "zone1,zone9"},
                     "CloudStack has no zone named zone9 (it has: zone1, zone2)"),
    "unreachable url": ({}, {"CLOUDSTACK_URL_BASE": "http://127.0.0.1:9/"},
                        "Cannot reach URL: http://127.0.0.1:9/debian12/"),
}  # fmt: skip


@pytest.mark.parametrize("name", list(FAILURES))
def test_each_failure_is_one_line_and_nothing_stays_registered(
    name: str, tmp_path: Path, web: tuple[Path, str], twin: CloudStackTwin
) -> None:
    faults, overrides, words = FAILURES[name]
    pub, base = web
    for key, value in faults.items():
        setattr(twin.faults, key, value)
    lines: list[str] = []
    report = publish(build(tmp_path, 1_790_000_000), pub, env_for(twin, base, **overrides), lines)
    assert not report.ok
    ((os_name, why),) = report.failed
    assert os_name == "debian12" and words in why, why
    assert "\n" not in why and "Traceback" not in why
    assert twin.live() == [], "nothing half-registered"
    assert (pub / "debian12" / "latest.json").is_file(), "the store upload stands"
    assert twin.secret_key not in "\n".join(lines) + why


def test_unknown_os_type_is_refused_in_one_line(
    tmp_path: Path, web: tuple[Path, str], twin: CloudStackTwin
) -> None:
    pub, base = web
    rec = fake_os(tmp_path / "13", "debian13", size=8 << 20, fmt="raw")
    rec["cloudstack_os_type"] = "Debian GNU/Linux 13 (64-bit)"
    results = write_results(tmp_path / "13", [rec], platform="local")
    report = publish(results, pub, env_for(twin, base), [])
    ((_, why),) = report.failed
    assert (
        "CloudStack has no OS type 'Debian GNU/Linux 13 (64-bit)' (listOsTypes: none alike)" in why
    )
    assert "packer/os/debian13.pkrvars.hcl" in why and "registerTemplate" not in twin.calls


def test_preflight_is_one_read_only_call(twin: CloudStackTwin) -> None:
    assert api.cloudstack_preflight(Settings.from_env(env=twin.env())) == []
    assert twin.calls == ["listZones"]
    twin.faults.wrong_key = True
    (problem,) = api.cloudstack_preflight(Settings.from_env(env=twin.env()))
    assert "401" in problem and twin.secret_key not in problem


def test_missing_settings_stop_before_any_upload(tmp_path: Path, web: tuple[Path, str]) -> None:
    pub, base = web
    env = {"TEMPLATE_CLOUDSTACK": "1", "TEMPLATE_PUBLISH_VHD": "none", "CLOUDSTACK_URL_BASE": base}
    with pytest.raises(UsageError) as e:
        publish(build(tmp_path, 1_790_000_000), pub, env, [])
    assert str(e.value) == (
        "TEMPLATE_CLOUDSTACK=1 needs CLOUDSTACK_ENDPOINT, CLOUDSTACK_API_KEY, "
        "CLOUDSTACK_SECRET_KEY, CLOUDSTACK_ZONES: set them in the environment (the keys as CI "
        "secrets); TEMPLATE_CLOUDSTACK=1 registers the published VHD, and TEMPLATE_PUBLISH_VHD "
        "is none: set TEMPLATE_PUBLISH_VHD=bzip2 (or vhd)"
    )
    assert list(pub.iterdir()) == [], "nothing published"
