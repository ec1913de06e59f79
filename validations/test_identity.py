"""OS identity: the image is the OS and version the catalog says, on a disk of the declared size."""

from __future__ import annotations

import re
from typing import Any

from core.checks import check
from core.model import BootedVM, TemplateSpec
from pkgdb.osrelease import parse_os_release
from validations.remote import ask

MIB = 1024 * 1024


def expected_id(spec: TemplateSpec) -> str:
    explicit = spec.variables.get("os_id")
    if explicit:
        return str(explicit)
    match = re.match(r"[a-z]+", spec.name.lower())
    return match.group(0) if match else spec.name


@check("identity-os-release", "os-release names the OS and major version the catalog declares")
def test_os_release(host: Any, spec: TemplateSpec) -> None:
    release = parse_os_release(ask(host, {"r": "cat /etc/os-release"}, sudo=False)["r"].stdout)
    assert release.get("ID") == expected_id(spec), (
        f"ID={release.get('ID')!r}, want {expected_id(spec)!r}"
    )
    version = release.get("VERSION_ID", "")
    assert version.split(".")[0] == spec.version.split(".")[0], (
        f"VERSION_ID={version!r}, want {spec.version} ({spec.name})"
    )


# root's block device, its disk (the partition's parent, or itself), the disk's size in bytes
ROOT_DISK = (
    's=$(findmnt -n -o SOURCE /); p=$(lsblk -n -o PKNAME "$s"); d=/dev/${p:-${s#/dev/}}; '
    'echo "$s" "$d" $(lsblk -b -d -n -o SIZE "$d")'
)


@check("identity-root-disk", "the root disk has the size the template declares (disk_size_mb)")
def test_root_disk(host: Any, spec: TemplateSpec, vm: BootedVM) -> None:
    answer = ask(host, {"disk": ROOT_DISK}, sudo=False)["disk"].stdout.split()
    assert len(answer) == 3, f"cannot read the root disk: {answer}"
    source, disk, size_s = answer
    assert source.startswith("/dev/"), f"root is not on a block device: {source!r}"
    size = int(size_s) if size_s.isdigit() else 0
    assert size > 0, f"cannot read the size of {disk}"
    assert spec.disk_size_mb, (
        f"{spec.name} declares no disk_size_mb (root disk is {size // MIB} MiB)"
    )
    grown = int(vm.facts.get("disk_grown_by", 0))  # the platform boots clones on a larger disk
    assert size - grown == spec.disk_size_mb * MIB, (
        f"root disk {disk} is {(size - grown) // MIB} MiB ({size - grown} bytes, plus the "
        f"{grown // MIB} MiB the platform added); {spec.name} declares {spec.disk_size_mb} MiB"
    )
