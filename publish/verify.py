"""The reader's view: does every pointer lead to complete, intact objects?

Used by `xcpng-golden store verify` and by the tests after every injected fault.
"""

from __future__ import annotations

import json
from typing import Any

from publish.metadata import folder_objects, listed_digests, validate_metadata
from publish.pointers import INDEX_KEY, LATEST_SCHEMA, latest_key
from publish.stores.base import Store
from publish.sums import SUMS, SumsError, parse, sha256

METADATA = "metadata.json"


def verify_tree(store: Store, deep: bool = False) -> list[str]:
    """One line per problem, [] if index.json and every latest.json are sound.

    deep re-hashes every artifact (streamed) instead of trusting sizes and recorded digests.
    """
    problems: list[str] = []
    latests: dict[str, dict[str, Any]] = {}
    for os_name in store.list_dirs(""):
        raw = store.get_bytes(latest_key(os_name))
        if raw is None:
            continue
        try:
            doc = json.loads(raw)
        except ValueError:
            problems.append(f"{store.describe(latest_key(os_name))} is not JSON")
            continue
        latests[os_name] = doc
        problems += _verify_latest(store, doc, deep)
    raw_index = store.get_bytes(INDEX_KEY)
    if raw_index is not None:
        index = json.loads(raw_index)
        for os_name, entry in index.get("os", {}).items():
            if os_name not in latests:
                problems.append(f"index.json lists {os_name} but it has no latest.json")
            elif entry.get("build_id") != latests[os_name].get("build_id"):
                problems.append(
                    f"index.json points {os_name} at {entry.get('build_id')}, "
                    f"latest.json at {latests[os_name].get('build_id')}"
                )
            problems += _verify_latest(store, entry, deep=False)
    elif latests:
        problems.append("latest.json files exist but index.json does not")
    return problems


def _verify_latest(store: Store, doc: dict[str, Any], deep: bool) -> list[str]:
    where = store.describe(latest_key(str(doc.get("os"))))
    if doc.get("schema") != LATEST_SCHEMA:
        return [f"{where}: unknown schema {doc.get('schema')!r}"]
    raw = store.get_bytes(doc["metadata"])
    if raw is None:
        return [f"{where} points at {doc['metadata']}, which does not exist"]
    try:
        meta = json.loads(raw)
        validate_metadata(meta)
    except ValueError as e:  # not JSON, or a MetadataError
        return [
            f"{store.describe(doc['metadata'])} is not valid metadata: {str(e).splitlines()[0]}"
        ]
    problems = []
    art = meta["artifact"]
    if art["sha256"] != doc["sha256"] or f"{doc['folder']}/{art['name']}" != doc["artifact"]:
        problems.append(f"{where} and its metadata disagree on the artifact")
    head = store.head(doc["artifact"])
    if head is None or head.size != art["size"]:
        problems.append(f"{store.describe(doc['artifact'])} is missing or truncated")
    elif deep and store.sha256(doc["artifact"]) != art["sha256"]:
        problems.append(f"{store.describe(doc['artifact'])} does not match its sha256")
    for name in folder_objects(meta):
        info = meta["files"].get(name)
        key = f"{doc['folder']}/{name}"
        h = store.head(key)
        if h is None or not h.size or (info is not None and h.size != info["size"]):
            problems.append(f"{store.describe(key)} is missing or truncated")
        elif deep and info is not None and store.sha256(key) != info["sha256"]:
            problems.append(f"{store.describe(key)} does not match its sha256")
    if "signature" in meta:
        problems += _verify_sums(store, doc["folder"], meta, raw)
    return problems


def _verify_sums(store: Store, folder: str, meta: dict[str, Any], raw: bytes) -> list[str]:
    """SHA256SUMS agrees with metadata.json (its bytes, the artifact's, the VHD's and each
    file's digest).
    Its signature is the readers' to check against their allowed signers (store fetch)."""
    key = f"{folder}/{SUMS}"
    data = store.get_bytes(key)
    if data is None:
        return []  # reported above as missing
    try:
        sums = parse(data)
    except SumsError as e:
        return [f"{store.describe(key)}: {e}"]
    expected = {**listed_digests(meta), METADATA: sha256(raw)}
    return [
        f"{store.describe(key)} disagrees with metadata.json about {name}"
        for name, digest in sorted(expected.items())
        if sums.get(name) != digest
    ]
