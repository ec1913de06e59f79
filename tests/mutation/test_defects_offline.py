"""The mutation table without a VM: every defect applied to a small GPT disk whose ext4 root
is made with mkfs.ext4 -d, read back with the offline reader; the offline checks must fail
exactly where the table says. Also: every expected check id has a defect that fails it.
"""

from __future__ import annotations

import inspect
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from defects import (
    ARCHIVE_CHECKS,
    BY_NAME,
    DEFECTS,
    NOT_MUTABLE_LOCALLY,
    OFFLINE_CHECKS,
    Defect,
)
from defects_persistence import fake_esp
from diskedit import DiskEditError, DiskEditor

import validations.test_accounts as t_accounts
import validations.test_apparmor as t_apparmor
import validations.test_cloud_init as t_cloud
import validations.test_credentials as t_credentials
import validations.test_el_security as t_el
import validations.test_guest_tools as t_guest
import validations.test_hygiene as t_hygiene
import validations.test_identity as t_identity
import validations.test_network as t_network
import validations.test_package_sources as t_sources
import validations.test_packages as t_packages
import validations.test_persistence as t_persistence
import validations.test_ssh as t_ssh
import validations.test_sudo as t_sudo
import validations.test_system as t_system
import validations.test_trust as t_trust
from core.errors import ImageDefect, InfrastructureError
from core.model import BuildResult
from tests.support import castore
from validations.expected import EXPECTED
from validations.offline import Ext4Image, find_root, open_image

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="mkfs.ext4 -d keeps file owners only when run as root"
)
MODULES = (
    t_accounts,
    t_apparmor,
    t_sources,
    t_sudo,
    t_ssh,
    t_system,
    t_packages,
    t_guest,
    t_cloud,
    t_hygiene,
    t_identity,
    t_el,
    t_network,
    t_credentials,
    t_trust,
    t_persistence,
)
ROOT_OFFSET = 5 * 1024 * 1024
DATA = Path(__file__).resolve().parents[1] / "data"
ESP_GRUB_CFG = (
    "set timeout=0\nsearch --no-floppy --label rootfs --set=root\n"
    "linux /vmlinuz root=LABEL=rootfs ro console=tty0 console=ttyS0,115200n8\ninitrd /initrd.img\nboot\n"
)


def _checks() -> dict[str, Callable[..., None]]:
    found = {}
    for module in MODULES:
        for name, fn in vars(module).items():
            if not name.startswith("test_") or not callable(fn):
                continue
            for mark in getattr(fn, "pytestmark", []):
                if mark.name == "check":
                    found[mark.args[0]] = fn
    return found


CHECKS = _checks()
# The disk here is Debian: it runs the Debian family's offline checks (EL: test_el_trees.py),
# but not those that need a real package database (test_package_defects.py runs them).
OFFLINE = {
    cid: fn
    for cid, fn in CHECKS.items()
    if list(inspect.signature(fn).parameters) == ["image"]
    and cid in EXPECTED["debian"]
    and cid not in ARCHIVE_CHECKS
}

