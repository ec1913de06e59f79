"""The CycloneDX 1.6 SBOM of a published build, written from the inventory the session read
offline from the image's own package database (pkgdb.inventory), with cyclonedx-python-lib.

Shape (what scanners read):

- `metadata.component`: the template itself (type `platform`: a VM template is neither a
  library nor the distribution), named after the catalog OS, versioned by the build id, with
  the published XVA's SHA-256 and properties for the OS version and the inputs digest;
- one `operating-system` component (os-release ID and VERSION_ID, e.g. debian 12): the one
  Trivy and Grype take the distribution from. Every package depends from it, as Trivy's
  decoder expects of an OS's packages;
- one `library` component per installed package, its bom-ref its purl
  (`pkg:deb/debian/libssl3@3.0.15-1~deb12u1?arch=amd64&distro=debian-12&upstream=openssl`,
  `pkg:rpm/almalinux/bash@5.1.8-9.el9?arch=x86_64&distro=almalinux-9&epoch=1`), its declared
  licences (`acknowledgement: declared`), its source package as properties both in our
  namespace and in Trivy's (`aquasecurity:trivy:SrcName`..., which maps a binary package to
  the source the Debian security tracker files CVEs under) and in the purl's `upstream`
  qualifier (Syft's and Grype's);
- one component per kernel (`pkg:generic/linux-kernel@<release>`, as Syft names it), with
  the package that installed it.

The document is checked against the CycloneDX 1.6 JSON schema (strict) before it is returned:
an SBOM that does not validate is never published.
"""

from __future__ import annotations

import contextlib
import functools
import json
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from cyclonedx import spdx
from cyclonedx.model import HashAlgorithm, HashType, Property
from cyclonedx.model.bom import Bom, BomMetaData
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.model.license import (
    DisjunctiveLicense,
    LicenseAcknowledgement,
    LicenseExpression,
)
from cyclonedx.output.json import JsonV1Dot6
from cyclonedx.schema import SchemaVersion
from packageurl import PackageURL

from pkgdb.inventory import Inventory, Kernel, Package

if TYPE_CHECKING:
    from cyclonedx.validation.json import JsonStrictValidator

SPEC_VERSION = "1.6"
MEDIA_TYPE = "application/vnd.cyclonedx+json"
NS = "xcpng-golden"
TRIVY = "aquasecurity:trivy"
SECURITY = f"{NS}:security-update"
# Debian's DEP-5 short names (copyright-format 1.0, "License specification") whose SPDX
# identifier is certain; any other name is kept as declared.
DEBIAN_SPDX = {
    "Apache-2": "Apache-2.0",
    "Artistic": "Artistic-1.0-Perl",
    "BSD-2-clause": "BSD-2-Clause",
    "BSD-3-clause": "BSD-3-Clause",
    "BSD-4-clause": "BSD-4-Clause",
    "Expat": "MIT",
    "GPL-1+": "GPL-1.0-or-later",
    "GPL-2": "GPL-2.0-only",
    "GPL-2+": "GPL-2.0-or-later",
    "GPL-2.0+": "GPL-2.0-or-later",
    "GPL-3": "GPL-3.0-only",
    "GPL-3+": "GPL-3.0-or-later",
    "LGPL-2": "LGPL-2.0-only",
    "LGPL-2+": "LGPL-2.0-or-later",
    "LGPL-2.1": "LGPL-2.1-only",
    "LGPL-2.1+": "LGPL-2.1-or-later",
    "LGPL-3": "LGPL-3.0-only",
    "LGPL-3+": "LGPL-3.0-or-later",
    "MPL-2.0": "MPL-2.0",
    "Zlib": "Zlib",
}


class SbomError(ValueError):
    """The SBOM could not be written or does not validate (a bug here, or a damaged input)."""


@dataclass(frozen=True)
class Template:
    """The build the SBOM describes (its top component)."""

    os_name: str  # catalog name: debian12
    family: str
    os_version: str  # catalog version: 12
    build_id: str
    inputs_digest: str | None
    artifact_name: str  # debian12.xva
    artifact_sha256: str | None  # of the published XVA
    harness_version: str


def sbom_json(inv: Inventory, template: Template) -> bytes:
    """The SBOM document, validated against the CycloneDX 1.6 schema."""
    text = JsonV1Dot6(build_bom(inv, template)).output_as_string(indent=2)
    errors = validation_errors(text)
    if errors:
        raise SbomError(f"the SBOM of {template.os_name} does not validate: {errors[0]}")
    return text.encode() + b"\n"


