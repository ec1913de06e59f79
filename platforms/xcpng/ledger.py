"""The cleanup ledger: one JSON line per pool object, written (and fsynced) *before* the object is
created, so that a run killed at any instant leaves enough for `xcpng-golden pool cleanup` to
find what it created. Shared by xdist workers through a file lock.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from filelock import FileLock

LEDGER_NAME = "xcpng-ledger.jsonl"
# other_config keys every VM and VDI we create carries
KEY_RUN = "xcpng-golden-run-id"
KEY_CREATED = "xcpng-golden-created"
KEY_EXPIRES = "xcpng-golden-expires"


@dataclass
class Entry:
    """What the ledger knows of one object: `key` ties intent, creation and removal together."""

    key: str
    kind: str  # "vm" (imported), "vdi" (seed), "packer-vm" (a build VM, by name), "task"
    run_id: str
    ts: float
    fields: dict[str, Any] = field(default_factory=dict)
    state: str = "intent"  # intent -> created -> destroyed | kept


class Ledger:
    def __init__(self, path: Path, run_id: str):
        self.path = Path(path)
        self.run_id = run_id
        self._lock = FileLock(str(self.path) + ".lock")

    def record(self, state: str, kind: str, key: str, **fields: Any) -> None:
        line = {"ts": time.time(), "run_id": self.run_id, "state": state, "kind": kind}
        line |= {"key": key, **{k: v for k, v in fields.items() if v is not None}}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock, self.path.open("a") as fh:
            fh.write(json.dumps(line, sort_keys=True) + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    @staticmethod
    def read(path: Path) -> dict[str, Entry]:
        """Every object by key, merged across its lines (the last state wins)."""
        entries: dict[str, Entry] = {}
        if not path.exists():
            return entries
        for line in path.read_text().splitlines():
            try:
                d = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut by a crash: the entry before it still stands
            key = d.pop("key", None)
            if not key:
                continue
            e = entries.setdefault(
                key, Entry(key, d.get("kind", ""), d.get("run_id", ""), d.get("ts", 0.0))
            )
            e.state = d.pop("state", e.state)
            for k in ("kind", "run_id", "ts"):
                d.pop(k, None)
            e.fields.update(d)
        return entries

    @staticmethod
    def open_entries(path: Path, run_id: str | None = None) -> list[Entry]:
        """Objects not known to be gone (kept VMs included), optionally of one run."""
        return [
            e
            for e in Ledger.read(path).values()
            if e.state != "destroyed" and (run_id is None or e.run_id == run_id)
        ]
