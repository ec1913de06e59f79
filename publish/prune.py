"""Retention: keep the newest N complete builds per OS, and whatever latest.json points at."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

from publish.buildid import is_build_id
from publish.catalog_page import refresh_index
from publish.pointers import latest_key
from publish.publisher import METADATA
from publish.stores.base import Log, Store


@dataclass
class PruneReport:
    kept: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)  # build folders


def prune(
    store: Store,
    keep: int,
    dry_run: bool = False,
    incomplete_grace_s: float = 86400,
    log: Log = print,
) -> PruneReport:
    """Delete old build folders. Incomplete ones (no metadata.json) go once older than the grace
    period, so an upload in progress elsewhere is left alone."""
    if keep < 1:
        from core.errors import UsageError

        raise UsageError(f"--keep {keep}: keep at least 1 build per OS")
    report = PruneReport()
    now = time.time()
    for os_name in store.list_dirs(""):
        pinned = None
        raw = store.get_bytes(latest_key(os_name))
        if raw is not None:
            try:
                pinned = json.loads(raw).get("folder")
            except ValueError:
                pinned = None
        complete: list[tuple[str, str]] = []
        for version in store.list_dirs(os_name):
            for build_id in store.list_dirs(f"{os_name}/{version}"):
                if not is_build_id(build_id):
                    continue  # not ours: never touch what the publisher did not write
                folder = f"{os_name}/{version}/{build_id}"
                if store.head(f"{folder}/{METADATA}") is not None:
                    complete.append((build_id, folder))
                    continue
                objects = store.list_keys(folder)
                ages = [store.last_modified(o.key) or now for o in objects]
                if all(now - a > incomplete_grace_s for a in ages):
                    keys = [o.key for o in objects]
                    _drop(store, folder, keys, dry_run=dry_run, report=report, log=log, why="stale")
        complete.sort(reverse=True)
        for i, (_, folder) in enumerate(complete):
            if i < keep or folder == pinned:
                report.kept.append(folder)
            else:
                keys = [o.key for o in store.list_keys(folder)]
                # metadata.json first: the folder stops counting as complete before it empties
                keys.sort(key=lambda k: not k.endswith(f"/{METADATA}"))
                _drop(store, folder, keys, dry_run=dry_run, report=report, log=log, why="old")
    if report.deleted and not dry_run:
        refresh_index(store)
    return report


def _drop(
    store: Store,
    folder: str,
    keys: list[str],
    *,
    dry_run: bool,
    report: PruneReport,
    log: Log,
    why: str,
) -> None:
    report.deleted.append(folder)
    log(f"{'would delete' if dry_run else 'deleting'} {why} build {store.describe(folder)}/")
    if not dry_run:
        store.delete(keys[:1])
        store.delete(keys[1:])
