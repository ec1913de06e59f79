"""The interrupt matrix: a harness run stopped in one phase by the signals a user or a
cancelled CI job sends, and everything it must have left as it found it.

A run here is the real harness (pytest with the installed plugin) on a small project
(tests/support/interrupt_project): real Packer, a real base-disk build, a real QEMU, the real
publisher. Every process of the run carries MATRIX_RUN=<id> in its environment, so whatever
survives is found whatever it was called; the harness's temporary folder is a fresh short one
that must be empty afterwards.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from core import waiting
from core.files import read_json, sha256_file
from core.ownership import OWNER_FILE
from core.proc import argv_of, pid_alive
from core.trees import mounts_below, remove_tree

REPO = Path(__file__).resolve().parents[2]
PROJECT = Path(__file__).with_name("interrupt_project")
STAND_IN_INVENTORY = Path(__file__).with_name("stand_in_inventory.py")
GITHUB_SIGTERM_AFTER = 7.5  # a cancelled job: SIGINT, then SIGTERM 7.5 s later, then SIGKILL
# name -> [(seconds after the previous signal, signal)]
PATTERNS: dict[str, list[tuple[float, int]]] = {
    "sigint": [(0.0, signal.SIGINT)],
    "sigterm": [(0.0, signal.SIGTERM)],
    "sigint-then-sigterm": [(0.0, signal.SIGINT), (GITHUB_SIGTERM_AFTER, signal.SIGTERM)],
}
TEMP_NAMES = (".tmp-", ".old-", ".trash-")
# the matrix runs Debian's packer and boots a real (tiny) QEMU VM
NEEDS_PACKER_AND_QEMU = pytest.mark.skipif(
    shutil.which("packer") is None or shutil.which("qemu-system-x86_64") is None,
    reason="needs Debian's packer and qemu-system-x86",
)
INTERRUPTED = 2  # pytest's exit code for an interrupted session


def wait_for(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    """core.waiting.wait_for with the matrix's pace (a WaitTimeout fails the test)."""
    return waiting.wait_for(predicate, what=what, timeout=timeout, interval=0.2)


@dataclass
class Run:
    proc: subprocess.Popen[bytes]
    output: Path
    delivered: list[str] = field(default_factory=list)  # signals that reached a live harness

    def text(self) -> str:
        return self.output.read_text(errors="replace") if self.output.exists() else ""

    def wait(self, timeout: float) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"the harness did not end within {timeout:.0f}s:\n{self.text()[-3000:]}"
            ) from None

    def stop(self, pattern: str) -> None:
        """Send a pattern's signals to the harness process, as CI does (not to its group)."""
        for delay, sig in PATTERNS[pattern]:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=delay)
            if self.proc.poll() is None:
                self.proc.send_signal(sig)
                self.delivered.append(signal.Signals(sig).name)

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)
        self.delivered.append("SIGKILL")


