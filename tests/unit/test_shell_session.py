"""harness/shell_session.py: testinfra's commands through long-lived shells, root's through a
shell of their own, framed so that output, exit status and stderr come back whole."""

from __future__ import annotations

import os

import pytest
from testinfra.host import Host

from harness.shell_session import ShellBackend

# The transport a test uses: a local shell instead of ssh (these tests run as root, so the
# "root" shell needs no sudo).
LOCAL = ["sh", "-c"]


@pytest.fixture
def host() -> Host:
    backend = ShellBackend("ssh://tester@127.0.0.1:22", LOCAL, become="")
    yield Host(backend)
    backend.close()


def test_commands_share_one_shell_per_privilege(host: Host) -> None:
    # each command runs in a subshell of the same long-lived shell ($$ is the shell's pid)
    first = host.run("echo $$").stdout
    assert first.strip().isdigit() and host.run("echo $$").stdout == first
    with host.sudo():
        root_pid = host.run("echo $$").stdout
    assert root_pid != first, "root's commands go to a shell of their own"


def test_output_status_and_stderr_come_back_whole(host: Host) -> None:
    out = host.run("printf 'a\\0b\\n'; echo err >&2; exit 3")
    assert out.rc == 3 and out.stdout_bytes == b"a\0b\n" and out.stderr == "err\n"
    assert host.run("printf '%s' \"$(seq 1 20000)\" | wc -l").stdout.strip() == "19999"
    # a command cannot end the shell, nor read the commands that follow it
    assert host.run("exit 0").rc == 0 and host.run("cat").stdout == ""
    assert host.run("echo still here").stdout == "still here\n"


def test_testinfra_modules_work_unchanged(host: Host) -> None:
    assert host.file("/etc/passwd").exists and host.file("/etc/passwd").user == "root"
    with host.sudo():
        assert host.check_output("id -u") == str(os.geteuid())


def test_a_shell_that_died_is_started_again(host: Host) -> None:
    backend = host.backend
    assert isinstance(backend, ShellBackend)
    host.run("true")
    assert backend.user_shell.proc is not None
    backend.user_shell.proc.kill()
    backend.user_shell.proc.wait()
    assert host.run("echo back").stdout == "back\n"


def test_ask_keeps_its_answers_in_the_shells_own_folder(host: Host, tmp_path) -> None:
    """validations/remote.ask writes its answers where the shell made a folder once (no mktemp
    nor rm per call: each is a process start, 30-50 ms under TCG); a background batch makes
    its own, since it runs beside later questions; the folder goes when the shell ends."""
    from validations.remote import ask, collect, launch

    folder = host.run('echo "$XCPNG_ASK_DIR"').stdout.strip()
    assert folder and os.path.isdir(folder)
    first = ask(host, {"a": "echo one", "b": "echo two >&2; exit 4"}, sudo=False)
    assert (first["a"].stdout, first["a"].rc) == ("one\n", 0)
    assert (first["b"].stderr, first["b"].rc) == ("two\n", 4)
    assert sorted(os.listdir(folder)) == ["0.e", "0.o", "1.e", "1.o"]
    pending = launch(host, [{"x": "sleep 0.3; echo bg"}], str(tmp_path / "bg"), sudo=False)
    second = ask(host, {"only": "echo three"}, sudo=False)  # the earlier answers do not leak
    assert second == {"only": type(second["only"])(0, "three\n", "")}
    assert collect(host, pending)["x"].stdout == "bg\n"
    assert sorted(os.listdir(folder)) == ["0.e", "0.o", "1.e", "1.o"]
    host.backend.close()
    assert not os.path.exists(folder)
