"""The twin refuses what a real pool refuses, the way it refuses it, and the harness copes:

- an `ova.xml` record without a field XAPI requires (the old writer's 4-field SR record);
- an export from a newer xapi than the pool's (the old writer's `xapi_major` 24 on 8.2);
- a bad body: `200 OK` and the task id before the body is read, then a closed connection (the
  old client called that an interrupted upload and sent the XVA five times);
- an SR another host owns: `302 Found` to that host before any body is read (the old client
  took the 302 for success and then waited out the task).

Each case has the twin's own behaviour on the wire, then the platform's answer to it."""

from __future__ import annotations

import contextlib
import http.client
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import xxhash

from core.errors import ImageDefect
from diskformats.xva import ovaxml
from diskformats.xva.writer import raw_to_xva
from platforms.xcpng import XcpngPlatform
from platforms.xcpng.client import RetryPolicy
from tests.twins.xapi import XapiTwin
from tests.twins.xapi.datamodel import REQUIRED_82, REQUIRED_83, XCPNG_82, XCPNG_83
from tests.twins.xapi.helpers import (
    build_of,
    finished,
    small_xva,
    spec,
    ssh_banner_endpoint,
    tar_bytes,
    tar_members,
    twin_settings,
    xapi_session,
)
from tests.twins.xapi.wire import value

MiB = 1 << 20
FAST = RetryPolicy(attempts=4, max_delay=10, wait_min=0.01, wait_max=0.05)
OLD_SR = {"uuid": "5f7c2e0c-1d5a-4d0e-9a57-3f1f0d2b7a11", "name_label": "", "content_type": ""}


@pytest.fixture(params=["8.2", "8.3"])
def twin(request: pytest.FixtureRequest) -> Iterator[XapiTwin]:
    with XapiTwin(release=request.param) as t:
        t.guest.tools = True
        yield t


@pytest.fixture
def session(twin: XapiTwin) -> Iterator[Any]:
    with xapi_session(twin) as s:
        yield s


def _edit(xva: Path, change: Any, out: Path | None = None) -> bytes:
    """The XVA with its ova.xml header passed through `change(header)`."""
    members = tar_members(xva)
    header = ovaxml.parse(members[0][1])
    change(header)
    data = tar_bytes([("ova.xml", value(header).encode()), *members[1:]])
    if out is not None:
        out.write_bytes(data)
    return data


def _record(header: dict[str, Any], cls: str) -> dict[str, Any]:
    return next(o["snapshot"] for o in header["objects"] if o["class"] == cls)


def _import(twin: XapiTwin, session: Any, data: bytes) -> list[str]:
    """PUT /import of `data`; the task's error info ([] on success)."""
    x = session.xenapi
    before = set(twin.inventory()["VDI"])
    task = x.task.create("import", "")
    q = urlencode({"session_id": session.handle, "task_id": task})
    parts = urlsplit(twin.url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port)
    with contextlib.suppress(OSError):
        conn.request("PUT", f"/import?{q}", body=data)
    assert conn.getresponse().status == 200
    conn.close()
    info = x.task.get_error_info(task) if finished(session, task) == "failure" else []
    if info:
        assert set(twin.inventory()["VDI"]) == before, "a refused import leaves nothing"
    return list(info)


# -- required fields ----------------------------------------------------------------------------
def test_the_writer_holds_every_field_both_releases_require(tmp_path: Path) -> None:
    header = ovaxml.parse(tar_members(small_xva(tmp_path / "t.xva"))[0][1])
    for o in header["objects"]:
        for name in REQUIRED_82.get(o["class"], ()):
            assert name in o["snapshot"], f"{o['class']}.{name}"
    assert set(REQUIRED_83["VM"]) < set(REQUIRED_82["VM"])  # 8.2 is the stricter


