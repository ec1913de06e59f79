"""What runs as root later, and consoles that open a root shell (docs/checks/persistence.md).
The clone is asked once, in one exchange shared by both checks and run in the clone's
background while the other checks run (`CloneAnswers`): systemd's units as systemd resolved
them, the manager's environment, the PATH root gets, the kernel command line, and the owner
and mode of every inode on the way to each path those name. What
the image alone shows (cron, cloud-init, the loader, shell start-up files, the boot
configuration of the next boot) is read offline."""

from __future__ import annotations

from core.checks import check
from validations import console, persistence
from validations.offline import OfflineImage
from validations.persistence_answers import CloneAnswers

MAX_LINES = 40


def _report(title: str, lines: list[str]) -> str:
    shown = lines[:MAX_LINES]
    more = f"\n... and {len(lines) - MAX_LINES} more" if len(lines) > MAX_LINES else ""
    return f"{title} ({len(lines)}):\n" + "\n".join(shown) + more


@check(
    "persistence-root-exec",
    "nothing root runs later (units, timers, cron, cloud-init scripts, the loader, root's PATH "
    "and shell start-up files, rc.local) can be changed by anyone but root, and none of it "
    "runs code fetched from the network (curl | sh and its spellings)",
)
def test_root_exec(clone_answers: CloneAnswers, image: OfflineImage) -> None:
    found = persistence.systemd_findings(
        clone_answers.state(), lambda path: persistence.script_text(image, path)
    )
    found += persistence.offline_findings(image)
    assert not found, _report(
        "what runs as root later can be changed by others, or runs fetched code", found
    )


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
