"""Run a build once per session across all xdist workers.

A session fixture runs once per *worker*. Coordination is a file lock plus a result file in the
directory every worker of the session shares: the first worker builds, records its pid (and
Packer's), then the result or the failure; the others wait on the lock and read the record,
failing at once with the same message if the build failed. If a worker died mid-build, the
lock is free again (flock dies with its owner); the next worker finds a "running" record whose
owner is gone, stops that owner's Packer process group if it still runs, and builds again.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from filelock import FileLock

from core.files import read_json, write_json_atomic
from core.model import BuildResult
from core.proc import group_alive, kill_group, pid_alive


class OnceRecord:
    def __init__(self, path: Path):
        self.path = path

    def read(self) -> dict[str, Any] | None:
        data = read_json(self.path)
        return data if isinstance(data, dict) else None

    def write(self, data: dict[str, Any]) -> None:
        write_json_atomic(self.path, data)


def _record(shared_dir: Path, key: str) -> OnceRecord:
    return OnceRecord(shared_dir / f"build-{key}.json")


def session_build(shared_dir: Path, key: str) -> tuple[str | None, BuildResult | None]:
    """(state, result) of this session's build of `key`: (None, None) when it never started,
    ("running" | "aborted", None) when it did not finish, ("done", result) otherwise."""
    data = _record(shared_dir, key).read()
    if data is None:
        return None, None
    if data.get("state") == "done":
        return "done", BuildResult.from_json(data["result"])
    return str(data.get("state")), None


def run_once(
    shared_dir: Path,
    key: str,
    build: Callable[[Callable[[int], None]], BuildResult],
    log: Callable[[str], None] = lambda _m: None,
    grace_s: float = 60.0,
) -> BuildResult:
    """Return the session's result for `key`, building it here only if nobody has."""
    shared_dir.mkdir(parents=True, exist_ok=True)
    record = _record(shared_dir, key)
    with FileLock(str(shared_dir / f"build-{key}.lock")):
        prior = record.read()
        if prior and prior.get("state") == "done":
            return BuildResult.from_json(prior["result"])
        if prior and prior.get("state") == "running":
            owner = int(prior.get("owner_pid", 0))
            packer = int(prior.get("packer_pid", 0) or 0)
            log(f"previous builder (pid {owner}) died mid-build; taking over")
            if packer and group_alive(packer) and not pid_alive(owner):
                log(f"stopping the dead builder's Packer (process group {packer})")
                kill_group(packer, grace_s)
        state: dict[str, Any] = {"state": "running", "owner_pid": os.getpid(), "since": time.time()}
        record.write(state)

        def on_packer_start(pid: int) -> None:
            record.write({**state, "packer_pid": pid})

        try:
            result = build(on_packer_start)
        except BaseException as exc:
            record.write({"state": "aborted", "error": type(exc).__name__, "since": time.time()})
            raise
        record.write({"state": "done", "result": result.to_json()})
        return result
