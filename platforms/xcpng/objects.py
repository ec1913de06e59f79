"""Pool objects: finding the SR and network, tagging what we create, and removing a VM the way
xcp-ng-tests does (hard shutdown, destroy each disk VDI, destroy the VM, check all are gone),
since `VM.destroy` leaves the VDIs behind."""

from __future__ import annotations

import contextlib
import logging
import time
from typing import Any

import XenAPI

from core.errors import InfrastructureError
from platforms.xcpng.client import Xapi, describe, failure_code
from platforms.xcpng.ledger import KEY_CREATED, KEY_EXPIRES, KEY_RUN

log = logging.getLogger("platforms.xcpng")


def find_sr(xapi: Xapi, name: str | None) -> str:
    if not name:
        pool = xapi.call("pool.get_all")[0]
        sr = xapi.call("pool.get_default_SR", pool)
        if sr == "OpaqueRef:NULL":
            raise InfrastructureError("the pool has no default SR; set XCPNG_SR to an SR name")
        return str(sr)
    found = xapi.call("SR.get_by_name_label", name)
    if len(found) != 1:
        what = "no SR" if not found else f"{len(found)} SRs"
        raise InfrastructureError(f"{what} named {name!r} in the pool; check XCPNG_SR")
    return str(found[0])


def sr_not_on_master(xapi: Xapi, sr: str) -> str | None:
    """Why the Packer build cannot use `sr`, or None: the plugin uploads the installer ISO to
    the pool master with `import_raw_vdi` and does not follow the redirect XAPI answers for an
    SR only another host sees (Go turns the redirected PUT into a GET without its body)."""
    rec = xapi.call("SR.get_record", sr)
    if rec.get("shared"):
        return None
    master = xapi.call("pool.get_master", xapi.call("pool.get_all")[0])
    hosts = [xapi.call("PBD.get_host", pbd) for pbd in rec.get("PBDs", [])]
    if not hosts or master in hosts:
        return None
    owner = xapi.call("host.get_name_label", hosts[0])
    return (
        f"SR {rec.get('name_label')!r} is local to host {owner}, not to the pool master: the "
        "Packer plugin uploads the installer ISO through the master and does not follow XAPI's "
        "redirect to that host; set XCPNG_SR to a shared SR or one of the master's"
    )


def find_network(xapi: Xapi, name: str | None) -> str:
    if not name:
        raise InfrastructureError("XCPNG_NETWORK is not set; name the network the VM joins")
    found = xapi.call("network.get_by_name_label", name)
    if len(found) != 1:
        what = "no network" if not found else f"{len(found)} networks"
        raise InfrastructureError(f"{what} named {name!r} in the pool; check XCPNG_NETWORK")
    return str(found[0])


def tag(xapi: Xapi, cls: str, ref: str, run_id: str, expires: float, *, first: bool = True) -> None:
    """Carry the run id and time-to-live in other_config (`first`: also the creation time)."""
    values = {KEY_RUN: run_id, KEY_EXPIRES: str(int(expires))}
    if first:
        values[KEY_CREATED] = str(int(time.time()))
    for key, value in values.items():
        xapi.call(f"{cls}.remove_from_other_config", ref, key)
        xapi.call(f"{cls}.add_to_other_config", ref, key, value)


def disk_vdis(xapi: Xapi, vm: str) -> list[str]:
    """The VM's disk VDIs (not CDs, not ISO-library images)."""
    out = []
    for vbd in xapi.call("VM.get_VBDs", vm):
        rec = xapi.call("VBD.get_record", vbd)
        vdi = rec.get("VDI", "OpaqueRef:NULL")
        if str(rec.get("type", "")).lower() == "cd" or vdi == "OpaqueRef:NULL":
            continue
        out.append(str(vdi))
    return out


def exists(xapi: Xapi, cls: str, ref: str) -> bool:
    try:
        xapi.call(f"{cls}.get_uuid", ref)
        return True
    except XenAPI.Failure as exc:
        if failure_code(exc) == "HANDLE_INVALID":
            return False
        raise


def destroy_vm(xapi: Xapi, vm: str, extra_vdis: list[str] | None = None) -> list[str]:
    """Remove the VM and its disks; return what could not be removed (empty when all went)."""
    problems: list[str] = []
    vdis: list[str] = list(extra_vdis or [])
    if exists(xapi, "VM", vm):
        with contextlib.suppress(XenAPI.Failure):
            vdis = [*disk_vdis(xapi, vm), *vdis]
        try:
            state = str(xapi.call("VM.get_power_state", vm)).lower()
            if state != "halted":
                xapi.call("VM.hard_shutdown", vm)
        except XenAPI.Failure as exc:
            if failure_code(exc) != "VM_BAD_POWER_STATE":  # halted meanwhile: fine
                problems.append(f"VM {vm}: hard_shutdown: {xapi.redactor(describe(exc))}")
        for vdi in dict.fromkeys(vdis):
            problems += destroy_vdi(xapi, vdi)
        try:
            xapi.call("VM.destroy", vm)
        except XenAPI.Failure as exc:
            if failure_code(exc) != "HANDLE_INVALID":
                problems.append(f"VM {vm}: destroy: {xapi.redactor(describe(exc))}")
    else:
        for vdi in vdis:
            problems += destroy_vdi(xapi, vdi)
    for cls, ref in [("VM", vm), *(("VDI", v) for v in vdis)]:
        if exists(xapi, cls, ref):
            problems.append(f"{cls} {ref} still exists after teardown")
    return list(dict.fromkeys(problems))


def destroy_vdi(xapi: Xapi, vdi: str) -> list[str]:
    try:
        xapi.call("VDI.destroy", vdi)
    except XenAPI.Failure as exc:
        if failure_code(exc) != "HANDLE_INVALID":
            return [f"VDI {vdi}: destroy: {xapi.redactor(describe(exc))}"]
    return []


def vms_of_task(xapi: Xapi, task: str) -> list[str]:
    """VMs an import task created (XAPI marks them with other_config:import_task)."""
    records: dict[str, Any] = xapi.call("VM.get_all_records")
    return [
        ref
        for ref, rec in records.items()
        if rec.get("other_config", {}).get("import_task") == task
    ]


def forget_task(xapi: Xapi, task: str) -> None:
    for method in ("task.cancel", "task.destroy"):
        with contextlib.suppress(XenAPI.Failure):
            xapi.call(method, task)
