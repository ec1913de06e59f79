"""validations/units.py and validations/persistence.py on what a real Debian 12 clone answered
(tests/data/persistence/clone-debian12.json, captured with the questions test_persistence.py
asks), and on that answer with one defect spliced in: each mechanism is found, the good
clone is not."""

from __future__ import annotations

import copy
import json
import os
import re
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest

from validations import console, persistence, units
from validations.persistence_answers import clone_questions, parse_clone
from validations.remote import Answer

DATA = Path(__file__).resolve().parents[1] / "data" / "persistence"


def _answers() -> dict[str, Answer]:
    raw = json.loads((DATA / "clone-debian12.json").read_text())
    return {k: Answer(v["rc"], v["stdout"], v["stderr"]) for k, v in raw.items()}


def _walk(answers: dict[str, Answer]) -> dict[str, Any]:
    return dict(json.loads(answers["walk"].stdout))


def _with(
    answers: dict[str, Answer],
    units_text: str = "",
    inodes: dict[str, list[Any] | None] | None = None,
    files: dict[str, str] | None = None,
    **replace: str,
) -> dict[str, Answer]:
    """The captured answers with unit blocks appended, walker rows and files added, and
    other answers replaced."""
    out = dict(answers)
    if units_text:
        out["units"] = Answer(0, answers["units"].stdout.rstrip("\n") + "\n\n" + units_text, "")
    walk = copy.deepcopy(_walk(answers))
    walk["inodes"].update(inodes or {})
    walk["files"].update(files or {})
    out["walk"] = Answer(0, json.dumps(walk), "")
    for name, text in replace.items():
        out[name] = Answer(0, text, "")
    return out


D, F, L = stat.S_IFDIR, stat.S_IFREG, stat.S_IFLNK


def _unit(
    uid: str,
    start: str,
    *,
    user: str = "",
    flags: str = "",
    extra: str = "",
    state: str = "enabled",
) -> str:
    path, _, _ = start.partition(" ")
    return (
        f"ExecStartEx={{ path={path} ; argv[]={start} ; flags={flags} ; start_time=[n/a] ; "
        "stop_time=[n/a] ; pid=0 ; code=(null) ; status=0/0 }\n"
        f"User={user}\nDynamicUser=no\nId={uid}\nNames={uid}\nLoadState=loaded\n"
        f"ActiveState=inactive\nUnitFileState={state}\nFragmentPath=/etc/systemd/system/{uid}\n"
        f"StandardInput=null\nTTYPath=\nWantedBy=multi-user.target\n{extra}"
    )


UNIT_FILE: dict[str, list[Any] | None] = {
    "/etc/systemd/system/zz.service": [F | 0o644, 0, 0, None],
    "/usr/bin/sh": [L | 0o777, 0, 0, "dash"],
    "/usr/bin/dash": [F | 0o755, 0, 0, None],
}


def test_the_good_clone_has_no_finding() -> None:
    state = parse_clone(_answers())
    assert len([u for u in state.units if u.loaded]) >= 100
    assert persistence.systemd_findings(state) == []
    assert console.unit_findings(state.units, state.manager_env, state.env_files) == []
    assert console.cmdline_findings(state.cmdline, "x") == []
    assert state.root_paths["sudo's secure_path"].startswith("/usr/local/sbin:")


def test_show_output_parses_commands_users_and_states() -> None:
    by_id = {u.id: u for u in parse_clone(_answers()).units}
    ssh = by_id["ssh.service"]
    assert [(c.kind, c.path) for c in ssh.commands][:2] == [
        ("ExecStartPre", "/usr/sbin/sshd"), ("ExecStart", "/usr/sbin/sshd"),
    ]  # fmt: skip
    assert ssh.environment_files == ["/etc/default/ssh"] and ssh.runs_as_root
    assert not by_id["systemd-timesyncd.service"].runs_as_root
    assert by_id["debug-shell.service"].tty and by_id["debug-shell.service"].wanted == []
    assert by_id["getty@tty1.service"].wanted == ["getty.target"]
    assert f"getty@{units.PROBE}.service" not in by_id, "an instance is loaded: no probe"
    assert f"e2scrub@{units.PROBE}.service" in by_id
    [start] = [c for c in by_id["systemd-networkd.service"].commands if c.kind == "ExecStart"]
    assert start.flags == {"ambient"} and not start.as_root_anyway


