"""The twin speaks XAPI to the unmodified `XenAPI` client: envelope, bare values, refs, error
codes, task lifecycle, the template flag and power-state rules, and XVA imports whose checksums
it verifies itself."""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import os
import re
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest
import XenAPI

from tests.twins.xapi import XapiTwin
from tests.twins.xapi.helpers import finished, small_xva, tar_bytes, tar_members, xapi_session

ROOT = Path(__file__).resolve().parents[2]
REF = re.compile(r"^OpaqueRef:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


@pytest.fixture
def twin() -> Iterator[XapiTwin]:
    with XapiTwin() as t:
        yield t


@pytest.fixture
def session(twin: XapiTwin) -> Iterator[Any]:
    with xapi_session(twin) as s:
        yield s


def fetch(req: urllib.request.Request) -> str:
    with urllib.request.urlopen(req) as resp:
        return resp.read().decode()


def put(twin: XapiTwin, path: str, body: bytes, headers: dict[str, str] | None = None) -> int:
    parts = urlsplit(twin.url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port)
    # XAPI answers before reading and closes on a bad body: the answer is there all the same
    with contextlib.suppress(OSError):
        conn.request("PUT", path, body=body, headers=headers or {})
    status = conn.getresponse().status
    conn.close()
    return status


def import_bytes(twin: XapiTwin, session: Any, data: bytes) -> tuple[str, str]:
    x = session.xenapi
    task = x.task.create("import", "")
    assert x.task.get_status(task) == "pending"
    q = urlencode({"session_id": session.handle, "task_id": task})
    assert put(twin, f"/import?{q}", data, {"Content-Length": str(len(data))}) == 200
    return task, finished(session, task)


def test_envelope_and_bare_values_on_the_wire(twin: XapiTwin) -> None:
    login = (
        b"<?xml version='1.0'?><methodCall><methodName>session.login_with_password</methodName>"
        b"<params><param><value>root</value></param><param><value>twin-password</value></param>"
        b"</params></methodCall>"
    )
    raw = fetch(urllib.request.Request(twin.url, data=login))
    assert "<name>Status</name><value>Success</value>" in raw
    ref = re.search(r"<name>Value</name><value>(OpaqueRef:[^<]+)</value>", raw)
    assert ref and REF.match(ref.group(1))
    host = next(iter(twin.db.objects["host"]))
    call = (
        "<?xml version='1.0'?><methodCall><methodName>host.compute_free_memory</methodName>"
        f"<params><param><value>{ref.group(1)}</value></param>"
        f"<param><value>{host}</value></param></params></methodCall>"
    ).encode()
    raw = fetch(urllib.request.Request(twin.url, data=call))
    assert f"<name>Value</name><value>{64 << 30}</value>" in raw  # int64 as a bare string


def test_errors_as_xapi_sends_them(twin: XapiTwin, session: Any) -> None:
    x = session.xenapi
    other = XenAPI.Session(twin.url)
    with pytest.raises(XenAPI.Failure) as e:
        other.xenapi.login_with_password("root", "nope", "2.21", "t")
    other("close")()
    assert e.value.details == ["SESSION_AUTHENTICATION_FAILED", "root", "Authentication failure"]
    with pytest.raises(XenAPI.Failure) as e:
        x.VM.get_record("OpaqueRef:NULL")
    assert e.value.details == ["HANDLE_INVALID", "VM", "OpaqueRef:NULL"]
    with pytest.raises(XenAPI.Failure) as e:
        x.VM.frobnicate("x")
    assert e.value.details == ["MESSAGE_METHOD_UNKNOWN", "VM.frobnicate"]
    with pytest.raises(XenAPI.Failure) as e:
        x.VM.start("x")
    assert e.value.details == ["MESSAGE_PARAMETER_COUNT_MISMATCH", "VM.start", "3", "1"]
    pool = x.pool.get_all()[0]
    assert REF.match(pool) and REF.match(x.pool.get_default_SR(pool))
    assert isinstance(x.host.compute_free_memory(x.host.get_all()[0]), str)


def test_import_task_lifecycle_template_flag_and_power_rules(
    twin: XapiTwin, session: Any, tmp_path: Path
) -> None:
    x = session.xenapi
    task, status = import_bytes(twin, session, small_xva(tmp_path / "t.xva").read_bytes())
    assert status == "success"
    result = x.task.get_result(task)
    assert re.fullmatch(
        r"<value><array><data><value>OpaqueRef:[0-9a-f-]+</value></data></array></value>", result
    )
    vm = re.search(r"OpaqueRef:[0-9a-f-]+", result).group(0)  # type: ignore[union-attr]
    x.task.destroy(task)
    assert x.VM.get_other_config(vm)["import_task"] == task
    assert x.VM.get_is_a_template(vm) is True
    with pytest.raises(XenAPI.Failure) as e:
        x.VM.start(vm, False, False)
    assert e.value.details == ["VM_IS_TEMPLATE", vm]
    x.VM.set_is_a_template(vm, False)
    x.VM.start(vm, False, False)
    with pytest.raises(XenAPI.Failure) as e:
        x.VM.start(vm, False, False)
    assert e.value.details == ["VM_BAD_POWER_STATE", vm, "halted", "running"]
    with pytest.raises(XenAPI.Failure) as e:
        x.VM.destroy(vm)
    assert e.value.details[0] == "VM_BAD_POWER_STATE"
    vdis = [x.VBD.get_VDI(v) for v in x.VM.get_VBDs(vm)]
    x.VM.hard_shutdown(vm)
    x.VM.destroy(vm)
    assert [x.VDI.get_uuid(v) for v in vdis]  # VM.destroy leaves the disks, as XAPI does
    for v in vdis:
        x.VDI.destroy(v)
    assert twin.empty()


def test_guest_metrics_report_tools_only_when_told(
    twin: XapiTwin, session: Any, tmp_path: Path
) -> None:
    x = session.xenapi
    xva = small_xva(tmp_path / "t.xva", template=False).read_bytes()
    for tools in (False, True):
        twin.guest.tools = tools
        twin.guest.ip = "10.0.0.7"
        task, _ = import_bytes(twin, session, xva)
        vm = re.search(r"OpaqueRef:[0-9a-f-]+", x.task.get_result(task)).group(0)  # type: ignore[union-attr]
        assert x.VM.get_guest_metrics(vm) == "OpaqueRef:NULL"
        x.VM.start(vm, False, False)
        gm = x.VM_guest_metrics.get_record(x.VM.get_guest_metrics(vm))
        assert gm["networks"] == {"0/ip": "10.0.0.7", "0/ipv4/0": "10.0.0.7"}
        if tools:
            assert gm["PV_drivers_version"]["major"] == "8" and gm["os_version"]["distro"]
        else:
            assert gm["PV_drivers_version"] == {} and gm["os_version"] == {}


def test_import_verifies_checksums_and_order(twin: XapiTwin, session: Any, tmp_path: Path) -> None:
    x = session.xenapi
    members = tar_members(small_xva(tmp_path / "t.xva"))
    # a chunk whose data does not match its .xxhash
    bad = list(members)
    bad[1] = (bad[1][0], b"\x00" + bad[1][1][1:])
    task, status = import_bytes(twin, session, tar_bytes(bad))
    assert status == "failure"
    info = x.task.get_error_info(task)
    assert info[0] == "IMPORT_ERROR" and "Block Ref:3/00000000 checksum failed" in info[1]
    assert not twin.inventory()["VM"] and not twin.inventory()["VDI"]
    # ova.xml not first
    task, status = import_bytes(twin, session, tar_bytes([members[1], members[0], *members[2:]]))
    assert x.task.get_error_info(task)[0] == "IMPORT_ERROR_UNEXPECTED_FILE"
    # SHA-1 .checksum members, as older exports have, are accepted
    sha = [
        (
            n[: -len(".xxhash")] + ".checksum",
            hashlib.sha1(dict(members)[n[:-7]]).hexdigest().encode(),
        )
        if n.endswith(".xxhash")
        else (n, d)
        for n, d in members
    ]
    _, status = import_bytes(twin, session, tar_bytes(sha))
    assert status == "success"


def test_chunked_upload_is_refused(twin: XapiTwin, session: Any, tmp_path: Path) -> None:
    x = session.xenapi
    task = x.task.create("import", "")
    q = urlencode({"session_id": session.handle, "task_id": task})
    parts = urlsplit(twin.url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port)
    conn.putrequest("PUT", f"/import?{q}")
    conn.putheader("Transfer-Encoding", "chunked")
    conn.endheaders()  # refused on the headers alone, before any body
    assert conn.getresponse().status == 403
    conn.close()
    assert x.task.get_error_info(task) == ["IMPORT_ERROR_CANNOT_HANDLE_CHUNKED"]
    assert put(twin, "/import?session_id=OpaqueRef:bogus", b"x", {"Content-Length": "1"}) == 403


def test_standalone_twin_prints_url_and_takes_config(tmp_path: Path) -> None:
    with subprocess.Popen(
        [sys.executable, "-m", "tests.twins.xapi", "--port", "0", "--guest", '{"tools": true}'],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        text=True,
    ) as proc:
        try:
            assert proc.stdout is not None
            url = proc.stdout.readline().strip()
            assert re.fullmatch(r"http://127\.0\.0\.1:\d+", url)
            req = urllib.request.Request(
                url + "/_twin/config", data=json.dumps({"faults": {"login_failures": 1}}).encode()
            )
            assert json.loads(fetch(req)) == {}
            s = XenAPI.Session(url)
            with pytest.raises(XenAPI.Failure):
                s.xenapi.login_with_password("root", "twin-password", "2.21", "t")
            s.xenapi.login_with_password("root", "twin-password", "2.21", "t")
            state = json.loads(fetch(urllib.request.Request(url + "/_twin/state")))
            assert state["guest"]["tools"] is True and state["faults"]["login_failures"] == 0
            s.xenapi.logout()
            s("close")()
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    assert proc.returncode == 0
