"""One test per fault the twin injects: the platform retries what is transient, fails cleanly
(one message naming the cause) on what is not, and the twin holds no VM or VDI afterwards."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.errors import ImageDefect, InfrastructureError
from platforms.xcpng import XcpngPlatform
from platforms.xcpng.client import RetryPolicy
from platforms.xcpng.ledger import Ledger
from tests.twins.xapi import XapiTwin
from tests.twins.xapi.helpers import (
    build_of,
    free_port,
    small_xva,
    spec,
    ssh_banner_endpoint,
    twin_settings,
)

FAST = RetryPolicy(attempts=4, max_delay=10, wait_min=0.01, wait_max=0.05)


@pytest.fixture
def twin() -> Iterator[XapiTwin]:
    with XapiTwin() as t:
        t.guest.tools = True
        yield t


@pytest.fixture
def ssh_port() -> Iterator[int]:
    with ssh_banner_endpoint() as (_, port):
        yield port


@pytest.fixture
def xva(tmp_path: Path) -> Path:
    return small_xva(tmp_path / "debian12.xva")


def boot(twin: XapiTwin, tmp_path: Path, xva: Path, port: int, **settings: str) -> dict:
    s = twin_settings(twin, tmp_path / "artifacts", **settings)
    p = XcpngPlatform(s, "runF", policy=FAST, ip_poll=0.05, ssh_port=port, login_check=False)
    with p.boot(spec(), build_of(xva), tmp_path / "work") as vm:
        return {"vm": vm, "inventory": twin.inventory(), "ledger": p.ledger.path}


def assert_clean(twin: XapiTwin, tmp_path: Path) -> None:
    assert twin.empty(), twin.inventory()
    assert twin.inventory()["session"] == []
    assert Ledger.open_entries(tmp_path / "artifacts" / "xcpng-ledger.jsonl") == []


def test_failed_login_is_a_clean_failure_never_retried(
    twin: XapiTwin, tmp_path: Path, xva: Path, ssh_port: int
) -> None:
    twin.faults.login_failures = 1
    with pytest.raises(InfrastructureError, match=r"refused.*XCPNG_USERNAME and XCPNG_PASSWORD"):
        boot(twin, tmp_path, xva, ssh_port)
    assert twin.calls == ["session.login_with_password"]
    assert_clean(twin, tmp_path)


def test_connection_dropped_mid_import_is_retried(
    twin: XapiTwin, tmp_path: Path, xva: Path, ssh_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    twin.faults.drop_import_after = 2 << 20  # inside the disk's data
    twin.faults.drop_import_count = 1
    result = boot(twin, tmp_path, xva, ssh_port)
    assert len(result["inventory"]["VM"]) == 1
    imports = [r for r in twin.requests if r.startswith("PUT /import?")]
    assert len(imports) == 2  # the dropped one and the retry
    assert "transient fault" in caplog.text and "connection lost" in caplog.text
    assert_clean(twin, tmp_path)


def test_connection_dropped_every_time_gives_up_cleanly(
    twin: XapiTwin, tmp_path: Path, xva: Path, ssh_port: int
) -> None:
    twin.faults.drop_import_after = 1 << 20
    twin.faults.drop_import_count = 99
    with pytest.raises(InfrastructureError, match=r"import of debian12\.xva failed after retries"):
        boot(twin, tmp_path, xva, ssh_port)
    assert len([r for r in twin.requests if r.startswith("PUT /import?")]) == FAST.attempts
    assert_clean(twin, tmp_path)


def test_failed_task_is_a_clean_failure(
    twin: XapiTwin, tmp_path: Path, xva: Path, ssh_port: int
) -> None:
    twin.faults.fail_tasks = 1
    with pytest.raises(InfrastructureError, match=r"SR_BACKEND_FAILURE_44.*insufficient space"):
        boot(twin, tmp_path, xva, ssh_port)
    assert len([r for r in twin.requests if r.startswith("PUT /import?")]) == 1  # not transient
    assert_clean(twin, tmp_path)


def test_corrupt_xva_is_an_image_defect_naming_the_chunk(
    twin: XapiTwin, tmp_path: Path, xva: Path, ssh_port: int
) -> None:
    data = bytearray(xva.read_bytes())
    data[data.index(b"Ref:3/00000000.xxhash") - 2000] ^= 1  # inside chunk 0's data
    xva.write_bytes(bytes(data))
    with pytest.raises(ImageDefect, match=r"IMPORT_ERROR Block Ref:3/00000000 checksum failed"):
        boot(twin, tmp_path, xva, ssh_port)
    assert_clean(twin, tmp_path)


def test_vm_bad_power_state_is_a_clean_failure(
    twin: XapiTwin, tmp_path: Path, xva: Path, ssh_port: int
) -> None:
    twin.faults.bad_power_state = 1
    with pytest.raises(
        InfrastructureError, match=r"VM.start failed: VM_BAD_POWER_STATE \S+ halted suspended"
    ):
        boot(twin, tmp_path, xva, ssh_port)
    assert_clean(twin, tmp_path)


def test_ip_late_and_link_local_first(
    twin: XapiTwin, tmp_path: Path, xva: Path, ssh_port: int
) -> None:
    twin.guest.ip_delay = 0.6
    twin.guest.link_local_first = True
    result = boot(twin, tmp_path, xva, ssh_port)
    assert result["vm"].address == "127.0.0.1"  # never 169.254.10.20
    polls = twin.calls.count("VM_guest_metrics.get_networks")
    assert polls >= 3  # it kept waiting through the link-local phase
    assert_clean(twin, tmp_path)


def test_ip_never_blames_the_guest_tools(
    twin: XapiTwin, tmp_path: Path, xva: Path, ssh_port: int
) -> None:
    twin.guest.ip_never = True
    with pytest.raises(ImageDefect) as err:
        boot(twin, tmp_path, xva, ssh_port, boot_timeout="1s")
    msg = str(err.value)
    assert "no guest metrics after 1s" in msg and "guest tools" in msg
    assert "xe-guest-utilities or xen-guest-agent" in msg
    assert_clean(twin, tmp_path)


def test_only_link_local_blames_dhcp(
    twin: XapiTwin, tmp_path: Path, xva: Path, ssh_port: int
) -> None:
    twin.guest.link_local_first = True
    twin.guest.ip_delay = 30  # the real address comes too late
    with pytest.raises(InfrastructureError, match=r"169.254.10.20.*DHCP.*XCPNG_NETWORK"):
        boot(twin, tmp_path, xva, ssh_port, boot_timeout="1s")
    assert_clean(twin, tmp_path)


def test_session_invalid_mid_run_is_recovered(
    twin: XapiTwin, tmp_path: Path, xva: Path, ssh_port: int
) -> None:
    twin.faults.invalidate_sessions_after = 8  # after a few calls: past the import, before start
    result = boot(twin, tmp_path, xva, ssh_port)
    assert len(result["inventory"]["VM"]) == 1
    assert twin.calls.count("session.login_with_password") == 2  # XenAPI logged in again
    assert_clean(twin, tmp_path)


def test_session_expired_before_the_upload_is_recovered(
    twin: XapiTwin, tmp_path: Path, xva: Path, ssh_port: int
) -> None:
    twin.faults.expire_sessions_on_upload = 1  # the session dies just as the upload starts
    result = boot(twin, tmp_path, xva, ssh_port)
    assert len(result["inventory"]["VM"]) == 1
    puts = [r for r in twin.requests if r.startswith("PUT /import?")]
    assert len(puts) == 2 and puts[0] != puts[1]  # refused (403), then sent with a new session
    assert twin.calls.count("session.login_with_password") == 2
    assert_clean(twin, tmp_path)


def test_http_503_is_retried(
    twin: XapiTwin, tmp_path: Path, xva: Path, ssh_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="platforms.xcpng")
    twin.faults.http_503 = 2
    result = boot(twin, tmp_path, xva, ssh_port)
    assert len(result["inventory"]["VM"]) == 1
    assert caplog.text.count("HTTP 503") == 2
    assert_clean(twin, tmp_path)


def test_ssh_never_up_is_an_image_defect(twin: XapiTwin, tmp_path: Path, xva: Path) -> None:
    with pytest.raises(ImageDefect, match=r"SSH on 127.0.0.1:\d+ not up after 1s"):
        boot(twin, tmp_path, xva, free_port(), boot_timeout="1s")
    assert_clean(twin, tmp_path)


# -- a lost XAPI task: a known infrastructure flake, retried once (issue 23, finding 5) -------


def test_an_import_whose_task_is_lost_is_retried_once(
    twin: XapiTwin, tmp_path: Path, xva: Path, ssh_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    """The toolstack restarts mid-import: the task is gone (HANDLE_INVALID) and the VM it had
    imported stays. The import is undone and sent once more; it passes."""
    twin.faults.lose_import_tasks = 1
    caplog.set_level(logging.WARNING, logger="platforms.xcpng")
    result = boot(twin, tmp_path, xva, ssh_port)
    assert len(result["inventory"]["VM"]) == 1  # the half-imported VM of the lost task is gone
    assert [r for r in twin.requests if r.startswith("PUT /import?")].__len__() == 2
    assert "lost its task" in caplog.text and "once more" in caplog.text
    assert_clean(twin, tmp_path)


def test_a_task_lost_twice_is_infrastructure_and_leaves_nothing(
    twin: XapiTwin, tmp_path: Path, xva: Path, ssh_port: int
) -> None:
    twin.faults.lose_import_tasks = 2
    with pytest.raises(InfrastructureError) as err:
        boot(twin, tmp_path, xva, ssh_port)
    assert "HANDLE_INVALID" in str(err.value) and "lost its task twice" in str(err.value)
    assert [r for r in twin.requests if r.startswith("PUT /import?")].__len__() == 2
    assert_clean(twin, tmp_path)


def test_a_refused_xva_is_never_retried(twin: XapiTwin, tmp_path: Path, ssh_port: int) -> None:
    """An image defect (the pool refuses the XVA) is sent once, whatever else is flaky."""
    twin.faults.lose_import_tasks = 1
    raw = tmp_path / "bad.raw"
    raw.write_bytes(b"not a disk".ljust(1 << 20, b"\0"))
    bad = tmp_path / "bad.xva"
    bad.write_bytes(b"\0" * 4096)  # not an XVA at all: the pool's gzip fails on it
    with pytest.raises(ImageDefect):
        boot(twin, tmp_path, bad, ssh_port)
    assert [r for r in twin.requests if r.startswith("PUT /import?")].__len__() == 1
    assert_clean(twin, tmp_path)
