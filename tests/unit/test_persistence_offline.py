"""The offline half of `persistence-root-exec` and of `system-console-shell` on root trees made
in the test (cron, cloud-init, the loader, shells, rc.local, boot files), and on the EL-shaped
good tree: each mechanism is found, sound trees pass."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support import el_tree
from validations import console, persistence
from validations.offline_tree import TreeImage

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="file owners need root")

FILES = {
    "etc/passwd": "root:x:0:0:root:/root:/bin/bash\nbackup:x:34:34::/var/backups:/usr/sbin/nologin\n",
    "etc/group": "root:x:0:\nstaff:x:50:\ncrontab:x:101:\n",
    "etc/cron.d/e2scrub_all": "30 3 * * 0 root test -e /run/systemd/system || "
    "SERVICE_MODE=1 /usr/lib/e2fsprogs/e2scrub_all_cron\n",
    "etc/cron.daily/dpkg": "#!/bin/sh\n",
    "usr/lib/e2fsprogs/e2scrub_all_cron": "#!/bin/sh\n",
    "usr/local/sbin/zz-job": "#!/bin/sh\n",
    "etc/cloud/cloud.cfg": "cloud_init_modules: [bootcmd]\n",
    "etc/cloud/cloud.cfg.d/90-datasources.cfg": "datasource_list: [ NoCloud, None ]\n",
    "etc/ld.so.conf": "include /etc/ld.so.conf.d/*.conf\n",
    "etc/ld.so.conf.d/libc.conf": "/usr/local/lib\n",
    "etc/environment": "",
    "etc/login.defs": "ENV_SUPATH\tPATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin\n",
    "etc/profile": "# profile\n",
    "etc/profile.d/Z99-locale.sh": "# locale\n",
    "etc/shells": "/bin/sh\n/bin/bash\n",
    "root/.profile": "# root\n",
    "root/.bashrc": "# root\n",
}
DIRS = ("tmp", "var/tmp", "var/lib/cloud/scripts/per-boot", "run", "usr/lib", "usr/local/lib",
        "usr/local/bin", "usr/bin", "usr/sbin", "opt", "home/user", "var/spool")  # fmt: skip


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    root.mkdir()
    for rel, text in FILES.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for rel in DIRS:
        (root / rel).mkdir(parents=True, exist_ok=True)
    for rel in (
        "usr/local/sbin/zz-job",
        "etc/cron.daily/dpkg",
        "usr/lib/e2fsprogs/e2scrub_all_cron",
    ):
        (root / rel).chmod(0o755)
    (root / "root").chmod(0o700)
    for rel in ("tmp", "var/tmp"):
        (root / rel).chmod(0o1777)
    os.chown(root / "home/user", 1000, 1000)
    root.chmod(0o755)
    return root


def _offline(root: Path) -> list[str]:
    return persistence.offline_findings(TreeImage(root))


def test_the_good_tree_passes(tree: Path) -> None:
    assert _offline(tree) == []
    assert console.boot_config_findings(TreeImage(tree)) == []


def _write(
    root: Path, rel: str, text: str, mode: int = 0o644, *, uid: int = 0, gid: int = 0
) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)
    os.chown(path, uid, gid)
    return path


DEFECTS: dict[str, tuple[Callable[[Path], object], str]] = {
    "cron.d job running a user's file": (
        lambda r: (
            _write(r, "etc/cron.d/zz", "17 3 * * * root /home/user/job.sh --quiet\n"),
            _write(r, "home/user/job.sh", "#!/bin/sh\n", 0o755, uid=1000, gid=1000),
        ),
        "cron /etc/cron.d/zz:1 (root): /home/user/job.sh via /home/user (1000:1000, 0755, owned "
        "by uid 1000)",
    ),
    "crontab @reboot script anyone can plant": (
        lambda r: _write(r, "etc/crontab", "SHELL=/bin/sh\n@reboot root sh /tmp/boot.sh%input\n"),
        "cron /etc/crontab:2 (root): /tmp/boot.sh via /tmp (0:0, 1777, not there yet, and writable",
    ),
    "root's own crontab": (
        lambda r: (
            _write(r, "var/spool/cron/crontabs/root", "*/5 * * * * /opt/sync\n", 0o600),
            _write(r, "opt/sync", "#!/bin/sh\n", 0o775, uid=0, gid=50),
        ),
        "cron /var/spool/cron/crontabs/root:1 (root): /opt/sync (0:50, 0775, writable by group 50)",
    ),
    "anacrontab PATH": (
        lambda r: _write(
            r, "etc/anacrontab", "PATH=/tmp:/usr/bin\n1 5 cron.daily run-parts /etc/cron.daily\n"
        ),
        "cron /etc/anacrontab (PATH): /tmp (0:0, 1777, writable by others",
    ),
    "run-parts script group-writable": (
        lambda r: _write(r, "etc/cron.daily/zz-rotate", "#!/bin/sh\n", 0o775),
        "run-parts /etc/cron.daily (root): /etc/cron.daily/zz-rotate (0:0, 0775, writable by group 0)",
    ),
    "cron table others can write": (
        lambda r: (r / "etc/cron.d/e2scrub_all").chmod(0o666),
        "cron table: /etc/cron.d/e2scrub_all (0:0, 0666, writable by others)",
    ),
    "cloud-init per-boot script of a user": (
        lambda r: _write(r, "var/lib/cloud/scripts/per-boot/zz.sh", "#!/bin/sh\n", 0o755, uid=1000),
        "cloud-init scripts-per-boot (root): /var/lib/cloud/scripts/per-boot/zz.sh (1000:0, 0755",
    ),
    "cloud-init bootcmd script anyone can plant": (
        lambda r: _write(
            r,
            "etc/cloud/cloud.cfg.d/99-zz.cfg",
            "bootcmd:\n  - [ sh, -c, 'test -x /var/tmp/fb.sh && /var/tmp/fb.sh; true' ]\n",
        ),
        "cloud-init bootcmd[0] (root): /var/tmp/fb.sh via /var/tmp (0:0, 1777",
    ),
    "cloud-init runcmd file of a user": (
        lambda r: (
            _write(r, "etc/cloud/cloud.cfg.d/99-zz.cfg", "runcmd:\n  - /opt/setup.sh\n"),
            _write(r, "opt/setup.sh", "#!/bin/sh\n", 0o755, uid=1000, gid=1000),
        ),
        "cloud-init runcmd[0] (root): /opt/setup.sh (1000:1000, 0755, owned by uid 1000)",
    ),
    "ld.so.preload": (
        lambda r: _write(r, "etc/ld.so.preload", "# audit\n/usr/lib/libhook.so\n"),
        "the dynamic loader: /etc/ld.so.preload loads /usr/lib/libhook.so into every program",
    ),
    "ld.so.conf.d folder of a user": (
        lambda r: _write(r, "etc/ld.so.conf.d/zz.conf", "/home/user/lib\n"),
        "the dynamic loader's search folders: /home/user/lib via /home/user (1000:1000, 0755",
    ),
    "/etc/environment LD_LIBRARY_PATH": (
        lambda r: _write(r, "etc/environment", 'LD_LIBRARY_PATH="/opt/lib"\n'),
        "/etc/environment: LD_LIBRARY_PATH=/opt/lib",
    ),
    "/etc/environment PATH with a relative entry": (
        lambda r: _write(r, "etc/environment", "PATH=/usr/bin:.:/bin\n"),
        "/etc/environment: PATH entry . is relative",
    ),
    "ENV_SUPATH with a folder others can write": (
        lambda r: _write(r, "etc/login.defs", "ENV_SUPATH PATH=/var/tmp:/usr/bin\n"),
        "su (ENV_SUPATH in /etc/login.defs) (PATH): /var/tmp (0:0, 1777",
    ),
    "profile.d script group-writable": (
        lambda r: _write(r, "etc/profile.d/zz-proxy.sh", "export X=1\n", 0o664),
        "shell start-up file (/etc/profile.d): /etc/profile.d/zz-proxy.sh (0:0, 0664, writable by group 0)",
    ),
    "root's .bashrc owned by a user": (
        lambda r: os.chown(r / "root/.bashrc", 1000, 0),
        "root's shell start-up file: /root/.bashrc (1000:0, 0644, owned by uid 1000)",
    ),
    "rc.local group-writable": (
        lambda r: _write(r, "etc/rc.local", "#!/bin/sh\nexit 0\n", 0o775, uid=0, gid=50),
        "rc.local (rc-local.service, root): /etc/rc.local (0:50, 0775, writable by group 50)",
    ),
}


@pytest.mark.parametrize("name", sorted(DEFECTS))
def test_each_offline_mechanism_is_found(name: str, tree: Path) -> None:
    apply, expected = DEFECTS[name]
    apply(tree)
    found = _offline(tree)
    assert len(found) == 1 and found[0].startswith(expected), found


def test_crontab_spool_of_debian_cron_passes(tree: Path) -> None:
    spool = tree / "var/spool/cron/crontabs"
    spool.mkdir(parents=True)
    os.chown(spool, 0, 101)
    spool.chmod(0o1730)
    _write(tree, "var/spool/cron/crontabs/root", "17 3 * * * /usr/local/sbin/zz-job\n", 0o600)
    _write(tree, "etc/cron.d/zz", "17 4 * * * backup /home/user/job.sh\n")  # not root's job
    assert _offline(tree) == []


@pytest.mark.parametrize(
    ("rel", "text", "needle"),
    [
        (
            "etc/default/grub.d/99-zz.cfg",
            'GRUB_CMDLINE_LINUX_DEFAULT="$GRUB_CMDLINE_LINUX_DEFAULT rd.shell"\n',
            "rd.shell",
        ),
        ("etc/default/grub", 'GRUB_CMDLINE_LINUX="console=ttyS0 single"\n', "single"),
        (
            "boot/grub/grub.cfg",
            "menuentry 'Debian' {\n linux /vmlinuz ro systemd.debug_shell\n}\n",
            "systemd.debug_shell",
        ),
        (
            "boot/loader/entries/zz.conf",
            "title x\noptions root=LABEL=rootfs ro emergency\n",
            "emergency",
        ),
        ("etc/kernel/cmdline", "root=LABEL=rootfs ro init=/bin/bash\n", "init=/bin/bash"),
        ("boot/grub2/grubenv", "# GRUB\nkernelopts=root=x ro rd.break\n", "rd.break"),
    ],
)
def test_boot_configuration_of_the_next_boot(tree: Path, rel: str, text: str, needle: str) -> None:
    _write(tree, rel, text)
    found = console.boot_config_findings(TreeImage(tree))
    assert len(found) == 1 and needle in found[0] and found[0].startswith(("GRUB", "/")), found


def test_cron_parser() -> None:
    jobs, env = persistence.cron_jobs(
        "# c\nMAILTO=root\nPATH=/usr/bin\n*/5 * * * * root /a %b\n@daily nobody /c\n",
        "/etc/crontab", has_user=True,
    )  # fmt: skip
    assert env == [("MAILTO", "root"), ("PATH", "/usr/bin")]
    assert [(j.user, j.command) for j in jobs] == [("root", "/a "), ("nobody", "/c")]
    jobs, _ = persistence.cron_jobs("@reboot /x\n1 2 3 4 5 /y z\n", "root", has_user=False)
    assert [(j.user, j.command) for j in jobs] == [("root", "/x"), ("root", "/y z")]
    jobs, _ = persistence.cron_jobs(
        "7 25 weekly.job nice run-parts /etc/cron.weekly\n", "a", True, True
    )
    assert jobs[0].command == "nice run-parts /etc/cron.weekly"


def test_ld_so_conf_includes_are_relative_to_the_including_file() -> None:
    files = {
        "/etc/ld.so.conf": "include ld.so.conf.d/*.conf\n/usr/lib/extra\n",
        "/etc/ld.so.conf.d/a.conf": "# a\n/opt/a/lib\ninclude /etc/ld.so.conf.d/b.txt\n",
        "/etc/ld.so.conf.d/b.txt": "/opt/b/lib:/opt/c/lib\n",
    }
    folders, read = persistence.ld_so_conf_folders(
        files.__getitem__,
        lambda d: [p.rsplit("/", 1)[1] for p in files if p.rsplit("/", 1)[0] == d],
        files.__contains__,
    )
    assert folders == ["/opt/a/lib", "/opt/b/lib", "/opt/c/lib", "/usr/lib/extra"]
    assert read == ["/etc/ld.so.conf", "/etc/ld.so.conf.d/a.conf", "/etc/ld.so.conf.d/b.txt"]


def test_the_el_good_tree_passes(tmp_path: Path) -> None:
    good = el_tree.make_good_tree(tmp_path / "root")
    image = TreeImage(good)
    assert persistence.offline_findings(image) == []
    assert console.boot_config_findings(image) == []


@pytest.mark.parametrize(
    ("path", "text", "commands"),
    [
        (
            "/etc/udev/rules.d/99-a.rules",
            'ACTION=="add", RUN+="/bin/sh /var/tmp/x"\n# RUN+="/tmp/commented"\n'
            'KERNEL=="sd*", PROGRAM=="/opt/id %k", IMPORT{program}="/srv/env", RUN{builtin}+="kmod"\n',
            ["/bin/sh /var/tmp/x", "/opt/id %k", "/srv/env"],
        ),
        (
            "/etc/modprobe.d/a.conf",
            "install cramfs /bin/false\nremove x /opt/rm.sh --now\nblacklist y\n",
            ["/bin/false", "/opt/rm.sh --now"],
        ),
        (
            "/etc/apt/apt.conf.d/99a",
            'DPkg::Pre-Install-Pkgs {"/usr/sbin/dpkg-preconfigure --apt || true";};\n'
            'APT::Update::Post-Invoke-Success { "/a.sh"; "/b.sh"; };\n'
            'DPkg { Post-Invoke { "/c.sh"; }; };\n',
            ["/usr/sbin/dpkg-preconfigure --apt || true", "/a.sh", "/b.sh", "/c.sh"],
        ),
        (
            "/etc/logrotate.d/app",
            "/var/log/btmp {\n\tpostrotate\n\t\t/srv/reopen\n\tendscript\n}\n",
            ["\n\t\t/srv/reopen\n"],
        ),
        (
            "/etc/pam.d/sshd",
            "auth required pam_unix.so\nsession optional pam_exec.so quiet /x/audit\n",
            ["session optional pam_exec.so quiet /x/audit"],
        ),
        ("/etc/update-motd.d/10-uname", "#!/bin/sh\n/opt/not/parsed\n", []),
    ],
)
def test_hook_commands_by_format(path: str, text: str, commands: list[str]) -> None:
    """Only the command parts: a log file logrotate rotates is data, not code."""
    assert persistence.hook_commands(path, text) == commands
