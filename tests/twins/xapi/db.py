"""The twin's object database: records per class keyed by `OpaqueRef:<uuid>`, with the generic
accessors XAPI generates for every class (get_record, get_all, get_by_uuid, get_<field>, ...)."""

from __future__ import annotations

import copy
import threading
import uuid
from collections.abc import Callable
from typing import Any

from tests.twins.xapi import inventory
from tests.twins.xapi.wire import XapiError

NULL = "OpaqueRef:NULL"
CLASSES = (
    "pool",
    "host",
    "SR",
    "PBD",
    "network",
    "VM",
    "VDI",
    "VBD",
    "VIF",
    "PIF",
    "task",
    "session",
    "VM_guest_metrics",
)
GiB = 1 << 30


def new_ref() -> str:
    return f"OpaqueRef:{uuid.uuid4()}"


class Db:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.objects: dict[str, dict[str, dict[str, Any]]] = {c: {} for c in CLASSES}
        # fields XAPI computes from other objects rather than stores
        self.computed: dict[tuple[str, str], Callable[[str], Any]] = {
            ("VM", "VBDs"): lambda r: self.refs("VBD", VM=r),
            ("VM", "VIFs"): lambda r: self.refs("VIF", VM=r),
            ("VDI", "VBDs"): lambda r: self.refs("VBD", VDI=r),
            ("SR", "VDIs"): lambda r: self.refs("VDI", SR=r),
            ("SR", "PBDs"): lambda r: self.refs("PBD", SR=r),
            ("host", "PBDs"): lambda r: self.refs("PBD", host=r),
            ("network", "VIFs"): lambda r: self.refs("VIF", network=r),
            ("network", "PIFs"): lambda r: self.refs("PIF", network=r),
            ("host", "PIFs"): lambda r: self.refs("PIF", host=r),
        }

    def add(self, cls: str, record: dict[str, Any], ref: str | None = None) -> str:
        ref = ref or new_ref()
        record = dict(record)
        record.setdefault("uuid", str(uuid.uuid4()))
        record.setdefault("other_config", {})
        with self.lock:
            self.objects[cls][ref] = record
        return ref

    def get(self, cls: str, ref: str) -> dict[str, Any]:
        with self.lock:
            try:
                return self.objects[cls][ref]
            except KeyError:
                raise XapiError("HANDLE_INVALID", cls, ref) from None

    def remove(self, cls: str, ref: str) -> None:
        with self.lock:
            self.get(cls, ref)
            del self.objects[cls][ref]

    def refs(self, cls: str, **match: Any) -> list[str]:
        with self.lock:
            return [
                r
                for r, rec in self.objects[cls].items()
                if all(rec.get(k) == v for k, v in match.items())
            ]

    def record(self, cls: str, ref: str) -> dict[str, Any]:
        with self.lock:
            rec = copy.deepcopy(self.get(cls, ref))
            for (c, field), fn in self.computed.items():
                if c == cls:
                    rec[field] = fn(ref)
            return rec

    def generic(self, cls: str, op: str, args: tuple[Any, ...]) -> Any:
        """XAPI's generated accessors; raises MESSAGE_METHOD_UNKNOWN for anything else."""
        name = f"{cls}.{op}"

        def want(n: int) -> None:
            if len(args) != n:
                raise XapiError("MESSAGE_PARAMETER_COUNT_MISMATCH", name, n, len(args))

        with self.lock:
            if op == "get_all":
                want(0)
                return list(self.objects[cls])
            if op == "get_all_records":
                want(0)
                return {r: self.record(cls, r) for r in self.objects[cls]}
            if op == "get_record":
                want(1)
                return self.record(cls, args[0])
            if op == "get_by_uuid":
                want(1)
                found = self.refs(cls, uuid=args[0])
                if not found:
                    raise XapiError("UUID_INVALID", cls, args[0])
                return found[0]
            if op == "get_by_name_label":
                want(1)
                return self.refs(cls, name_label=args[0])
            if op.startswith("get_"):
                want(1)
                rec = self.record(cls, args[0])
                field = op[4:]
                if field not in rec:
                    raise XapiError("MESSAGE_METHOD_UNKNOWN", name)
                return rec[field]
            if op.startswith("set_"):
                want(2)
                rec = self.get(cls, args[0])
                if op[4:] not in rec:
                    raise XapiError("MESSAGE_METHOD_UNKNOWN", name)
                rec[op[4:]] = args[1]
                return ""
            if op.startswith("add_to_"):
                want(3)
                field = self.get(cls, args[0]).setdefault(op[7:], {})
                if args[1] in field:
                    raise XapiError("MAP_DUPLICATE_KEY", cls, op[7:], args[0], args[1])
                field[args[1]] = str(args[2])
                return ""
            if op.startswith("remove_from_"):
                want(2)
                self.get(cls, args[0]).setdefault(op[12:], {}).pop(args[1], None)
                return ""
        raise XapiError("MESSAGE_METHOD_UNKNOWN", name)


def master(db: Db) -> str:
    return str(next(iter(db.objects["pool"].values()))["master"])


