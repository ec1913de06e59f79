"""`<os>/latest.json` (compare-and-set, forward only) and `index.json` (rebuilt, never edited).

Both are written with a conditional PUT so that two publishers cannot overwrite each other
blindly: the loser re-reads and decides again.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from core.errors import InfrastructureError
from publish.stores.base import Store

LATEST_SCHEMA = "xcpng-templates/latest/v1"
INDEX_SCHEMA = "xcpng-templates/index/v1"
INDEX_KEY = "index.json"
ATTEMPTS = 8


def latest_key(os_name: str) -> str:
    return f"{os_name}/latest.json"


def encode(doc: dict[str, Any]) -> bytes:
    return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()


def _load(data: bytes) -> dict[str, Any] | None:
    try:
        doc = json.loads(data)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


def latest_doc(meta: dict[str, Any], folder: str, metadata_name: str) -> dict[str, Any]:
    """The `latest.json` that points at the build in `folder`, from its metadata."""
    artifact = meta["artifact"]
    return {
        "schema": LATEST_SCHEMA,
        "os": meta["os"]["name"],
        "family": meta["os"]["family"],
        "version": meta["os"]["version"],
        "build_id": meta["build_id"],
        "folder": folder,
        "metadata": f"{folder}/{metadata_name}",
        "artifact": f"{folder}/{artifact['name']}",
        "format": artifact.get("format", "xva"),
        "compression": artifact.get("compression"),
        "size": artifact["size"],
        "sha256": artifact["sha256"],
        "order": meta["order"],
        "platform": meta["validation"]["platform"],
        "published_at": meta["published_at"],
    }


def update_latest(store: Store, doc: dict[str, Any]) -> tuple[bool, str]:
    """Point `<os>/latest.json` at doc unless it already points at an equal or newer build.

    Returns (changed, message). Never moves back: `order` ([commit time, build time]) decides.
    """
    key = latest_key(doc["os"])
    for _ in range(ATTEMPTS):
        current = store.get_with_token(key)
        token = None
        if current is not None:
            data, token = current
            old = _load(data)
            if old is not None and old.get("build_id") == doc["build_id"]:
                return False, f"{key} already points at {doc['build_id']}"
            if old is not None and list(old.get("order", [])) >= list(doc["order"]):
                return False, (
                    f"{key} kept at newer build {old.get('build_id')} "
                    f"(this one, {doc['build_id']}, is older)"
                )
        if store.put_if(key, encode(doc), token):
            return True, f"{key} -> {doc['build_id']}"
    raise InfrastructureError(f"{store.describe(key)} kept changing under us; rerun the publish")


def build_index(store: Store) -> dict[str, Any]:
    entries: dict[str, Any] = {}
    for os_name in store.list_dirs(""):
        data = store.get_bytes(latest_key(os_name))
        doc = _load(data) if data is not None else None
        if doc is not None and doc.get("schema") == LATEST_SCHEMA:
            entries[os_name] = doc
    return {
        "schema": INDEX_SCHEMA,
        "generated_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "os": entries,
    }


def rebuild_index(store: Store) -> dict[str, Any]:
    """Rebuild index.json from every latest.json; retry when another publisher wrote first."""
    for _ in range(ATTEMPTS):
        current = store.get_with_token(INDEX_KEY)
        token = current[1] if current else None
        index = build_index(store)
        if current is not None:
            old = _load(current[0])
            if old is not None and old.get("os") == index["os"]:
                return old
        if store.put_if(INDEX_KEY, encode(index), token):
            return index
    raise InfrastructureError(f"{store.describe(INDEX_KEY)} kept changing under us; rerun")