def test_the_old_four_field_sr_record_is_refused(
    twin: XapiTwin, session: Any, tmp_path: Path
) -> None:
    xva = small_xva(tmp_path / "t.xva")
    assert _import(twin, session, xva.read_bytes()) == []

    def old_sr(header: dict[str, Any]) -> None:
        sr = next(o for o in header["objects"] if o["class"] == "SR")
        sr["snapshot"] = {**OLD_SR, "VDIs": sr["snapshot"]["VDIs"]}

    info = _import(twin, session, _edit(xva, old_sr))
    assert info[0] == "IMPORT_ERROR"
    assert "Field virtual_allocation not present in rpc" in info[1]


@pytest.mark.parametrize(
    ("cls", "field"),
    [
        ("SR", "physical_size"),
        ("SR", "shared"),
        ("SR", "other_config"),
        ("VDI", "missing"),
        ("VBD", "qos_supported_algorithms"),
        ("VM", "recommendations"),
        ("VM", "HVM_boot_params"),
    ],
)
def test_a_record_missing_a_required_field_is_refused_naming_it(
    twin: XapiTwin, session: Any, tmp_path: Path, cls: str, field: str
) -> None:
    xva = small_xva(tmp_path / "t.xva")
    info = _import(twin, session, _edit(xva, lambda h: _record(h, cls).pop(field)))
    assert info == [
        "IMPORT_ERROR",
        f'INTERNAL_ERROR: [ Failure("Field {field} not present in rpc") ]',
    ]


def test_fields_only_82_requires(twin: XapiTwin, session: Any, tmp_path: Path) -> None:
    xva = small_xva(tmp_path / "t.xva")
    info = _import(twin, session, _edit(xva, lambda h: _record(h, "VM").pop("last_boot_CPU_flags")))
    if twin.release is XCPNG_82:
        assert "Field last_boot_CPU_flags not present" in info[1]
    else:
        assert info == []


def test_a_vdi_whose_sr_is_not_in_the_export_is_refused(
    twin: XapiTwin, session: Any, tmp_path: Path
) -> None:
    xva = small_xva(tmp_path / "t.xva")

    def drop_sr(header: dict[str, Any]) -> None:
        header["objects"] = [o for o in header["objects"] if o["class"] != "SR"]

    assert _import(twin, session, _edit(xva, drop_sr)) == [
        "IMPORT_ERROR_FAILED_TO_FIND_OBJECT",
        "Ref:1",
    ]


# -- versions -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("version", "accepted_by"),
    [
        ((1, 20), {"8.2", "8.3"}),  # what the writer writes: both import it
        ((1, 21), {"8.3"}),  # a newer 1.x: 8.2 refuses
        ((24, 0), {"8.3"}),  # the old writer's value: 8.2 refuses
        ((24, 19), {"8.3"}),
        ((24, 20), set()),  # newer than the 8.3 pool itself
        ((26, 1), set()),
    ],
)
def test_a_newer_export_version_is_refused(
    twin: XapiTwin, session: Any, tmp_path: Path, version: tuple[int, int], accepted_by: set[str]
) -> None:
    def stamp(header: dict[str, Any]) -> None:
        header["version"]["xapi_major"], header["version"]["xapi_minor"] = version

    info = _import(twin, session, _edit(small_xva(tmp_path / "t.xva"), stamp))
    accepted = twin.release.name in accepted_by
    assert info == ([] if accepted else ["IMPORT_INCOMPATIBLE_VERSION"])
    assert XCPNG_83.accepts(ovaxml.XAPI_VERSION) and XCPNG_82.accepts(ovaxml.XAPI_VERSION)


def test_a_header_without_a_version_field_is_refused(
    twin: XapiTwin, session: Any, tmp_path: Path
) -> None:
    xva = small_xva(tmp_path / "t.xva")
    info = _import(twin, session, _edit(xva, lambda h: h["version"].pop("build_number")))
    assert "Field build_number not present" in info[1]


