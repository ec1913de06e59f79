"""What runs as root later, and consoles that open a root shell (docs/checks/persistence.md).
The clone is asked once, in one SSH exchange shared by both checks (`CloneAnswers`): systemd's
units as systemd resolved them, the manager's environment, the PATH root gets, the kernel
command line, and the owner and mode of every inode on the way to each path those name. What
the image alone shows (cron, cloud-init, the loader, shell start-up files, the boot
configuration of the next boot) is read offline."""

from __future__ import annotations

import json
import secrets
import shlex
from typing import Any

import pytest

from core.checks import check
from validations import console, persistence, units
from validations.offline import OfflineImage
from validations.pathtrust import guest_walker, recorded
from validations.remote import Answer, ask

MAX_LINES = 40

# root's login shell, run as a login shell from an empty environment (what `su -` and a
# console login give), and the PATH sudo imposes, from sudo's own parser.
ROOT_PATHS = r"""
entry=$(getent passwd root); shell=${entry##*:}; home=$(printf '%s' "$entry" | cut -d: -f6)
case "$shell" in */bash) flags=-lic ;; *) flags=-lc ;; esac
env -i HOME="$home" USER=root LOGNAME=root SHELL="$shell" TERM=dumb LC_ALL=C \
  "$shell" $flags 'printf "\n@@PATH=%s\n" "$PATH"' 2>/dev/null </dev/null |
  sed -n "s|^@@PATH=|root's login shell ($shell)\t|p"
printf "sudo's secure_path\t"
LC_ALL=C sudo -V 2>/dev/null | sed -n "s/^Value to override user's \$PATH with: //p"
"""


def _saved(scratch: str, name: str, command: str) -> str:
    """Run `command`, keep its output in the scratch folder for the walker, print it."""
    return f'S={scratch}\n{{ {command}\n}} >"$S/{name}"; rc=$?; cat "$S/{name}"; exit $rc'


def clone_questions(scratch: str) -> list[dict[str, str]]:
    """The exchange in three steps: the listing, then what reads it (side by side), then the
    walk of every path the others saved."""
    listing = f"{scratch}/listing"
    walker = shlex.quote(guest_walker())
    return [
        {
            "listing": f"rm -rf {scratch}; mkdir -m 0700 {scratch} && "
            + _saved(scratch, "listing", units.LISTING)
        },
        {
            "units": _saved(scratch, "units", units.show_command(listing)),
            "manager": _saved(scratch, "manager", units.MANAGER),
            "rootpath": _saved(scratch, "rootpath", ROOT_PATHS),
        },
        {"walk": f"cat {scratch}/* | python3 -c {walker}; rc=$?; rm -rf {scratch}; exit $rc"},
    ]


def ask_clone(host: Any, scratch: str) -> dict[str, Answer]:
    answers: dict[str, Answer] = {}
    for step in clone_questions(scratch):
        answers |= ask(host, step)
    return answers


def _ok(answers: dict[str, Answer], name: str) -> str:
    a = answers[name]
    assert a.rc == 0, f"the clone's {name} question failed (exit {a.rc}): {a.stderr.strip()[-400:]}"
    return a.stdout


def parse_clone(answers: dict[str, Answer]) -> persistence.CloneState:
    unit_list = units.parse_show(_ok(answers, "units"))
    ids = {u.id for u in unit_list if u.loaded}
    assert len(ids) >= 20 and any(i in ids for i in ("ssh.service", "sshd.service")), (
        f"systemctl show listed {len(ids)} loaded units, sshd's not among them: is the clone's "
        "systemd answering?"
    )
    walk = json.loads(_ok(answers, "walk"))
    root_paths = {}
    for line in _ok(answers, "rootpath").splitlines():
        who, sep, value = line.partition("\t")
        if sep and value.strip():
            root_paths[who] = value.strip()
    manager = units.parse_manager(_ok(answers, "manager"))
    assert manager.search_path and manager.cmdline, (
        f"the clone did not tell systemd's search path or its kernel command line: {manager}"
    )
    return persistence.CloneState(
        units=unit_list,
        listing=units.parse_listing(_ok(answers, "listing")),
        manager_env=manager.environment,
        search_path=manager.search_path,
        root_paths=root_paths,
        inodes=recorded(walk["inodes"]),
        env_files=walk["files"],
        cmdline=manager.cmdline,
    )


class CloneAnswers:
    """The clone's answers, asked for by the first check that needs them (so the exchange's
    time shows in that check's own duration) and shared with the other."""

    def __init__(self, host: Any) -> None:
        self._host = host
        self._state: persistence.CloneState | None = None

    def state(self) -> persistence.CloneState:
        if self._state is None:
            scratch = f"/run/xcpng-persistence-{secrets.token_hex(6)}"
            self._state = parse_clone(ask_clone(self._host, scratch))
        return self._state


@pytest.fixture(scope="session")
def clone_answers(host: Any) -> CloneAnswers:
    """Everything both checks ask the clone, in one SSH exchange."""
    return CloneAnswers(host)


def _report(title: str, lines: list[str]) -> str:
    shown = lines[:MAX_LINES]
    more = f"\n... and {len(lines) - MAX_LINES} more" if len(lines) > MAX_LINES else ""
    return f"{title} ({len(lines)}):\n" + "\n".join(shown) + more


@check(
    "persistence-root-exec",
    "nothing root runs later (units, timers, cron, cloud-init scripts, the loader, root's PATH "
    "and shell start-up files, rc.local) can be changed by anyone but root",
)
def test_root_exec(clone_answers: CloneAnswers, image: OfflineImage) -> None:
    found = persistence.systemd_findings(clone_answers.state())
    found += persistence.offline_findings(image)
    assert not found, _report("what runs as root later can be changed by others", found)


@check(
    "system-console-shell",
    "no root shell on a console without a password: debug-shell, gettys that skip login, "
    "rescue without sulogin, kernel debug switches now and at the next boot",
)
def test_console_shell(clone_answers: CloneAnswers, image: OfflineImage) -> None:
    clone_state = clone_answers.state()
    shells = console.listed_shells(image)
    found = console.unit_findings(
        clone_state.units, clone_state.manager_env, clone_state.env_files, shells
    )
    found += console.cmdline_findings(clone_state.cmdline, "the running kernel (/proc/cmdline)")
    found += console.boot_config_findings(image)
    assert not found, _report("a console opens a root shell without a password", found)
