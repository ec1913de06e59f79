"""What each selected OS needs from this pool, checked in preflight, every problem one line:

- the clone template its var file names (`xen_clone_template`), exactly one, on this pool's
  XCP-ng version (the plugin stops at "Couldn't find a template with the name-label ...");
- the guest-tools ISO (`tools_iso_name`), exactly one VDI of that name: every build attaches it
  (the plugin stops at "Couldn't find a VDI named ...");
- the x86-64 level the OS needs (`x86_64_level`: EL 9 v2, EL 10 v3) on the pool's CPUs;
- an SR that holds disks (not an ISO library) with room for the selected OSes;
- a network with a physical interface (VMs on a host-internal network get no DHCP address).

The template names per XCP-ng version come from xcp-ng-rpms/guest-templates-json.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from core.model import TemplateSpec
from platforms.xcpng import cpu
from platforms.xcpng.client import Xapi

GiB = 1 << 30
ISO_ROOM = 4 * GiB  # an installer ISO uploaded as a VDI: Ubuntu's live server is 3 GiB
DEFAULT_TOOLS_ISO = "guest-tools.iso"
# Templates that only some pool versions have, and how to get them.
TEMPLATE_HINTS = {
    "Debian Trixie 13": "XCP-ng ships it from 8.3 on",
    "Generic Linux UEFI": "8.2 has it from guest-templates-json 1.10.7 on (yum update on every "
    "host)",
}
LEVEL_OF = {2: "x86-64-v2", 3: "x86-64-v3"}


def pool_version(xapi: Xapi) -> str:
    """XCP-ng's version on the master ("8.2.1"), or "unknown"."""
    pool = xapi.call("pool.get_all")[0]
    master = xapi.call("pool.get_master", pool)
    software: dict[str, Any] = xapi.call("host.get_software_version", master)
    return str(software.get("product_version") or "unknown")


def _names(specs: Iterable[TemplateSpec]) -> str:
    return ", ".join(sorted(s.name for s in specs))


def _by_value(
    specs: Iterable[TemplateSpec], key: str, default: Any
) -> dict[Any, list[TemplateSpec]]:
    out: dict[Any, list[TemplateSpec]] = {}
    for s in specs:
        out.setdefault(s.variables.get(key, default), []).append(s)
    return out


def clone_templates(xapi: Xapi, specs: Sequence[TemplateSpec], version: str) -> list[str]:
    """One line per clone template the selected OSes name that is not exactly once here."""
    problems = []
    for name, users in sorted(_by_value(specs, "xen_clone_template", None).items(), key=str):
        if not name:
            continue
        found = [
            vm
            for vm in xapi.call("VM.get_by_name_label", name)
            if xapi.call("VM.get_is_a_template", vm)
        ]
        if len(found) == 1:
            continue
        if not found:
            hint = TEMPLATE_HINTS.get(str(name))
            why = f"; {hint}" if hint else ""
            problems.append(
                f"{_names(users)}: the clone template {name!r} (xen_clone_template) is not in "
                f"this pool (XCP-ng {version}){why}; the Packer plugin would stop at \"Couldn't "
                'find a template": upgrade the pool, name another of its templates in the var '
                "file, or drop the OS from --os"
            )
        else:
            problems.append(
                f"{_names(users)}: {len(found)} templates are named {name!r} "
                "(xen_clone_template); the Packer plugin needs exactly one: rename the copies"
            )
    return problems


def tools_iso(xapi: Xapi, specs: Sequence[TemplateSpec]) -> list[str]:
    """One line per guest-tools ISO name that is not exactly one VDI."""
    problems = []
    for name, users in sorted(_by_value(specs, "tools_iso_name", None).items(), key=str):
        if not name:
            continue  # a template without the setting attaches none
        found = xapi.call("VDI.get_by_name_label", name)
        if len(found) == 1:
            continue
        what = "is not in this pool" if not found else f"is {len(found)} VDIs"
        problems.append(
            f"{_names(users)}: the guest-tools ISO {name!r} (tools_iso_name) {what}; every "
            'build attaches it and the Packer plugin stops at "Couldn\'t find a VDI named" '
            '(or "Found more than one VDI"): XCP-ng keeps it in the "XCP-ng Tools" SR; '
            f"check with `xe vdi-list name-label={name}`"
        )
    return problems