# -- a bad body: 200 first, then a closed connection ---------------------------------------------
def _big_bad_xva(path: Path) -> Path:
    """An XVA with 48 MiB of data whose ova.xml the pool refuses (the old 4-field SR record):
    larger than any socket buffer, so the sender is still sending when the pool gives up."""
    raw = path.with_suffix(".raw")
    with raw.open("wb") as fh:
        for _ in range(48):
            fh.write(os.urandom(1 << 20))
    raw_to_xva(raw, path, "debian12", template=True)
    raw.unlink()

    def old_sr(header: dict[str, Any]) -> None:
        sr = next(o for o in header["objects"] if o["class"] == "SR")
        sr["snapshot"] = {**OLD_SR, "VDIs": sr["snapshot"]["VDIs"]}

    _edit(path, old_sr, out=path)
    return path


def test_bad_body_is_answered_200_with_the_task_then_the_connection_closes(
    twin: XapiTwin, session: Any, tmp_path: Path
) -> None:
    xva = _big_bad_xva(tmp_path / "bad.xva")
    x = session.xenapi
    task = x.task.create("import", "")
    q = urlencode({"session_id": session.handle, "task_id": task})
    parts = urlsplit(twin.url)
    sock = socket.create_connection((parts.hostname or "", parts.port or 80), timeout=30)
    sock.sendall(
        f"PUT /import?{q} HTTP/1.1\r\nHost: x\r\nContent-Length: {xva.stat().st_size}\r\n\r\n".encode()
    )
    # the answer comes before a single byte of the body was sent
    head = sock.recv(4096).decode()
    assert head.startswith("HTTP/1.1 200 OK\r\n"), head
    assert f"task-id: {task}\r\n" in head and "Connection: close\r\n" in head
    sent = 0
    with pytest.raises(OSError), xva.open("rb") as fh:  # EPIPE or ECONNRESET
        while piece := fh.read(1 << 20):
            sock.sendall(piece)
            sent += len(piece)
    sock.close()
    assert sent < xva.stat().st_size
    assert x.task.get_status(task) == "failure"
    assert x.task.get_error_info(task)[0] == "IMPORT_ERROR"
    assert not twin.inventory()["VM"]


def test_platform_reports_a_refused_xva_as_an_image_defect_after_one_upload(
    twin: XapiTwin, tmp_path: Path
) -> None:
    xva = _big_bad_xva(tmp_path / "debian12.xva")
    s = twin_settings(twin, tmp_path / "artifacts")
    with ssh_banner_endpoint() as (_, port):
        p = XcpngPlatform(s, "runS", policy=FAST, ip_poll=0.05, ssh_port=port, login_check=False)
        with (
            pytest.raises(ImageDefect, match=r"Field virtual_allocation not present in rpc"),
            p.boot(spec(), build_of(xva), tmp_path / "work"),
        ):
            pass
    assert len([r for r in twin.requests if r.startswith("PUT /import?")]) == 1  # never resent
    assert twin.empty(), twin.inventory()


# -- an SR on another host: 302 before the body ---------------------------------------------------
def test_sr_on_another_host_is_answered_302_to_that_host(
    twin: XapiTwin, session: Any, tmp_path: Path
) -> None:
    host, sr = twin.add_member()
    address = twin.db.get("host", host)["address"]
    x = session.xenapi
    task = x.task.create("import", "")
    q = urlencode({"session_id": session.handle, "task_id": task, "sr_id": sr})
    parts = urlsplit(twin.url)
    sock = socket.create_connection((parts.hostname or "", parts.port or 80), timeout=30)
    sock.sendall(f"PUT /import?{q} HTTP/1.1\r\nHost: x\r\nContent-Length: 99999\r\n\r\n".encode())
    resp = http.client.HTTPResponse(sock)
    resp.begin()
    assert resp.status == 302
    location = urlsplit(resp.getheader("Location") or "")
    assert location.netloc == address and location.path == "/import"
    assert parse_qs(location.query) == parse_qs(q)  # the query kept (session, task, SR)
    assert resp.getheader("Connection") == "close"
    assert resp.read() == b"" and sock.recv(1) == b""  # closed, no body was wanted
    sock.close()
    assert x.task.get_status(task) == "pending"  # the redirect did not touch the task
    # the member takes the same request
    data = small_xva(tmp_path / "t.xva").read_bytes()
    member = http.client.HTTPConnection(*address.split(":"))
    member.request("PUT", f"/import?{q}", body=data)
    assert member.getresponse().status == 200
    member.close()
    assert finished(session, task) == "success"
    (vdi,) = twin.inventory()["VDI"].values()
    assert vdi["SR"] == sr


