"""`ova.xml`, the XVA header: an XML-RPC value describing the VM and its disks.

XAPI writes strings and int64 as bare `<value>text</value>` (no `<string>`), which the stdlib
unmarshaller reads as strings; we write the same way, since `xmlrpc.client.dumps` would reject
int64 sizes.

What a pool accepts (xen-api `import.ml`, `importexport.ml`, the generated `API.*_t_of_rpc`):
- every record carries each field its class declares without a default value, or the import
  fails with "Field ... not present in rpc". XCP-ng 8.2 (xapi 1.249) requires a few more than
  8.3 (VM `power_state`, `suspend_VDI`, `last_boot_CPU_flags`; VBD/VIF `currently_attached`,
  `metrics`, VBD `device`), so the records below hold the union of both;
- the SR object is parsed as a full record although only its `content_type` is used (the disks
  land on the SR the import names);
- the export's xapi version must not be newer than the importing host's. 8.2 accepts only major
  1 with minor <= 20, 8.3 any major below its own (24 and later), so (1, 20) imports on both,
  as Xen Orchestra writes it.
"""

from __future__ import annotations

import uuid
import xmlrpc.client  # expat >= 2.4 caps entity expansion; no external entities
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from xml.sax.saxutils import escape

from diskformats.xva import XvaError

MAX_HEADER = 64 << 20  # ova.xml of a VM with many snapshots is a few MiB at most
XAPI_VERSION = (1, 20)  # the newest version XCP-ng 8.2 imports; 8.3 imports it too


@dataclass(frozen=True)
class Disk:
    """One disk streamed in the XVA: its tar prefix (the `Ref:N` of its VDI) and size."""

    ref: str
    size: int
    name: str = ""
    userdevice: str = ""


def parse(data: bytes) -> dict[str, Any]:
    """The header as Python values (ints stay strings, as XAPI sends them)."""
    text = data.decode("utf-8", errors="strict").strip()
    if text.startswith("<?xml"):
        text = text[text.index("?>") + 2 :].strip()
    wrapped = f"<methodResponse><params><param>{text}</param></params></methodResponse>"
    try:
        (value,), _ = xmlrpc.client.loads(wrapped)  # see the import note
    except Exception as exc:  # expat, ResponseError, ValueError: all mean the same to the user
        raise XvaError(f"ova.xml is not an XML-RPC value ({exc})", "ova.xml") from None
    if not isinstance(value, dict) or not isinstance(value.get("objects"), list):
        raise XvaError("ova.xml has no 'objects' list: not an XVA header", "ova.xml")
    return value


def _objects(header: dict[str, Any], cls: str) -> list[dict[str, Any]]:
    return [
        o
        for o in header["objects"]
        if isinstance(o, dict) and str(o.get("class", "")).lower() == cls.lower()
    ]


def disks(header: dict[str, Any]) -> list[Disk]:
    """The disks whose data follows, in XAPI's streaming order (VDI ref, lexicographic).

    Like xen-api `import.ml` (`non_cdrom_vdis`): VDIs behind a non-CD VBD whose SR is not an
    ISO library.
    """
    srs = {o.get("id"): o.get("snapshot", {}) for o in _objects(header, "SR")}
    vbd_of: dict[str, dict[str, Any]] = {}
    for o in _objects(header, "VBD"):
        snap = o.get("snapshot", {})
        if str(snap.get("type", "")).lower() != "cd":
            vbd_of[str(snap.get("VDI", ""))] = snap
    found = []
    for o in _objects(header, "VDI"):
        ref, snap = str(o.get("id", "")), o.get("snapshot", {})
        if ref not in vbd_of:
            continue
        if str(srs.get(snap.get("SR"), {}).get("content_type", "")).lower() == "iso":
            continue
        try:
            size = int(snap.get("virtual_size", ""))
        except (TypeError, ValueError):
            raise XvaError(f"ova.xml: VDI {ref} has no valid virtual_size", "ova.xml") from None
        found.append(
            Disk(ref, size, str(snap.get("name_label", "")), str(vbd_of[ref].get("userdevice", "")))
        )
    return sorted(found, key=lambda d: d.ref)


def vm_summary(header: dict[str, Any]) -> dict[str, Any]:
    """Name, template flag and export version, for `info` and for logs."""
    vms = _objects(header, "VM")
    snap = vms[0].get("snapshot", {}) if vms else {}
    return {
        "name": snap.get("name_label", ""),
        "is_a_template": bool(snap.get("is_a_template", False)),
        "export_vsn": str(header.get("version", {}).get("export_vsn", "")),
        "product": header.get("version", {}).get("product_brand", ""),
    }


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return f"<value><boolean>{int(v)}</boolean></value>"
    if isinstance(v, dict):
        members = "".join(
            f"<member><name>{escape(str(k))}</name>{_value(x)}</member>" for k, x in v.items()
        )
        return f"<value><struct>{members}</struct></value>"
    if isinstance(v, list | tuple):
        return f"<value><array><data>{''.join(_value(x) for x in v)}</data></array></value>"
    if isinstance(v, float):
        return f"<value><double>{v!r}</double></value>"
    if isinstance(v, datetime):
        return (
            f"<value><dateTime.iso8601>{v.strftime('%Y%m%dT%H:%M:%SZ')}</dateTime.iso8601></value>"
        )
    return f"<value>{escape(str(v))}</value>"  # str and int, bare as XAPI writes them


