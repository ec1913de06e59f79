"""Each OS's `latest.json` moved to its newest complete build in the store, forward only.

What `xcpng-golden store index` does before it rebuilds `index.json` and `index.html`, so that
one job after a fan-out (every shard wrote only its own build folders, `publish --builds-only`)
sets every pointer, and a publish that stopped between a complete build folder and its pointer
is finished. A build folder is complete once its `metadata.json` exists (the publisher writes it
last, after the gate let the build through); the newest is the one with the highest `order`
([commit time, build time]), and `update_latest` never moves a pointer back. An OS with no
complete build gets no pointer, so it stays out of the index.
"""

from __future__ import annotations

from publish.pointers import latest_doc, update_latest
from publish.publisher import METADATA
from publish.source import build_folders, load_build
from publish.stores.base import IntegrityError, Log, Store


def repoint_latest(store: Store, log: Log | None = None) -> list[str]:
    """Move every OS's latest.json forward to its newest complete build; return the problems
    (a build whose metadata does not check out is skipped and named)."""
    problems: list[str] = []
    for os_name in store.list_dirs(""):
        builds = []
        for _, folder in build_folders(store, os_name):
            try:
                builds.append(load_build(store, folder))
            except IntegrityError as exc:
                problems.append(f"{os_name}: skipped {store.describe(folder)}: {exc}")
        if not builds:
            continue
        newest = max(builds, key=lambda b: list(b.meta["order"]))
        changed, message = update_latest(store, latest_doc(newest.meta, newest.folder, METADATA))
        if log is not None and changed:
            log(f"{os_name}: {message}")
    for line in problems:
        if log is not None:
            log(line)
    return problems
