"""Small parts of the XCP-ng platform, without a pool: which faults are retried, what is
redacted, which addresses count as an IP, how the ledger merges, how signals are held."""

from __future__ import annotations

import os
import signal
import ssl
import xmlrpc.client
from pathlib import Path

import pytest
import XenAPI

from core import signals
from platforms.xcpng.cleanup import _tag_matches
from platforms.xcpng.client import SessionRejected, UploadInterrupted, Xapi, is_transient
from platforms.xcpng.guest import usable_ip
from platforms.xcpng.ledger import KEY_CREATED, KEY_EXPIRES, KEY_RUN, Ledger
from xcpng_golden.main import main


@pytest.mark.parametrize(
    ("exc", "transient"),
    [
        (XenAPI.Failure(["SESSION_AUTHENTICATION_FAILED", "root", "x"]), False),
        (XenAPI.Failure(["VM_BAD_POWER_STATE", "r", "halted", "running"]), False),
        (XenAPI.Failure(["OTHER_OPERATION_IN_PROGRESS", "VM", "r"]), True),
        (XenAPI.Failure(["TOO_BUSY"]), True),
        (xmlrpc.client.ProtocolError("h/", 503, "Service Unavailable", {}), True),
        (xmlrpc.client.ProtocolError("h/", 404, "Not Found", {}), False),
        (ConnectionResetError(), True),
        (UploadInterrupted("cut"), True),
        (SessionRejected("403"), True),
        (ssl.SSLCertVerificationError("bad cert"), False),
        (ValueError("bug"), False),
    ],
)
def test_only_transient_faults_are_retried(exc: BaseException, transient: bool) -> None:
    assert is_transient(exc) is transient


def test_redaction_hides_password_and_every_session() -> None:
    x = Xapi("https://pool.example", "root", "s3cret-pw")
    x.redactor.add("OpaqueRef:aaaa-1111")
    text = x.redactor(
        "PUT /import?session_id=OpaqueRef%3Abbbb&task_id=t failed for OpaqueRef:aaaa-1111 "
        "with s3cret-pw"
    )
    assert "s3cret-pw" not in text and "aaaa-1111" not in text and "bbbb" not in text
    assert "task_id=t" in text


def test_url_must_be_a_pool_url() -> None:
    from core.errors import UsageError

    with pytest.raises(UsageError, match="https://<pool-master-address>"):
        Xapi("pool.example", "root", "pw")


@pytest.mark.parametrize(
    ("networks", "ip"),
    [
        ({"0/ip": "169.254.3.4"}, None),
        ({"0/ip": "169.254.3.4", "0/ipv4/1": "10.1.2.3"}, "10.1.2.3"),
        ({"0/ipv6/0": "fe80::1", "0/ipv6/1": "2001:db8::5"}, "2001:db8::5"),
        ({"0/ipv6/0": "2001:db8::5", "0/ipv4/0": "192.0.2.9"}, "192.0.2.9"),
        ({"0/ip": "not an ip", "1/ip": "0.0.0.0"}, None),
        ({}, None),
    ],
)
def test_usable_ip_ignores_link_local(networks: dict[str, str], ip: str | None) -> None:
    assert usable_ip(networks) == ip


def test_ledger_merges_lines_and_survives_a_torn_last_line(tmp_path: Path) -> None:
    path = tmp_path / "ledger.jsonl"
    a, b = Ledger(path, "run-a"), Ledger(path, "run-b")
    a.record("intent", "vm", "import:t1", task="t1", name="golden-x")
    a.record("created", "vm", "import:t1", ref="OpaqueRef:vm1")
    b.record("intent", "vdi", "seed:s", name="s")
    a.record("destroyed", "vm", "import:t1")
    with path.open("a") as fh:
        fh.write('{"key": "seed:s", "state": "destr')  # killed mid-write
    entries = Ledger.read(path)
    assert entries["import:t1"].state == "destroyed"
    assert entries["import:t1"].fields == {"task": "t1", "name": "golden-x", "ref": "OpaqueRef:vm1"}
    (open_entry,) = Ledger.open_entries(path)
    assert (open_entry.key, open_entry.run_id, open_entry.state) == ("seed:s", "run-b", "intent")
    assert Ledger.open_entries(path, "run-a") == []


def test_tag_selection() -> None:
    now = 1_000_000.0
    tags = {KEY_RUN: "r1", KEY_CREATED: str(now - 7200), KEY_EXPIRES: str(now - 60)}
    assert _tag_matches(tags, "r1", None, now) and not _tag_matches(tags, "r2", None, now)
    assert _tag_matches(tags, None, 3600, now) and not _tag_matches(tags, None, 3 * 3600, now)
    assert _tag_matches(tags, None, None, now)  # TTL passed
    assert not _tag_matches({**tags, KEY_EXPIRES: str(now + 60)}, None, None, now)
    assert not _tag_matches({"other": "x"}, None, None, now)  # not ours: never


def test_signals_held_during_teardown_then_raised() -> None:
    done = []
    with pytest.raises(KeyboardInterrupt, match="SIGTERM during teardown"), signals.deferred():
        os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGINT)
        done.append("teardown finished")
    assert done == ["teardown finished"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_cleanup_command_without_settings_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for var in ("XCPNG_URL", "XCPNG_USERNAME", "XCPNG_PASSWORD"):
        monkeypatch.delenv(var, raising=False)
    assert main(["pool", "cleanup", "--run-id", "x"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "XCPNG_URL, XCPNG_USERNAME, XCPNG_PASSWORD" in err


def test_a_pool_clone_is_ready_once_cloud_init_finished(monkeypatch: pytest.MonkeyPatch) -> None:
    """The checks start when the first boot is over, as on the local platform: the login that
    proves the clone ready is the one that waits for cloud-init."""
    from platforms import reach
    from platforms.xcpng import guest

    commands = []

    def observe(target: reach.Target, command: str, timeout_s: float) -> reach.Observation:
        commands.append(command)
        return reach.Observation(banner="SSH-2.0-OpenSSH_9.2", login=reach.OK)

    monkeypatch.setattr(guest, "observe", observe)
    target = reach.Target("tester", "192.0.2.10", 22, Path("/nonexistent/key"), None)
    guest.wait_for_login(target, "debian12", timeout=5, address_since=0.0, poll=0.1)
    assert commands == [reach.SETTLED_LOGIN] and "cloud-init status --wait" in commands[0]