@dataclass
class Matrix:
    """One test's world: project, cache, artifacts, reports, a publish folder, the marks the
    doubles leave, and the harness's own temporary folder."""

    root: Path
    tmpdir: Path
    mark: str
    env_extra: dict[str, str] = field(default_factory=dict)

    @classmethod
    def create(cls, tmp_path: Path) -> Matrix:
        root = tmp_path
        (root / "packer" / "debian12").mkdir(parents=True)
        shutil.copy(PROJECT / "template.pkr.hcl", root / "packer" / "debian12" / "template.pkr.hcl")
        shutil.copy(PROJECT / "matrix_conftest.py", root / "conftest.py")
        shutil.copy(PROJECT / "matrix_checks.py", root / "matrix_checks.py")
        shutil.copy(STAND_IN_INVENTORY, root / STAND_IN_INVENTORY.name)
        (root / "marks").mkdir()
        tmpdir = Path(tempfile.mkdtemp(prefix="xm-", dir="/tmp"))  # short: sockets go there
        return cls(root=root, tmpdir=tmpdir, mark=uuid.uuid4().hex)

    @property
    def cache(self) -> Path:
        return self.root / "cache"

    @property
    def artifacts(self) -> Path:
        return self.root / "artifacts"

    @property
    def published(self) -> Path:
        return self.root / "published"

    @property
    def marks(self) -> Path:
        return self.root / "marks"

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "TEMPLATE_"))}
        env.pop("PYTHONPATH", None)  # the plugin comes from the installed project
        env |= {
            "MATRIX_RUN": self.mark,
            "MATRIX_MARKS": str(self.marks),
            "TMPDIR": str(self.tmpdir),
            "PYTEST_DEBUG_TEMPROOT": str(self.root / "pytest-temp"),
        }
        (self.root / "pytest-temp").mkdir(exist_ok=True)
        return env | self.env_extra | extra

    def command(self, *args: str) -> list[str]:
        return [
            sys.executable,
            "-m",
            "pytest",
            "-c",
            "/dev/null",
            f"--rootdir={self.root}",
            "-p",
            "no:cacheprovider",
            "--os=debian12",
            "--platform=local",
            f"--packer-dir={self.root / 'packer'}",
            f"--artifacts-dir={self.artifacts}",
            f"--reports-dir={self.root / 'reports'}",
            f"--cache-dir={self.cache}",
            "--min-free-disk=1M",
            *args,
            "matrix_checks.py",
        ]

    def start(self, *args: str, env: dict[str, str] | None = None) -> Run:
        for old in self.marks.iterdir():
            old.unlink()
        output = self.root / f"harness-{time.monotonic_ns()}.out"
        with output.open("wb") as out:
            proc = subprocess.Popen(
                self.command(*args),
                cwd=self.root,
                env=self.env(**(env or {})),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                # as from a terminal or a CI runner, even if this test runs in a background
                # job (which ignores SIGINT, and a child would inherit that)
                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
            )
        return Run(proc, output)

    def run(
        self, *args: str, env: dict[str, str] | None = None, timeout: float = 240
    ) -> tuple[int, str]:
        run = self.start(*args, env=env)
        return run.wait(timeout), run.text()

    def wait_mark(self, phase: str, run: Run, timeout: float = 120) -> None:
        def held() -> bool:
            if run.proc.poll() is not None:
                raise AssertionError(f"the harness ended before {phase}:\n{run.text()[-3000:]}")
            return (self.marks / phase).exists()

        wait_for(held, timeout, f"the {phase} phase")

    # -- what a stopped run may not leave -------------------------------------------------

    def processes(self) -> list[str]:
        """Every process of this matrix's runs still alive: its environment carries the mark,
        or its command line names one of our folders."""
        found = []
        needle = f"MATRIX_RUN={self.mark}".encode()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            try:
                environ = (entry / "environ").read_bytes()
            except OSError:
                continue
            argv = argv_of(int(entry.name))
            named = any(str(self.root) in a or str(self.tmpdir) in a for a in argv)
            if argv and (needle in environ.split(b"\0") or named):
                found.append(f"{entry.name} {' '.join(argv)[:160]}")
        return found

    def wait_no_processes(self, timeout: float = 30) -> list[str]:
        """The run's processes still there after up to `timeout` seconds ([] once all exit)."""
        with contextlib.suppress(waiting.WaitTimeout):
            waiting.wait_for(
                lambda: not self.processes(), what="no process", timeout=timeout, interval=0.3
            )
        return self.processes()

    def mounts(self) -> list[str]:
        return [str(m) for m in mounts_below(self.root) + mounts_below(self.tmpdir)]

    def temporary(self) -> list[str]:
        """Temporary files and folders anywhere but in the artifacts' own records."""
        left = [str(p) for p in self.tmpdir.iterdir()]
        for folder in (self.cache / "base", *self.cache.glob("images/*/*")):
            if folder.is_dir():
                left += [str(p) for p in folder.iterdir() if p.name.startswith(TEMP_NAMES)]
        for root in (self.artifacts, self.root / "reports", self.published):
            if root.is_dir():
                left += [str(p) for p in root.rglob("*.part")]
        runs = self.artifacts / ".runs"
        left += [str(p) for p in runs.iterdir()] if runs.is_dir() else []
        vms = self.artifacts / "vms"
        left += [str(p) for p in vms.iterdir()] if vms.is_dir() else []
        left += [str(p) for p in self.marks.glob("fifo-*")]
        return sorted(left)

    def half_written(self) -> list[str]:
        """Cache entries under their final name that are not whole."""
        bad = []
        for entry in self.cache.glob("images/*/*/*"):
            if entry.is_dir() and not entry.name.startswith("."):
                record = read_json(entry / "build.json") or {}
                image = Path(record.get("artifact") or "/nonexistent")
                if not image.is_file() or sha256_file(image) != record.get("sha256"):
                    bad.append(f"cache entry {entry} is not whole")
        base = self.cache / "base"
        for entry in base.glob("*") if base.is_dir() else []:
            if entry.is_dir() and not entry.name.startswith("."):
                meta = read_json(entry / "meta.json")
                disk = entry / "base.qcow2"
                if meta is None or not disk.is_file() or sha256_file(disk) != meta["sha256"]:
                    bad.append(f"base disk entry {entry} is not whole")
        return bad

    def images(self) -> set[str]:
        """sha256 of every whole image in the cache (what a published artifact may be)."""
        shas = set()
        for record in self.cache.glob("images/*/*/*/build.json"):
            data = read_json(record)
            if data:
                shas.add(str(data["sha256"]))
        return shas

    def results(self) -> dict[str, Any]:
        data = read_json(self.root / "reports" / "results.json")
        assert isinstance(data, dict), "no results.json"
        return data

    def cleanup(self) -> None:
        """After the test, whatever happened: nothing of ours may keep running."""
        for line in self.processes():
            pid = int(line.split()[0])
            if pid_alive(pid):
                os.kill(pid, signal.SIGKILL)
        remove_tree(self.tmpdir)


