"""Concurrent runs on one pool, and the janitor without a ledger: every VM, disk and ISO a
Packer build creates carries its run id, creation time and expiry, in other_config (the VM,
through `vm_other_config`) or in its name (the disk and the ISO VDI, which the plugin names);
`cleanup --run-id` touches only its own run, and the janitor finds what killed runs left with
the ledger gone (CI's checkout wipes the work tree that holds it)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from build.catalog import parse_hcl
from platforms.xcpng.cleanup import cleanup, name_tags
from platforms.xcpng.ledger import KEY_CREATED, KEY_EXPIRES, KEY_RUN
from platforms.xcpng.platform import connect
from tests.twins.xapi import XapiTwin
from tests.twins.xapi.helpers import twin_settings

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "packer" / "xcpng" / "xenserver.pkr.hcl"
ISO = "https://cdimage.debian.org/cdimage/archive/12.11.0/amd64/iso-cd/debian-12.11.0-amd64-netinst.iso"


def _template() -> tuple[dict[str, str], dict[str, object]]:
    data = parse_hcl(TEMPLATE)
    local = data["locals"][0]
    (source,) = data["source"][0]["xenserver-iso"].values()
    return local, source


SEPARATOR = '${length(split("?", u)) > 1 ? "&" : "?"}'
EACH_URL = re.compile(r'^\$\{\[for u in var\.iso_urls : "(.*)"\]\}$')


def each_url(local: dict[str, str]) -> str:
    """The expression the template applies to each of the var file's iso_urls."""
    m = EACH_URL.match(str(local["iso_urls"]))
    assert m, local["iso_urls"]
    return m.group(1)


def render(text: str, **values: str) -> str:
    """The template's expressions filled in as Packer evaluates them."""
    local, _ = _template()
    text = text.replace("${local.run_tags}", str(local["run_tags"]))
    text = text.replace(SEPARATOR, "&" if "?" in values.get("iso_url", "") else "?")
    text = text.replace("${u}", values.get("iso_url", "${u}"))
    return re.sub(r"\$\{var\.(\w+)\}", lambda m: values[m.group(1)], text)


def packer_names(run: str, created: float, expires: float) -> dict[str, str]:
    """The names the plugin gives the ISO VDI (the last part of its URL) and the disk."""
    local, source = _template()
    values = {
        "run_id": run,
        "run_created": str(int(created)),
        "run_expires": str(int(expires)),
        "vm_name": f"tpl-debian12-{run}",
    }
    url = render(each_url(local), iso_url=ISO, **values)
    return {"iso": url.rsplit("/", 1)[1], "disk": render(str(source["disk_name"]), **values)}


def test_the_template_tags_the_vm_its_disk_and_its_iso_with_the_run() -> None:
    local, source = _template()
    assert source["iso_urls"] == "${local.iso_urls}"
    assert source["vm_other_config"] == {
        KEY_RUN: "${var.run_id}",
        KEY_CREATED: "${var.run_created}",
        KEY_EXPIRES: "${var.run_expires}",
    }
    names = packer_names("gh-7-1", 1000, 2000)
    assert names["iso"] == (
        "debian-12.11.0-amd64-netinst.iso?xcpng-golden-run-id=gh-7-1"
        "&xcpng-golden-created=1000&xcpng-golden-expires=2000"
    )
    for name in names.values():
        assert name_tags(name) == {KEY_RUN: "gh-7-1", KEY_CREATED: "1000", KEY_EXPIRES: "2000"}
    assert names["disk"].startswith("tpl-debian12-gh-7-1-disk?")
    # two runs never share an ISO VDI name, so neither finds (nor deletes) the other's
    assert packer_names("gh-8-1", 1000, 2000)["iso"] != names["iso"]
    assert render(
        each_url(local), iso_url=ISO + "?a=1", run_id="r", run_created="1", run_expires="2"
    ).startswith(ISO + "?a=1&xcpng-golden-run-id=r&")


@pytest.fixture
def twin() -> Iterator[XapiTwin]:
    with XapiTwin() as t:
        yield t


