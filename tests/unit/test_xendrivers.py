"""validations/xendrivers.py: the Xen front-end drivers read as kmod reads them (modules.dep
and modules.builtin, modprobe.d precedence, blacklist and install rules, boot switches)."""

from __future__ import annotations

from validations import xendrivers

K = "/lib/modules/6.1.0-57-amd64"
GOOD = {
    f"{K}/modules.dep": "kernel/drivers/net/xen-netfront.ko.xz:\n"
    "kernel/drivers/block/xen-blkfront.ko:\n",
    f"{K}/modules.builtin": "kernel/drivers/xen/xenbus/xenbus.ko\n",
    "/lib/modprobe.d/aliases.conf": "alias net-pf-10 ipv6\n",
}


def fs(files: dict[str, str]) -> tuple[xendrivers.Read, xendrivers.ListDir]:
    def listdir(path: str) -> list[str]:
        prefix = path.rstrip("/") + "/"
        return sorted({p[len(prefix) :].split("/")[0] for p in files if p.startswith(prefix)})

    return files.get, listdir


def all_findings(files: dict[str, str]) -> list[str]:
    read, listdir = fs(files)
    return xendrivers.kernel_findings(read, listdir) + xendrivers.config_findings(read, listdir)


def test_good_image_passes_and_options_are_not_a_block() -> None:
    assert all_findings(GOOD) == []
    tuned = {**GOOD, "/etc/modprobe.d/xen.conf": "options xen_netfront max_queues=4\n"}
    assert all_findings(tuned) == []
    builtin = {f"{K}/modules.builtin": "kernel/drivers/net/xen-netfront.ko\n"
               "kernel/drivers/block/xen-blkfront.ko\n"}  # fmt: skip
    assert all_findings(builtin) == []


def test_a_kernel_without_the_drivers() -> None:
    files = {**GOOD, "/lib/modules/6.12.0-custom/modules.dep": "kernel/fs/ext4/ext4.ko:\n"}
    found = all_findings(files)
    assert len(found) == 2 and all("kernel 6.12.0-custom has no" in f for f in found)


def test_blacklist_and_install_with_either_spelling() -> None:
    files = {**GOOD, "/etc/modprobe.d/x.conf": "blacklist xen-netfront # no\n"
             "install xen_blkfront /bin/false\ninstall usb-storage /bin/true\n"}  # fmt: skip
    found = all_findings(files)
    assert [f.split(": ")[1] for f in found] == ["blacklist xen-netfront",
                                                   "install xen_blkfront /bin/false"]  # fmt: skip
    loads = {**GOOD, "/etc/modprobe.d/x.conf":
             "install xen_netfront /sbin/modprobe --ignore-install xen_netfront && echo ok\n"}  # fmt: skip
    assert all_findings(loads) == []


def test_etc_hides_the_library_file_of_the_same_name() -> None:
    files = {**GOOD, "/lib/modprobe.d/xen.conf": "blacklist xen_netfront\n",
             "/etc/modprobe.d/xen.conf": "# site override: nothing blacklisted\n"}  # fmt: skip
    assert all_findings(files) == []
    del files["/etc/modprobe.d/xen.conf"]
    assert "/lib/modprobe.d/xen.conf:1: blacklist" in all_findings(files)[0]


def test_boot_switches() -> None:
    found = xendrivers.cmdline_findings("ro quiet module_blacklist=floppy,xen_blkfront", "grub")
    assert found and "xen_blkfront never loads" in found[0] and "its disks" in found[0]
    assert xendrivers.cmdline_findings("ro modprobe.blacklist=floppy", "grub") == []
