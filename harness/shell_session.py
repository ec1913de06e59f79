"""testinfra over one long-lived shell per privilege on the clone, instead of one SSH exchange
per command.

testinfra's ssh backend starts `ssh host command` for every command: over the shared master
connection that still costs a new session in the guest (sshd forks, PAM opens a session, the
user's shell starts) and, for `host.sudo()`, a `sudo` with its own PAM stack; under TCG each is
a few hundred milliseconds, and a check phase runs hundreds of commands. Here two shells stay
open for the life of the clone, one as the check user and one as root (`sudo -n`, started
once), and each command is framed on their stdin: its exit status and base64 output come back
between a random boundary no command can print by accident.

testinfra's modules (host.file, host.service, ...) are unchanged: they call `run` as before.
"""

from __future__ import annotations

import base64
import contextlib
import secrets
import subprocess
import threading
from typing import Any

from testinfra.backend.base import CommandResult
from testinfra.backend.ssh import SshBackend

ROOT = "\x00root\x00"  # marks a command for the root shell; no shell command starts with NUL
# $T/a: where validations/remote.ask keeps its answers (this shell runs one command at a time)
START = (
    "T=$(mktemp -d) || exit 97; trap 'rm -rf \"$T\"' EXIT\n"
    'mkdir "$T/a" && export XCPNG_ASK_DIR="$T/a"\n'
)


class ShellGone(RuntimeError):
    """The shell on the clone ended (the VM went away, or its sshd did)."""


class Session:
    """One shell on the clone, reading framed commands from its stdin."""

    def __init__(self, argv: list[str]) -> None:
        self.argv = argv
        self.proc: subprocess.Popen[bytes] | None = None
        self.lock = threading.Lock()

    def _start(self) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        assert proc.stdin is not None
        proc.stdin.write(START.encode())
        proc.stdin.flush()
        return proc

    def run(self, command: str) -> tuple[int, bytes, bytes]:
        with self.lock:
            for attempt in (1, 2):  # a shell that died between commands is started once more
                if self.proc is not None and self.proc.poll() is not None:
                    self.close()  # it died between commands
                if self.proc is None:
                    self.proc = self._start()
                try:
                    return self._exchange(self.proc, command)
                except ShellGone:
                    self.close()
                    if attempt == 2:
                        raise
        raise AssertionError("unreachable")

    def _exchange(self, proc: subprocess.Popen[bytes], command: str) -> tuple[int, bytes, bytes]:
        assert proc.stdin is not None and proc.stdout is not None
        boundary = "@@" + secrets.token_hex(8)
        script = (
            f'( {command}\n) >"$T/o" 2>"$T/e" </dev/null\n'
            f"printf '%s %s\\n' {boundary} \"$?\"\n"
            # an empty output costs no process start (30-50 ms each under TCG)
            '[ ! -s "$T/o" ] || base64 -w0 <"$T/o"; echo\n'
            '[ ! -s "$T/e" ] || base64 -w0 <"$T/e"; echo\n'
        )
        try:
            proc.stdin.write(script.encode())
            proc.stdin.flush()
        except (BrokenPipeError, OSError) as exc:
            raise ShellGone(f"the shell on the clone is gone: {exc}") from exc
        while True:
            line = proc.stdout.readline()
            if not line:
                said = proc.stderr.read().decode("utf-8", "replace") if proc.stderr else ""
                raise ShellGone(f"the shell on the clone ended: {said.strip()[-300:]}")
            head = line.decode("utf-8", "replace").split()
            if len(head) == 2 and head[0] == boundary:
                out = base64.b64decode(proc.stdout.readline().strip())
                err = base64.b64decode(proc.stdout.readline().strip())
                return int(head[1]), out, err

    def close(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        try:
            if proc.stdin:
                with contextlib.suppress(OSError):
                    proc.stdin.close()
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream:
                stream.close()


class ShellBackend(SshBackend):
    """testinfra's ssh backend whose commands go to the two long-lived shells.

    `transport` is the command that opens a shell's stdin on the clone with everything but the
    remote command (e.g. `ssh -o ... user@host`); `sudo -u other` still goes the old way."""

    NAME = "ssh-shell"

    def __init__(
        self, hostspec: str, transport: list[str], become: str = "sudo -n", **kwargs: Any
    ) -> None:
        super().__init__(hostspec, **kwargs)
        self.user_shell = Session([*transport, "exec /bin/sh -s"])
        self.root_shell = Session([*transport, f"exec {become} /bin/sh -s".replace("  ", " ")])

    def get_sudo_command(self, command: str, sudo_user: str | None) -> str:
        """Root's commands are marked for the root shell (testinfra's `host.sudo()` wraps
        commands through this method); another user's still go through `sudo -u`."""
        if sudo_user is None:
            return ROOT + command
        return super().get_sudo_command(command, sudo_user)

    def run(self, command: str, *args: str, **kwargs: Any) -> CommandResult:
        full = self.get_command(command, *args)
        session = self.user_shell
        if full.startswith(ROOT):
            session, full = self.root_shell, full[len(ROOT) :]
        rc, out, err = session.run(full)
        return self.result(rc, self.encode(full), out, err)

    def close(self) -> None:
        for session in (self.user_shell, self.root_shell):
            session.close()


def transport_argv(options: list[str], user: str, address: str, port: int) -> list[str]:
    """`ssh` with the harness's client options (and its shared master connection), for a shell
    whose commands come on stdin."""
    master = ["-o", "ControlMaster=auto", "-o", "ControlPersist=600"]
    return ["ssh", *options, *master, "-p", str(port), "-T", f"{user}@{address}"]