def leave_build(twin: XapiTwin, run: str, created: float, expires: float) -> dict[str, str]:
    """What a Packer build killed mid-way leaves: its running VM with a disk and the ISO."""
    db = twin.db
    sr = next(iter(db.objects["pool"].values()))["default_SR"]
    names = packer_names(run, created, expires)
    tags = {KEY_RUN: run, KEY_CREATED: str(int(created)), KEY_EXPIRES: str(int(expires))}
    vm = db.add(
        "VM",
        {
            "name_label": f"tpl-debian12-{run}",
            "power_state": "Running",
            "is_a_template": False,
            "guest_metrics": "OpaqueRef:NULL",
            "domid": 5,
            "other_config": {**tags, "disks": ""},
        },
    )
    disk = db.add("VDI", {"name_label": names["disk"], "SR": sr, "virtual_size": 1 << 30})
    iso = db.add(
        "VDI",
        {
            "name_label": names["iso"],
            "SR": sr,
            "virtual_size": 600 << 20,
            "other_config": {"temp": "temp"},
        },
    )
    for ref in (disk, iso):
        twin.storage.create(db.get("VDI", ref)["uuid"], 1 << 20)
    db.add("VBD", {"VM": vm, "VDI": disk, "type": "Disk", "userdevice": "0"})
    db.add("VBD", {"VM": vm, "VDI": iso, "type": "CD", "userdevice": "3"})
    return {"vm": vm, "disk": disk, "iso": iso}


def sweep(twin: XapiTwin, tmp_path: Path, **how: object) -> list[str]:
    s = twin_settings(twin, tmp_path / "artifacts")
    xapi = connect(s.xcpng)
    try:
        report = cleanup(xapi, tmp_path / "no-ledger-here.jsonl", **how)  # type: ignore[arg-type]
    finally:
        xapi.logout()
    assert report.problems == []
    return report.removed


def test_cleanup_of_one_run_leaves_a_concurrent_run_alone(twin: XapiTwin, tmp_path: Path) -> None:
    now = time.time()
    a = leave_build(twin, "gh-1-1", now, now + 3600)
    b = leave_build(twin, "gh-2-1", now, now + 3600)
    removed = sweep(twin, tmp_path, run_id="gh-1-1")
    assert len(removed) == 2  # A's VM with its disk, then A's ISO
    inv = twin.inventory()
    assert set(inv["VM"]) == {b["vm"]} and set(inv["VDI"]) == {b["disk"], b["iso"]}
    assert a["iso"] not in inv["VDI"]


def test_the_janitor_finds_leftovers_without_the_ledger(twin: XapiTwin, tmp_path: Path) -> None:
    now = time.time()
    old = leave_build(twin, "gh-3-1", now - 30 * 3600, now - 3600)  # expired an hour ago
    live = leave_build(twin, "gh-4-1", now - 600, now + 3600)  # a build still running
    assert len(sweep(twin, tmp_path)) == 2  # the default: what has expired
    inv = twin.inventory()
    assert set(inv["VM"]) == {live["vm"]} and set(inv["VDI"]) == {live["disk"], live["iso"]}
    assert old["vm"] not in inv["VM"]
    assert sweep(twin, tmp_path, older_than=24 * 3600.0) == []  # the live one is 10 min old
    assert len(sweep(twin, tmp_path, older_than=60.0)) == 2
    assert twin.empty()


def test_foreign_vdis_are_never_touched(twin: XapiTwin, tmp_path: Path) -> None:
    db = twin.db
    sr = next(iter(db.objects["pool"].values()))["default_SR"]
    keep = [
        db.add(
            "VDI", {"name_label": "debian-12.11.0-amd64-netinst.iso", "SR": sr, "virtual_size": 1}
        ),
        db.add("VDI", {"name_label": "report?week=12", "SR": sr, "virtual_size": 1}),
        db.add("VDI", {"name_label": "x?xcpng-golden-run-id=", "SR": sr, "virtual_size": 1}),
    ]
    assert sweep(twin, tmp_path, older_than=0.0) == []
    assert set(twin.inventory()["VDI"]) == set(keep)
