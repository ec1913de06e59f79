"""The XAPI calls the twin implements beyond the generated accessors, with XAPI's error codes
and power-state rules (from xen-api `api_errors.ml`, `xapi_vm.ml`, `xapi_vdi.ml`)."""

from __future__ import annotations

import inspect
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from tests.twins.xapi.db import NULL
from tests.twins.xapi.wire import XapiError

if TYPE_CHECKING:
    from tests.twins.xapi.server import XapiTwin


def login_with_password(
    twin: XapiTwin, user: str, password: str, version: str = "", originator: str = ""
) -> str:
    with twin.db.lock:
        if twin.faults.login_failures > 0:
            twin.faults.login_failures -= 1
            raise XapiError("SESSION_AUTHENTICATION_FAILED", user, "Authentication failure")
        if (user, password) != (twin.username, twin.password):
            raise XapiError("SESSION_AUTHENTICATION_FAILED", user, "Authentication failure")
        return twin.db.add(
            "session",
            {
                "user": user,
                "originator": originator,
                "valid": True,
                "is_local_superuser": twin.local_superuser,
            },
        )


def logout(twin: XapiTwin, session: str) -> str:
    with twin.db.lock:
        if session in twin.db.objects["session"]:
            twin.db.remove("session", session)
    return ""


def host_compute_free_memory(twin: XapiTwin, host: str) -> int:
    return int(twin.db.get("host", host)["memory_free"])


def task_create(twin: XapiTwin, label: str, description: str) -> str:
    return twin.db.add(
        "task",
        {
            "name_label": label,
            "name_description": description,
            "status": "pending",
            "progress": 0.0,
            "result": "",
            "error_info": [],
            "created": time.time(),
        },
    )


def task_destroy(twin: XapiTwin, task: str) -> str:
    twin.db.remove("task", task)
    return ""


def task_cancel(twin: XapiTwin, task: str) -> str:
    rec = twin.db.get("task", task)
    if rec["status"] == "pending":
        rec["status"] = "cancelling"
    return ""


def _power(twin: XapiTwin, vm: str, expected: str) -> dict[str, Any]:
    rec = twin.db.get("VM", vm)
    if rec.get("is_a_template"):
        raise XapiError("VM_IS_TEMPLATE", vm)
    if rec["power_state"].lower() != expected:
        raise XapiError("VM_BAD_POWER_STATE", vm, expected, rec["power_state"].lower())
    return rec


def vm_start(twin: XapiTwin, vm: str, start_paused: bool, force: bool) -> str:
    with twin.db.lock:
        rec = _power(twin, vm, "halted")
        if twin.faults.bad_power_state > 0:
            twin.faults.bad_power_state -= 1
            raise XapiError("VM_BAD_POWER_STATE", vm, "halted", "suspended")
        for vbd in twin.db.refs("VBD", VM=vm):
            vdi = twin.db.get("VBD", vbd)["VDI"]
            if vdi != NULL:
                twin.db.get("VDI", vdi)  # HANDLE_INVALID if a disk was destroyed under it
            twin.db.get("VBD", vbd)["currently_attached"] = True
        rec["power_state"] = "Paused" if start_paused else "Running"
        rec["domid"] = len(twin.db.refs("VM", power_state="Running")) + 1
        rec["guest_metrics"] = NULL
        disks = twin.disk_paths(vm)
    if twin.on_start is not None:
        try:
            twin.on_start(vm, disks)
        except Exception as exc:
            with twin.db.lock:
                rec["power_state"], rec["domid"] = "Halted", -1
            raise XapiError("INTERNAL_ERROR", f"start hook: {exc}") from None
    twin.report_guest_metrics(vm)
    return ""


