"""Removing what killed runs left on the pool, found two ways: the ledger (objects recorded
before they were created) and the run-id/TTL tags every VM and VDI we create carries: in
other_config for what the harness creates and for Packer's build VM (`vm_other_config`), and
in the name for the disk and installer ISO the Packer plugin creates (`<name>?xcpng-golden-
run-id=...&xcpng-golden-created=...&xcpng-golden-expires=...`), so the janitor needs no ledger
(CI's checkout wipes the work tree it lives in).

Selection: `run_id` -> everything of that run; `older_than` -> everything created longer ago;
neither -> only objects whose time-to-live has passed (the janitor's default).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import XenAPI

from platforms.xcpng import objects
from platforms.xcpng.client import Xapi, describe
from platforms.xcpng.ledger import KEY_CREATED, KEY_EXPIRES, KEY_RUN, Entry, Ledger

log = logging.getLogger("platforms.xcpng")


@dataclass
class Report:
    removed: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def name_tags(name: str) -> dict[str, str]:
    """The tags a name carries after `?`, as the Packer template writes them."""
    _, _, query = name.partition("?")
    return {k: v[0] for k, v in parse_qs(query).items() if k.startswith("xcpng-golden-")}


def _tag_matches(
    oc: dict[str, str], run_id: str | None, older_than: float | None, now: float
) -> bool:
    if KEY_RUN not in oc:
        return False
    if run_id is not None:
        return oc[KEY_RUN] == run_id
    try:
        if older_than is not None:
            return float(oc.get(KEY_CREATED, "inf")) < now - older_than
        return float(oc.get(KEY_EXPIRES, "inf")) < now
    except ValueError:
        return False


def _ledger_targets(
    xapi: Xapi, entries: list[Entry], vms: dict[str, str], vdis: dict[str, str]
) -> None:
    for e in entries:
        ref, name, task = e.fields.get("ref"), e.fields.get("name"), e.fields.get("task")
        if e.kind == "vm":
            if ref:
                vms.setdefault(ref, name or ref)
            if task:
                for vm in objects.vms_of_task(xapi, task):
                    vms.setdefault(vm, name or vm)
                objects.forget_task(xapi, task)
        elif e.kind == "vdi":
            if ref:
                vdis.setdefault(ref, name or ref)
            elif name:
                for vdi in xapi.call("VDI.get_by_name_label", name):
                    vdis.setdefault(vdi, name)
        elif e.kind == "packer-vm" and name:  # ledgers written before the build VM was tagged
            for vm in xapi.call("VM.get_by_name_label", name):
                vms.setdefault(vm, name)


def cleanup(
    xapi: Xapi,
    ledger_path: Path,
    *,
    run_id: str | None = None,
    older_than: float | None = None,
    dry_run: bool = False,
    now: float | None = None,
) -> Report:
    now = time.time() if now is None else now
    report = Report()
    entries: list[Entry] = []
    if run_id is not None or older_than is not None:
        entries = Ledger.open_entries(ledger_path, run_id)
        if run_id is None and older_than is not None:
            entries = [e for e in entries if e.ts < now - older_than]
    vms: dict[str, str] = {}
    vdis: dict[str, str] = {}
    _ledger_targets(xapi, entries, vms, vdis)
    records: dict[str, Any] = xapi.call("VM.get_all_records")
    for ref, rec in records.items():
        if rec.get("is_control_domain"):
            vms.pop(ref, None)  # never, whatever a ledger says
            continue
        if _tag_matches(rec.get("other_config", {}), run_id, older_than, now):
            vms.setdefault(ref, rec.get("name_label", ref))
    for ref, rec in xapi.call("VDI.get_all_records").items():
        name = str(rec.get("name_label", ""))
        tags = rec.get("other_config", {})
        if KEY_RUN not in tags:
            tags = name_tags(name)
        if _tag_matches(tags, run_id, older_than, now):
            vdis.setdefault(ref, name or ref)
    for ref, name in vms.items():
        if not objects.exists(xapi, "VM", ref):
            continue
        if dry_run:
            report.removed.append(f"would remove VM {name} ({ref}) and its disks")
            continue
        try:
            problems = objects.destroy_vm(xapi, ref)
        except XenAPI.Failure as exc:
            problems = [f"VM {ref}: {xapi.redactor(describe(exc))}"]
        report.problems += problems
        if not problems:
            report.removed.append(f"VM {name} ({ref}) and its disks")
    for ref, name in vdis.items():
        if not objects.exists(xapi, "VDI", ref):
            continue
        if dry_run:
            report.removed.append(f"would remove VDI {name} ({ref})")
            continue
        problems = objects.destroy_vdi(xapi, ref)
        report.problems += problems
        if not problems:
            report.removed.append(f"VDI {name} ({ref})")
    if not dry_run and not report.problems:
        for e in entries:
            Ledger(ledger_path, e.run_id).record("destroyed", e.kind, e.key, by="cleanup")
    return report