SKELETON: dict[str, str] = {
    "etc/ssh/sshd_config": "Include /etc/ssh/sshd_config.d/*.conf\nUsePAM yes\n",
    "etc/ssh/sshd_config.d/01-template-hardening.conf": "PasswordAuthentication no\n",
    "etc/ssh/moduli": "20230101000000 2 6 100 3071 2 " + "C" * 768 + "\n",
    "etc/passwd": "root:x:0:0:root:/root:/bin/bash\n"
    "games:x:5:60:games:/usr/games:/usr/sbin/nologin\n"
    "www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin\n"
    "backup:x:34:34:backup:/var/backups:/usr/sbin/nologin\n"
    "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
    "etc/group": "root:x:0:\nadm:x:4:\ndisk:x:6:\nsudo:x:27:\nwww-data:x:33:\nshadow:x:42:\n"
    "games:x:60:\nbackup:x:34:\nstaff:x:50:\nnogroup:x:65534:\n",
    "etc/shadow": "root:*:19000:0:99999:7:::\ngames:*:19000:0:99999:7:::\n"
    "www-data:*:19000:0:99999:7:::\nbackup:*:19000:0:99999:7:::\n"
    "nobody:*:19000:0:99999:7:::\n",
    "etc/gshadow": "root:*::\nadm:*::\nsudo:*::\nwww-data:*::\nshadow:*::\ngames:*::\nbackup:*::\nstaff:*::\nnogroup:*::\n",
    "etc/apt/sources.list": "deb http://deb.debian.org/debian bookworm main\n"
    "deb http://deb.debian.org/debian bookworm-updates main\n",
    "etc/apparmor.d/usr.bin.man": "profile man /usr/bin/man {\n}\n",
    "etc/apparmor.d/lsb_release": "profile lsb_release {\n}\n",
    "etc/apparmor.d/nvidia_modprobe": "profile nvidia_modprobe {\n}\n",
    "etc/sysctl.conf": "# /etc/sysctl.conf\n",
    "etc/sudoers": "Defaults env_reset\nroot ALL=(ALL:ALL) ALL\n%sudo ALL=(ALL:ALL) ALL\n@includedir /etc/sudoers.d\n",
    "etc/sudoers.d/README": "# drop-ins go here\n",
    "etc/cloud/cloud.cfg": "users: [default]\ncloud_init_modules: [bootcmd]\n",
    "etc/cloud/cloud.cfg.d/90_dpkg.cfg": "datasource_list: [ NoCloud, None ]\n",
    "etc/cloud/cloud.cfg.d/95-template-datasources.cfg": (
        "datasource_list: [ NoCloud, ConfigDrive, CloudStack ]\n"
        "datasource:\n  CloudStack:\n    max_wait: 30\n    timeout: 10\n"
    ),
    "etc/cloud/ds-identify.cfg": "policy: search,found=all,maybe=all,notfound=enabled\n",
    "etc/cloud/cloud.cfg.d/95-template-settings.cfg": "ssh_pwauth: false\ndisable_root: true\n",
    "var/lib/dpkg/status": "Package: libc6\nStatus: install ok installed\nVersion: 2.36-9\n\n"
    "Package: libssl3\nStatus: install ok installed\nVersion: 3.0.22-1~deb12u2\n\n",
    "etc/systemd/system/getty.target.wants/getty@tty1.service": "",
    "usr/bin/cloud-init": "#!/usr/bin/python3\n",
    "lib/systemd/system/cloud-init.service": "[Service]\n",
    "lib/systemd/system/cloud-init-local.service": "[Service]\n",
    "etc/machine-id": "",
    "usr/lib/os-release": 'ID=debian\nVERSION_ID="12"\n',
    "var/log/syslog": "",
    "root/.profile": "# root\n",
    "etc/adduser.conf": "DSHELL=/bin/bash\nDHOME=/home\nDIR_MODE=0700\n",
    "etc/login.defs": "UMASK\t\t022\nENCRYPT_METHOD SHA512\n",
    "lib/modules/6.1.0-57-amd64/modules.dep": "kernel/drivers/net/xen-netfront.ko.xz:\n"
    "kernel/drivers/block/xen-blkfront.ko.xz:\nkernel/drivers/xen/xenfs/xenfs.ko.xz:\n",
    "lib/modules/6.1.0-57-amd64/modules.builtin": "kernel/drivers/xen/xenbus/xenbus.ko\n",
    "lib/modprobe.d/aliases.conf": "alias net-pf-10 ipv6\n",
    "etc/ssl/openssl.cnf": "HOME = .\nopenssl_conf = openssl_init\n[openssl_init]\n[ ca ]\n",
    "etc/systemd/journald.conf": "[Journal]\n#Storage=auto\n",
    "etc/ssh/ssh_config": (DATA / "trust/ssh_config-debian12").read_text(),
    # Debian 12's PAM as the template leaves it (nullok off: 30-system-hardening.sh)
    **{
        f"etc/pam.d/{p.name}": p.read_text().replace("pam_unix.so nullok", "pam_unix.so")
        for p in sorted((DATA / "pam/debian12/etc-pam.d").iterdir())
    },
}


