"""Owner-tagged temporary names (core.ownership), the atomic writer's own leftovers, and a
second signal held while a supervised child cleans up (core.proc.supervise)."""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from core.files import write_atomic
from core.ownership import (
    is_leftover,
    owner_of,
    scratch,
    socket_dir,
    stale_entries,
    temp_dir,
)
from core.proc import supervise
from tests.support.pids import NEVER_ALIVE_PID


def dead_pid() -> int:
    return NEVER_ALIVE_PID


def test_names_carry_their_owner(tmp_path: Path) -> None:
    made = temp_dir(".tmp-abc", tmp_path)
    assert made.name.startswith(f".tmp-abc.pid{os.getpid()}.") and made.is_dir()
    assert owner_of(made.name) == os.getpid()
    assert owner_of(".tmp-ialswjoy") is None
    assert not is_leftover(made)


def test_a_dead_owner_or_a_reused_pid_makes_a_leftover(tmp_path: Path) -> None:
    gone = tmp_path / f".tmp-x.pid{dead_pid()}.abc"
    gone.mkdir()
    assert is_leftover(gone)
    # pid 1 is alive but started long before this entry changed: still its owner
    mine = tmp_path / ".tmp-y.pid1.abc"
    mine.mkdir()
    assert not is_leftover(mine)
    # this process is alive, but the entry last changed before it started: the pid was reused
    reused = tmp_path / f".tmp-z.pid{os.getpid()}.abc"
    reused.mkdir()
    os.utime(reused, (1_000_000_000, 1_000_000_000))
    assert is_leftover(reused)


def test_untagged_entries_are_stale_only_when_no_lock_is_held(tmp_path: Path) -> None:
    legacy = tmp_path / ".tmp-ialswjoy"
    legacy.mkdir()
    lock = tmp_path / "c63b17d3.lock"
    lock.touch()
    with lock.open("w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        assert stale_entries(tmp_path, (".tmp-",)) == []  # a build of this folder runs
    assert stale_entries(tmp_path, (".tmp-",)) == [legacy]
    assert stale_entries(tmp_path, (".old-",)) == []
    assert stale_entries(tmp_path / "missing", (".tmp-",)) == []


def test_scratch_is_removed_and_socket_dirs_stay_short(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with scratch("xcpng-test", tmp_path) as s:
        (s / "f").write_text("x")
    assert not s.exists()
    monkeypatch.setenv("TMPDIR", str(tmp_path / ("long" * 20)))
    (tmp_path / ("long" * 20)).mkdir()
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    sock = socket_dir("xcpng-qmp")
    try:
        assert len(str(sock / "qmp.sock")) < 108 and sock.parent == Path("/tmp")
    finally:
        sock.rmdir()


def test_atomic_writer_removes_what_a_killed_writer_left(tmp_path: Path) -> None:
    target = tmp_path / "latest.json"
    killed = tmp_path / f".latest.json.pid{dead_pid()}.k1l2.part"
    killed.write_text("half")
    live = tmp_path / ".latest.json.pid1.x9.part"  # pid 1 lives: a writer at work
    live.write_text("busy")
    other = tmp_path / f".index.json.pid{dead_pid()}.z.part"
    other.write_text("another target's")
    write_atomic(target, "{}")
    assert target.read_text() == "{}"
    assert not killed.exists()
    assert live.exists() and other.exists()
    assert sorted(p.name for p in tmp_path.iterdir() if ".pid" in p.name) == [
        other.name,
        live.name,
    ]


CLEANS_UP_SLOWLY = """
import signal, sys, time
def stop(signum, frame):
    time.sleep(2.0)  # a cleanup that takes a while (Packer removing its VM, mmdebstrap unmounting)
    open(sys.argv[1], "w").write("cleaned")
    sys.exit(3)
signal.signal(signal.SIGINT, stop)
print("ready", flush=True)
time.sleep(60)
"""


def test_a_second_signal_waits_for_the_childs_cleanup(tmp_path: Path) -> None:
    """SIGINT, then SIGTERM during the child's cleanup (as a cancelled CI job does), then one
    more Ctrl-C: the child still finishes its cleanup and exits by itself before the one
    KeyboardInterrupt reaches the caller."""
    marker = tmp_path / "cleaned"
    proc = subprocess.Popen(
        [sys.executable, "-c", CLEANS_UP_SLOWLY, str(marker)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    stops: list[str] = []

    def signals() -> None:
        time.sleep(0.8)
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.5)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.5)
        os.kill(os.getpid(), signal.SIGINT)  # and an impatient Ctrl-C on top

    def sigterm(signum: int, frame: object) -> None:
        raise KeyboardInterrupt("SIGTERM")

    previous = signal.signal(signal.SIGTERM, sigterm)
    sender = threading.Thread(target=signals)
    try:
        sender.start()
        with pytest.raises(KeyboardInterrupt):
            supervise(proc, timeout_s=60, grace_s=20, on_line=lambda _l: None, on_stop=stops.append)
        sender.join()
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert marker.read_text() == "cleaned"
    assert proc.returncode == 3, "the child exited by itself, it was not killed"
    assert stops == ["interrupted"]
