"""Measuring one step in a process of its own: wall time and peak RSS, comparable across steps.

A benchmark script calls itself with `--child NAME ...`; the child runs one step, then prints a
JSON line with its figures and its own peak RSS (`getrusage(RUSAGE_SELF)`). A command such as
`cat` is measured by GNU time (`%M`): getrusage would report the Python process it was forked
from. Separate processes keep one step's memory from counting against another.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

MiB = 1 << 20


GNU_TIME = "/usr/bin/time"  # Debian package `time`


def peak_rss_mib() -> dict[str, float]:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"peak_rss_mib": round(own, 1)}


def timed_command(argv: list[str], stdin: Path | None = None) -> dict[str, float | None]:
    """Seconds and peak RSS (MiB, None without GNU time) of one command, its output thrown
    away (`cat file > /dev/null`)."""
    timer = [GNU_TIME, "-f", "%M"] if os.access(GNU_TIME, os.X_OK) else []
    start = time.perf_counter()
    with open(os.devnull, "wb") as null:
        src = stdin.open("rb") if stdin is not None else None
        try:
            done = subprocess.run(
                [*timer, *argv], stdin=src, stdout=null, stderr=subprocess.PIPE, check=True
            )
        finally:
            if src is not None:
                src.close()
    seconds = time.perf_counter() - start
    rss = None
    if timer:
        rss = round(int(done.stderr.decode().strip().splitlines()[-1]) / 1024, 1)
    return {"seconds": seconds, "command_peak_rss_mib": rss}


def report(figures: dict[str, Any]) -> None:
    """The child's last line: its figures and its peak memory."""
    print(json.dumps({**figures, **peak_rss_mib()}), flush=True)


def run_child(script: Path, args: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run `script --child ...` and return the JSON figures it reported."""
    out = subprocess.run(
        [sys.executable, str(script), "--child", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        check=False,
    )
    if out.returncode != 0:
        raise SystemExit(f"{script.name} --child {' '.join(args)} failed:\n{out.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def warm(path: Path) -> None:
    """Read a file once so that every step starts with it in the page cache."""
    timed_command(["cat", str(path)])
