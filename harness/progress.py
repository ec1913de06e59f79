"""Progress of every OS, visible on the terminal even under xdist.

Workers cannot write to the terminal, so each phase change goes to a small status file in the
run directory that all processes share; the controller (or the only process, without xdist)
reads them and prints one line per OS when something changes, and a heartbeat otherwise.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.files import read_json, write_json_atomic


class StatusBoard:
    def __init__(self, run_dir: Path):
        self.dir = run_dir / "status"
        self.dir.mkdir(parents=True, exist_ok=True)

    def set(self, os_name: str, phase: str, detail: str = "") -> None:
        path = self.dir / f"{os_name}.json"
        prior = self.read_one(path)
        now = time.time()
        phases = dict(prior.get("phases", {})) if prior else {}
        if prior and prior.get("phase") != phase:  # the prior phase ended now
            ended = prior["phase"]
            phases[ended] = phases.get(ended, 0.0) + now - prior["phase_since"]
        data = {
            "os": os_name,
            "phase": phase,
            "detail": detail[:120],
            "started": prior.get("started", now) if prior else now,
            "phase_since": prior["phase_since"] if prior and prior.get("phase") == phase else now,
            "phases": phases,  # seconds spent in each phase that ended
            "updated": now,
            "pid": os.getpid(),
        }
        write_json_atomic(path, data)

    def timings(self, os_name: str, now: float | None = None) -> dict[str, float]:
        """Seconds each phase of one OS took (build, boot, validate, teardown...), the current
        phase counted up to now: the phase table of results.json and the main-job benchmark."""
        data = self.read_one(self.dir / f"{os_name}.json")
        if not data:
            return {}
        out = {k: round(float(v), 1) for k, v in data.get("phases", {}).items()}
        if data.get("phase") not in (None, "done"):
            current = data["phase"]
            spent = (now or time.time()) - data["phase_since"]
            out[current] = round(out.get(current, 0.0) + spent, 1)
        return out

    @staticmethod
    def read_one(path: Path) -> dict[str, Any] | None:
        data = read_json(path)
        return data if isinstance(data, dict) else None

    def read_all(self) -> dict[str, dict[str, Any]]:
        out = {}
        for p in sorted(self.dir.glob("*.json")):
            d = self.read_one(p)
            if d:
                out[d["os"]] = d
        return out


def _fmt(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


def render(status: dict[str, dict[str, Any]], now: float | None = None) -> list[str]:
    now = now or time.time()
    lines = []
    for name, d in sorted(status.items()):
        detail = f" - {d['detail']}" if d.get("detail") else ""
        lines.append(
            f"[{name}] {d['phase']} {_fmt(now - d['phase_since'])} "
            f"(total {_fmt(now - d['started'])}){detail}"
        )
    return lines


class ProgressDisplay:
    """A daemon thread that prints status changes and a heartbeat every `heartbeat` seconds."""

    def __init__(
        self,
        board: StatusBoard,
        write: Callable[[str], None],
        interval: float = 2.0,
        heartbeat: float = 60.0,
        detail_every: float = 15.0,
    ):
        self.board = board
        self.write = write
        self.interval = interval
        self.heartbeat = heartbeat
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="progress", daemon=True)
        self._seen: dict[str, tuple[str, str]] = {}
        self._last_beat = time.time()
        self._printed: dict[str, float] = {}
        self.detail_every = detail_every

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        with contextlib.suppress(RuntimeError):
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            with contextlib.suppress(Exception):
                self.tick()

    def tick(self) -> None:
        status = self.board.read_all()
        now = time.time()
        changed = {}
        for n, d in status.items():
            seen = self._seen.get(n)
            if seen is None or seen[0] != d["phase"]:
                changed[n] = d  # a new phase shows at once
            elif seen[1] != d["detail"] and now - self._printed.get(n, 0) >= self.detail_every:
                changed[n] = d  # detail changes at most every detail_every seconds
        for n in changed:
            self._printed[n] = now
        if changed:
            for line in render(changed, now):
                self.write(line)
            self._seen.update({n: (d["phase"], d["detail"]) for n, d in changed.items()})
        if now - self._last_beat >= self.heartbeat:
            active = {n: d for n, d in status.items() if d["phase"] not in ("done",)}
            if active:
                self.write("progress: " + " | ".join(render(active, now)))
            self._last_beat = now