def cpu_level(xapi: Xapi, specs: Sequence[TemplateSpec]) -> list[str]:
    """One line per x86-64 level the selected OSes need that the pool's CPUs lack."""
    wanted = {
        int(level): users
        for level, users in _by_value(specs, "x86_64_level", 1).items()
        if str(level).isdigit() and int(level) >= 2
    }
    if not wanted:
        return []
    pool = xapi.call("pool.get_all")[0]
    levelled: dict[str, Any] = xapi.call("pool.get_cpu_info", pool)
    hosts: dict[str, Any] = xapi.call("host.get_all_records")
    problems = []
    for level, users in sorted(wanted.items()):
        lacking: dict[str, list[str]] = {}  # host -> the features it lacks
        for rec in hosts.values():
            if absent := cpu.missing(level, rec.get("cpu_info") or {}):
                lacking[str(rec.get("name_label"))] = absent
        pool_lacks = cpu.missing(level, levelled) or []
        flags = sorted({f for fs in lacking.values() for f in fs} | set(pool_lacks))
        if not flags:
            continue
        where = (
            "; ".join(
                f"host {host} lacks " + ("them all" if sorted(fs) == flags else ", ".join(fs))
                for host, fs in sorted(lacking.items())
            )
            or "the pool's levelled CPU features lack them: pool cpu_info features_hvm"
        )
        problems.append(
            f"{_names(users)} need an {LEVEL_OF[level]} CPU and this pool's VMs would get none: "
            f"missing {', '.join(flags)} ({where}); the installer would stop before fetching "
            "its kickstart: build them on a pool of newer CPUs (Intel Haswell, AMD Excavator or "
            "later, not levelled down) or drop them from --os"
        )
    return problems


def sr_room(
    xapi: Xapi,
    sr: str,
    specs: Sequence[TemplateSpec],
    *,
    building: bool,
    floor: int,
    grow: int,
) -> list[str]:
    """The SR holds disks and has room for every selected OS at once: per OS the larger of its
    build (disk + installer ISO) and its check clone (disk + the growth its boot adds)."""
    rec = xapi.call("SR.get_record", sr)
    label = rec.get("name_label")
    if rec.get("content_type") == "iso" or rec.get("type") in ("iso", "udev"):
        return [
            f"SR {label!r} is an {rec.get('type')} library, not a disk SR: the build VM's disk "
            "and the installer ISO (uploaded as a VDI) go there; set XCPNG_SR to a disk SR"
        ]
    per_os = []
    for s in specs:
        disk = (s.disk_size_mb or 8192) << 20
        per_os.append(max(disk + ISO_ROOM if building else 0, disk + grow))
    need = max(floor, sum(per_os))
    free = int(rec["physical_size"]) - int(rec["physical_utilisation"])
    if free >= need:
        return []
    return [
        f"SR {label!r} has {free / GiB:.0f} GiB free, less than the {need / GiB:.0f} GiB "
        f"{len(specs)} OS(es) may use at once (each: its disk plus the larger of the installer "
        f"ISO, {ISO_ROOM // GiB} GiB, and the check clone's growth, {grow // GiB} GiB; at "
        "least --min-free-disk); free space, choose another XCPNG_SR, or select fewer OSes"
    ]


def network_problem(xapi: Xapi, network: str) -> str | None:
    """Why VMs on `network` would get no address, or None."""
    rec = xapi.call("network.get_record", network)
    if rec.get("PIFs"):
        return None
    return (
        f"network {rec.get('name_label')!r} has no physical interface (PIF) on any host: VMs on "
        "it get no DHCP address and the runner cannot reach them; set XCPNG_NETWORK to a network "
        "bridged to a NIC"
    )
