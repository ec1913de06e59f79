"""Entry points shared by `xcpng-golden publish` and the pytest plugin's `--publish`."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.destination import Destination, as_destination
from core.errors import InfrastructureError, UsageError
from core.redact import Redactor
from core.results_file import load_results
from core.settings import Settings
from pkgdb.inventory import Inventory
from publish import sbom
from publish.artifact import unpublishable
from publish.catalog_page import refresh_index
from publish.gating import Candidate, gate, required_platform
from publish.publisher import Planned, Published, plan, publish_one
from publish.signing import ENV_KEY, load_signing_key
from publish.stores import open_store
from publish.stores.base import IntegrityError, Store


@dataclass
class PublishReport:
    destination: str
    dry_run: bool
    published: list[Published] = field(default_factory=list)
    planned: list[str] = field(default_factory=list)  # "<os> -> <folder>" (dry run too)
    refused: list[tuple[str, str]] = field(default_factory=list)  # gated out: (os, why)
    failed: list[tuple[str, str]] = field(default_factory=list)  # upload failed: (os, why)
    index: dict[str, Any] | None = None
    registered: list[str] = field(default_factory=list)  # what CloudStack registration did

    @property
    def ok(self) -> bool:
        """Everything that passed the gate is published (or would be, in a dry run)."""
        return not self.failed and bool(self.planned)

    def lines(self) -> list[str]:
        out = [f"publish to {self.destination}{' (dry run)' if self.dry_run else ''}:"]
        out += [f"  refused {o}: {why}" for o, why in self.refused]
        if self.dry_run:
            out += [f"  would publish {p}" for p in self.planned]
        out += [
            f"  published {p.os_name} {p.build_id}"
            f"{' (already there, verified)' if p.reused else ''}; {p.latest_message}"
            for p in self.published
        ]
        out += [f"  cloudstack: {line}" for line in self.registered]
        out += [f"  FAILED {o}: {why}" for o, why in self.failed]
        if not self.planned:
            out.append("  nothing to publish")
        return out


def publish_results(
    results: list[Path],
    to: Destination | str,
    settings: Settings,
    dry_run: bool = False,
    log: Callable[[str], None] = print,
    *,
    store: Store | None = None,
    builds_only: bool = False,
) -> PublishReport:
    """Publish every OS that passed; raises UsageError (bad input, nothing written).

    `builds_only`: the build folders only, no `latest.json`, `index.json` nor `index.html`: a
    fan-out shard, whose OSes no other shard publishes, leaves the shared objects to one
    `xcpng-golden store index` after every shard (refresh_index), so no two jobs write one
    object."""
    redactor = _redactor(settings)
    dest = as_destination(to, "--to")

    def say(msg: str) -> None:
        log(redactor(msg))

    if not results:
        raise UsageError("no results file given: pass --results reports/results.json")
    problems = cloudstack_settings_problems(settings, dest)
    if problems and not dry_run:  # before any upload: nothing published, nothing registered
        raise UsageError("; ".join(problems))
    loaded = [load_results(Path(p)) for p in results]  # every file is valid before any upload
    require = required_platform(dest, settings.publish_require_platform)
    report = PublishReport(destination=dest.url, dry_run=dry_run)
    accepted: dict[str, Candidate] = {}
    for r in loaded:
        g = gate(r, require)
        report.refused += [(name, redactor(why)) for name, why in g.refused]
        for c in g.accepted:
            prior = accepted.get(c.os_name)
            if prior is not None and prior.build["sha256"] != c.build["sha256"]:
                raise UsageError(
                    f"{c.os_name} passed in both {prior.results.path} and {c.results.path} with "
                    "different artifacts; publish them in separate runs"
                )
            accepted.setdefault(c.os_name, c)
    key = load_signing_key(settings.signing_key)  # a bad key: UsageError, nothing written
    store = store or open_store(dest, settings.s3)
    plans: list[Planned] = []
    for c in accepted.values():
        why = unpublishable(c)
        inventory, why_not = (None, why) if why else load_inventory(c)
        if inventory is None:
            report.refused.append((c.os_name, redactor(why_not or "no package inventory")))
            continue
        p = plan(c, settings.publish_compression, settings.publish_vhd)
        p.inventory = inventory
        plans.append(p)
        a = p.artifact
        report.planned.append(
            f"{c.os_name} -> {store.describe(p.folder)}/{a.name} "
            f"({a.compression}, {'as built' if a.as_built else 'from ' + a.source_format})"
        )
    for os_name, why in report.refused:
        say(f"{os_name}: not published: {why}")
    if dry_run:
        for line in report.planned:
            say(f"would publish {line}")
        return report
    if key is None and plans:
        say(f"no signing key ({ENV_KEY}): builds are published unsigned")
    if plans:  # the SBOM validator's 2-4 s of loading, beside the first artifact's upload
        threading.Thread(target=sbom.warm, name="sbom-validator", daemon=True).start()
    for p in plans:
        try:
            report.published.append(
                publish_one(p, store, redactor, say, key, pointers=not builds_only)
            )
        except (InfrastructureError, IntegrityError) as e:
            report.failed.append((p.candidate.os_name, redactor(str(e))))
            say(f"{p.candidate.os_name}: publish FAILED, latest.json untouched: {e}")
    if plans and not builds_only:
        try:
            report.index = refresh_index(store)
            say(f"index.json and index.html list {len(report.index['os'])} OS(es)")
        except (InfrastructureError, IntegrityError) as e:
            report.failed.append(("index.json", redactor(str(e))))
            say(f"index.json not rebuilt: {e}")
    if settings.cloudstack.enabled and report.published:
        register_published(report, store, settings, redactor, say)
    return report


def load_inventory(c: Candidate) -> tuple[Inventory | None, str | None]:
    """The package inventory the session recorded for this very artifact, or why there is
    none usable (the OS is then refused: a build without its SBOM is never published)."""
    record = c.record.get("inventory")
    if not record or c.inventory is None:
        return None, (
            "no package inventory for its SBOM in the results (the session did not read the "
            "image's package database: rerun the checks with this harness version)"
        )
    try:
        raw = c.inventory.read_bytes()
    except OSError as e:
        return (
            None,
            f"package inventory {c.inventory} cannot be read ({e.strerror}); rerun the checks",
        )
    if hashlib.sha256(raw).hexdigest() != record["sha256"]:
        return None, f"package inventory {c.inventory} changed since the session; rerun the checks"
    try:
        doc = json.loads(raw)
    except ValueError:
        return None, f"package inventory {c.inventory} is not JSON; rerun the checks"
    if doc.get("artifact_sha256") != c.build["sha256"]:
        return None, f"package inventory {c.inventory} is about another artifact; rerun the checks"
    if doc.get("error"):
        return None, f"no SBOM: {doc['error']}"
    try:
        return Inventory.from_json(doc.get("inventory")), None
    except ValueError as e:
        return None, f"package inventory {c.inventory}: {e}; rerun the checks"


def register_published(
    report: PublishReport,
    store: Store,
    settings: Settings,
    redactor: Redactor,
    say: Callable[[str], None],
) -> None:
    """The publish step after the upload: each published build registered in CloudStack."""
    from publish.cloudstack import CloudStackRefused
    from publish.cloudstack.api import CloudStackApi
    from publish.cloudstack.register import BuildToRegister, Registrar, vhd_url

    registrar = Registrar(CloudStackApi(settings.cloudstack, redactor), settings.cloudstack, say)
    for p in report.published:
        try:
            vhd = p.metadata.get("vhd") or {}
            url = vhd_url(settings.cloudstack, store, f"{p.folder}/{vhd.get('name', '')}")
            build = BuildToRegister.from_metadata(p.metadata, url)
            report.registered += registrar.register(build)
        except (CloudStackRefused, UsageError, InfrastructureError) as e:
            why = str(e) if str(e).startswith("CloudStack") else f"CloudStack: {e}"
            report.failed.append((p.os_name, redactor(why)))
            say(f"{p.os_name}: CloudStack registration FAILED: {redactor(str(e))}")


def cloudstack_settings_problems(settings: Settings, dest: Destination) -> list[str]:
    """With TEMPLATE_CLOUDSTACK: every CloudStack setting, a VHD to register, and a URL
    CloudStack can download it from (one line each, the fix named)."""
    cs = settings.cloudstack
    if not cs.enabled:
        return []
    problems = []
    missing = settings.missing({"cloudstack"})
    if missing:
        problems.append(
            "TEMPLATE_CLOUDSTACK=1 needs " + ", ".join(o.env for o in missing) + ": set them in "
            "the environment (the keys as CI secrets)"
        )
    if settings.publish_vhd == "none":
        problems.append(
            "TEMPLATE_CLOUDSTACK=1 registers the published VHD, and TEMPLATE_PUBLISH_VHD is none: "
            "set TEMPLATE_PUBLISH_VHD=bzip2 (or vhd)"
        )
    if not dest.is_s3 and not cs.url_base:
        problems.append(
            f"TEMPLATE_CLOUDSTACK=1: CloudStack downloads templates over http(s), and {dest} is "
            "a folder: set CLOUDSTACK_URL_BASE to the URL a web server serves it at"
        )
    return problems


def preflight(to: Destination | str, settings: Settings) -> list[str]:
    """Write and delete a probe object at the destination, and load the signing key: one
    line per problem, [] if fine."""
    redactor = _redactor(settings)
    try:
        dest = as_destination(to, "--to")
        required_platform(dest, settings.publish_require_platform)
        load_signing_key(settings.signing_key)
        problems = open_store(dest, settings.s3).probe()
    except (UsageError, InfrastructureError) as e:
        problems = [str(e)]
    if settings.cloudstack.enabled:
        problems += cloudstack_preflight(settings, redactor)
    return [redactor(p) for p in problems]


def cloudstack_preflight(settings: Settings, redactor: Redactor | None = None) -> list[str]:
    """One read-only call to CloudStack (listZones): endpoint, key, signature, zones."""
    from publish.cloudstack.api import CloudStackApi
    from publish.cloudstack.register import Registrar

    redactor = redactor or _redactor(settings)
    try:
        api = CloudStackApi(settings.cloudstack, redactor)
        return [f"CloudStack: {p}" for p in Registrar(api, settings.cloudstack).preflight()]
    except (UsageError, InfrastructureError) as e:
        return [f"CloudStack: {redactor(str(e))}"]


def _redactor(settings: Settings) -> Redactor:
    return Redactor(settings.secrets())
