"""A boot interrupted the way a cancelled GitHub Actions job interrupts it (SIGINT, then SIGTERM
7.5 s later), mid-import, or killed outright: the twin ends empty, or the ledger is complete
enough for `xcpng-golden pool cleanup` to empty it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from core.waiting import wait_for
from platforms.xcpng.ledger import Ledger
from tests.twins.xapi import XapiTwin
from tests.twins.xapi.helpers import small_xva, ssh_banner_endpoint, twin_env

ROOT = Path(__file__).resolve().parents[2]
GITHUB_SIGTERM_AFTER = 7.5  # seconds between the runner's SIGINT and SIGTERM


@pytest.fixture
def twin() -> Iterator[XapiTwin]:
    with XapiTwin() as t:
        yield t


def start_child(twin: XapiTwin, tmp_path: Path, xva: Path, **env: str) -> subprocess.Popen[str]:
    full_env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        **twin_env(twin, tmp_path / "artifacts", TEMPLATE_BOOT_TIMEOUT="120s", **env),
    }
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.twins.xapi.boot_child",
            str(xva),
            str(tmp_path / "w"),
            "sig1",
        ],
        cwd=ROOT,
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_until(cond: Callable[[], bool], timeout: float, what: str) -> None:
    wait_for(cond, what=what, timeout=timeout, interval=0.05)


def running_vm(twin: XapiTwin) -> bool:
    return any(v["power_state"] == "Running" for v in twin.inventory()["VM"].values())


def test_sigint_then_sigterm_during_boot_leaves_the_twin_empty(
    twin: XapiTwin, tmp_path: Path
) -> None:
    twin.guest.ip_never = True  # the child sits in "waiting for an IP"
    twin.faults.method_delay = {"VM.destroy": GITHUB_SIGTERM_AFTER + 1.5}  # SIGTERM hits teardown
    child = start_child(twin, tmp_path, small_xva(tmp_path / "d.xva"))
    try:
        wait_until(lambda: running_vm(twin), 30, "the VM to run")
        child.send_signal(signal.SIGINT)
        time.sleep(GITHUB_SIGTERM_AFTER)
        assert child.poll() is None, "teardown should still be running (VM.destroy is slow)"
        assert "VM.destroy" in twin.calls
        child.send_signal(signal.SIGTERM)
        out, err = child.communicate(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == 130, err
    assert "interrupted, teardown done" in out
    assert twin.empty(), twin.inventory()
    assert Ledger.open_entries(tmp_path / "artifacts" / "xcpng-ledger.jsonl") == []
    assert twin.password not in out + err


def test_sigint_mid_import_leaves_the_twin_empty(twin: XapiTwin, tmp_path: Path) -> None:
    raw = tmp_path / "dense.raw"
    raw.write_bytes(os.urandom(24 << 20))
    from diskformats.xva.writer import raw_to_xva

    raw_to_xva(raw, tmp_path / "dense.xva", "dense")
    twin.faults.import_delay = 0.25  # a chunk every 250 ms: the upload lasts ~6 s
    child = start_child(twin, tmp_path, tmp_path / "dense.xva")
    try:
        wait_until(lambda: bool(twin.inventory()["VDI"]), 30, "the import to create its disk")
        time.sleep(0.5)
        child.send_signal(signal.SIGINT)
        _out, err = child.communicate(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == 130, err
    wait_until(twin.empty, 15, f"the twin to be empty: {twin.inventory()}")
    assert Ledger.open_entries(tmp_path / "artifacts" / "xcpng-ledger.jsonl") == []


def test_killed_outright_then_cleanup_command_empties_the_twin(
    twin: XapiTwin, tmp_path: Path
) -> None:
    twin.guest.ip_never = True
    child = start_child(twin, tmp_path, small_xva(tmp_path / "d.xva"))
    wait_until(lambda: running_vm(twin), 30, "the VM to run")
    child.kill()
    child.communicate(timeout=10)
    inv = twin.inventory()
    assert len(inv["VM"]) == 1 and len(inv["VDI"]) == 2  # what a SIGKILL leaves
    ledger = tmp_path / "artifacts" / "xcpng-ledger.jsonl"
    assert {e.kind for e in Ledger.open_entries(ledger, "sig1")} == {"vm", "vdi"}

    env = {**os.environ, "PYTHONPATH": str(ROOT), **twin_env(twin, tmp_path / "artifacts")}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "xcpng_golden", "pool", "cleanup", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    dry = run("--run-id", "sig1", "--dry-run")
    assert dry.returncode == 0 and "would remove VM golden-debian12-sig1-" in dry.stdout
    assert len(twin.inventory()["VM"]) == 1
    other = run("--run-id", "someone-else")
    assert other.returncode == 0 and "nothing to remove" in other.stdout
    done = run("--run-id", "sig1")
    assert done.returncode == 0, done.stderr
    assert "VM golden-debian12-sig1-" in done.stdout
    assert twin.empty(), twin.inventory()
    assert Ledger.open_entries(ledger, "sig1") == []
    assert twin.password not in done.stdout + done.stderr + dry.stdout + dry.stderr
    bad = run("--older-than", "soon")
    assert bad.returncode == 2 and "not a duration" in bad.stderr


def test_ssh_endpoint_unused(tmp_path: Path) -> None:
    """The banner endpoint helper itself: a TCP peer that speaks first, like sshd."""
    from platforms.xcpng.guest import ssh_banner

    with ssh_banner_endpoint() as (host, port):
        assert ssh_banner(host, port).startswith("SSH-2.0-OpenSSH_9.2p1")
