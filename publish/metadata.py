"""`metadata.json` of a published build, built from the results and validated by its schema."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

from core import __version__
from publish.gating import Candidate

SCHEMAS = Path(__file__).resolve().parent / "schemas"
SCHEMA_PATH = SCHEMAS / "metadata.schema.json"
SCHEMA_ID = "xcpng-templates/metadata/v3"
# Older builds stay readable: stores hold them. v1: the artifact as built, no compression or
# source; v2: no SBOM, provenance or SHA256SUMS (so never signed).
OLD_SCHEMAS = {
    "xcpng-templates/metadata/v1": SCHEMAS / "metadata-v1.schema.json",
    "xcpng-templates/metadata/v2": SCHEMAS / "metadata-v2.schema.json",
}


@cache
def metadata_schema(schema_id: str = SCHEMA_ID) -> dict[str, Any]:
    path = OLD_SCHEMAS.get(schema_id, SCHEMA_PATH)
    return json.loads(path.read_text())


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")


def build_metadata(
    c: Candidate,
    *,
    build_id: str,
    artifact: dict[str, Any],
    source: dict[str, Any],
    files: dict[str, dict[str, Any]],
    commit_time: float | None,
    order: list[float],
    published_at: float,
    sbom: dict[str, Any],
    provenance: dict[str, Any],
    signature: dict[str, Any],
    vhd: dict[str, Any] | None = None,
    boot_modes: list[str] | None = None,
) -> dict[str, Any]:
    rec, build, data = c.record, c.build, c.results.data
    meta = {
        "schema": SCHEMA_ID,
        "os": {"name": c.os_name, "family": rec["family"], "version": rec["version"]},
        "build_id": build_id,
        "created_at": iso(build["built_at"]),
        "published_at": iso(published_at),
        "git": {
            "revision": data["git"]["revision"],
            "dirty": data["git"]["dirty"],
            "committed_at": commit_time,
        },
        "packer": {
            "version": build.get("packer_version"),
            "plugins": dict(build.get("plugins") or {}),
            "template": rec.get("template"),
            "var_file": rec.get("var_file"),
        },
        "inputs_digest": build.get("inputs_digest"),
        "artifact": artifact,
        "source": source,
        "packages": rec.get("packages"),
        "security_updates": rec.get("security_updates"),
        "validation": {
            "platform": c.platform,
            "run_id": data["run_id"],
            "checks": {
                "passed": list(rec["checks"]["passed"]),
                "failed": list(rec["checks"]["failed"]),
                "skipped": [dict(s) for s in rec["checks"]["skipped"]],
            },
        },
        "files": files,
        "sbom": sbom,
        "provenance": provenance,
        "signature": signature,
        "harness_version": data["harness_version"],
        "publisher_version": __version__,
        "order": order,
        "cloudstack": {"os_type": rec.get("cloudstack_os_type")},
    }
    if vhd is not None:
        meta["vhd"] = vhd
    if boot_modes is not None:
        meta["boot_modes"] = boot_modes
    validate_metadata(meta)
    return meta


def folder_objects(meta: dict[str, Any]) -> list[str]:
    """Every object the build folder must hold besides its artifact and metadata.json: the
    files it lists, and from v3 on SHA256SUMS and (signed builds) its signature."""
    names = list(meta.get("files", {}))
    sig = meta.get("signature")
    if isinstance(sig, dict):
        names.append(str(sig["sums"]))
        if sig.get("file"):
            names.append(str(sig["file"]))
    return names


def listed_digests(meta: dict[str, Any]) -> dict[str, str]:
    """name -> sha256 of every file metadata.json gives a digest of: the artifact, the VHD
    (when published) and the listed files. SHA256SUMS lists them, and metadata.json itself."""
    out = {str(meta["artifact"]["name"]): str(meta["artifact"]["sha256"])}
    vhd = meta.get("vhd")
    if isinstance(vhd, dict):
        out[str(vhd["name"])] = str(vhd["sha256"])
    out.update({str(n): str(i["sha256"]) for n, i in meta.get("files", {}).items()})
    return out


def is_signed(meta: dict[str, Any]) -> bool:
    sig = meta.get("signature")
    return isinstance(sig, dict) and sig.get("state") == "signed"


class MetadataError(ValueError):
    """A metadata document that breaks its schema: where (a JSON path) and what."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__(message)
        self.where = where
        self.message = message


def validate_metadata(meta: dict[str, Any]) -> None:
    """Against the schema the document names (v1 documents stay readable); MetadataError."""
    # imported here: jsonschema's start-up (its format checkers; rfc3987_syntax compiles a
    # grammar) is 2-4 s that every `xcpng-golden` command would pay
    import jsonschema

    schema_id = str(meta.get("schema", SCHEMA_ID))
    try:
        jsonschema.Draft202012Validator(metadata_schema(schema_id)).validate(meta)
    except jsonschema.ValidationError as e:
        where = "/".join(str(part) for part in e.absolute_path) or "(top level)"
        raise MetadataError(where, e.message) from None