def build(
    name: str,
    virtual_size: int,
    *,
    memory: int = 1 << 30,
    vcpus: int = 1,
    firmware: str = "bios",
    template: bool = False,
    description: str = "",
) -> bytes:
    """A header for one VM with one disk `Ref:3` (the chunks' prefix)."""
    vm, sr, vdi, vbd = "Ref:0", "Ref:1", "Ref:3", "Ref:2"
    null = "OpaqueRef:NULL"
    objects = [
        {
            "class": "VM",
            "id": vm,
            "snapshot": {
                "uuid": str(uuid.uuid4()),
                "name_label": name,
                "name_description": description,
                "power_state": "Halted",
                "last_boot_CPU_flags": {},
                "last_booted_record": "",
                "is_a_template": template,
                "is_default_template": False,
                "is_a_snapshot": False,
                "is_control_domain": False,
                "user_version": 1,
                "domarch": "",
                "domid": -1,
                "memory_static_max": memory,
                "memory_dynamic_max": memory,
                "memory_dynamic_min": memory,
                "memory_static_min": memory,
                "memory_target": memory,
                "memory_overhead": 0,
                "VCPUs_max": vcpus,
                "VCPUs_at_startup": vcpus,
                "VCPUs_params": {},
                "actions_after_shutdown": "destroy",
                "actions_after_reboot": "restart",
                "actions_after_crash": "restart",
                "domain_type": "hvm",
                "HVM_boot_policy": "BIOS order",
                "HVM_boot_params": {"order": "cd", "firmware": firmware},
                "HVM_shadow_multiplier": 1.0,
                "PV_args": "",
                "PV_bootloader": "",
                "PV_bootloader_args": "",
                "PV_kernel": "",
                "PV_ramdisk": "",
                "PV_legacy_args": "",
                "platform": {
                    "acpi": "1",
                    "apic": "true",
                    "pae": "true",
                    "nx": "true",
                    "hpet": "true",
                    "viridian": "false",
                    "timeoffset": "0",
                    "device-model": "qemu-upstream-compat",
                    "secureboot": "false",
                },
                "other_config": {
                    "mac_seed": str(uuid.uuid4()),
                    "base_template_name": "Other install media",
                },
                "blocked_operations": {},
                "xenstore_data": {},
                "tags": [],
                "VBDs": [vbd],
                "VIFs": [],
                "VGPUs": [],
                "VUSBs": [],
                "VTPMs": [],
                "consoles": [],
                "crash_dumps": [],
                "snapshots": [],
                "children": [],
                "attached_PCIs": [],
                "parent": null,
                "snapshot_of": null,
                "snapshot_time": datetime(1970, 1, 1, tzinfo=UTC),
                "metrics": null,
                "guest_metrics": null,
                "affinity": null,
                "resident_on": null,
                "suspend_VDI": null,
                "suspend_SR": null,
                "has_vendor_device": False,
                "ha_always_run": False,
                "ha_restart_priority": "",
                "recommendations": "",
                "PCI_bus": "",
                "NVRAM": {},
                "order": 0,
                "start_delay": 0,
                "shutdown_delay": 0,
                "hardware_platform_version": 0,
                "generation_id": "",
                "reference_label": "",
            },
        },
        {
            "class": "SR",
            "id": sr,
            "snapshot": {
                "uuid": str(uuid.uuid4()),
                "name_label": "",
                "name_description": "",
                "type": "ext",
                "content_type": "user",
                "shared": False,
                "virtual_allocation": virtual_size,
                "physical_utilisation": virtual_size,
                "physical_size": virtual_size,
                "other_config": {},
                "sm_config": {},
                "tags": [],
                "VDIs": [vdi],
                "PBDs": [],
            },
        },
        {
            "class": "VBD",
            "id": vbd,
            "snapshot": {
                "uuid": str(uuid.uuid4()),
                "VM": vm,
                "VDI": vdi,
                "device": "xvda",
                "userdevice": "0",
                "bootable": True,
                "mode": "RW",
                "type": "Disk",
                "empty": False,
                "unpluggable": False,
                "currently_attached": False,
                "storage_lock": False,
                "status_code": 0,
                "status_detail": "",
                "other_config": {},
                "qos_algorithm_type": "",
                "qos_algorithm_params": {},
                "qos_supported_algorithms": [],
                "runtime_properties": {},
                "metrics": null,
            },
        },
        {
            "class": "VDI",
            "id": vdi,
            "snapshot": {
                "uuid": str(uuid.uuid4()),
                "name_label": f"{name} disk",
                "name_description": "",
                "SR": sr,
                "VBDs": [vbd],
                "virtual_size": virtual_size,
                "physical_utilisation": virtual_size,
                "type": "system",
                "sharable": False,
                "read_only": False,
                "managed": True,
                "missing": False,
                "is_a_snapshot": False,
                "snapshot_of": null,
                "snapshots": [],
                "parent": null,
                "storage_lock": False,
                "allow_caching": False,
                "on_boot": "persist",
                "cbt_enabled": False,
                "other_config": {},
                "xenstore_data": {},
                "sm_config": {},
                "tags": [],
                "metrics": null,
            },
        },
    ]
    header = {
        "version": {
            "hostname": "xcpng-golden",
            "date": datetime.now(UTC).strftime("%Y-%m-%d"),
            "product_version": "8.2.1",
            "product_brand": "XCP-ng",
            "build_number": "xcpng-golden",
            "xapi_major": XAPI_VERSION[0],
            "xapi_minor": XAPI_VERSION[1],
            "export_vsn": 2,
        },
        "objects": objects,
    }
    return _value(header).encode()
