"""validations/pathtrust.py: the kernel's walk to a path, the owner/mode policy, and the walker
the clone runs (here, with this machine's python3 on a tree made in the test)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from validations.inode import Stat
from validations.pathtrust import Finding, Inodes, guest_walker, recorded, unsafe, walk

D = stat.S_IFDIR
F = stat.S_IFREG
L = stat.S_IFLNK


def _tree(entries: dict[str, tuple[int, int, int, str | None]]) -> Inodes:
    """An in-memory tree: path -> (type|mode, uid, gid, link target)."""
    table = {"/": (D | 0o755, 0, 0, None), **entries}

    def lstat(p: str) -> Stat | None:
        row = table.get(p)
        return None if row is None else Stat(row[0], row[1], row[2], 0)

    def readlink(p: str) -> str:
        target = table[p][3]
        assert target is not None
        return target

    return Inodes(lstat, readlink, {50: "staff", 101: "crontab"}.get)


BASE = {
    "/usr": (D | 0o755, 0, 0, None),
    "/usr/bin": (D | 0o755, 0, 0, None),
    "/usr/bin/tool": (F | 0o755, 0, 0, None),
    "/bin": (L | 0o777, 0, 0, "usr/bin"),
    "/tmp": (D | 0o1777, 0, 0, None),
    "/opt": (D | 0o755, 0, 0, None),
    "/opt/app": (D | 0o755, 1000, 1000, None),
    "/opt/app/run": (F | 0o755, 0, 0, None),
    "/opt/shared": (D | 0o775, 0, 50, None),
    "/opt/shared/job": (F | 0o755, 0, 0, None),
    "/opt/mine": (F | 0o664, 0, 0, None),
    "/opt/link": (L | 0o777, 1000, 1000, "/usr/bin/tool"),
    "/opt/tolink": (L | 0o777, 0, 0, "app/run"),
    "/dev": (D | 0o755, 0, 0, None),
    "/dev/null": (stat.S_IFCHR | 0o666, 0, 0, None),
    "/etc": (D | 0o755, 0, 0, None),
    "/etc/masked.service": (L | 0o777, 0, 0, "/dev/null"),
    "/loop": (L | 0o777, 0, 0, "/loop"),
}


def test_walk_visits_every_folder_link_and_target() -> None:
    inodes = _tree(BASE)
    steps, missing = inodes.resolve("/bin/tool")
    assert missing is None
    assert steps == [("/", "dir"), ("/bin", "link"), ("/usr", "dir"), ("/usr/bin", "dir"),
                     ("/usr/bin/tool", "end")]  # fmt: skip
    steps, missing = inodes.resolve("/opt/tolink")
    assert [s[0] for s in steps][-3:] == ["/opt/tolink", "/opt/app", "/opt/app/run"]
    assert inodes.resolve("/opt/../usr/bin/tool")[1] is None
    assert inodes.resolve("/opt/nothing/x")[1] == "/opt/nothing"
    assert inodes.resolve("/usr/bin/tool/x")[1] == "/usr/bin/tool/x"  # ENOTDIR
    assert inodes.resolve("/loop")[1] == "/loop"  # ELOOP


def test_root_owned_chain_is_safe() -> None:
    inodes = _tree(BASE)
    assert inodes.judge("x", "/usr/bin/tool") == []
    assert inodes.judge("x", "/bin/tool") == []
    assert inodes.judge("x", "/etc/masked.service") == [], "a device at the end is not judged"
    assert inodes.judge("x", "/opt/link") == [], "a link's own owner means nothing"
    assert inodes.judge("x", "/proc/1/exe") == [], "pseudo filesystems are not judged"
    assert inodes.judge("x", "/usr/bin/missing") == [], "missing, and only root can create it"


@pytest.mark.parametrize(
    ("path", "bad", "why"),
    [
        ("/opt/app/run", "/opt/app", "owned by uid 1000"),
        ("/opt/tolink", "/opt/app", "owned by uid 1000"),
        ("/opt/shared/job", "/opt/shared", "writable by group 50"),
        ("/opt/mine", "/opt/mine", "writable by group 0"),
        (
            "/tmp/job.sh",
            "/tmp",
            "not there yet, and writable by others; the sticky bit",
        ),
    ],
)
def test_unsafe_chains(path: str, bad: str, why: str) -> None:
    [finding] = _tree(BASE).judge("cron job", path)
    assert finding.bad == bad and why in finding.why
    assert str(finding).startswith(f"cron job: {path}")


def test_finding_names_owner_mode_and_why() -> None:
    [finding] = _tree(BASE).judge("ssh.service ExecStartPre", "/opt/app/run")
    assert str(finding) == (
        "ssh.service ExecStartPre: /opt/app/run via /opt/app (1000:1000, 0755, owned by uid 1000)"
    )
    assert str(Finding("w", "/p", "/p", None, "does not exist")) == "w: /p (does not exist)"


def test_must_exist_reports_a_missing_file() -> None:
    [finding] = _tree(BASE).judge("x", "/usr/bin/missing", must_exist=True)
    assert finding.why == "does not exist"


def test_crontab_spool_exception_needs_every_detail() -> None:
    spool = Stat(D | 0o1730, 0, 101, 0)
    names = {101: "crontab", 102: "users"}.get
    assert unsafe(spool, "/var/spool/cron/crontabs", names) is None
    assert unsafe(spool, "/var/spool/cron/other", names) is not None
    assert unsafe(Stat(D | 0o1770, 0, 101, 0), "/var/spool/cron/crontabs", names) is not None
    assert unsafe(Stat(D | 0o1730, 0, 102, 0), "/var/spool/cron/crontabs", names) is not None
    assert unsafe(spool, "/var/spool/cron/crontabs") is not None, "no group names: no exception"


def test_guest_walker_records_what_the_replay_needs(tmp_path: Path) -> None:
    """The walker the clone runs, run here on a real tree: the replay over its record judges
    exactly as a walk over the live tree does."""
    (tmp_path / "app").mkdir()
    (tmp_path / "app/run").write_text("#!/bin/sh\n")
    os.chown(tmp_path / "app", 1000, 1000)
    (tmp_path / "bin").symlink_to("app")
    (tmp_path / "env").write_text("LD_PRELOAD=/x.so\n")
    text = (
        f"ExecStartEx={{ path={tmp_path}/bin/run ; argv[]={tmp_path}/bin/run --conf={tmp_path}/c ; "
        f"flags= ; start_time=[n/a] }}\nEnvironmentFiles={tmp_path}/env (ignore_errors=no)\n"
        "ExecStartEx={ path=true ; argv[]=true ; flags= ; start_time=[n/a] }\n"
        "PATH=/usr/local/sbin:/proc/self\n"
        f"search\t{tmp_path}/nothing:/usr/bin\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", guest_walker()],
        input=text, capture_output=True, text=True, check=True,
    )  # fmt: skip
    out = json.loads(proc.stdout)
    inodes = recorded(out["inodes"])
    steps, missing = inodes.resolve(f"{tmp_path}/bin/run")
    assert missing is None and steps[-3:] == [
        (f"{tmp_path}/bin", "link"),
        (f"{tmp_path}/app", "dir"),
        (f"{tmp_path}/app/run", "end"),
    ]
    st = inodes.lstat(f"{tmp_path}/app")
    assert st is not None and st.uid == 1000
    [finding] = inodes.judge("unit", f"{tmp_path}/bin/run")  # tmp_path is under /tmp
    assert finding.bad == "/tmp" and "sticky" in finding.why
    assert inodes.kind(f"{tmp_path}/c") is None  # looked at, absent
    assert inodes.kind("/usr/bin/true") == "file"  # a bare name, in each search folder
    assert inodes.kind("/usr/local/sbin") == "dir"
    assert out["files"] == {f"{tmp_path}/env": "LD_PRELOAD=/x.so\n"}
    assert "/proc/self" not in out["inodes"]
    with pytest.raises(AssertionError, match="did not look at /never"):
        inodes.judge("unit", "/never/asked")


def test_guest_walker_is_self_contained() -> None:
    """It runs with python3's standard library alone (the clone has nothing else)."""
    source = guest_walker()
    assert "validations" not in source and "import json, os, posixpath, re" in source
    compile(source, "<walker>", "exec")


def test_walk_needs_only_posixpath_and_stat() -> None:
    names = set(walk.__code__.co_names)
    assert names <= {"posixpath", "statmod", "S_ISLNK", "S_ISDIR", "join", "dirname", "pop",
                     "split", "startswith", "append"}, names  # fmt: skip