def _halt(twin: XapiTwin, vm: str) -> str:
    with twin.db.lock:
        rec = twin.db.get("VM", vm)
        if rec["power_state"].lower() == "halted":
            raise XapiError("VM_BAD_POWER_STATE", vm, "running", "halted")
    if twin.on_stop is not None:
        twin.on_stop(vm)
    with twin.db.lock:
        rec["power_state"] = "Halted"
        rec["domid"] = -1
        twin.cancel_guest_timers(vm)
        gm = rec.get("guest_metrics", NULL)
        if gm != NULL and gm in twin.db.objects["VM_guest_metrics"]:
            twin.db.remove("VM_guest_metrics", gm)
        rec["guest_metrics"] = NULL
        for vbd in twin.db.refs("VBD", VM=vm):
            twin.db.get("VBD", vbd)["currently_attached"] = False
    return ""


def vm_hard_shutdown(twin: XapiTwin, vm: str) -> str:
    return _halt(twin, vm)


def vm_clean_shutdown(twin: XapiTwin, vm: str) -> str:
    return _halt(twin, vm)


def vm_destroy(twin: XapiTwin, vm: str) -> str:
    """Removes the VM, its VBDs, VIFs and metrics, but not its VDIs, as XAPI does."""
    with twin.db.lock:
        rec = twin.db.get("VM", vm)
        if rec["power_state"].lower() != "halted":
            raise XapiError("VM_BAD_POWER_STATE", vm, "halted", rec["power_state"].lower())
        for cls in ("VBD", "VIF"):
            for ref in twin.db.refs(cls, VM=vm):
                twin.db.remove(cls, ref)
        twin.db.remove("VM", vm)
    return ""


VDI_DEFAULTS = {
    "name_label": "",
    "name_description": "",
    "type": "user",
    "sharable": False,
    "read_only": False,
    "other_config": {},
    "sm_config": {},
    "xenstore_data": {},
    "tags": [],
}


def vdi_create(twin: XapiTwin, record: dict[str, Any]) -> str:
    for field in ("SR", "virtual_size"):
        if field not in record:
            raise XapiError("FIELD_TYPE_ERROR", field)
    sr = twin.db.get("SR", record["SR"])
    if sr["content_type"] == "iso":
        raise XapiError("SR_OPERATION_NOT_SUPPORTED", record["SR"])
    size = int(record["virtual_size"])
    rec = {**VDI_DEFAULTS, **record, "virtual_size": size, "physical_utilisation": 0}
    rec["other_config"] = dict(record.get("other_config", {}))
    ref = twin.db.add("VDI", rec)
    twin.storage.create(twin.db.get("VDI", ref)["uuid"], size)
    return ref


def vdi_resize(twin: XapiTwin, vdi: str, size: str) -> str:
    """Offline resize (the VDI must not be attached to a running VM), as VDI.resize does."""
    with twin.db.lock:
        rec = twin.db.get("VDI", vdi)
        for vbd in twin.db.refs("VBD", VDI=vdi):
            if twin.db.get("VBD", vbd).get("currently_attached"):
                raise XapiError("VDI_IN_USE", vdi, "resize")
        new = int(size)
        if new > rec["virtual_size"]:
            twin.storage.resize(rec["uuid"], new)
            rec["virtual_size"] = new
    return ""


def vdi_destroy(twin: XapiTwin, vdi: str) -> str:
    with twin.db.lock:
        rec = twin.db.get("VDI", vdi)
        for vbd in twin.db.refs("VBD", VDI=vdi):
            if twin.db.get("VBD", vbd).get("currently_attached"):
                raise XapiError("VDI_IN_USE", vdi, "destroy")
        for vbd in twin.db.refs("VBD", VDI=vdi):
            twin.db.remove("VBD", vbd)
        twin.db.remove("VDI", vdi)
        twin.storage.remove(rec["uuid"])
    return ""


