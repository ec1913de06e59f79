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
from defects import BY_NAME, DEFECTS, NOT_MUTABLE_LOCALLY, OFFLINE_CHECKS, Defect
from diskedit import DiskEditError, DiskEditor

import validations.test_cloud_init as t_cloud
import validations.test_el_security as t_el
import validations.test_guest_tools as t_guest
import validations.test_hygiene as t_hygiene
import validations.test_identity as t_identity
import validations.test_network as t_network
import validations.test_ssh as t_ssh
import validations.test_system as t_system
from core.errors import ImageDefect, InfrastructureError
from core.model import BuildResult
from validations.expected import EXPECTED
from validations.offline import Ext4Image, find_root, open_image

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="mkfs.ext4 -d keeps file owners only when run as root"
)
MODULES = (t_ssh, t_system, t_guest, t_cloud, t_hygiene, t_identity, t_el, t_network)
ROOT_OFFSET = 5 * 1024 * 1024


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
# The disk here is Debian: it runs the Debian family's offline checks (EL: test_el_trees.py).
OFFLINE = {
    cid: fn
    for cid, fn in CHECKS.items()
    if list(inspect.signature(fn).parameters) == ["image"] and cid in EXPECTED["debian"]
}

SKELETON: dict[str, str] = {
    "etc/ssh/sshd_config": "Include /etc/ssh/sshd_config.d/*.conf\nUsePAM yes\n",
    "etc/ssh/sshd_config.d/01-template-hardening.conf": "PasswordAuthentication no\n",
    "etc/ssh/moduli": "20230101000000 2 6 100 3071 2 " + "C" * 768 + "\n",
    "etc/passwd": "root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
    "etc/group": "root:x:0:\nshadow:x:42:\n",
    "etc/shadow": "root:*:19000:0:99999:7:::\nnobody:*:19000:0:99999:7:::\n",
    "etc/sudoers": "Defaults env_reset\nroot ALL=(ALL:ALL) ALL\n%sudo ALL=(ALL:ALL) ALL\n@includedir /etc/sudoers.d\n",
    "etc/sudoers.d/README": "# drop-ins go here\n",
    "etc/cloud/cloud.cfg": "users: [default]\ncloud_init_modules: [bootcmd]\n",
    "etc/cloud/cloud.cfg.d/90_dpkg.cfg": "datasource_list: [ NoCloud, None ]\n",
    "etc/cloud/cloud.cfg.d/95-template-datasources.cfg": "datasource_list: [ NoCloud, ConfigDrive ]\n",
    "usr/bin/cloud-init": "#!/usr/bin/python3\n",
    "lib/systemd/system/cloud-init.service": "[Service]\n",
    "lib/systemd/system/cloud-init-local.service": "[Service]\n",
    "etc/machine-id": "",
    "usr/lib/os-release": 'ID=debian\nVERSION_ID="12"\n',
    "var/log/syslog": "",
    "root/.profile": "# root\n",
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
    ):
        (root / d).mkdir(parents=True, exist_ok=True)
    (root / "etc/os-release").symlink_to("../usr/lib/os-release")
    for unit in ("cloud-init.service", "cloud-init-local.service"):
        (root / "etc/systemd/system/cloud-init.target.wants" / unit).symlink_to(
            f"/lib/systemd/system/{unit}"
        )
    os.chown(root / "etc/shadow", 0, 42)
    (root / "etc/shadow").chmod(0o640)
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


@pytest.mark.parametrize("defect", DEFECTS, ids=[d.name for d in DEFECTS])
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
        == {"ssh", "system", "guest-tools", "cloud-init", "hygiene", "identity"}
    )
    assert set(CHECKS) == {cid for ids in EXPECTED.values() for cid in ids}, (
        "validations/ and validations/expected.py disagree on the check ids"
    )


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
