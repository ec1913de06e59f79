"""The clone's side of the persistence checks (validations/test_persistence.py): what runs as
root later, as the clone's own systemd and shells resolve it, asked in one exchange that the
harness starts in the clone's background at the first booted check (`CloneAnswers`)."""

from __future__ import annotations

import json
import secrets
import shlex
from typing import Any

from validations import persistence, units
from validations.pathtrust import guest_walker, recorded
from validations.remote import Answer, Pending, ask, collect, launch

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

# The programs the kernel itself starts as root: the core dump pipe, the module loader, the
# uevent helper, and the interpreter of each binfmt_misc format (root's credentials when root
# runs a matching file). One line each: `who<TAB>value`.
KERNEL_HELPERS = r"""
printf 'kernel.core_pattern\t%s\n' "$(cat /proc/sys/kernel/core_pattern)"
printf 'kernel.modprobe\t%s\n' "$(cat /proc/sys/kernel/modprobe)"
[ -r /proc/sys/kernel/hotplug ] && printf 'kernel.hotplug\t%s\n' "$(cat /proc/sys/kernel/hotplug)"
for f in /proc/sys/fs/binfmt_misc/*; do
  case ${f##*/} in register|status|\*) continue ;; esac
  sed -n "s|^interpreter |binfmt_misc ${f##*/}\t|p" "$f" 2>/dev/null
done
true
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
            "helpers": _saved(scratch, "helpers", KERNEL_HELPERS),
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
    helpers = {}
    for line in _ok(answers, "helpers").splitlines():
        who, sep, value = line.partition("\t")
        if sep:
            helpers[who] = value.strip()
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
        kernel_helpers=helpers,
    )


class CloneAnswers:
    """The clone's answers, shared by both checks. The harness starts the exchange in the
    clone's background at the first booted check (`start`, harness/fixtures.py) and orders
    these checks last, so the clone works on it while the other checks ask theirs; without
    a start, the first check that needs the answers asks for them itself."""

    def __init__(self, host: Any) -> None:
        self._host = host
        self._pending: Pending | None = None
        self._state: persistence.CloneState | None = None

    def start(self) -> None:
        if self._pending is None and self._state is None:
            tag = secrets.token_hex(6)
            steps = clone_questions(f"/run/xcpng-persistence-{tag}")
            self._pending = launch(self._host, steps, f"/run/xcpng-answers-{tag}")

    def state(self) -> persistence.CloneState:
        if self._state is None:
            if self._pending is not None:
                answers = collect(self._host, self._pending)
            else:
                answers = ask_clone(self._host, f"/run/xcpng-persistence-{secrets.token_hex(6)}")
            self._state = parse_clone(answers)
        return self._state