@functools.cache
def _validator() -> JsonStrictValidator:
    # imported here: it imports jsonschema, whose format checkers take 2-4 s to load
    # (rfc3987_syntax compiles its grammar); `warm` pays that beside the artifact's upload
    from cyclonedx.validation.json import JsonStrictValidator

    return JsonStrictValidator(SchemaVersion.V1_6)


def warm() -> None:
    """Load the validator and its schemas ahead of the first SBOM (in a thread, while the
    artifact uploads: publish/api.py). Quiet: a validator that cannot load fails where the
    SBOM is validated, with its own message."""
    with contextlib.suppress(Exception):
        validation_errors('{"bomFormat": "CycloneDX", "specVersion": "1.6"}')


def validation_errors(text: str | bytes) -> list[str]:
    """[] when `text` is a valid CycloneDX 1.6 JSON document, else the (first) error."""
    error = _validator().validate_str(text.decode() if isinstance(text, bytes) else text)
    return [] if error is None else [str(error.data.message if error.data else error)]


def build_bom(inv: Inventory, template: Template) -> Bom:
    root = _template_component(inv, template)
    system = _os_component(inv)
    kernels = [_kernel_component(k) for k in inv.kernels]
    packages = [_package_component(p, inv) for p in inv.packages]
    bom = Bom(
        serial_number=uuid.uuid5(
            uuid.NAMESPACE_URL,
            f"urn:{NS}:{template.os_name}:{template.build_id}:{template.artifact_sha256}",
        ),
        metadata=BomMetaData(
            component=root,
            timestamp=datetime.fromtimestamp(inv.read_at, UTC).replace(microsecond=0),
            properties=[Property(name=f"{NS}:note", value=n) for n in inv.notes],
        ),
        components=[system, *kernels, *packages],
    )
    bom.metadata.tools.components.add(
        Component(type=ComponentType.APPLICATION, name=NS, version=template.harness_version)
    )
    bom.register_dependency(root, [system])
    bom.register_dependency(system, [*kernels, *packages])
    for c in (*kernels, *packages):
        bom.register_dependency(c, [])
    return bom


def _props(pairs: Iterable[tuple[str, str | None]]) -> list[Property]:
    return [Property(name=k, value=v) for k, v in pairs if v not in (None, "")]


def _template_component(inv: Inventory, t: Template) -> Component:
    hashes = (
        [HashType(alg=HashAlgorithm.SHA_256, content=t.artifact_sha256)]
        if t.artifact_sha256
        else None
    )
    return Component(
        type=ComponentType.PLATFORM,
        name=t.os_name,
        version=t.build_id,
        bom_ref=f"template:{t.os_name}@{t.build_id}",
        description=(
            f"{t.os_name} golden template for XCP-ng ({inv.os_release.get('PRETTY_NAME', '')}), "
            f"build {t.build_id}, published as {t.artifact_name}"
        ),
        hashes=hashes,
        properties=_props(
            [
                (f"{NS}:os", t.os_name),
                (f"{NS}:family", t.family),
                (f"{NS}:os-version", t.os_version),
                (f"{NS}:build-id", t.build_id),
                (f"{NS}:inputs-digest", t.inputs_digest),
                (f"{NS}:artifact", t.artifact_name),
                (f"{NS}:package-database", inv.database),
            ]
        ),
    )


def _os_component(inv: Inventory) -> Component:
    rel = inv.os_release
    return Component(
        type=ComponentType.OPERATING_SYSTEM,
        name=rel["ID"],
        version=rel.get("VERSION_ID") or inv.distro_version,
        bom_ref=f"os:{rel['ID']}@{rel.get('VERSION_ID', '')}",
        description=rel.get("PRETTY_NAME"),
        properties=_props(
            [
                (f"{NS}:distro-version", inv.distro_version),
                (f"{NS}:codename", rel.get("VERSION_CODENAME")),
            ]
        ),
    )


def _kernel_component(k: Kernel) -> Component:
    purl = PackageURL(type="generic", name="linux-kernel", version=k.release)
    return Component(
        type=ComponentType.LIBRARY,
        name="linux-kernel",
        version=k.release,
        bom_ref=f"kernel:{k.release}",
        purl=purl,
        description=f"Linux kernel {k.release}",
        properties=_props([(f"{NS}:kernel-package", k.package or None)]),
    )


