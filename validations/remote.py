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


@dataclass(frozen=True)
class Answer:
    rc: int
    stdout: str
    stderr: str


class RemoteError(RuntimeError):
    """The batch itself did not run (the shell failed before answering)."""


def _script(commands: dict[str, str], boundary: str) -> str:
    lines = ["t=$(mktemp -d) || exit 97"]
    for i, command in enumerate(commands.values()):
        run = f'( {command} ) >"$t/{i}.o" 2>"$t/{i}.e" </dev/null; echo $? >"$t/{i}.r"'
        lines.append(f"{{ {run}; }} &")
    lines.append("wait")
    for i, name in enumerate(commands):
        lines += [
            f'read rc <"$t/{i}.r"',  # a builtin: no process start
            f"printf '%s %s %s\\n' {shlex.quote(boundary)} {shlex.quote(name)} \"$rc\"",
            # an empty answer costs no process start (each costs most under TCG)
            f'[ ! -s "$t/{i}.o" ] || base64 -w0 <"$t/{i}.o"; echo',
            f'[ ! -s "$t/{i}.e" ] || base64 -w0 <"$t/{i}.e"; echo',
        ]
    lines.append('rm -rf "$t"')
    return "\n".join(lines)


def ask(host: Any, commands: dict[str, str], sudo: bool = True) -> dict[str, Answer]:
    """Run every command (as root unless `sudo` is False) in one SSH exchange: name -> Answer.

    The commands run side by side (the clone has two vCPUs, and under TCG each is slow), so
    none may depend on another's effects: a command that needs another's output goes in a
    later `ask`."""
    bad = [n for n in commands if not n or any(c.isspace() for c in n)]
    if bad:
        raise ValueError(f"question names must be single words: {bad}")
    boundary = "@@" + secrets.token_hex(8)
    script = _script(commands, boundary)
    runner = f"sh -c {shlex.quote(script)}"
    if sudo:
        with host.sudo():  # the harness's host keeps a root shell open: no sudo per question
            out = host.run(runner)
    else:
        out = host.run(runner)
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
    missing = [n for n in commands if n not in answers]
    if missing:
        raise RemoteError(
            f"the clone answered {len(answers)} of {len(commands)} questions (exit {out.rc}; "
            f"missing {', '.join(missing)}): {out.stderr.strip()[-300:]}"
        )
    return answers