def test_command_flags_and_plain_form() -> None:
    cmd = units.parse_command(
        "ExecStartPre",
        "{ path=/bin/x ; argv[]=/bin/x a ; b ; flags=ignore-failure privileged ; "
        "start_time=[n/a] ; stop_time=[n/a] ; pid=0 ; code=(null) ; status=0/0 }",
    )
    assert cmd.argv == ("/bin/x", "a", ";", "b") and cmd.as_root_anyway
    plain = units.parse_command(
        "ExecStartPre",
        "{ path=/bin/x ; argv[]=/bin/x ; ignore_errors=yes ; start_time=[n/a] ; "
        "stop_time=[n/a] ; pid=0 ; code=(null) ; status=0/0 }",
    )
    assert plain.flags == {"ignore-failure"}
    with pytest.raises(ValueError, match="not a command"):
        units.parse_command("ExecStart", "garbage")


def _fake_systemd(tmp: Path, unit_dirs: list[Path], loaded: str) -> dict[str, str]:
    bin_dir = tmp / "bin"
    bin_dir.mkdir()
    scripts = {
        "systemd-path": "echo /nonexistent/system-generators",
        "systemd-analyze": "printf '%s\\n' " + " ".join(str(d) for d in unit_dirs),
        "systemctl": f"case \"$1\" in list-units) printf '%s' '{loaded}' ;; "
        "show) shift 5; printf '%s\\n' \"$@\" ;; esac",
    }
    for name, body in scripts.items():
        path = bin_dir / name
        path.write_text(f"#!/bin/sh\n{body}\n")
        path.chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}