def purl_of(p: Package, inv: Inventory) -> PackageURL:
    qualifiers = {"arch": p.arch, "distro": inv.distro}
    if p.kind == "rpm" and p.epoch is not None:
        qualifiers["epoch"] = str(p.epoch)
    if p.source != p.name or p.source_version != p.version:
        same = p.source_version == p.version
        qualifiers["upstream"] = p.source if same else f"{p.source}@{p.source_version}"
    return PackageURL(
        type=p.kind,
        namespace=inv.os_release["ID"],
        name=p.name,
        version=p.version,
        qualifiers=qualifiers,
    )


def _package_component(p: Package, inv: Inventory) -> Component:
    purl = purl_of(p, inv)
    return Component(
        type=ComponentType.LIBRARY,
        name=p.name,
        version=p.evr,
        bom_ref=purl.to_string(),
        purl=purl,
        licenses=list(licenses(p.licenses)),
        properties=_props(
            [
                (f"{NS}:source-package", p.source),
                (f"{NS}:source-version", p.source_version),
                (SECURITY, None if p.security is None else str(p.security).lower()),
                *_trivy_source(p),
            ]
        ),
    )


def _trivy_source(p: Package) -> list[tuple[str, str | None]]:
    """Trivy's own names for the source package (its SBOMs carry epoch and release apart)."""
    epoch: str | None = None
    version, release = p.source_version, ""
    if p.kind == "deb":
        if ":" in version:
            epoch, _, version = version.partition(":")
    else:
        epoch = str(p.epoch) if p.epoch is not None else None
        if "-" in version:
            version, _, release = version.rpartition("-")
    return [
        (f"{TRIVY}:SrcName", p.source),
        (f"{TRIVY}:SrcVersion", version),
        (f"{TRIVY}:SrcRelease", release),
        (f"{TRIVY}:SrcEpoch", epoch),
    ]


def licenses(declared: Iterable[str]) -> Iterator[DisjunctiveLicense | LicenseExpression]:
    """Declared licences: an SPDX id where the name is one (or Debian's short name maps to
    one for certain), else the name as declared; a single SPDX expression (rpm's License
    tag) as an expression. CycloneDX allows one expression or a list of licences, not both."""
    names = list(dict.fromkeys(declared))
    ack = LicenseAcknowledgement.DECLARED
    if len(names) == 1 and not spdx.is_supported_id(names[0]) and spdx.is_expression(names[0]):
        yield LicenseExpression(names[0], acknowledgement=ack)
        return
    for name in names:
        ident = DEBIAN_SPDX.get(name) or spdx.fixup_id(name)
        if ident:
            yield DisjunctiveLicense(id=ident, acknowledgement=ack)
        else:
            yield DisjunctiveLicense(name=name, acknowledgement=ack)


# -- reading one back (store diff, the catalog page) --------------------------------------


@dataclass(frozen=True)
class Listed:
    """A package as an SBOM lists it."""

    kind: str  # "deb" or "rpm"
    name: str
    arch: str
    version: str  # as the package manager compares it (rpm: epoch:version-release)
    security: bool | None


def listed_packages(data: bytes) -> dict[tuple[str, str], Listed]:
    """(name, arch) -> package, of every deb or rpm component of a CycloneDX document."""
    try:
        doc = json.loads(data)
        components = doc["components"]
    except (ValueError, KeyError, TypeError):
        raise SbomError("not a CycloneDX JSON document with components") from None
    out: dict[tuple[str, str], Listed] = {}
    for c in components:
        purl = _purl(c)
        if purl is None or purl.type not in ("deb", "rpm"):
            continue
        arch = str((purl.qualifiers or {}).get("arch", ""))
        props = {p.get("name"): p.get("value") for p in c.get("properties", [])}
        flag = props.get(SECURITY)
        out[(purl.name, arch)] = Listed(
            kind=purl.type,
            name=purl.name,
            arch=arch,
            version=str(c.get("version") or purl.version or ""),
            security=None if flag is None else flag == "true",
        )
    return out


def _purl(component: Any) -> PackageURL | None:
    if not isinstance(component, dict) or not component.get("purl"):
        return None
    try:
        return PackageURL.from_string(str(component["purl"]))
    except ValueError:
        return None