def owner_files(artifacts: Path) -> list[Path]:
    return list((artifacts / ".runs").glob(f"*/{OWNER_FILE}"))


def dump(path: Path) -> str:
    return json.dumps(read_json(path), indent=1)[:2000]


def never_publishable(m: Matrix) -> str:
    """The publisher's refusal of this run's results.json (a dry run writes nothing)."""
    from core.errors import UsageError
    from core.settings import Settings
    from publish.api import publish_results

    settings = Settings.from_env(env={}, publish_require_platform="any")
    try:
        publish_results(
            [m.root / "reports" / "results.json"],
            str(m.root / "never"),
            settings,
            dry_run=True,
            log=lambda _l: None,
        )
    except UsageError as exc:
        return str(exc)
    raise AssertionError("the results of a stopped run were accepted for publishing")


def assert_left_as_found(m: Matrix, run: Run, rc: int) -> None:
    """What every stop must leave: the harness ended as interrupted, nothing of the run runs
    or is mounted, no temporary file anywhere, nothing half-written under a final name, and
    a partial, unpublishable record."""
    out = run.text()
    assert rc == INTERRUPTED, f"exit {rc}\n{out[-4000:]}"
    assert "Traceback" not in out, out[-4000:]
    assert m.wait_no_processes() == []
    assert m.mounts() == []
    assert m.temporary() == [], out[-3000:]
    assert m.half_written() == []
    results = m.results()
    assert results["partial"] is True and "interrupted" in results["partial_reasons"], results
    assert "partial" in never_publishable(m)


def assert_next_run_succeeds(m: Matrix, *args: str, env: dict[str, str] | None = None) -> str:
    """The next run on the same cache passes, with no manual help, and leaves nothing."""
    rc, out = m.run(*args, env=env)
    assert rc == 0, out[-5000:]
    results = m.results()
    assert results["partial"] is False, results["partial_reasons"]
    assert results["os"]["debian12"]["verdict"] == "passed", results["os"]["debian12"]["reasons"]
    assert m.processes() == []
    assert m.temporary() == [], m.temporary()
    assert m.mounts() == [], m.mounts()
    assert m.half_written() == [], m.half_written()
    return out