def host_for_sr(db: Db, sr: str) -> str | None:
    """A host that sees the SR (its attached PBD's), as XAPI's `find_host_for_sr` picks one."""
    with db.lock:
        hosts = [db.get("PBD", p)["host"] for p in db.refs("PBD", SR=sr, currently_attached=True)]
        if db.get("SR", sr).get("shared") and master(db) in hosts:
            return master(db)
        return hosts[0] if hosts else None


def add_host(
    db: Db,
    name: str,
    address: str,
    *,
    free_memory: int = 64 * GiB,
    release: str = "8.2",
    cpu_lacks: tuple[str, ...] = (),
) -> tuple[str, str]:
    """A pool member with its own local SR (visible from it only) and a PIF on the pool's
    external network; returns (host, SR)."""
    host = db.add("host", _host_record(name, address, free_memory, release, cpu_lacks))
    sr = db.add(
        "SR",
        {
            "name_label": f"Local storage of {name}",
            "content_type": "user",
            "type": "ext",
            "physical_size": 1000 * GiB,
            "physical_utilisation": 0,
            "virtual_allocation": 0,
            "shared": False,
        },
    )
    db.add("PBD", {"host": host, "SR": sr, "currently_attached": True, "device_config": {}})
    for net in db.refs("network", bridge="xenbr0"):
        db.add("PIF", {"host": host, "network": net, "device": "eth0", "physical": True})
    level_pool_cpus(db)
    return host, sr


def _host_record(
    name: str, address: str, free_memory: int, release: str, cpu_lacks: tuple[str, ...]
) -> dict[str, Any]:
    return {
        "name_label": name,
        "hostname": name,
        "address": address,
        "memory_free": free_memory,
        "API_version_major": 2,
        "API_version_minor": 21,
        "enabled": True,
        "software_version": {
            "product_brand": "XCP-ng",
            "product_version": inventory.PRODUCT_VERSION[release],
        },
        "cpu_info": inventory.cpu_info(cpu_lacks),
    }


def level_pool_cpus(db: Db) -> None:
    """pool.cpu_info: the CPU features every host has, as XAPI levels them."""
    with db.lock:
        infos = [rec["cpu_info"] for rec in db.objects["host"].values()]
        for pool in db.objects["pool"].values():
            pool["cpu_info"] = inventory.levelled(*infos)


def seed_pool(
    db: Db,
    release: str = "8.2",
    sr_free: int = 500 * GiB,
    host_free_memory: int = 64 * GiB,
) -> set[str]:
    """One host, a default local SR, an ISO SR, the guest-tools ISO, two networks (one with a
    PIF) and the release's templates, like a fresh XCP-ng install; returns the refs of what
    the pool holds of its own (templates, the tools ISO and its SR)."""
    host = new_ref()
    sr = db.add(
        "SR",
        {
            "name_label": "Local storage",
            "content_type": "user",
            "type": "ext",
            "physical_size": 1000 * GiB,
            "physical_utilisation": 1000 * GiB - sr_free,
            "virtual_allocation": 0,
            "shared": False,
        },
    )
    iso = db.add(
        "SR",
        {
            "name_label": "ISO library",
            "content_type": "iso",
            "type": "iso",
            "physical_size": 0,
            "physical_utilisation": 0,
            "virtual_allocation": 0,
            "shared": True,
        },
    )
    tools = db.add(
        "SR",
        {
            "name_label": "XCP-ng Tools",
            "content_type": "iso",
            "type": "udev",
            "physical_size": 0,
            "physical_utilisation": 0,
            "virtual_allocation": 0,
            "shared": True,
        },
    )
    for ref in (sr, iso, tools):
        db.add("PBD", {"host": host, "SR": ref, "currently_attached": True, "device_config": {}})
    db.add("host", _host_record("xcp-twin", "127.0.0.1", host_free_memory, release, ()), ref=host)
    db.add("pool", {"name_label": "twin pool", "master": host, "default_SR": sr})
    eth0 = db.add(
        "network", {"name_label": "Pool-wide network associated with eth0", "bridge": "xenbr0"}
    )
    db.add("network", {"name_label": "Host internal management network", "bridge": "xenapi"})
    db.add("PIF", {"host": host, "network": eth0, "device": "eth0", "physical": True})
    level_pool_cpus(db)
    own = {tools}
    own.add(
        db.add(
            "VDI",
            {
                "name_label": inventory.TOOLS_ISO,
                "SR": tools,
                "virtual_size": 60 << 20,
                "type": "user",
                "sharable": True,
                "read_only": True,
            },
        )
    )
    for name in inventory.TEMPLATES[release]:
        own.add(
            db.add(
                "VM",
                {
                    "name_label": name,
                    "name_description": "",
                    "is_a_template": True,
                    "is_control_domain": False,
                    "power_state": "Halted",
                    "domid": -1,
                    "guest_metrics": NULL,
                    "tags": [],
                    "other_config": {"default_template": "true"},
                    "HVM_boot_params": {},
                },
            )
        )
    return own