def _make_disk(tmp: Path) -> Path:
    root = tmp / "root"
    for rel, text in SKELETON.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for d in (
        "home",
        "var/lib/dhcp",
        "var/lib/cloud",
        "var/cache/apt/archives",
        "etc/sysctl.d",
        "var/crash",
        "etc/systemd/system/cloud-init.target.wants",
        "var/backups",
        "var/log/journal",
        "tmp",
    ):
        (root / d).mkdir(parents=True, exist_ok=True)
    (root / "etc/os-release").symlink_to("../usr/lib/os-release")
    castore.debian_store(root)  # ca-certificates as update-ca-certificates leaves it
    for unit in ("cloud-init.service", "cloud-init-local.service"):
        (root / "etc/systemd/system/cloud-init.target.wants" / unit).symlink_to(
            f"/lib/systemd/system/{unit}"
        )
    for shadow in ("etc/shadow", "etc/gshadow"):
        os.chown(root / shadow, 0, 42)
        (root / shadow).chmod(0o640)
    (root / "tmp").chmod(0o1777)
    (root / "root").chmod(0o700)
    (root / "etc/ssh/sshd_config").chmod(0o600)
    (root / "etc/sudoers").chmod(0o440)
    fs = tmp / "root.ext4"
    with fs.open("wb") as fh:
        fh.truncate(48 * 1024 * 1024)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-L", "rootfs", "-d", str(root), str(fs)], check=True)
    disk = tmp / "good.raw"
    with disk.open("wb") as fh:
        fh.truncate(ROOT_OFFSET + 48 * 1024 * 1024 + 1024 * 1024)
    subprocess.run(
        ["sfdisk", "--quiet", str(disk)],
        input="label: gpt\nstart=1MiB, size=4MiB, type=U, name=ESP\n"
        "start=5MiB, size=48MiB, type=L, name=rootfs\n",
        text=True,
        check=True,
    )
    subprocess.run(
        ["dd", f"if={fs}", f"of={disk}", "bs=1M", "seek=5", "conv=notrunc,sparse", "status=none"],
        check=True,
    )
    fake_esp(disk, 1024 * 1024, 4 * 1024 * 1024, ESP_GRUB_CFG)
    return disk


