"""`metadata.json` of a published build, built from the results and validated by its schema."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

from core import __version__
from publish.gating import Candidate

SCHEMAS = Path(__file__).resolve().parent / "schemas"
SCHEMA_PATH = SCHEMAS / "metadata.schema.json"
SCHEMA_ID = "xcpng-templates/metadata/v2"
# v1 (the artifact as built, no compression or source) is still read: stores hold such builds
OLD_SCHEMAS = {"xcpng-templates/metadata/v1": SCHEMAS / "metadata-v1.schema.json"}


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


def validate_metadata(meta: dict[str, Any]) -> None:
    """Against the schema the document names (v1 documents stay readable)."""
    schema_id = str(meta.get("schema", SCHEMA_ID))
    jsonschema.Draft202012Validator(metadata_schema(schema_id)).validate(meta)