def test_platform_follows_the_redirect_for_the_import_and_the_seed(
    twin: XapiTwin, tmp_path: Path
) -> None:
    host, sr = twin.add_member()
    address = twin.db.get("host", host)["address"]
    xva = small_xva(tmp_path / "debian12.xva")
    s = twin_settings(twin, tmp_path / "artifacts", xcpng_sr="Local storage of xcp-twin-2")
    with ssh_banner_endpoint() as (_, port):
        p = XcpngPlatform(s, "runR", policy=FAST, ip_poll=0.05, ssh_port=port, login_check=False)
        with p.boot(spec(), build_of(xva), tmp_path / "work"):
            vdis = twin.inventory()["VDI"].values()
            assert len(vdis) == 2 and all(v["SR"] == sr for v in vdis)  # system disk and seed
    puts = [r.split("?")[0] for r in twin.requests if r.startswith("PUT ")]
    # each upload went to the master, was redirected, and went to the member once
    assert puts == ["PUT /import", "PUT /import", "PUT /import_raw_vdi", "PUT /import_raw_vdi"]
    assert address.startswith("127.0.0.1:")
    assert twin.empty(), twin.inventory()


def test_a_redirect_to_a_host_outside_the_pool_is_refused(tmp_path: Path) -> None:
    from platforms.xcpng.client import UploadInterrupted
    from platforms.xcpng.transfer import _follow

    with XapiTwin() as twin:
        s = twin_settings(twin, tmp_path / "artifacts")
        from platforms.xcpng.platform import connect

        xapi = connect(s.xcpng, FAST)
        try:
            with pytest.raises(UploadInterrupted, match=r"not one of its hosts"):
                _follow(xapi, twin.url, "http://203.0.113.9/import?x=1", "import t")
            with pytest.raises(UploadInterrupted, match=r"from https to http"):
                _follow(xapi, "https://127.0.0.1", "http://127.0.0.1/import?x=1", "import t")
            assert _follow(xapi, twin.url, "http://127.0.0.1/import?x=1", "t") == "http://127.0.0.1"
        finally:
            xapi.logout()


# -- a disk whose size is not a multiple of 512 ----------------------------------------------


def test_a_last_chunk_shorter_than_its_padding_is_refused_as_xapi_reads_it(
    twin: XapiTwin, session: Any, tmp_path: Path
) -> None:
    """stream_vdi.ml reads the checksum member's header right after a chunk's data and skips
    the chunk's tar padding only afterwards: a chunk whose length is not a multiple of 512
    puts padding where a header must be, and the import fails (the writer refuses such disks:
    test_xva_format.py). The same disk padded to 512 imports."""
    for size, refused in ((MiB + 100, True), (MiB + 512, False)):
        data = [os.urandom(MiB), os.urandom(size - MiB)]
        members = [("ova.xml", ovaxml.build("odd", size))]
        for n, chunk in enumerate(data):
            digest = xxhash.xxh64(chunk).hexdigest().upper().encode()
            members += [(f"Ref:3/{n:08d}", chunk), (f"Ref:3/{n:08d}.xxhash", digest)]
        info = _import(twin, session, tar_bytes(members))
        if refused:
            assert info[:1] == ["IMPORT_ERROR"] and "Checksum_mismatch" in info[1], info
        else:
            assert info == []
    assert len(twin.inventory()["VM"]) == 1  # the refused import left nothing
