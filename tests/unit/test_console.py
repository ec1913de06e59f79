"""validations/console.py: gettys, shells on terminals, rescue units and kernel command lines,
on the units a real Debian 12 clone reported with one unit spliced in, and on boot files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from validations import console
from validations.persistence_answers import parse_clone
from validations.remote import Answer
from validations.units import Unit, parse_show

DATA = Path(__file__).resolve().parents[1] / "data" / "persistence"


def _good_units() -> list[Unit]:
    raw = json.loads((DATA / "clone-debian12.json").read_text())
    answers = {k: Answer(v["rc"], v["stdout"], v["stderr"]) for k, v in raw.items()}
    return parse_clone(answers).units


def _unit(
    uid: str,
    start: str,
    *,
    stdin: str = "tty",
    tty: str = "/dev/tty5",
    state: str = "static",
    wanted: str = "",
    env: str = "",
    active: str = "inactive",
) -> Unit:
    path = start.split(maxsplit=1)[0]
    text = (
        f"ExecStartEx={{ path={path} ; argv[]={start} ; flags=ignore-failure ; "
        "start_time=[n/a] ; stop_time=[n/a] ; pid=0 ; code=(null) ; status=0/0 }\n"
        f"Environment={env}\nStandardInput={stdin}\nTTYPath={tty}\nUser=\nDynamicUser=no\n"
        f"Id={uid}\nNames={uid}\nWantedBy={wanted}\nRequiredBy=\nLoadState=loaded\n"
        f"ActiveState={active}\nUnitFileState={state}\n"
    )
    [unit] = parse_show(text)
    return unit


def _findings(
    *extra: Unit, manager: list[str] | None = None, files: dict[str, str] | None = None
) -> list[str]:
    units = [u for u in _good_units() if u.id not in {x.id for x in extra}] + list(extra)
    return console.unit_findings(units, manager or [], files or {}, ["/bin/bash", "/bin/sh"])


def test_good_clone_units_pass() -> None:
    assert _findings() == []


@pytest.mark.parametrize(
    ("unit", "needle"),
    [
        (
            _unit("debug-shell.service", "/bin/bash", tty="/dev/tty9", state="enabled"),
            "debug-shell.service is enabled",
        ),
        (
            _unit(
                "debug-shell.service",
                "/bin/bash",
                tty="/dev/tty9",
                state="disabled",
                wanted="multi-user.target",
            ),
            "wanted by multi-user.target",
        ),
        (
            _unit(
                "debug-shell.service",
                "/bin/bash",
                tty="/dev/tty9",
                state="generated",
                active="active",
            ),
            "debug-shell.service is running",
        ),
        (
            _unit(
                "getty@tty1.service",
                "/sbin/agetty --skip-login --login-program /bin/sh --noclear - $TERM",
                tty="/dev/tty1",
                state="enabled",
                wanted="getty.target",
            ),
            "--skip-login: no login prompt; --login-program /bin/sh: runs /bin/sh instead of login",
        ),
        (
            _unit(
                "serial-getty@ttyS0.service",
                "/sbin/agetty -o -p -- \\u -nl /bin/bash --keep-baud 115200 - $TERM",
                tty="/dev/ttyS0",
                state="enabled-runtime",
            ),
            "-nl: -n skips the login prompt; -l /bin/bash: runs /bin/bash instead of login",
        ),
        (
            _unit(
                "getty@tty2.service",
                "/sbin/agetty -o -f -- \\u --noclear - $TERM",
                tty="/dev/tty2",
                state="enabled",
            ),
            "login -f skips the password",
        ),
        (
            _unit(
                "console-rescue.service",
                "/bin/bash --login",
                state="enabled",
                wanted="multi-user.target",
            ),
            "starts /bin/bash instead of login",
        ),
        (
            _unit(
                f"container-getty@{'xcpng-probe'}.service",
                "/usr/bin/env TERM=vt100 /bin/sh",
                tty="/dev/pts/0",
            ),
            "a template",
        ),
        (
            _unit(
                "kiosk.service",
                "/bin/sh -c exec /usr/bin/bash -l",
                stdin="tty-force",
                tty="",
                state="enabled",
            ),
            "-c with a shell",
        ),
        (
            _unit("rescue.service", "/bin/sh", stdin="tty-force", tty=""),
            "rescue.service ExecStart: starts /bin/sh instead of login, skipping sulogin",
        ),
        (
            _unit(
                "emergency.service",
                "/lib/systemd/systemd-sulogin-shell emergency",
                stdin="tty-force",
                tty="",
                env="HOME=/root SYSTEMD_SULOGIN_FORCE=1",
            ),
            "emergency.service: SYSTEMD_SULOGIN_FORCE set",
        ),
        (
            _unit("rescue.service", "/sbin/sulogin --force", stdin="tty-force", tty=""),
            "sulogin forced",
        ),
    ],
)
def test_console_shells_are_found(unit: Unit, needle: str) -> None:
    found = _findings(unit)
    assert len(found) == 1 and needle in found[0], found


@pytest.mark.parametrize(
    "unit",
    [
        _unit("debug-shell.service", "/bin/bash", tty="/dev/tty9", state="disabled"),
        _unit("debug-shell.service", "/bin/bash", tty="/dev/tty9", state="masked"),
        _unit(
            "serial-getty@ttyS0.service",
            "/sbin/agetty -o -p -- \\u --keep-baud 115200 -l /bin/login - $TERM",
            tty="/dev/ttyS0",
            state="enabled",
        ),
        _unit("wizard.service", "/usr/bin/python3 /usr/lib/wizard/run.py", state="enabled"),
        _unit("console-rescue.service", "/bin/bash --login", state="disabled"),
        _unit(
            "rescue.service",
            "/lib/systemd/systemd-sulogin-shell rescue",
            stdin="tty-force",
            tty="",
            env="HOME=/root SYSTEMD_SULOGIN_FORCE=0",
        ),
    ],
    ids=["disabled", "masked", "explicit-login", "script", "not-started", "force-off"],
)
def test_sound_console_units_pass(unit: Unit) -> None:
    assert _findings(unit) == []


def test_forced_sulogin_from_the_manager_or_an_environment_file() -> None:
    assert "DefaultEnvironment" in _findings(manager=["SYSTEMD_SULOGIN_FORCE=yes"])[0]
    text = (
        "ExecStartEx={ path=/lib/systemd/systemd-sulogin-shell ; argv[]=/lib/systemd/systemd-"
        "sulogin-shell rescue ; flags= ; start_time=[n/a] ; stop_time=[n/a] ; pid=0 ; code=(null)"
        " ; status=0/0 }\nEnvironmentFiles=/etc/default/rescue (ignore_errors=yes)\n"
        "StandardInput=tty-force\nId=rescue.service\nNames=rescue.service\nLoadState=loaded\n"
    )
    found = _findings(*parse_show(text), files={"/etc/default/rescue": "SYSTEMD_SULOGIN_FORCE=1\n"})
    assert found == [
        "rescue.service: SYSTEMD_SULOGIN_FORCE set: sulogin opens a root shell without a password "
        "when root is locked"
    ]


@pytest.mark.parametrize(
    ("cmdline", "needle"),
    [
        ("root=LABEL=rootfs ro systemd.debug_shell", "systemd.debug_shell (a root shell"),
        ("ro systemd.debug_shell=yes quiet", "systemd.debug_shell=yes"),
        ("ro rd.systemd.debug_shell=/dev/tty3", "rd.systemd.debug_shell=/dev/tty3"),
        ("ro systemd.crash_shell", "systemd.crash_shell"),
        ("ro rd.shell", "rd.shell (the initramfs"),
        ("ro rd.break=pre-mount", "rd.break=pre-mount"),
        ("ro init=/bin/bash", "init=/bin/bash (PID 1"),
        ("ro rdinit=/bin/sh", "rdinit=/bin/sh"),
        ("ro single", "single (boots into rescue.target"),
        ("ro 1", "1 (boots into rescue.target"),
        ("ro emergency", "boots into emergency.target"),
        ("ro systemd.unit=rescue.target", "systemd.unit=rescue.target"),
        ("ro rd.systemd.unit=emergency.target", "rd.systemd.unit=emergency.target"),
        ('ro "systemd.setenv=SYSTEMD_SULOGIN_FORCE=1"', "SYSTEMD_SULOGIN_FORCE=1"),
    ],
)
def test_cmdline_switches(cmdline: str, needle: str) -> None:
    found = console.cmdline_findings(cmdline, "here")
    assert len(found) == 1 and needle in found[0], found


@pytest.mark.parametrize(
    "cmdline",
    [
        "BOOT_IMAGE=/vmlinuz root=LABEL=rootfs ro console=tty0 console=ttyS0,115200n8",
        "ro systemd.debug_shell=0 rd.shell=0 init=/lib/systemd/systemd quiet splash",
        "ro systemd.unit=multi-user.target rd.emergency=reboot",
    ],
)
def test_sound_cmdlines_pass(cmdline: str) -> None:
    assert console.cmdline_findings(cmdline, "here") == []


def test_recovery_entries_may_boot_single_user() -> None:
    cfg = (
        "menuentry 'Debian GNU/Linux' {\n  linux /vmlinuz root=UUID=x ro quiet\n}\n"
        "menuentry 'Debian GNU/Linux (recovery mode)' {\n  linux /vmlinuz root=UUID=x ro single\n}\n"
    )
    assert console.grub_cfg_findings(cfg, "/boot/grub/grub.cfg") == []
    bad = cfg.replace("ro quiet", "ro quiet systemd.debug_shell")
    assert "systemd.debug_shell" in console.grub_cfg_findings(bad, "g")[0]
    bad = cfg.replace("ro single", "ro single rd.break")
    assert "rd.break" in console.grub_cfg_findings(bad, "g")[0]


def test_grub_defaults_are_sourced_in_order() -> None:
    env = console.grub_defaults(
        ['GRUB_CMDLINE_LINUX_DEFAULT="quiet"\nGRUB_CMDLINE_LINUX=""\n',
         'GRUB_CMDLINE_LINUX_DEFAULT="$GRUB_CMDLINE_LINUX_DEFAULT rd.shell"\n']
    )  # fmt: skip
    assert env["GRUB_CMDLINE_LINUX_DEFAULT"] == "quiet rd.shell"


def test_getty_parsing_edge_cases() -> None:
    assert console.getty_problem(["/sbin/agetty", "--login-program=/usr/bin/login", "tty1"]) is None
    assert console.getty_problem(["/sbin/agetty", "-I", "-n", "tty1"]) is None, "-I takes -n"
    assert console.getty_problem(["/sbin/mingetty", "--loginprog=/bin/sh", "tty1"]) is not None
    assert console.getty_problem(["/bin/login", "-f", "root"]) is None, "not a getty"
    assert console.shell_problem(["/usr/bin/env", "-i", "/bin/dash"]) is not None
    assert console.shell_problem(["/usr/bin/python3"]) is not None
    assert console.shell_problem(["/bin/sh", "-c", "/usr/local/bin/kiosk"]) is None