def test_listing_names_every_unit_once(tmp_path: Path) -> None:
    etc, lib = tmp_path / "etc", tmp_path / "lib"
    for d in (etc / "multi-user.target.wants", etc / "getty.target.wants", lib,
              etc / "foo.service.d", etc / "bar@baz.service.d"):  # fmt: skip
        d.mkdir(parents=True)
    for name in ("a.service", "t.timer", "getty@.service", "e2@.service", "s.socket", "m.service"):
        (lib / name).write_text("[Service]\n")
    (etc / "alias.service").symlink_to(lib / "a.service")  # an alias: shown as a.service
    (etc / "m.service").symlink_to("/dev/null")  # masked here, shown from lib
    (etc / "linked.service").symlink_to("/opt/linked.service")  # systemctl link
    (etc / "multi-user.target.wants/a.service").symlink_to(lib / "a.service")
    (etc / "getty.target.wants/getty@tty1.service").symlink_to(lib / "getty@.service")
    (etc / "foo.service.d/x.conf").write_text("")
    (etc / "bar@baz.service.d/x.conf").write_text("")
    env = _fake_systemd(tmp_path, [etc, lib], "x.service loaded active running X\n"
                        "gone.service not-found inactive dead gone\n")  # fmt: skip
    listing = subprocess.run(
        ["sh", "-c", units.LISTING], env=env, capture_output=True, text=True, check=True
    ).stdout
    (tmp_path / "listing").write_text(listing)
    rows = units.parse_listing(listing)
    assert ("unit", str(etc / "alias.service"), str(lib / "a.service")) in rows
    names = subprocess.run(
        ["sh", "-c", units.show_command(str(tmp_path / "listing"))],
        env=env, capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    assert sorted(names) == sorted([
        "a.service", "bar@baz.service", f"e2@{units.PROBE}.service", "foo.service",
        "getty@tty1.service", "linked.service", "m.service", "s.socket", "x.service",
    ])  # fmt: skip


def test_questions_share_one_scratch_folder() -> None:
    steps = clone_questions("/run/xcpng-persistence-test")
    assert [list(s) for s in steps] == [
        ["listing"], ["units", "manager", "rootpath", "helpers"], ["walk"],
    ]  # fmt: skip
    assert "rm -rf /run/xcpng-persistence-test" in steps[-1]["walk"]
    assert all("/run/xcpng-persistence-test" in q for s in steps for q in s.values())


# -- each systemd mechanism, spliced into the good clone's answer -------------------------------


def _systemd(answers: dict[str, Answer]) -> list[str]:
    return persistence.systemd_findings(parse_clone(answers))


def test_root_unit_running_a_user_owned_file() -> None:
    found = _systemd(_with(
        _answers(), _unit("zz.service", "/usr/local/sbin/zz-report --now"),
        {**UNIT_FILE, "/usr/local/sbin/zz-report": [F | 0o755, 1000, 1000, None]},
    ))  # fmt: skip
    assert found == [
        "zz.service ExecStart: /usr/local/sbin/zz-report (1000:1000, 0755, owned by uid 1000)"
    ]


def test_script_behind_an_interpreter_and_a_privileged_prefix() -> None:
    found = _systemd(_with(
        _answers(),
        _unit("zz.service", "/bin/sh /opt/hooks/post.sh", user="nobody", flags="privileged"),
        {**UNIT_FILE, "/opt": [D | 0o755, 0, 0, None], "/opt/hooks": [D | 0o775, 0, 50, None],
         "/opt/hooks/post.sh": [F | 0o755, 0, 0, None]},
    ))  # fmt: skip
    assert found == [
        "zz.service ExecStart: /opt/hooks/post.sh via /opt/hooks (0:50, 0775, writable by group 50)"
    ]
    # the same unit without `+`: it runs as nobody, nothing to judge but its file
    assert _systemd(_with(
        _answers(), _unit("zz.service", "/bin/sh /opt/hooks/post.sh", user="nobody"),
        {**UNIT_FILE, "/opt": [D | 0o755, 0, 0, None], "/opt/hooks": [D | 0o775, 0, 50, None],
         "/opt/hooks/post.sh": [F | 0o755, 0, 0, None]},
    )) == []  # fmt: skip


def test_timer_started_script_that_anyone_can_plant() -> None:
    found = _systemd(_with(
        _answers(),
        _unit("zz.service", "/bin/sh /var/tmp/cleanup.sh", extra="TriggeredBy=zz.timer\n",
              state="static"),
        {**UNIT_FILE, "/var": [D | 0o755, 0, 0, None], "/var/tmp": [D | 0o1777, 0, 0, None],
         "/var/tmp/cleanup.sh": None},
    ))  # fmt: skip
    assert len(found) == 1 and found[0].startswith(
        "zz.service (started by zz.timer) ExecStart: /var/tmp/cleanup.sh via /var/tmp (0:0, 1777"
    )
    assert "anyone planting" in found[0]


def test_loader_variables_in_units_and_the_manager() -> None:
    found = _systemd(_with(
        _answers(),
        _unit("zz.service", "/usr/sbin/sshd", extra="Environment=LD_PRELOAD=/usr/lib/x.so A=1\n"
              "EnvironmentFiles=/etc/default/zz (ignore_errors=yes)\n"),
        {**UNIT_FILE, "/etc/default/zz": [F | 0o644, 0, 0, None]},
        {"/etc/default/zz": "# hooks\nLD_LIBRARY_PATH=/opt/lib\n"},
        manager=re.sub(
            "^Environment=.*$",
            "Environment=LANG=C.UTF-8 LD_LIBRARY_PATH=/opt/lib PATH=/usr/bin:/bin",
            _answers()["manager"].stdout,
            flags=re.M,
        ),
    ))  # fmt: skip
    assert [f.split(" (")[0] for f in found] == [
        "systemd's DefaultEnvironment: LD_LIBRARY_PATH=/opt/lib",
        "zz.service Environment: LD_PRELOAD=/usr/lib/x.so",
        "zz.service EnvironmentFile /etc/default/zz: LD_LIBRARY_PATH=/opt/lib",
    ]


def test_unit_files_generators_and_root_paths() -> None:
    answers = _answers()
    listing = answers["listing"].stdout + (
        "generator\t/etc/systemd/system-generators/zz-gen\t\n"
        "unit\t/etc/systemd/system/zz.service\t\n"
    )
    found = _systemd(_with(
        answers, _unit("zz.service", "/usr/sbin/sshd"),
        {"/etc/systemd/system/zz.service": [F | 0o664, 0, 0, None],
         "/etc/systemd/system-generators": [D | 0o755, 0, 0, None],
         "/etc/systemd/system-generators/zz-gen": [F | 0o755, 1000, 0, None],
         "/opt": [D | 0o755, 0, 0, None], "/opt/tools": [D | 0o755, 0, 0, None],
         "/opt/tools/bin": [D | 0o777, 0, 0, None]},
        listing=listing,
        rootpath="root's login shell (/bin/bash)\t/opt/tools/bin:/usr/bin:.\n",
    ))  # fmt: skip
    assert found == [
        "systemd generator: /etc/systemd/system-generators/zz-gen (1000:0, 0755, owned by uid 1000)",
        "systemd unit folder: /etc/systemd/system/zz.service (0:0, 0664, writable by group 0)",
        "zz.service unit file: /etc/systemd/system/zz.service (0:0, 0664, writable by group 0)",
        "root's login shell (/bin/bash) (PATH): /opt/tools/bin (0:0, 0777, writable by others)",
        "root's login shell (/bin/bash): PATH entry . is relative: root runs what the current "
        "folder holds",
    ]


def test_a_path_the_walker_did_not_see_fails_loudly() -> None:
    with pytest.raises(AssertionError, match="did not look at /srv"):
        _systemd(_with(_answers(), _unit("zz.service", "/srv/app/run"), UNIT_FILE))


def test_programs_the_kernel_starts_as_root() -> None:
    """The core dump pipe, the module loader, the uevent helper and binfmt_misc interpreters,
    as /proc/sys reports them: each program judged like a unit's executable."""
    helpers = (
        "kernel.core_pattern\t|/var/tmp/crash-hook %p %s\n"
        "kernel.modprobe\t/opt/kmod/modprobe\n"
        "kernel.hotplug\t\n"
        "binfmt_misc zz-jar\t/srv/java/jexec\n"
    )
    found = _systemd(_with(
        _answers(),
        inodes={
            "/var": [D | 0o755, 0, 0, None], "/var/tmp": [D | 0o1777, 0, 0, None],
            "/var/tmp/crash-hook": None,
            "/opt": [D | 0o755, 0, 0, None], "/opt/kmod": [D | 0o775, 0, 50, None],
            "/opt/kmod/modprobe": [F | 0o755, 0, 0, None],
            "/srv": [D | 0o755, 0, 0, None], "/srv/java": [D | 0o755, 0, 0, None],
            "/srv/java/jexec": [F | 0o755, 1000, 1000, None],
        },
        helpers=helpers,
    ))  # fmt: skip
    assert [f.split(":")[0] for f in found] == [
        "the kernel's core dump pipe (root, at every crash)",
        "the kernel's module loader (root, at every on-demand module load)",
        "binfmt_misc zz-jar interpreter (binfmt_misc",
    ], found
    assert "/var/tmp" in found[0] and "/opt/kmod" in found[1] and "uid 1000" in found[2]


def test_the_stock_kernel_helpers_pass() -> None:
    """Debian 12's own: cores to a file, /sbin/modprobe, binfmt-support's python3.11."""
    state = parse_clone(_answers())
    assert state.kernel_helpers == {
        "kernel.core_pattern": "core",
        "kernel.modprobe": "/sbin/modprobe",
        "binfmt_misc python3.11": "/usr/bin/python3.11",
    }
    assert persistence.kernel_helper_findings(state.kernel_helpers, state.inodes) == []


def test_unit_umask_that_lets_others_write() -> None:
    def unit(umask: str, user: str = "") -> units.Unit:
        return units.Unit("x.service", {"UMask": [umask], "User": [user], "LoadState": ["loaded"]})

    assert persistence.umask_findings(unit("0022"), "x") == []
    assert persistence.umask_findings(unit("0077"), "x") == []
    assert persistence.umask_findings(unit("0002", "www-data"), "x") == []  # its own group
    assert persistence.umask_findings(unit(""), "x") == []  # targets and the like have none
    assert persistence.umask_findings(unit("0002"), "x") == [
        "x runs as root with UMask=0002: what it creates is writable by others"
    ]
    assert persistence.umask_findings(unit("0000", "www-data"), "x") == [
        "x has UMask=0000: what it creates is writable by everyone"
    ]
