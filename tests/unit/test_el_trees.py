"""The EL-only checks, proven without an EL VM: on EL-shaped root trees made here.

A good tree (tests/support/el_tree.py) passes every offline check of validations/, common and
EL alike; each EL defect applied to a copy fails exactly the checks it names, and every EL check
has such a defect. SELinux labels are real `security.selinux` extended attributes (root may
set them on this machine's ext4 even with no SELinux in its kernel); what they should be is
checked against libselinux's own selabel_lookup, and the same tree read through the ext4
reader (mkfs.ext4 -d copies the attributes, debugfs reads them back) gives the same verdict.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support import el_tree
from validations import selinux
from validations.expected import EL_SECURITY, expected_checks
from validations.offline import Ext4Image
from validations.offline_tree import TreeImage
from validations.test_el_security import LABELLED

needs_root = pytest.mark.skipif(
    os.geteuid() != 0, reason="security.* attributes and owners need root"
)
pytestmark = needs_root
CHECKS = el_tree.offline_checks()


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return el_tree.make_good_tree(tmp_path_factory.mktemp("el") / "root")


def test_every_el_check_reads_the_image_only() -> None:
    assert set(EL_SECURITY) <= set(CHECKS), "an EL check needs more than the image"
    assert set(EL_SECURITY) <= set(expected_checks("el"))
    assert not set(EL_SECURITY) & set(expected_checks("debian"))


def test_good_tree_passes_every_offline_check(good: Path) -> None:
    image = TreeImage(good)
    assert image.read_text("/etc/os-release").startswith('NAME="AlmaLinux"')
    assert image.lstat("/etc/os-release").is_symlink
    common = set(CHECKS) - set(EL_SECURITY)
    assert {"hygiene-host-keys", "cloud-init-installed", "hygiene-sudoers"} <= common
    assert el_tree.failing(image, CHECKS) == {}


@pytest.mark.parametrize("defect", el_tree.EL_DEFECTS, ids=[d.name for d in el_tree.EL_DEFECTS])
def test_el_defect_fails_exactly_its_checks(
    defect: el_tree.ElDefect, good: Path, tmp_path: Path
) -> None:
    tree = el_tree.broken_tree(good, defect, tmp_path / "root")
    failed = el_tree.failing(TreeImage(tree), CHECKS)
    assert set(failed) == defect.fails, failed


def test_every_el_check_has_a_defect_that_fails_it() -> None:
    covered = {cid for d in el_tree.EL_DEFECTS for cid in d.fails}
    # the EL checks, and the offline trust checks' EL readers (p11-kit's store, authselect's PAM)
    assert set(EL_SECURITY) | {"trust-ca-bundle", "trust-pam"} <= covered
    assert len({d.name for d in el_tree.EL_DEFECTS}) == len(el_tree.EL_DEFECTS)


def test_the_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text, ok = el_tree.run_table(tmp_path)
    with capsys.disabled():
        print("\nEL tree table (defect -> offline checks that failed):\n" + text)
    assert ok, text
    assert text.count("\n") == len(el_tree.EL_DEFECTS) + 2


@pytest.mark.skipif(not shutil.which("selabel_lookup"), reason="apt-get install selinux-utils")
def test_wanted_labels_agree_with_libselinux(good: Path) -> None:
    """Our file_contexts matcher gives what libselinux's selabel_lookup gives, path by path."""
    image = TreeImage(good)
    base = good / "etc/selinux/targeted/contexts/files"
    rules = selinux.load_file_contexts(image, "targeted")
    paths: list[tuple[str, int]] = []
    for top in (*LABELLED, "/usr/lib/systemd/system", "/.autorelabel", "/var/roothome/x"):
        if image.lexists(top):
            paths.append((top, image.lstat(top).mode))
            if image.lstat(top).is_dir:
                paths += [(p, st.mode) for p, st in image.walk(top)]
        else:
            paths.append((top, 0o100644))
    assert len(paths) > 60
    for path, mode in paths:
        done = subprocess.run(
            ["selabel_lookup", "-b", "file", "-k", path, "-t", str(mode), "-f",
             str(base / "file_contexts")],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        theirs = done.stdout.strip().removeprefix("Default context: ")
        spec = rules.lookup(path, mode)
        ours = spec.context if spec else "<<none>>"
        assert selinux.context_type(ours) == selinux.context_type(theirs), (path, ours, theirs)


def _ext4(tree: Path, tmp: Path) -> Ext4Image:
    tmp.mkdir(parents=True, exist_ok=True)
    fs = tmp / "root.ext4"
    with fs.open("wb") as fh:
        fh.truncate(32 * 1024 * 1024)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-L", "rootfs", "-d", str(tree), str(fs)], check=True)
    return Ext4Image(fs, 0)


def test_the_ext4_reader_reads_the_labels_too(good: Path, tmp_path: Path) -> None:
    image = _ext4(good, tmp_path / "good")
    assert selinux.label(image, "/etc/shadow") == "system_u:object_r:shadow_t:s0"
    assert selinux.label(image, "/etc/os-release") == "system_u:object_r:etc_t:s0"  # the link
    assert selinux.label(image, "/usr/bin/cloud-init") is None
    el = {cid: CHECKS[cid] for cid in EL_SECURITY}
    assert el_tree.failing(image, el) == {}
    defect = next(d for d in el_tree.EL_DEFECTS if d.name == "dropin-moved-from-tmp")
    broken = el_tree.broken_tree(good, defect, tmp_path / "broken")
    failed = el_tree.failing(_ext4(broken, tmp_path), el)
    assert set(failed) == {"el-selinux-labels"}
    assert "labelled user_tmp_t, policy wants etc_t" in failed["el-selinux-labels"]


def test_tree_reader_keeps_links_inside_the_tree(good: Path, tmp_path: Path) -> None:
    root = tmp_path / "root"
    shutil.copytree(good, root, symlinks=True)
    (root / "etc/escape").symlink_to("/etc/hostname")  # absolute: the tree's, not the host's
    (root / "etc/up").symlink_to("../../../../../../etc/hostname")
    (root / "etc/loop").symlink_to("loop")
    image = TreeImage(root)
    assert image.read_text("/etc/escape") == "localhost\n"
    assert image.read_text("/etc/up") == "localhost\n"
    assert image.readlink("/etc/escape") == "/etc/hostname"
    assert not image.exists("/etc/nothing") and image.lexists("/etc/escape")
    with pytest.raises(FileNotFoundError):
        image.read_text("/etc/machine-id/x")
    with pytest.raises(Exception, match="too many levels"):
        image.exists("/etc/loop")
    assert image.getxattr("/usr/bin/cloud-init", selinux.XATTR) is None
    copy = image.export("/etc/ssh", tmp_path / "out")
    assert (copy / "sshd_config").read_text() == el_tree.SSHD_CONFIG
