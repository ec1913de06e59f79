"""Run Packer and read its machine-readable output.

Secrets reach Packer only as PKR_VAR_* environment variables, never in argv; every line that
reaches the build log passes through the redactor first. Packer runs in its own process group:
on timeout or interrupt it first gets SIGINT and time to destroy its VM, then the whole group
is killed. PR_SET_PDEATHSIG makes Packer receive SIGTERM if the worker that started it dies, so a
killed worker does not leave a second Packer building the same VM name.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import InfrastructureError, UsageError
from core.proc import start_group, supervise
from core.redact import Redactor

_COMMA = "%!(PACKER_COMMA)"
GRACE_SECONDS = 60.0


@dataclass
class MachineLine:
    timestamp: str
    target: str
    type: str
    data: list[str]


def parse_machine_line(line: str) -> MachineLine | None:
    """One `timestamp,target,type,data...` line; None for anything else (plain output)."""
    parts = line.rstrip("\r\n").split(",")
    if len(parts) < 3 or not parts[0].isdigit():
        return None
    data = [p.replace(_COMMA, ",").replace("\\n", "\n").replace("\\r", "\r") for p in parts[3:]]
    return MachineLine(parts[0], parts[1], parts[2], data)


@dataclass
class PackerOutput:
    """What a build said: artifact files per builder, errors, and the human-readable text."""

    artifacts: dict[str, list[str]] = field(default_factory=dict)  # target -> files
    errors: list[str] = field(default_factory=list)
    error_count: int | None = None
    ui: list[str] = field(default_factory=list)

    def feed(self, ml: MachineLine) -> str | None:
        """Record one line; return the text to show humans, if any."""
        if ml.type == "ui" and len(ml.data) >= 2:
            kind, text = ml.data[0], ml.data[1]
            if kind == "error":
                self.errors.append(text.strip())
            self.ui.append(text)
            return text
        if ml.type == "artifact" and len(ml.data) >= 3 and ml.data[1] == "file":
            self.artifacts.setdefault(ml.target or "build", []).append(
                ml.data[3] if len(ml.data) > 3 else ml.data[2]
            )
            return None
        if ml.type == "error-count" and ml.data:
            with contextlib.suppress(ValueError):
                self.error_count = int(ml.data[0])
            return None
        if ml.type == "error" and ml.data:
            self.errors.append(ml.data[-1].strip())
            return ml.data[-1]
        return None

    def files(self) -> list[str]:
        return [f for fs in self.artifacts.values() for f in fs]


def parse_machine_output(text: str) -> PackerOutput:
    out = PackerOutput()
    for line in text.splitlines():
        ml = parse_machine_line(line)
        if ml:
            out.feed(ml)
    return out


@dataclass
class PackerRun:
    returncode: int
    output: PackerOutput
    duration_s: float
    timed_out: bool = False
    interrupted: bool = False

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out and not self.interrupted

    def failure_message(self) -> str:
        if self.timed_out:
            return f"Packer build timed out after {self.duration_s:.0f}s"
        if self.interrupted:
            return "Packer build was interrupted"
        last = next((e for e in reversed(self.output.errors) if e), None)
        first_line = (last or "no error message").strip().splitlines()
        detail = " / ".join(line.strip() for line in first_line[:3] if line.strip())
        return f"Packer build failed (exit {self.returncode}): {detail}"


def packer_version(packer_bin: str) -> str:
    try:
        out = subprocess.run(
            [packer_bin, "version"], capture_output=True, text=True, timeout=60, check=False
        )
    except FileNotFoundError:
        raise UsageError(
            f"Packer not found ({packer_bin!r}); install it (apt-get install packer, or "
            "HashiCorp's release) or pass --packer-bin / PACKER_BIN"
        ) from None
    m = re.search(r"(\d+\.\d+\.\d+)", out.stdout + out.stderr)
    if out.returncode != 0 or not m:
        raise UsageError(f"{packer_bin} version failed: {(out.stdout + out.stderr).strip()[:200]}")
    return m.group(1)


def _packer_env(variables: dict[str, str], extra_env: dict[str, str] | None) -> dict[str, str]:
    env = dict(os.environ)
    env.update(extra_env or {})
    env.update({f"PKR_VAR_{k}": v for k, v in variables.items()})
    env.setdefault("CHECKPOINT_DISABLE", "1")  # no phone-home from inside CI
    env.setdefault("PACKER_NO_COLOR", "1")
    return env


def _spawn(argv: list[str], cwd: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    try:
        # SIGTERM, not SIGINT, when the harness dies: Packer's panicwrap parent ignores SIGINT
        # sent to it alone (a terminal signals the whole group) but forwards SIGTERM, which
        # cancels the build.
        return start_group(argv, env=env, cwd=cwd, death_signal=signal.SIGTERM)
    except FileNotFoundError:
        raise UsageError(
            f"Packer not found ({argv[0]!r}); install it or pass --packer-bin"
        ) from None


def run_build(
    packer_bin: str,
    template_dir: Path,
    *,
    var_file: Path | None,
    variables: dict[str, str],
    log_path: Path,
    timeout_s: float,
    redactor: Redactor,
    cwd: Path,
    on_start: Callable[[int], None] | None = None,
    on_text: Callable[[str], None] | None = None,
    grace_s: float = GRACE_SECONDS,
    extra_args: Sequence[str] = (),
    extra_env: dict[str, str] | None = None,
) -> PackerRun:
    """`packer build -machine-readable`; variables go to the environment as PKR_VAR_*."""
    argv = [packer_bin, "build", "-machine-readable", *extra_args]
    if var_file is not None:
        argv.append(f"-var-file={var_file}")
    argv.append(str(template_dir))
    log_path.parent.mkdir(parents=True, exist_ok=True)
    out = PackerOutput()
    started = time.monotonic()
    with log_path.open("a", encoding="utf-8") as log:
        log.write(redactor(f"$ {' '.join(argv)}\n"))
        log.flush()
        proc = _spawn(argv, cwd, _packer_env(variables, extra_env))
        if on_start:
            on_start(proc.pid)

        def on_line(raw: str) -> None:
            ml = parse_machine_line(raw)
            text = out.feed(ml) if ml else raw
            if not text:
                return
            clean = redactor(text.rstrip("\n"))
            stamp = time.strftime("%H:%M:%S")
            for piece in clean.splitlines() or [""]:
                log.write(f"{stamp} {piece}\n")
            log.flush()
            if on_text:
                on_text(clean)

        def on_stop(why: str) -> None:
            log.write(f"!! {why}: sending SIGINT to Packer so it removes its VM\n")
            log.flush()

        ended = supervise(
            proc, timeout_s=timeout_s, grace_s=grace_s, on_line=on_line, on_stop=on_stop
        )
        rc = proc.returncode if proc.returncode is not None else -1
        log.write(f"!! packer exited {rc} after {time.monotonic() - started:.1f}s\n")
    return PackerRun(
        rc, out, time.monotonic() - started, ended == "timed out", ended == "interrupted"
    )


def run_init(packer_bin: str, template_dir: Path, log_path: Path, redactor: Redactor) -> None:
    """`packer init` for templates that declare required_plugins (Packer >= 1.7)."""
    proc = subprocess.run(
        [packer_bin, "init", str(template_dir)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    with log_path.open("a", encoding="utf-8") as log:
        log.write(redactor(f"$ {packer_bin} init {template_dir}\n{proc.stdout}{proc.stderr}"))
    if proc.returncode != 0:
        said = (proc.stderr or proc.stdout).strip().splitlines()
        detail = redactor(said[-1] if said else "no output")
        raise InfrastructureError(f"packer init {template_dir} failed: {detail}")