def vbd_create(twin: XapiTwin, record: dict[str, Any]) -> str:
    twin.db.get("VM", record.get("VM", NULL))
    if record.get("VDI", NULL) != NULL:
        twin.db.get("VDI", record["VDI"])
    used = {twin.db.get("VBD", r)["userdevice"] for r in twin.db.refs("VBD", VM=record["VM"])}
    if str(record.get("userdevice")) in used:
        raise XapiError("DEVICE_ALREADY_EXISTS", record.get("userdevice"))
    rec = {
        "bootable": False,
        "mode": "RW",
        "type": "Disk",
        "empty": False,
        "other_config": {},
        "qos_algorithm_type": "",
        "qos_algorithm_params": {},
        **record,
        "userdevice": str(record.get("userdevice", "")),
        "currently_attached": False,
    }
    return twin.db.add("VBD", rec)


def vbd_destroy(twin: XapiTwin, vbd: str) -> str:
    if twin.db.get("VBD", vbd).get("currently_attached"):
        raise XapiError("DEVICE_ALREADY_ATTACHED", vbd)
    twin.db.remove("VBD", vbd)
    return ""


def vif_create(twin: XapiTwin, record: dict[str, Any]) -> str:
    twin.db.get("VM", record.get("VM", NULL))
    twin.db.get("network", record.get("network", NULL))
    rec = {"MAC": "", "MTU": 1500, "other_config": {}, "qos_algorithm_type": "", **record}
    rec["device"] = str(rec.get("device", "0"))
    return twin.db.add("VIF", rec)


def vif_destroy(twin: XapiTwin, vif: str) -> str:
    twin.db.remove("VIF", vif)
    return ""


SPECIAL: dict[str, Callable[..., Any]] = {
    "host.compute_free_memory": host_compute_free_memory,
    "task.create": task_create,
    "task.destroy": task_destroy,
    "task.cancel": task_cancel,
    "VM.start": vm_start,
    "VM.hard_shutdown": vm_hard_shutdown,
    "VM.clean_shutdown": vm_clean_shutdown,
    "VM.destroy": vm_destroy,
    "VDI.create": vdi_create,
    "VDI.destroy": vdi_destroy,
    "VDI.resize": vdi_resize,
    "VBD.create": vbd_create,
    "VBD.destroy": vbd_destroy,
    "VIF.create": vif_create,
    "VIF.destroy": vif_destroy,
}
READ_ONLY = {"VM.set_power_state", "VM.set_guest_metrics", "VM.set_domid"}


def dispatch(twin: XapiTwin, method: str, params: tuple[Any, ...]) -> Any:
    """One XML-RPC call, as the pool master would answer it."""
    if method == "session.login_with_password":
        if not 2 <= len(params) <= 4:
            raise XapiError("MESSAGE_PARAMETER_COUNT_MISMATCH", method, 4, len(params))
        return login_with_password(twin, *params)
    if method in ("session.logout", "session.local_logout"):
        return logout(twin, *params[:1])
    if not params:
        raise XapiError("MESSAGE_PARAMETER_COUNT_MISMATCH", method, 1, 0)
    session, args = params[0], params[1:]
    with twin.db.lock:
        rec = twin.db.objects["session"].get(str(session))
        if rec is None or not rec["valid"]:
            raise XapiError("SESSION_INVALID", session)
        twin.after_authenticated_call()
    fn = SPECIAL.get(method)
    if fn is not None:
        expected = len(inspect.signature(fn).parameters) - 1
        if len(args) != expected:
            raise XapiError("MESSAGE_PARAMETER_COUNT_MISMATCH", method, expected, len(args))
        return fn(twin, *args)
    if method in READ_ONLY:
        raise XapiError("MESSAGE_METHOD_UNKNOWN", method)
    cls, _, op = method.partition(".")
    if cls not in twin.db.objects or not op:
        raise XapiError("MESSAGE_METHOD_UNKNOWN", method)
    return twin.db.generic(cls, op, args)


def schedule(delay: float, fn: Callable[[], None]) -> threading.Timer:
    timer = threading.Timer(delay, fn)
    timer.daemon = True
    timer.start()
    return timer