@pytest.fixture(scope="module")
def good_disk(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _make_disk(tmp_path_factory.mktemp("skeleton"))


def _failing_offline(raw: Path) -> set[str]:
    image = Ext4Image(raw, find_root(raw))
    failed = set()
    for cid, fn in OFFLINE.items():
        try:
            fn(image)
        except AssertionError:
            failed.add(cid)
    return failed


def test_offline_checks_are_the_ones_the_table_assumes() -> None:
    assert set(OFFLINE) == OFFLINE_CHECKS


def test_reader_finds_the_root_partition(good_disk: Path) -> None:
    assert find_root(good_disk) == ROOT_OFFSET
    image = Ext4Image(good_disk, ROOT_OFFSET)
    assert image.read_text("/etc/os-release") == 'ID=debian\nVERSION_ID="12"\n'
    assert image.lstat("/etc/os-release").is_symlink
    assert image.stat("/etc/shadow").gid == 42 and image.stat("/etc/shadow").perms == 0o640
    assert "cloud-init.service" in image.listdir("/etc/systemd/system/cloud-init.target.wants")
    assert not image.exists("/etc/ssh/ssh_host_rsa_key")
    with pytest.raises(FileNotFoundError):
        image.read_text("/etc/nothing-here")


def test_good_skeleton_passes_every_offline_check(good_disk: Path) -> None:
    assert _failing_offline(good_disk) == set()


# Defects of the checks that also read the archive need the real image: test_package_defects.py.
SKELETON_DEFECTS = [d for d in DEFECTS if not set(d.fails) <= ARCHIVE_CHECKS]


@pytest.mark.parametrize("defect", SKELETON_DEFECTS, ids=[d.name for d in SKELETON_DEFECTS])
def test_defect_applies_offline_and_fails_exactly_its_offline_checks(
    defect: Defect, good_disk: Path, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.raw"
    shutil.copyfile(good_disk, broken)
    assert not defect.probe(DiskEditor(broken)), f"{defect.name} already present in the good image"
    defect.apply(DiskEditor(broken))
    assert defect.probe(DiskEditor(broken)), f"{defect.name} did not land in the image"
    want = set(defect.fails) & OFFLINE_CHECKS
    assert _failing_offline(broken) == want


def test_editor_reports_debugfs_errors(good_disk: Path, tmp_path: Path) -> None:
    broken = tmp_path / "b.raw"
    shutil.copyfile(good_disk, broken)
    with pytest.raises(DiskEditError, match="not found"):
        DiskEditor(broken).rm("/etc/does-not-exist")


def test_every_expected_check_has_a_defect_that_fails_it() -> None:
    covered = {cid for d in DEFECTS for cid in d.fails}
    for family, ids in EXPECTED.items():
        uncovered = set(ids) - covered - set(NOT_MUTABLE_LOCALLY)
        assert not uncovered, f"{family}: no broken image fails {sorted(uncovered)}"
    unknown = covered - {cid for ids in EXPECTED.values() for cid in ids}
    assert not unknown, f"defects name unknown check ids: {sorted(unknown)}"


def test_table_shape() -> None:
    assert len(DEFECTS) >= 18
    assert len(BY_NAME) == len(DEFECTS), "defect names must be unique"
    concerns = {d.concern for d in DEFECTS}
    ci_concerns = {d.concern for d in DEFECTS if d.ci}
    assert (
        concerns
        == ci_concerns
        == {
            "ssh",
            "system",
            "guest-tools",
            "cloud-init",
            "hygiene",
            "identity",
            "reach",
            "accounts",
            "sudo",
            "trust",
        }
    )
    assert set(CHECKS) == {cid for ids in EXPECTED.values() for cid in ids}, (
        "validations/ and validations/expected.py disagree on the check ids"
    )


def test_every_new_check_has_a_defect_that_fails_only_it() -> None:
    """Each id added by the validation v2 issue is failed by one defect of its own."""
    new = {
        "ssh-trust", "system-security-updates", "system-rootfs-grows", "system-listeners",
        "system-time-sync", "system-world-writable", "system-console-autologin",
        "cloud-init-security", "hygiene-credentials", "hygiene-account-backups",
    }  # fmt: skip
    only = {d.fails[0] for d in DEFECTS if len(d.fails) == 1 and not d.boot_fails}
    assert new <= only, f"no defect fails exactly {sorted(new - only)}"


def test_boot_failing_defects_expect_every_booted_check() -> None:
    d = BY_NAME["cloud-init-missing"]
    failures = d.expected_failures("debian")
    assert "cloud-init-installed" in failures and "ssh-password-auth" in failures
    assert "hygiene-host-keys" not in failures and "guest-agent-reporting" not in failures


def _build(artifact: Path, fmt: str) -> BuildResult:
    return BuildResult(
        os_name="debian12", status="provided", artifact=str(artifact), artifact_format=fmt,
        sha256=None, size=None, log_path=None, duration_s=0.0, packer_version=None, plugins={},
        inputs_digest=None, template=None, var_file=None, built_at=None, platform="local",
    )  # fmt: skip


def test_open_image_converts_qcow2_and_removes_the_copy(good_disk: Path, tmp_path: Path) -> None:
    qcow = tmp_path / "good.qcow2"
    subprocess.run(
        ["qemu-img", "convert", "-f", "raw", "-O", "qcow2", str(good_disk), str(qcow)], check=True
    )
    work = tmp_path / "work"
    with open_image(_build(qcow, "qcow2"), work) as image:
        assert image.read_text("/usr/lib/os-release").startswith("ID=debian")
        assert list(work.iterdir()), "the raw copy lives in the workdir while open"
    assert list(work.iterdir()) == []


def test_xfs_root_asks_for_libguestfs(good_disk: Path, tmp_path: Path) -> None:
    import importlib.util

    if importlib.util.find_spec("guestfs"):
        pytest.skip("libguestfs is installed here: the fallback would run instead")
    xfs = tmp_path / "xfs.raw"
    shutil.copyfile(good_disk, xfs)
    with xfs.open("r+b") as fh:
        fh.seek(ROOT_OFFSET)
        fh.write(b"XFSB" + b"\0" * 2048)  # the superblock magic, and no ext4 magic left
    with (
        pytest.raises(InfrastructureError, match="python3-guestfs"),
        open_image(_build(xfs, "raw"), tmp_path / "w"),
    ):
        pass


def test_disk_without_any_filesystem_is_an_image_defect(tmp_path: Path) -> None:
    blank = tmp_path / "blank.raw"
    with blank.open("wb") as fh:
        fh.truncate(4 * 1024 * 1024)
    with pytest.raises(ImageDefect, match="no partition table and no ext4"):
        find_root(blank)


# -- the credential check on each kind of credential file, made offline ------------------------

PRIVATE_KEY = (
    "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmU=\n"
    "-----END OPENSSH PRIVATE KEY-----\n"
)
CREDENTIAL_KINDS = {
    "root-authorized-keys": ("/root/.ssh/authorized_keys", "ssh-ed25519 AAAAC3Nza foreign\n"),
    "system-user-authorized-keys2": (
        "/var/backups/.ssh/authorized_keys2",
        "ssh-rsa AAAAB3Nza foreign\n",
    ),
    "root-private-key": ("/root/.ssh/id_ed25519", PRIVATE_KEY),
    "snakeoil-key": (
        "/etc/ssl/private/ssl-cert-snakeoil.key",
        "-----BEGIN PRIVATE KEY-----\nMIIEvQ==\n-----END PRIVATE KEY-----\n",
    ),
    "rsa-key-in-opt": (
        "/opt/deploy/key.pem",
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEow==\n-----END RSA PRIVATE KEY-----\n",
    ),
    "putty-key-in-tmp": ("/tmp/deploy.ppk", "PuTTY-User-Key-File-3: ssh-ed25519\n"),
    "netrc": ("/root/.netrc", "machine example.com login ci password s3cr3tpass\n"),
    "aws-credentials": ("/root/.aws/credentials", "[default]\naws_access_key_id = x\n"),
    "docker-config": ("/root/.docker/config.json", '{"auths": {"r.example": {"auth": "eA=="}}}'),
    "git-credentials": ("/root/.git-credentials", "https://ci:token@git.example\n"),
    "pgpass": ("/root/.pgpass", "db:5432:*:app:pw\n"),
    "hash-in-log": (
        "/var/log/auth.log",
        "chpasswd: packer:$6$rounds=4096$saltsalt$" + "h" * 86 + "\n",
    ),
    "aws-key-in-log": ("/var/log/syslog", "upload with AKIAIOSFODNN7EXAMPLE done\n"),
    "github-token-in-bashrc": (
        "/root/.bashrc",
        "export GH_TOKEN=ghp_" + "a" * 36 + "\n",
    ),
    "password-in-tmp": ("/tmp/build.env", "PKR_VAR_build_password=hunter2hunter2\n"),
}


@pytest.mark.parametrize("kind", sorted(CREDENTIAL_KINDS))
def test_credential_check_fails_on_each_kind(kind: str, good_disk: Path, tmp_path: Path) -> None:
    path, content = CREDENTIAL_KINDS[kind]
    broken = tmp_path / "broken.raw"
    shutil.copyfile(good_disk, broken)
    DiskEditor(broken).write(path, content, mode=0o600)
    scratch = {"hygiene-caches-logs"} if path.startswith(("/tmp/", "/var/tmp/")) else set()
    assert _failing_offline(broken) == {"hygiene-credentials"} | scratch
    with pytest.raises(AssertionError) as failure:
        t_credentials.test_credentials(Ext4Image(broken, find_root(broken)))
    assert path in str(failure.value)
    assert "s3cr3tpass" not in str(failure.value) and "hunter2" not in str(failure.value)


BACKUP_KINDS = {
    "shadow-backup-removed-user": (
        "/etc/shadow-", "root:*:19000::::::\npacker:!:19000::::::\n", 0o640, "packer",
    ),
    "shadow-backup-usable-hash": (
        "/etc/shadow-", "root:$6$salt$" + "r" * 86 + ":19000::::::\n", 0o640, "usable password",
    ),
    "passwd-backup-wider-mode": (
        "/etc/passwd-", "root:x:0:0:root:/root:/bin/bash\n", 0o664, "wider",
    ),
    "gshadow-backup-removed-group": ("/etc/gshadow-", "root:*::\npacker:!::\n", 0o640, "packer"),
    "var-backups-shadow-hash": (
        "/var/backups/shadow.bak", "root:$y$j9T$salt$" + "y" * 43 + ":19000::::::\n", 0o600,
        "usable password",
    ),
}  # fmt: skip


@pytest.mark.parametrize("kind", sorted(BACKUP_KINDS))
def test_account_backup_check_fails_on_each_kind(
    kind: str, good_disk: Path, tmp_path: Path
) -> None:
    path, content, mode, named = BACKUP_KINDS[kind]
    broken = tmp_path / "broken.raw"
    shutil.copyfile(good_disk, broken)
    DiskEditor(broken).write(path, content, mode=mode, gid=42 if "shadow" in path else 0)
    assert _failing_offline(broken) == {"hygiene-account-backups"}
    with pytest.raises(AssertionError, match=named):
        t_credentials.test_account_backups(Ext4Image(broken, find_root(broken)))


def test_account_backups_identical_to_the_live_files_pass(good_disk: Path, tmp_path: Path) -> None:
    broken = tmp_path / "b.raw"
    shutil.copyfile(good_disk, broken)
    editor = DiskEditor(broken)
    for live in ("/etc/passwd", "/etc/shadow", "/etc/gshadow"):
        st = editor.reader().stat(live)
        editor.write(f"{live}-", editor.read_text(live), st.perms, st.uid, st.gid)
    assert _failing_offline(broken) == set()


def test_world_writable_directory_without_sticky_bit_fails(good_disk: Path, tmp_path: Path) -> None:
    broken = tmp_path / "b.raw"
    shutil.copyfile(good_disk, broken)
    DiskEditor(broken).mkdir("/var/lib/drop", mode=0o777)
    assert _failing_offline(broken) == {"system-world-writable"}
    DiskEditor(broken).chmod("/var/lib/drop", 0o1777)  # sticky: allowed
    assert _failing_offline(broken) == set()


def test_serial_getty_and_display_manager_autologin_fail(good_disk: Path, tmp_path: Path) -> None:
    for path, text in (
        (
            "/etc/systemd/system/serial-getty@ttyS0.service.d/override.conf",
            "[Service]\nExecStart=\nExecStart=-/sbin/agetty -a root --keep-baud %I $TERM\n",
        ),
        ("/etc/lightdm/lightdm.conf.d/50-auto.conf", "[Seat:*]\nautologin-user=ubuntu\n"),
        ("/etc/gdm3/daemon.conf", "[daemon]\nAutomaticLoginEnable = true\n"),
        ("/etc/sddm.conf.d/autologin.conf", "[Autologin]\nUser=kiosk\n"),
    ):
        broken = tmp_path / "b.raw"
        shutil.copyfile(good_disk, broken)
        DiskEditor(broken).write(path, text)
        assert _failing_offline(broken) == {"system-console-autologin"}, path
