"""Ask the clone many questions in one round trip.

Each `host.run` is an SSH exchange and a process start in a guest that may run under TCG; a
check that asks ten questions pays that ten times. `ask` sends one shell script that runs every
command side by side and frames each answer (exit status, stdout, stderr) with a random
boundary, so no command's output can forge another's.
"""

from __future__ import annotations

import base64
import secrets
import shlex
from dataclasses import dataclass
from typing import Any

from core.waiting import wait_for


@dataclass(frozen=True)
class Answer:
    rc: int
    stdout: str
    stderr: str


class RemoteError(RuntimeError):
    """The batch itself did not run (the shell failed before answering)."""


def _script(commands: dict[str, str], boundary: str, shared: bool = True) -> str:
    """One shell script for `commands`: each started in a subshell of its own (one fork; its
    status read back by `wait`), answers printed in order. `shared`: the files go to the
    folder the harness's long-lived shell made once (XCPNG_ASK_DIR, harness/shell_session.py;
    its shell runs one command at a time) instead of a new one per call: under TCG each
    process start (mktemp, rm) costs 30-50 ms. A background batch (`launch`) runs beside
    other questions, so it always makes its own."""
    if shared:
        lines = [
            "t=${XCPNG_ASK_DIR:-}; own=",
            '[ -n "$t" ] || { t=$(mktemp -d) || exit 97; own=1; }',
        ]
    else:
        lines = ["t=$(mktemp -d) || exit 97; own=1"]
    for i, command in enumerate(commands.values()):
        lines.append(f'( {command}\n) >"$t/{i}.o" 2>"$t/{i}.e" </dev/null & p{i}=$!')
    for i, name in enumerate(commands):
        lines += [
            f'wait "$p{i}"; rc=$?',
            f"printf '%s %s %s\\n' {shlex.quote(boundary)} {shlex.quote(name)} \"$rc\"",
            # an empty answer costs no process start (each costs most under TCG)
            f'[ ! -s "$t/{i}.o" ] || base64 -w0 <"$t/{i}.o"; echo',
            f'[ ! -s "$t/{i}.e" ] || base64 -w0 <"$t/{i}.e"; echo',
        ]
    lines.append('[ -z "$own" ] || rm -rf "$t"')
    return "\n".join(lines)


def _words(names: list[str]) -> None:
    bad = [n for n in names if not n or any(c.isspace() for c in n)]
    if bad:
        raise ValueError(f"question names must be single words: {bad}")
    if len(set(names)) != len(names):
        raise ValueError(f"question names must be unique: {names}")


def _run(host: Any, command: str, sudo: bool) -> Any:
    if sudo:
        with host.sudo():  # the harness's host keeps a root shell open: no sudo per question
            return host.run(command)
    return host.run(command)


def _answers(out: Any, names: list[str], boundary: str) -> dict[str, Answer]:
    answers: dict[str, Answer] = {}
    lines = out.stdout.split("\n")
    i = 0
    while i < len(lines):
        head = lines[i].split(" ")
        if len(head) == 3 and head[0] == boundary and i + 2 < len(lines):
            name, rc = head[1], int(head[2])
            stdout = base64.b64decode(lines[i + 1]).decode("utf-8", "replace")
            stderr = base64.b64decode(lines[i + 2]).decode("utf-8", "replace")
            answers[name] = Answer(rc, stdout, stderr)
            i += 3
        else:
            i += 1
    missing = [n for n in names if n not in answers]
    if missing:
        raise RemoteError(
            f"the clone answered {len(answers)} of {len(names)} questions (exit {out.rc}; "
            f"missing {', '.join(missing)}): {out.stderr.strip()[-300:]}"
        )
    return answers


def ask(host: Any, commands: dict[str, str], sudo: bool = True) -> dict[str, Answer]:
    """Run every command (as root unless `sudo` is False) in one SSH exchange: name -> Answer.

    The commands run side by side (the clone has two vCPUs, and under TCG each is slow), so
    none may depend on another's effects: a command that needs another's output goes in a
    later `ask`."""
    _words(list(commands))
    boundary = "@@" + secrets.token_hex(8)
    # the script as the command itself, not `sh -c` (one process fewer): every backend runs a
    # command in a shell of its own (the harness's in a subshell), whose `wait` and `exit` are
    # the script's alone
    out = _run(host, _script(commands, boundary), sudo)
    return _answers(out, list(commands), boundary)


@dataclass(frozen=True)
class Pending:
    """Questions the clone works on in its background (`launch`); `collect` reads the answers."""

    folder: str
    boundary: str
    names: tuple[str, ...]
    sudo: bool


def launch(host: Any, steps: list[dict[str, str]], folder: str, sudo: bool = True) -> Pending:
    """Start `steps` in the clone's background and return at once: each step as `ask` runs
    it (its commands side by side), one step after the other, so a step may read what an
    earlier one saved. The clone works on them while other checks ask their own questions;
    the answers wait in `folder` (a new folder, root's alone) for `collect`."""
    names = [name for step in steps for name in step]
    _words(names)
    boundary = "@@" + secrets.token_hex(8)
    body = "\n".join(
        f"sh -c {shlex.quote(_script(step, boundary, shared=False))}" for step in steps
    )
    q = shlex.quote(folder)
    # setsid and no open descriptor: the shell that started it answers at once, and the job
    # outlives it; `rc` appears last (renamed into place), when `out` is complete
    job = (
        f"sh -c {shlex.quote(body)} >{q}/out 2>{q}/err; echo $? >{q}/rc.part; mv {q}/rc.part {q}/rc"
    )
    out = _run(
        host,
        f"mkdir -m 0700 {q} && {{ setsid sh -c {shlex.quote(job)} </dev/null >/dev/null 2>&1 & }}",
        sudo,
    )
    if out.rc != 0:
        raise RemoteError(
            f"the clone did not start the questions (exit {out.rc}): {out.stderr.strip()[-300:]}"
        )
    return Pending(folder, boundary, tuple(names), sudo)


# each poll waits in the clone for up to 10 s (50 rounds), so a wait costs few round trips
_POLL = "i=0; while [ ! -e {0}/rc ]; do [ $i -lt {1} ] || exit 1; sleep 0.2; i=$((i+1)); done"


def collect(host: Any, pending: Pending, timeout: float = 600.0) -> dict[str, Answer]:
    """The answers of `launch`'s questions, once the clone has them all (the folder is then
    removed)."""
    q = shlex.quote(pending.folder)
    poll = _POLL.format(q, max(1, min(50, int(timeout / 0.2))))
    wait_for(
        lambda: _run(host, poll, pending.sudo).rc == 0,
        what=f"the clone's answers in {pending.folder}",
        timeout=timeout,
        interval=0.01,
    )
    out = _run(
        host, f"cat {q}/out; cat {q}/err >&2; rc=$(cat {q}/rc); rm -rf {q}; exit $rc", pending.sudo
    )
    return _answers(out, list(pending.names), pending.boundary)
