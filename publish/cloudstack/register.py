"""Registering a published build in CloudStack, idempotently, and moving its featured template.

A build is one template named `golden-<os>-<build id>`, registered once in every configured zone
from the build's VHD URL (format VHD, hypervisor XenServer, the OS type looked up by name, the
checksum as CloudStack verifies it, `{SHA-256}<hex>` of the published file), tagged with the OS,
build id, inputs digest and boot modes. Then:

- every zone's secondary storage downloads it; this waits, printing each zone's status as it
  changes ("45% Downloaded", "Installing Template", "Download Complete"), and fails with the
  zone's own status text (CloudStack's words: a download error, a checksum mismatch); a
  registration that fails, times out or is interrupted is deleted, so nothing stays
  half-registered;
- the newest registered build of an OS is its featured template (an older build never takes the
  flag from a newer one, as latest.json is never moved back), and registrations beyond the
  retention count are deleted, oldest first, never the featured one;
- the same build id is never registered twice: a second run finds it by name and tag.

`rollback` makes the previous ready build featured again (the old one stays registered).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from core.errors import UsageError
from core.settings import CloudStackConfig
from core.waiting import WaitTimeout, wait_for
from publish.cloudstack import CloudStackRefused
from publish.cloudstack.api import CloudStackApi

Log = Callable[[str], None]
TAG_OS = "golden.os"
TAG_BUILD = "golden.build-id"
TAG_DIGEST = "golden.inputs-digest"
TAG_BOOT = "golden.boot-modes"
HYPERVISOR = "XenServer"  # CloudStack's name for XenServer and XCP-ng hosts
FORMAT = "VHD"
READY = "Download Complete"
ERROR_STATES = ("DOWNLOAD_ERROR", "ABANDONED")
PROGRESS = re.compile(r"^(\d+% Downloaded|Installing Template|Processing|NOT_DOWNLOADED|)$")
MAX_URL_LIFETIME_S = 7 * 86400  # SigV4 presigned links live at most 7 days
POLL_INTERVAL_S = 5.0  # between two listTemplates while the zones download


def template_name(os_name: str, build_id: str) -> str:
    return f"golden-{os_name}-{build_id}"


@dataclass(frozen=True)
class BuildToRegister:
    """What the registration needs of one published build (from its metadata.json)."""

    os_name: str
    version: str
    build_id: str
    inputs_digest: str
    os_type: str | None
    url: str
    sha256: str
    boot_modes: tuple[str, ...]

    @classmethod
    def from_metadata(cls, meta: dict[str, Any], url: str) -> BuildToRegister:
        vhd = meta.get("vhd")
        if not vhd:
            raise UsageError(
                f"{meta['os']['name']} {meta['build_id']} was published without a VHD, the format "
                "CloudStack's XenServer zones register: publish it again with "
                "TEMPLATE_PUBLISH_VHD=bzip2"
            )
        return cls(
            os_name=meta["os"]["name"],
            version=meta["os"]["version"],
            build_id=meta["build_id"],
            inputs_digest=str(meta.get("inputs_digest") or ""),
            os_type=(meta.get("cloudstack") or {}).get("os_type"),
            url=url,
            sha256=vhd["sha256"],
            boot_modes=tuple(meta.get("boot_modes") or ()),
        )


@dataclass
class Registered:
    """One template of this project in CloudStack, across its zones."""

    id: str
    name: str
    build_id: str
    featured: bool
    zones: dict[str, tuple[bool, str, str]] = field(default_factory=dict)  # name: ready, status

    @property
    def ready(self) -> bool:
        return bool(self.zones) and all(ready for ready, _, _ in self.zones.values())


def signable(url: str) -> str:
    """`~` as %7E: the same URL (RFC 3986), but cs signs a `~` as it is while CloudStack's Java
    URLEncoder encodes it, so a URL holding one would fail the signature check."""
    return url.replace("~", "%7E")


def vhd_url(cfg: CloudStackConfig, store: Any, key: str) -> str:
    """The URL CloudStack downloads `key` from: under CLOUDSTACK_URL_BASE, else presigned (S3)."""
    if cfg.url_base:
        return signable(f"{cfg.url_base.rstrip('/')}/{quote(key)}")
    if not str(getattr(store, "url", "")).startswith("s3://"):
        raise UsageError(
            "CloudStack downloads templates over http(s) and the store is a folder: set "
            "CLOUDSTACK_URL_BASE to the URL a web server serves it at"
        )
    if cfg.url_lifetime > MAX_URL_LIFETIME_S:
        raise UsageError(
            f"CLOUDSTACK_URL_LIFETIME is {cfg.url_lifetime / 86400:.1f} days; a presigned S3 "
            "link lives 7 days at most"
        )
    return signable(str(store.presign(key, int(cfg.url_lifetime))))


class Registrar:
    def __init__(
        self,
        api: CloudStackApi,
        cfg: CloudStackConfig,
        log: Log = print,
        *,
        poll_interval: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.api, self.cfg, self.log = api, cfg, log
        self.poll_interval = POLL_INTERVAL_S if poll_interval is None else poll_interval
        self.clock, self.sleep = clock, sleep

    # -- reading ---------------------------------------------------------------------------
    def preflight(self) -> list[str]:
        """One read-only call (listZones): endpoint, key, signature and zones in one go."""
        try:
            self.zone_ids()
        except (CloudStackRefused, UsageError) as exc:
            return [str(exc)]
        return []

    def zone_ids(self) -> dict[str, str]:
        if not self.cfg.zones:
            raise UsageError("CLOUDSTACK_ZONES is empty: name the zones to register in")
        zones = self.api.call("listZones").get("zone", [])
        have = {z["name"]: z["id"] for z in zones}
        missing = [z for z in self.cfg.zones if z not in have]
        if missing:
            raise UsageError(
                f"CloudStack has no zone named {', '.join(missing)} (it has: "
                f"{', '.join(sorted(have)) or 'none'}): fix CLOUDSTACK_ZONES"
            )
        return {z: have[z] for z in self.cfg.zones}

    def os_type_id(self, build: BuildToRegister) -> str:
        if not build.os_type:
            raise UsageError(
                f"{build.os_name} names no CloudStack OS type: set cloudstack_os_type in "
                f"packer/os/{build.os_name}.pkrvars.hcl to one listOsTypes lists"
            )
        found = self.api.call("listOsTypes", description=build.os_type).get("ostype", [])
        exact = [o for o in found if o.get("description") == build.os_type]
        if not exact:
            near = ", ".join(repr(o["description"]) for o in found[:5]) or "none alike"
            raise CloudStackRefused(
                f"CloudStack has no OS type {build.os_type!r} (listOsTypes: {near}): set "
                f"cloudstack_os_type in packer/os/{build.os_name}.pkrvars.hcl to one it lists"
            )
        return str(exact[0]["id"])

    def registered(self, os_name: str) -> list[Registered]:
        """This OS's templates, newest build first."""
        rows = self.api.call(
            "listTemplates", templatefilter="self", tags=[{"key": TAG_OS, "value": os_name}]
        ).get("template", [])
        by_id: dict[str, Registered] = {}
        for row in rows:
            tags = {t["key"]: t["value"] for t in row.get("tags", [])}
            reg = by_id.setdefault(
                row["id"],
                Registered(row["id"], row["name"], tags.get(TAG_BUILD, ""), row["isfeatured"]),
            )
            state = (row.get("downloaddetails") or [{}])[0].get("downloadState", "")
            reg.zones[row["zonename"]] = (bool(row["isready"]), row.get("status") or "", state)
        return sorted(by_id.values(), key=lambda r: r.build_id, reverse=True)

    # -- registering -----------------------------------------------------------------------
    def register(self, build: BuildToRegister) -> list[str]:
        """Register (or find) the build, wait until every zone has it, then feature and prune."""
        zones = self.zone_ids()
        existing = [r for r in self.registered(build.os_name) if r.build_id == build.build_id]
        if existing:
            reg = existing[0]
            self.log(f"{build.os_name}: build {build.build_id} is already registered ({reg.id})")
            if not reg.ready:
                self.wait_ready(build.os_name, reg.id, list(zones))
            return [f"{build.os_name} {build.build_id}: already registered as {reg.name}, "
                    "nothing registered"]  # fmt: skip
        reg_id = self._register_new(build, zones)
        name = template_name(build.os_name, build.build_id)
        lines = [f"{build.os_name} {build.build_id}: registered as {name} ({reg_id}) in "
                 f"{', '.join(zones)}, ready"]  # fmt: skip
        lines += self.feature_newest(build.os_name)
        lines += self.prune(build.os_name)
        return lines

    def _register_new(self, build: BuildToRegister, zones: dict[str, str]) -> str:
        ostype = self.os_type_id(build)
        name = template_name(build.os_name, build.build_id)
        self.log(f"{build.os_name}: registering {name} from {self.api.redactor(build.url)}")
        rows = self.api.call(
            "registerTemplate",
            name=name,
            displaytext=f"{build.os_name} {build.version} golden template, build {build.build_id}",
            format=FORMAT,
            hypervisor=HYPERVISOR,
            ostypeid=ostype,
            url=build.url,
            zoneids=list(zones.values()),
            checksum=f"{{SHA-256}}{build.sha256}",
            passwordenabled=False,  # key-only templates: docs/cloudstack.md, "Password reset"
            sshkeyenabled=True,
            ispublic=self.cfg.public,
            isfeatured=False,  # featured once ready, by feature_newest
            isextractable=False,
            requireshvm=True,
            bits=64,
        ).get("template", [])
        if not rows:
            raise CloudStackRefused(f"registerTemplate returned no template for {name}")
        template_id = str(rows[0]["id"])
        try:
            tags = {
                TAG_OS: build.os_name,
                TAG_BUILD: build.build_id,
                TAG_DIGEST: build.inputs_digest,
                TAG_BOOT: ",".join(build.boot_modes),
            }
            self.api.job(
                "createTags",
                resourceids=template_id,
                resourcetype="Template",
                tags=[{"key": k, "value": v} for k, v in tags.items() if v],
            )
            self.wait_ready(build.os_name, template_id, list(zones))
        except BaseException:
            self._delete(template_id, f"{name}: the registration failed; deleting it")
            raise
        return template_id

    def wait_ready(self, os_name: str, template_id: str, zones: list[str]) -> None:
        """Until every zone reports the template ready; CloudStack's status text on failure."""
        seen: dict[str, str] = {}
        last: dict[str, tuple[bool, str, str]] = {}

        def ready() -> bool:
            rows = self.api.call("listTemplates", templatefilter="self", id=template_id)
            for row in rows.get("template", []):
                state = (row.get("downloaddetails") or [{}])[0].get("downloadState", "")
                last[row["zonename"]] = (bool(row["isready"]), row.get("status") or "", state)
            for zone in zones:
                ok, status, state = last.get(zone, (False, "not registered in this zone", ""))
                if status != seen.get(zone):
                    seen[zone] = status
                    self.log(f"{os_name}: {zone}: {status or state or 'waiting'}")
                if not ok and (state in ERROR_STATES or not PROGRESS.match(status)):
                    raise CloudStackRefused(f"{os_name}: zone {zone}: {status or state}")
            return all(last.get(z, (False,))[0] for z in zones)

        try:
            wait_for(ready, what=f"{os_name} ready in {', '.join(zones)}",
                     timeout=self.cfg.timeout, interval=self.poll_interval,
                     clock=self.clock, sleep=self.sleep)  # fmt: skip
        except WaitTimeout:
            pending = ", ".join(f"{z}: {last.get(z, (0, '?'))[1]}" for z in zones)
            raise CloudStackRefused(
                f"{os_name}: not ready in every zone after {self.cfg.timeout:.0f} s ({pending}); "
                "raise CLOUDSTACK_TIMEOUT or look at the zones' secondary storage"
            ) from None

    # -- featured, retention, rollback -----------------------------------------------------
    def _set_featured(self, reg: Registered, on: bool) -> None:
        self.api.call("updateTemplatePermissions", id=reg.id, isfeatured=on)
        reg.featured = on

    def feature(self, os_name: str, target: Registered, regs: list[Registered]) -> list[str]:
        if not self.cfg.featured:
            return []
        lines = []
        if not target.featured:
            self._set_featured(target, True)
            lines.append(f"{os_name}: {target.build_id} is now the featured template")
        for other in regs:
            if other.id != target.id and other.featured:
                self._set_featured(other, False)
                lines.append(f"{os_name}: {other.build_id} is no longer featured")
        return lines

    def feature_newest(self, os_name: str) -> list[str]:
        """The newest ready build becomes featured (called after a new registration only, so a
        rollback stays in force when the same build is published again)."""
        regs = [r for r in self.registered(os_name) if r.ready]
        return self.feature(os_name, regs[0], regs) if regs else []

    def prune(self, os_name: str) -> list[str]:
        regs = self.registered(os_name)
        keep = {r.id for r in regs[: self.cfg.retention]} | {r.id for r in regs if r.featured}
        lines = []
        for reg in regs:
            if reg.id not in keep:
                self._delete(reg.id, f"{os_name}: deleting {reg.name} (beyond the retention)")
                lines.append(f"{os_name}: deleted {reg.build_id} (retention {self.cfg.retention})")
        return lines

    def rollback(self, os_name: str, to_build: str | None = None) -> list[str]:
        regs = self.registered(os_name)
        ready = [r for r in regs if r.ready]
        if not ready:
            raise UsageError(f"no ready template of {os_name} is registered in CloudStack")
        current = next((r for r in ready if r.featured), ready[0])
        if to_build:
            target = next((r for r in ready if r.build_id == to_build), None)
            if target is None:
                have = ", ".join(r.build_id for r in ready)
                raise UsageError(f"no ready registration of {os_name} {to_build} (ready: {have})")
        else:
            older = [r for r in ready if r.build_id < current.build_id]
            if not older:
                raise UsageError(
                    f"no build of {os_name} older than {current.build_id} is registered (the "
                    f"retention keeps {self.cfg.retention}): nothing to roll back to"
                )
            target = older[0]
        return self.feature(os_name, target, regs) or [f"{os_name}: {target.build_id} is featured"]

    def _delete(self, template_id: str, why: str) -> None:
        self.log(why)
        try:
            self.api.job("deleteTemplate", id=template_id)
        except Exception as exc:
            self.log(f"could not delete template {template_id}: {exc}")
